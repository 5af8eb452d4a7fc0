// Package worker runs Slipway builds: it polls the docker-builder task queue for
// workflow_docker_builder and runs each build's steps in a session on this host. The binary is
// cmd/worker; Run is what it calls.
package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	bkclient "github.com/moby/buildkit/client"
	"github.com/prometheus/client_golang/prometheus"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/slipway-dev/slipway/accounts"
	"github.com/slipway-dev/slipway/activities"
	"github.com/slipway-dev/slipway/build"
	"github.com/slipway-dev/slipway/cgroup"
	"github.com/slipway-dev/slipway/config"
	"github.com/slipway-dev/slipway/logstore"
	"github.com/slipway-dev/slipway/metrics"
	"github.com/slipway-dev/slipway/registryauth"
	"github.com/slipway-dev/slipway/store"
	"github.com/slipway-dev/slipway/workflows"
)

// Run polls for builds until ctx ends or the worker fails. getenv supplies the configuration (os.Getenv in the binary).
func Run(ctx context.Context, getenv func(string) string, logger *slog.Logger) error {
	cfg, err := config.FromEnv(getenv)
	if err != nil {
		return fmt.Errorf("reading configuration: %w", err)
	}
	if err := cfg.MakeHome(); err != nil {
		return err
	}
	logs, err := logstore.New(cfg.LogsDir())
	if err != nil {
		return err
	}
	id, err := newWorkerID()
	if err != nil {
		return err
	}
	roots := []string{cfg.WorkspacesDir(), cfg.ImagesDir()}
	for _, root := range roots {
		if err := sweepWorkspaces(root, id, logger); err != nil {
			return err
		}
	}
	workspaces, err := claimFolder(cfg.WorkspacesDir(), id)
	if err != nil {
		return fmt.Errorf("creating workspaces folder: %w", err)
	}
	// This worker removes its own folders only; those of a worker that is gone are swept.
	defer releaseFolder(workspaces, logger)
	// A sibling worker on this host that is killed later leaves its folder too.
	stopSweeping := make(chan struct{})
	defer close(stopSweeping)
	go sweepPeriodically(roots, id, sweepInterval, logger, stopSweeping)
	var images *activities.ImageStore
	if cfg.ImageStoreTTL > 0 {
		// Per worker process, as workspaces are: BuildKit's writes into a content store are
		// locked within one process only.
		store, err := claimFolder(cfg.ImagesDir(), id)
		if err != nil {
			return fmt.Errorf("creating image store: %w", err)
		}
		defer releaseFolder(store, logger)
		images = &activities.ImageStore{Dir: store.Dir, TTL: cfg.ImageStoreTTL}
	}
	accts, closeAccounts, err := openAccounts(ctx, getenv, cfg, logger)
	if err != nil {
		return err
	}
	defer closeAccounts()
	bk, err := bkclient.New(ctx, cfg.BuildkitAddr)
	if err != nil {
		return fmt.Errorf("connecting to buildkitd at %s: %w", cfg.BuildkitAddr, err)
	}
	defer bk.Close()
	reg := metrics.NewRegistry()
	opts, err := cfg.TemporalClientOptions(logger)
	if err != nil {
		return err
	}
	var stopMeter func(context.Context) error
	opts.MetricsHandler, stopMeter, err = metrics.TemporalHandler(reg)
	if err != nil {
		return err
	}
	defer stopMeter(context.Background())
	tc, err := client.Dial(opts)
	if err != nil {
		return fmt.Errorf("connecting to temporal at %s: %w", cfg.TemporalAddress, err)
	}
	defer tc.Close()
	stopOps := serveOps(cfg.WorkerMetricsAddr, reg, logger,
		metrics.Check{Name: "temporal", Probe: func(ctx context.Context) error {
			_, err := tc.CheckHealth(ctx, &client.CheckHealthRequest{})
			return err
		}},
		metrics.Check{Name: "buildkitd", Probe: func(ctx context.Context) error {
			_, err := bk.Info(ctx)
			return err
		}})
	defer stopOps()

	w := worker.New(tc, cfg.TaskQueue, worker.Options{
		EnableSessionWorker:               true,
		MaxConcurrentSessionExecutionSize: cfg.MaxConcurrentBuilds,
		WorkerStopTimeout:                 30 * time.Second,
		// Cancellation reaches an activity only with a heartbeat's answer; the default throttle
		// (up to 80% of the heartbeat timeout) would let a cancelled build run on for 24s.
		MaxHeartbeatThrottleInterval: 2 * time.Second,
		Interceptors:                 []interceptor.WorkerInterceptor{metrics.NewBuildSteps(reg)},
	})
	w.RegisterWorkflowWithOptions(workflows.DockerBuilder, workflow.RegisterOptions{Name: build.WorkflowName})
	// The registry key lets the worker mint each build's tokens itself: the worker is the
	// operator's, trusted as the gateway is. Without it, the Docker config's credentials serve.
	var registryKey *registryauth.Key
	if registryKey, err = registryauth.Load(cfg.RegistryTokenKey); err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			return err
		}
		registryKey = nil
		logger.Warn("no registry token key: builds use the Docker config's registry credentials", "key", cfg.RegistryTokenKey)
	}
	w.RegisterWorkflowWithOptions(workflows.BuildSlots, workflow.RegisterOptions{Name: activities.SlotsWorkflowName})
	var cgroups *cgroup.Parent
	if cfg.BuildCgroup != "" {
		cgroups = &cgroup.Parent{Path: cfg.BuildCgroup, Limits: cfg.BuildLimits}
		if err := cgroups.Create(); err != nil {
			return fmt.Errorf("preparing the builds' cgroup %s: %w", cfg.BuildCgroup, err)
		}
		logger.Info("each build's RUN steps get a cgroup of their own", "parent", cfg.BuildCgroup, "limits", cfg.BuildLimits.String())
	} else {
		logger.Warn("SLIPWAY_BUILD_CGROUP is unset: RUN steps are bounded only by buildkitd's own cgroup settings")
	}
	w.RegisterActivity(&activities.Activities{
		WorkspaceRoot: workspaces.Dir,
		Buildkit:      bk,
		Logs:          logs,
		LogURLBase:    cfg.GatewayURL + "/api/v1/builds",
		Keychain:      authn.DefaultKeychain,
		RegistryKey:   registryKey,
		RegistryHosts: cfg.TokenHosts(),
		CloneBaseURLs: cfg.CloneBaseURLs(),
		Accounts:      accts,
		Images:        images,
		Isolation:     &activities.Isolation{Off: !cfg.BuildIsolation, Bridge: cfg.BuildBridge},
		Temporal:      tc,
		TaskQueue:     cfg.TaskQueue,
		Limits:        activities.Limits{MaxTimeout: cfg.MaxBuildTimeout, NamespaceMaxRunning: cfg.NamespaceMaxRunning},
		Frontends:     cfg.BuildFrontends,
		Cgroups:       cgroups,
		// Under SLIPWAY_HOME, so that workers sharing it serialize their writes of a tag.
		TagLockDir: filepath.Join(cfg.Home, "locks", "tags"),
	})
	if !cfg.BuildIsolation {
		logger.Warn("build isolation is off (SLIPWAY_BUILD_ISOLATION=off): builds run without checking " +
			"that RUN steps are kept off the service's network")
	}
	logger.Info("worker starting", "worker_id", id, "workspaces", workspaces.Dir, "temporal", cfg.TemporalAddress, "task_queue", cfg.TaskQueue,
		"buildkit", cfg.BuildkitAddr, "max_concurrent_builds", cfg.MaxConcurrentBuilds, "metrics", cfg.WorkerMetricsAddr)
	// Run returns when ctx ends (SIGINT or SIGTERM in the binary) after running activities
	// finish or WorkerStopTimeout.
	stop := make(chan any)
	go func() { <-ctx.Done(); close(stop) }()
	if err := w.Run(stop); err != nil {
		return fmt.Errorf("running worker: %w", err)
	}
	return nil
}

// releaseFolder removes one of this worker's folders as it stops.
func releaseFolder(o *ownFolder, logger *slog.Logger) {
	if err := o.release(); err != nil {
		logger.Warn("removing the worker's folder", "folder", o.Dir, "error", err)
	}
}

// openAccounts gives the worker the connected accounts of the gateway's database when it has
// the secret key, so private sources clone and commit statuses post; without the key it builds
// public sources only.
func openAccounts(ctx context.Context, getenv func(string) string, cfg config.Config, logger *slog.Logger) (activities.Accounts, func(), error) {
	box, err := accounts.LoadKey(getenv, cfg.Home, false)
	if err != nil {
		logger.Info("no secret key: private sources and commit statuses are off", "reason", err)
		return nil, func() {}, nil
	}
	st, err := store.Open(ctx, cfg.DatabaseURL, store.WithSecretBox(box))
	if err != nil {
		return nil, nil, fmt.Errorf("opening the accounts database: %w", err)
	}
	return accounts.New(st, box, cfg.ProviderAPIURLs()), func() { st.Close() }, nil
}

// serveOps serves /metrics, /healthz and /readyz on addr until the returned function is
// called. A taken address is logged and the worker builds on without them: several workers on
// one host (tests, a crowded machine) must not stop each other, and an orchestrator's readiness
// probe will say what is missing.
func serveOps(addr string, reg *prometheus.Registry, logger *slog.Logger, checks ...metrics.Check) func() {
	if addr == "" {
		return func() {}
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		logger.Error("metrics and health endpoints are off", "addr", addr, "error", err)
		return func() {}
	}
	srv := &http.Server{Handler: metrics.OpsMux(reg, logger, checks...), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("serving metrics", "addr", addr, "error", err)
		}
	}()
	logger.Info("serving /metrics, /healthz and /readyz", "addr", ln.Addr().String())
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	}
}
