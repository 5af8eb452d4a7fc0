// Command bench measures what Slipway adds on top of the tools it wraps. On its own local
// stack (devstack, the worker binary, a smart-HTTP Git server) it builds the same fixture
// repositories two ways, interleaved run by run: through workflow_docker_builder, timed from
// ExecuteWorkflow to the result, and with `git clone` + `buildctl build --push`, timed as one
// command pair. It prints a table and benchstat lines to stdout and, with -out, writes the
// figures, the machine and the exact commands to a markdown file. `make bench` runs it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"
)

// options are the command-line settings of one bench run.
type options struct {
	runs         int
	warmups      int
	out          string
	toolsDir     string
	largeFiles   int
	largeMiB     int
	keep         bool
	buildTimeout time.Duration
	cache        string
	// only is a comma-separated list of what to measure: "e2e" for the end-to-end
	// scenarios, or a section's key; empty measures everything.
	only string
	// scaleN is how many closed builds and how many build rules the scale section seeds.
	scaleN int
}

func main() {
	os.Exit(run())
}

func run() int {
	var o options
	flag.IntVar(&o.runs, "n", 5, "measured runs per scenario, for Slipway and for the raw tools each")
	flag.IntVar(&o.warmups, "warmup", 1, "unmeasured Slipway + raw run pairs before each scenario")
	flag.StringVar(&o.out, "out", "", "markdown report to write (such as docs/performance.md); empty writes none")
	flag.StringVar(&o.toolsDir, "tools", os.Getenv("SLIPWAY_TOOLS_DIR"), "folder holding temporal, buildkitd and buildctl (default <module>/.tools/bin)")
	flag.IntVar(&o.largeFiles, "large-files", 300, "number of files in the large-context fixture")
	flag.IntVar(&o.largeMiB, "large-mib", 48, "total size of the large-context fixture, in MiB")
	flag.BoolVar(&o.keep, "keep", false, "keep the bench's home folder (logs, registry, BuildKit cache) after the run")
	flag.StringVar(&o.cache, "cache", "", "registry cache of the Slipway builds, as BuildInput.cache: empty is Slipway's default (IMAGE:buildcache, mode=max), off builds without one")
	flag.StringVar(&o.only, "only", "", "comma-separated parts to measure: e2e (the side-by-side scenarios) or a section's key; empty measures all")
	flag.IntVar(&o.scaleN, "scale-n", 10000, "closed builds and build rules the scale section seeds")
	flag.DurationVar(&o.buildTimeout, "build-timeout", 10*time.Minute, "longest one build may take before the bench gives up")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: go run ./bench [-n RUNS] [-out docs/performance.md]\n\n"+
			"Starts its own local stack, builds fixtures through Slipway and with git + buildctl side by side,\n"+
			"and reports the overhead. Needs the tools of scripts/tools.sh.\n\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if o.runs < 1 || o.warmups < 0 || o.largeFiles < 1 || o.largeMiB < 1 || flag.NArg() != 0 {
		flag.Usage()
		return 2
	}

	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		// After the first signal, a second one ends the process at once; the children die
		// with it (they run with a parent-death signal).
		<-ctx.Done()
		stop()
	}()

	err := bench(ctx, logger, o)
	switch {
	case ctx.Err() != nil:
		logger.Warn("interrupted; everything the bench started is stopped")
		return 130
	case err != nil:
		logger.Error("bench", "error", err)
		return 1
	}
	return 0
}

// bench starts the environment, runs every scenario and reports.
func bench(ctx context.Context, logger *slog.Logger, o options) error {
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	if o.toolsDir == "" {
		o.toolsDir = filepath.Join(root, ".tools", "bin")
	}
	machine := describeMachine(ctx, o.toolsDir)

	e, err := startEnv(ctx, logger, root, o)
	if err != nil {
		return err
	}
	defer e.close()
	machine.snapshotter, machine.buildkitVersion = e.buildkitInfo(ctx)

	fixtures := []fixture{smallFixture(), largeFixture(o.largeFiles, o.largeMiB)}
	var results []*scenarioResult
	begin := time.Now()
	for _, fx := range fixtures {
		if !sectionEnabled(o, "e2e") {
			break
		}
		repo, err := e.createRepo(ctx, fx)
		if err != nil {
			return err
		}
		for _, sc := range []scenario{scenarioChanged, scenarioUnchanged} {
			r, err := e.runScenario(ctx, repo, fx, sc, o)
			if err != nil {
				return err
			}
			results = append(results, r)
		}
	}
	var ran []section
	for _, s := range allSections() {
		if !sectionEnabled(o, s.key()) {
			continue
		}
		logger.Info("measuring", "section", s.title())
		if err := s.run(ctx, e, o); err != nil {
			return fmt.Errorf("%s: %w", s.title(), err)
		}
		ran = append(ran, s)
	}
	machine.loadEnd = loadAverage()
	rep := &report{
		sections:        ran,
		machine:         machine,
		opts:            o,
		args:            os.Args[1:],
		results:         results,
		took:            time.Since(begin),
		temporalAddress: e.stack.TemporalAddress,
	}
	rep.writeText(os.Stdout)
	if o.out != "" {
		if err := rep.writeMarkdownFile(o.out); err != nil {
			return err
		}
		logger.Info("report written", "path", o.out)
	}
	return nil
}

// moduleRoot is the folder holding go.mod, found upwards from the working directory.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("finding working directory: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found above the working directory: run the bench inside the module")
		}
		dir = parent
	}
}
