package main

import (
	"bufio"
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	bkclient "github.com/moby/buildkit/client"
	enumspb "go.temporal.io/api/enums/v1"
	taskqueuepb "go.temporal.io/api/taskqueue/v1"
	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"

	"github.com/slipway-dev/slipway/build"
	"github.com/slipway-dev/slipway/devstack"
	"github.com/slipway-dev/slipway/internal/testing/gitserver"
)

const (
	// workerStopGrace is how long a worker or gateway gets to shut down on SIGTERM.
	workerStopGrace = 20 * time.Second
	// buildTimeout is the longest one build may take.
	buildTimeout = 10 * time.Minute
)

// env is everything the bench started: the stack, a Git server, the worker and a Temporal
// client. close stops all of it.
type env struct {
	logger   *slog.Logger
	home     string
	bin      string
	keep     bool
	cache    string
	buildctl string
	stack    *devstack.Stack
	git      *gitserver.Server
	worker   *devstack.Process
	temporal client.Client
	// loads are the 1-minute load averages seen after each measured e2e pair.
	loads []float64
}

// startEnv builds the binaries, starts the stack, the Git server and the worker, and waits
// until the worker polls. On error it stops what it had started.
func startEnv(ctx context.Context, logger *slog.Logger, o options) (_ *env, err error) {
	// Short: buildkitd's socket lives under it and unix socket paths are short.
	home, err := os.MkdirTemp("/tmp", "slw-bench-")
	if err != nil {
		return nil, fmt.Errorf("creating home: %w", err)
	}
	e := &env{logger: logger, home: home, bin: filepath.Join(home, "bin"), keep: o.keep, cache: o.cache,
		buildctl: filepath.Join(o.toolsDir, "buildctl")}
	defer func() {
		if err != nil {
			e.close()
		}
	}()
	if err := devstack.BuildBinaries(ctx, e.bin, "./cmd/worker", "./cmd/gateway"); err != nil {
		return nil, err
	}
	startCtx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	if e.stack, err = devstack.Start(startCtx, devstack.Options{Home: home, ToolsDir: o.toolsDir, Logger: logger}); err != nil {
		return nil, fmt.Errorf("starting stack (tools from %s; run scripts/tools.sh): %w", o.toolsDir, err)
	}
	if e.git, err = gitserver.New(filepath.Join(home, "git"), "", ""); err != nil {
		return nil, err
	}
	if e.temporal, err = dialTemporal(e.stack.TemporalAddress); err != nil {
		return nil, err
	}
	if e.worker, err = e.startWorker(ctx, "worker"); err != nil {
		return nil, err
	}
	logger.Info("environment ready", "home", home, "temporal", e.stack.TemporalAddress, "git", e.git.URL)
	return e, nil
}

// dialTemporal dials a Temporal server, its SDK logging warnings only.
func dialTemporal(addr string) (client.Client, error) {
	quiet := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	c, err := client.Dial(client.Options{HostPort: addr, Logger: tlog.NewStructuredLogger(quiet)})
	if err != nil {
		return nil, fmt.Errorf("dialing temporal at %s: %w", addr, err)
	}
	return c, nil
}

// startWorker starts a worker binary on the stack with extra settings and waits until it
// polls under its own identity ("PID@host@"): pollers of a stopped worker stay listed for
// minutes, so any poller would not do.
func (e *env) startWorker(ctx context.Context, name string, extra ...string) (*devstack.Process, error) {
	w, err := devstack.StartProcess(devstack.Command{Args: []string{filepath.Join(e.bin, "worker")}, Log: filepath.Join(e.stack.LogDir(), name+".log"),
		Env: e.stack.WorkerEnv(append([]string{"SLIPWAY_GITHUB_URL=" + e.git.URL, "SLIPWAY_GITLAB_URL=" + e.git.URL,
			// The bench's builds are all of one namespace: the per-namespace limit would
			// measure itself instead of the workers.
			"SLIPWAY_NAMESPACE_MAX_RUNNING=1000"}, extra...)...)})
	if err != nil {
		return nil, err
	}
	prefix := strconv.Itoa(w.Pid()) + "@"
	err = devstack.Poll(ctx, 100*time.Millisecond, time.Minute, func() (bool, error) {
		resp, err := e.temporal.DescribeTaskQueue(ctx, build.DefaultTaskQueue, enumspb.TASK_QUEUE_TYPE_WORKFLOW)
		ok := err == nil && slices.ContainsFunc(resp.GetPollers(), func(p *taskqueuepb.PollerInfo) bool { return strings.HasPrefix(p.GetIdentity(), prefix) })
		return ok, w.ExitError()
	})
	if err != nil {
		_ = w.Stop(workerStopGrace)
		return nil, fmt.Errorf("worker %s: %w; log:\n%s", name, err, w.Tail(20))
	}
	return w, nil
}

// close stops the worker, the Git server and the stack, and removes the home unless asked to
// keep it. It is safe on a partly started environment.
func (e *env) close() {
	if e.worker != nil {
		_ = e.worker.Stop(workerStopGrace)
	}
	if e.temporal != nil {
		e.temporal.Close()
	}
	if e.git != nil {
		e.git.Close()
	}
	if e.stack != nil {
		e.stack.Close()
	}
	if e.keep {
		e.logger.Info("home kept", "home", e.home)
	} else if err := os.RemoveAll(e.home); err != nil {
		e.logger.Warn("removing home", "home", e.home, "error", err)
	}
}

// describe is the machine and the tools the bench ran on.
func (e *env) describe(ctx context.Context, o options, took time.Duration) result {
	out := func(name string, args ...string) string {
		b, err := exec.CommandContext(ctx, name, args...).Output()
		if err != nil {
			return "unknown"
		}
		s, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
		return s
	}
	snapshotter, version := "unknown", "unknown"
	if c, err := bkclient.New(ctx, e.stack.BuildkitAddr); err == nil {
		if ws, err := c.ListWorkers(ctx); err == nil && len(ws) > 0 {
			snapshotter = ws[0].Labels["org.mobyproject.buildkit.worker.snapshotter"]
		}
		if info, err := c.Info(ctx); err == nil {
			version = info.BuildkitVersion.Version
		}
		c.Close()
	}
	loads := "–"
	if len(e.loads) > 0 {
		loads = fmt.Sprintf("%.2f – %.2f", slices.Min(e.loads), slices.Max(e.loads))
	}
	return result{key: "machine", title: "Machine", tables: []table{{header: []string{"", ""}, rows: [][]string{
		{"date", time.Now().UTC().Format(time.RFC3339)},
		{"go", out("go", "version")},
		{"CPUs", out("nproc")},
		{"memory", procField("/proc/meminfo", "MemTotal")},
		{"CPU", procField("/proc/cpuinfo", "model name")},
		{"kernel", out("uname", "-r")},
		{"load average at end (1, 5, 15 min)", loadAverage()},
		{"1-minute load after each measured e2e pair, min – max", loads},
		{"temporal CLI", out(filepath.Join(o.toolsDir, "temporal"), "--version")},
		{"buildkitd", version + ", snapshotter " + snapshotter},
		{"registry cache of the e2e and throughput builds", cmp.Or(o.cache, "Slipway's default (IMAGE:buildcache, mode=max)")},
		{"flags", strings.Join(append([]string{"go run ./bench"}, os.Args[1:]...), " ")},
		{"duration", took.Round(time.Second).String()},
	}}}}
}

// procField is the value of the first "key : value" line of a /proc file.
func procField(path, key string) string {
	f, err := os.Open(path)
	if err != nil {
		return "unknown"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

// load1 is the 1-minute load average, 0 when unknown.
func load1() float64 {
	var l float64
	_, _ = fmt.Sscanf(loadAverage(), "%g", &l)
	return l
}

// loadAverage is the 1, 5 and 15 minute load average.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return "unknown"
}
