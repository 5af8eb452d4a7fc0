package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	bkclient "github.com/moby/buildkit/client"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"

	"github.com/slipway-dev/slipway/build"
	"github.com/slipway-dev/slipway/devstack"
	"github.com/slipway-dev/slipway/internal/testing/gitserver"
)

// Timeouts of the environment's own start and stop.
const (
	stackStartTimeout = 5 * time.Minute
	workerReadyWait   = time.Minute
	workerStopGrace   = 15 * time.Second
)

// env is everything the bench started: the stack, the Git server, the worker and a Temporal
// client. close stops all of it.
type env struct {
	logger   *slog.Logger
	home     string
	keep     bool
	timeout  time.Duration
	cache    string
	stack    *devstack.Stack
	gitRoot  string
	gitURL   string
	gitSrv   *http.Server
	worker   *workerProcess
	temporal client.Client
	buildctl string
	rawLog   string
}

// startEnv builds the worker, starts the stack, the Git server and the worker, and waits until
// the worker polls. On error it stops what it had started.
func startEnv(ctx context.Context, logger *slog.Logger, root string, o options) (_ *env, err error) {
	// Short: buildkitd's socket lives under it and unix socket paths are short.
	home, err := os.MkdirTemp("/tmp", "slw-bench-")
	if err != nil {
		return nil, fmt.Errorf("creating home: %w", err)
	}
	e := &env{logger: logger, home: home, keep: o.keep, timeout: o.buildTimeout, cache: o.cache}
	defer func() {
		if err != nil {
			e.close()
		}
	}()
	e.buildctl = filepath.Join(o.toolsDir, "buildctl")
	if _, err := os.Stat(e.buildctl); err != nil {
		return nil, fmt.Errorf("buildctl not found in %s (run scripts/tools.sh): %w", o.toolsDir, err)
	}

	bin := filepath.Join(home, "bin")
	logger.Info("building the worker", "into", bin)
	build := exec.CommandContext(ctx, "go", "build", "-o", bin+"/", "./cmd/worker")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("building worker: %w\n%s", err, out)
	}

	startCtx, cancel := context.WithTimeout(ctx, stackStartTimeout)
	defer cancel()
	e.stack, err = devstack.Start(startCtx, devstack.Options{Home: home, ToolsDir: o.toolsDir, Logger: logger})
	if err != nil {
		return nil, fmt.Errorf("starting stack (tools from %s; run scripts/tools.sh): %w", o.toolsDir, err)
	}
	e.rawLog = filepath.Join(e.stack.LogDir(), "raw.log")

	e.gitRoot = filepath.Join(home, "git")
	if err := e.serveGit(); err != nil {
		return nil, err
	}

	quiet := slog.New(levelHandler{Handler: logger.Handler(), min: slog.LevelWarn})
	e.temporal, err = client.Dial(client.Options{
		HostPort: e.stack.TemporalAddress,
		Logger:   tlog.NewStructuredLogger(quiet),
	})
	if err != nil {
		return nil, fmt.Errorf("dialing temporal at %s: %w", e.stack.TemporalAddress, err)
	}

	e.worker, err = startWorker(filepath.Join(bin, "worker"), filepath.Join(e.stack.LogDir(), "worker.log"), append(os.Environ(),
		"SLIPWAY_HOME="+home,
		"SLIPWAY_TEMPORAL_ADDRESS="+e.stack.TemporalAddress,
		"SLIPWAY_TEMPORAL_UI_URL="+e.stack.TemporalUIURL,
		"SLIPWAY_BUILDKIT_ADDR="+e.stack.BuildkitAddr,
		"SLIPWAY_BUILD_CGROUP="+e.stack.BuildCgroup,
		"SLIPWAY_REGISTRY="+e.stack.Registry,
		"SLIPWAY_GITHUB_URL="+e.gitURL,
		"SLIPWAY_GITLAB_URL="+e.gitURL,
		// The bench's builds are all of one namespace: the per-namespace limit would measure
		// itself instead of the workers.
		"SLIPWAY_NAMESPACE_MAX_RUNNING=1000",
	))
	if err != nil {
		return nil, err
	}
	if err := e.waitWorker(ctx); err != nil {
		return nil, err
	}
	logger.Info("environment ready", "home", home, "temporal", e.stack.TemporalAddress,
		"buildkit", e.stack.BuildkitAddr, "registry", e.stack.Registry, "git", e.gitURL)
	return e, nil
}

// serveGit serves the bare repositories under gitRoot over smart HTTP with git http-backend.
func (e *env) serveGit() error {
	if err := os.MkdirAll(e.gitRoot, 0o755); err != nil {
		return fmt.Errorf("creating git root: %w", err)
	}
	h, err := gitserver.Handler(e.gitRoot, "", "")
	if err != nil {
		return fmt.Errorf("git server: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("listening for git: %w", err)
	}
	e.gitURL = "http://" + ln.Addr().String()
	e.gitSrv = &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := e.gitSrv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			e.logger.Error("git server stopped", "error", err)
		}
	}()
	return nil
}

// waitWorker waits until a worker polls the build task queue, so that no measured run pays
// for the worker's start.
func (e *env) waitWorker(ctx context.Context) error {
	deadline := time.Now().Add(workerReadyWait)
	for {
		resp, err := e.temporal.DescribeTaskQueue(ctx, build.DefaultTaskQueue, enumspb.TASK_QUEUE_TYPE_WORKFLOW)
		if err == nil && len(resp.GetPollers()) > 0 {
			return nil
		}
		if e.worker.exited() {
			return fmt.Errorf("worker exited at start (%v); log:\n%s", e.worker.err, tail(e.worker.logPath, 2048))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no worker polls %s after %s (last error %v); log:\n%s",
				build.DefaultTaskQueue, workerReadyWait, err, tail(e.worker.logPath, 2048))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// buildkitInfo names buildkitd's snapshotter and version, for the report.
func (e *env) buildkitInfo(ctx context.Context) (snapshotter, version string) {
	c, err := bkclient.New(ctx, e.stack.BuildkitAddr)
	if err != nil {
		return "unknown", "unknown"
	}
	defer c.Close()
	snapshotter, version = "unknown", "unknown"
	if ws, err := c.ListWorkers(ctx); err == nil && len(ws) > 0 {
		snapshotter = ws[0].Labels["org.mobyproject.buildkit.worker.snapshotter"]
	}
	if info, err := c.Info(ctx); err == nil {
		version = info.BuildkitVersion.Version
	}
	return snapshotter, version
}

// close stops the worker, the Git server and the stack, and removes the home unless asked to
// keep it. It is safe on a partly started environment.
func (e *env) close() {
	if e.worker != nil {
		e.worker.stop(workerStopGrace)
	}
	if e.temporal != nil {
		e.temporal.Close()
	}
	if e.gitSrv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = e.gitSrv.Shutdown(ctx)
		cancel()
	}
	if e.stack != nil {
		e.stack.Close()
	}
	if e.keep {
		e.logger.Info("home kept", "home", e.home)
		return
	}
	if err := os.RemoveAll(e.home); err != nil {
		e.logger.Warn("removing home", "home", e.home, "error", err)
	}
}

// workerProcess is the running worker binary, in its own process group.
type workerProcess struct {
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
	err     error // the Wait result; read only after done is closed
}

func startWorker(bin, logPath string, environ []string) (*workerProcess, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("creating worker log: %w", err)
	}
	cmd := exec.Command(bin)
	cmd.Env = environ
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own group, so a Ctrl-C in the terminal reaches only the bench, which stops the
	// worker in order; the parent-death signal covers a bench that is killed outright.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("starting worker: %w", err)
	}
	w := &workerProcess{cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		w.err = cmd.Wait()
		logf.Close()
		close(w.done)
	}()
	return w, nil
}

func (w *workerProcess) exited() bool {
	select {
	case <-w.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM to the worker's group, as an orchestrator would, and SIGKILL after grace.
func (w *workerProcess) stop(grace time.Duration) {
	pgid := w.cmd.Process.Pid
	if !w.exited() {
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		select {
		case <-w.done:
		case <-time.After(grace):
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			<-w.done
		}
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
}

// levelHandler drops records below min; it keeps the Temporal SDK's info chatter out of the
// bench's output.
type levelHandler struct {
	slog.Handler
	min slog.Level
}

// Enabled reports whether a record of level l is kept.
func (h levelHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

// WithAttrs keeps the level filter on derived handlers.
func (h levelHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return levelHandler{Handler: h.Handler.WithAttrs(attrs), min: h.min}
}

// WithGroup keeps the level filter on derived handlers.
func (h levelHandler) WithGroup(name string) slog.Handler {
	return levelHandler{Handler: h.Handler.WithGroup(name), min: h.min}
}

// tail returns up to the last n bytes of a file, for error messages.
func tail(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() > n {
		if _, err := f.Seek(-n, io.SeekEnd); err != nil {
			return ""
		}
	}
	b, _ := io.ReadAll(f)
	return strings.TrimSpace(string(b))
}
