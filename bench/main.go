// Command bench measures what Slipway adds on top of the tools it wraps, on a local stack of its
// own: builds through workflow_docker_builder against `git clone` + `buildctl build --push`,
// webhook deliveries, build lists with many records, rebuilds, worker throughput and the build
// network. It prints tables and benchstat lines and, with -out, writes them as markdown
// (docs/bench-results.md), which docs/performance.md quotes and explains. `make bench` runs it.
package main

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/slipway-dev/slipway/devstack"
)

// options are the command-line settings of one bench run.
type options struct {
	runs, warmups, scaleN      int
	out, toolsDir, cache, only string
	keep                       bool
	// scenarios picks the e2e part's fixtures; work keeps generated fixtures between runs.
	scenarios, work string
	history         history
}

// part is one measurement of the bench; -only picks parts by key.
type part struct {
	key     string
	measure func(ctx context.Context, e *env, o options) (result, error)
}

// parts lists the measurements in the order they run and are reported.
func parts() []part {
	return []part{{"e2e", measureE2E}, {"webhooks", measureWebhooks}, {"scale", measureScale},
		{"rebuilds", measureRebuilds}, {"throughput", measureThroughput}, {"network", measureNetwork},
		{"platforms", measurePlatforms}}
}

func main() {
	var o options
	flag.IntVar(&o.runs, "n", 5, "measured runs per scenario and side")
	flag.IntVar(&o.warmups, "warmup", 1, "unmeasured runs before each scenario")
	flag.StringVar(&o.out, "out", "", "markdown file to write the results to (docs/bench-results.md); empty writes none")
	flag.StringVar(&o.toolsDir, "tools", os.Getenv("SLIPWAY_TOOLS_DIR"), "folder holding temporal, buildkitd and buildctl (default <module>/.tools/bin)")
	flag.BoolVar(&o.keep, "keep", false, "keep the bench's home folder (logs, registry, BuildKit cache)")
	flag.StringVar(&o.cache, "cache", "", "registry cache of the e2e and throughput builds, as BuildInput.cache: empty is Slipway's default, off builds without one")
	flag.StringVar(&o.only, "only", "", "comma-separated parts to measure (e2e, webhooks, scale, rebuilds, throughput, network, platforms); empty measures all")
	flag.IntVar(&o.scaleN, "scale-n", 10000, "closed builds and build rules the scale part seeds")
	flag.StringVar(&o.scenarios, "e2e", "small,large,history", "comma-separated fixtures of the e2e part (small, large, history)")
	flag.IntVar(&o.history.commits, "history-commits", 1000, "commits of the history fixture (20 for a quick check)")
	flag.IntVar(&o.history.mib, "history-mib", 300, "MiB of incompressible blobs over the history fixture's commits (10 for a quick check)")
	cacheDir, _ := os.UserCacheDir()
	flag.StringVar(&o.work, "work", filepath.Join(cmp.Or(cacheDir, os.TempDir()), "slipway-bench"), "folder keeping generated fixtures between runs (the history fixture, keyed by its sizes)")
	flag.Parse()
	known := strings.Split("small,large,history", ",")
	if o.runs < 1 || o.warmups < 0 || o.scaleN < 10 || o.history.commits < 2 || o.history.mib < 1 || flag.NArg() != 0 ||
		slices.ContainsFunc(strings.Split(o.scenarios, ","), func(s string) bool { return !slices.Contains(known, s) }) {
		flag.Usage()
		os.Exit(2)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := bench(ctx, logger, o)
	stop()
	if err != nil {
		logger.Error("bench", "error", err)
		os.Exit(1)
	}
}

// bench starts the environment, measures every part asked for and writes the results.
func bench(ctx context.Context, logger *slog.Logger, o options) error {
	if o.toolsDir == "" {
		root, err := devstack.ModuleRoot()
		if err != nil {
			return err
		}
		o.toolsDir = filepath.Join(root, ".tools", "bin")
	}
	e, err := startEnv(ctx, logger, o)
	if err != nil {
		return err
	}
	defer e.close()
	begin := time.Now()
	var results []result
	for _, p := range parts() {
		if !listed(o.only, p.key) {
			continue
		}
		logger.Info("measuring", "part", p.key)
		r, err := p.measure(ctx, e, o)
		if err != nil {
			return fmt.Errorf("%s: %w", p.key, err)
		}
		results = append(results, r)
	}
	results = append([]result{e.describe(ctx, o, time.Since(begin))}, results...)
	writeText(os.Stdout, results, false)
	if o.out == "" {
		return nil
	}
	f, err := os.Create(o.out)
	if err != nil {
		return fmt.Errorf("creating %s: %w", o.out, err)
	}
	writeText(f, results, true)
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", o.out, err)
	}
	logger.Info("results written", "path", o.out)
	return nil
}

// listed says whether key is in the comma-separated list, an empty list holding every key.
func listed(list, key string) bool {
	return list == "" || strings.Contains(","+list+",", ","+key+",")
}
