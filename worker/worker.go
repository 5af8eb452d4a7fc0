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
	"github.com/slipway-dev/slipway/gitcache"
	"github.com/slipway-dev/slipway/logstore"
	"github.com/slipway-dev/slipway/metrics"
	"github.com/slipway-dev/slipway/notify"
	"github.com/slipway-dev/slipway/registryauth"
	"github.com/slipway-dev/slipway/store"
	"github.com/slipway-dev/slipway/workflows"
)

// Pollers per task queue kind: the SDK's default is 2 of each.
const (
	workflowPollers = 4
	activityPollers = 4
)

// Run polls for builds until ctx ends or the worker fails. getenv supplies the configuration
// (os.Getenv in the binary).
func Run(ctx context.Context, getenv func(string) string, logger *slog.Logger) error {
	cfg, err := config.FromEnv(getenv)
	if err != nil {
		return fmt.Errorf("reading configuration: %w", err)
	}
	if err := cfg.MakeHome(); err != nil {
		return err
	}
	id, err := newWorkerID()
	if err != nil {
		return err
	}
	workspaces, images, releaseFolders, err := claimFolders(cfg, id, logger)
	if err != nil {
		return err
	}
	defer releaseFolders()
	accts, db, closeAccounts, err := openAccounts(ctx, getenv, cfg, logger)
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
	tc, closeTemporal, err := metrics.DialTemporal(ctx, opts, reg)
	if err != nil {
		return err
	}
	defer closeTemporal()
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

	acts, err := newActivities(cfg, logger)
	if err != nil {
		return err
	}
	acts.WorkspaceRoot, acts.Images = workspaces, images
	acts.Buildkit, acts.Temporal, acts.Accounts = bk, tc, accts
	if db != nil {
		acts.Notifications = db
	}
	acts.NotifyClient = notify.NewClient(10*time.Second, cfg.NotifyPrivate)
	if sec, ok := accts.(activities.Secrets); ok {
		acts.Secrets = sec
	}
	if acts.Logs, err = logstore.New(cfg.LogsDir()); err != nil {
		return err
	}
	if acts.Sources != nil && cfg.DeferredCacheExport {
		// Builds on git cache slots write their registry cache after the image is out; the
		// exports still running when the worker stops are canceled (deferred after w.Run,
		// so before the BuildKit client closes).
		acts.CacheExports = activities.NewCacheExports(0, 0, logger)
		defer acts.CacheExports.Close()
	}
	var closeRetention func()
	acts.Retention, closeRetention = openRetention(ctx, cfg, logger)
	defer closeRetention()
	stopSweep, err := startLogSweeper(getenv, LogSweeper{Logs: acts.Logs, Runs: tc,
		Retention: NamespaceRetention(tc, cfg.TemporalNamespace), Logger: logger})
	if err != nil {
		return err
	}
	defer stopSweep()
	w := worker.New(tc, cfg.TaskQueue, worker.Options{
		EnableSessionWorker:               true,
		MaxConcurrentSessionExecutionSize: cfg.MaxConcurrentBuilds,
		// With the SDK's 2 workflow pollers (shared between the sticky and the normal queue)
		// a build's workflow task often found no sticky poller waiting, went to the matching
		// service's backlog and waited for the next poll; with 4 of each that became rare
		// (docs/performance.md, "Round trips per build"). The session's host queue takes
		// the activity pollers too. A poller is one long-poll request: cheap.
		MaxConcurrentWorkflowTaskPollers: workflowPollers,
		MaxConcurrentActivityTaskPollers: activityPollers,
		WorkerStopTimeout:                30 * time.Second,
		// Cancellation reaches an activity only with a heartbeat's answer; the default throttle
		// (up to 80% of the heartbeat timeout) would let a cancelled build run on for 24s.
		MaxHeartbeatThrottleInterval: 2 * time.Second,
		Interceptors:                 []interceptor.WorkerInterceptor{metrics.NewBuildSteps(reg)},
	})
	w.RegisterWorkflowWithOptions(workflows.DockerBuilder, workflow.RegisterOptions{Name: build.WorkflowName})
	w.RegisterWorkflowWithOptions(workflows.BuildSlots, workflow.RegisterOptions{Name: activities.SlotsWorkflowName})
	w.RegisterWorkflowWithOptions(workflows.Reconcile, workflow.RegisterOptions{Name: build.ReconcileWorkflowName})
	w.RegisterWorkflowWithOptions(workflows.Notify, workflow.RegisterOptions{Name: build.NotifyWorkflowName})
	w.RegisterWorkflowWithOptions(workflows.Retention, workflow.RegisterOptions{Name: build.RetentionWorkflowName})
	w.RegisterActivity(acts)
	logger.Info("worker starting", "worker_id", id, "workspaces", workspaces, "temporal", cfg.TemporalAddress, "task_queue", cfg.TaskQueue,
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

// claimFolders sweeps what workers that are gone left on this host and claims this worker's
// workspaces folder and, unless the image store is off, its image store. release removes both
// as the worker stops and ends the periodic sweep.
func claimFolders(cfg config.Config, id string, logger *slog.Logger) (workspaces string, images *activities.ImageStore, release func(), err error) {
	roots := []string{cfg.WorkspacesDir(), cfg.ImagesDir()}
	for _, root := range roots {
		if err := sweepWorkspaces(root, id, logger); err != nil {
			return "", nil, nil, err
		}
	}
	ws, err := claimFolder(cfg.WorkspacesDir(), id)
	if err != nil {
		return "", nil, nil, fmt.Errorf("creating workspaces folder: %w", err)
	}
	// This worker removes its own folders only; those of a worker that is gone are swept.
	owned := []*ownFolder{ws}
	if cfg.ImageStoreTTL > 0 {
		// Per worker process, as workspaces are: BuildKit's writes into a content store are
		// locked within one process only.
		st, err := claimFolder(cfg.ImagesDir(), id)
		if err != nil {
			releaseFolder(ws, logger)
			return "", nil, nil, fmt.Errorf("creating image store: %w", err)
		}
		owned = append(owned, st)
		images = &activities.ImageStore{Dir: st.Dir, TTL: cfg.ImageStoreTTL}
	}
	// A sibling worker on this host that is killed later leaves its folder too.
	stopSweeping := make(chan struct{})
	go sweepPeriodically(roots, id, sweepInterval, logger, stopSweeping)
	return ws.Dir, images, func() {
		close(stopSweeping)
		for _, o := range owned {
			releaseFolder(o, logger)
		}
	}, nil
}

// newActivities sets up the activities from the configuration: the registry key, the builds'
// cgroup and the limits. Run adds the clients.
func newActivities(cfg config.Config, logger *slog.Logger) (*activities.Activities, error) {
	// The registry key lets the worker mint each build's tokens itself: the worker is the
	// operator's, trusted as the gateway is. Without it, the Docker config's credentials serve.
	registryKey, err := registryauth.Load(cfg.RegistryTokenKey)
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		registryKey = nil
		logger.Warn("no registry token key: builds use the Docker config's registry credentials", "key", cfg.RegistryTokenKey)
	}
	var sources *gitcache.Cache
	if cfg.GitCacheBytes > 0 {
		// Per host, not per worker process: a second worker on the host fetches only what the
		// first has not; the cache's flocks keep their writes apart.
		if sources, err = gitcache.New(cfg.GitCacheDir(), cfg.GitCacheBytes); err != nil {
			return nil, err
		}
	}
	var cgroups *cgroup.Parent
	if cfg.BuildCgroup != "" {
		cgroups = &cgroup.Parent{Path: cfg.BuildCgroup, Limits: cfg.BuildLimits}
		if err := cgroups.Create(); err != nil {
			return nil, fmt.Errorf("preparing the builds' cgroup %s: %w", cfg.BuildCgroup, err)
		}
		logger.Info("each build's RUN steps get a cgroup of their own", "parent", cfg.BuildCgroup, "limits", cfg.BuildLimits.String())
	} else {
		logger.Warn("SLIPWAY_BUILD_CGROUP is unset: RUN steps are bounded only by buildkitd's own cgroup settings")
	}
	if !cfg.BuildIsolation {
		logger.Warn("build isolation is off (SLIPWAY_BUILD_ISOLATION=off): builds run without checking " +
			"that RUN steps are kept off the service's network")
	}
	return &activities.Activities{
		LogURLBase:     cfg.GatewayURL + "/api/v1/builds",
		BuildPageBase:  cfg.GatewayURL + "/builds",
		Keychain:       authn.DefaultKeychain,
		RegistryKey:    registryKey,
		RegistryHosts:  cfg.TokenHosts(),
		CloneBaseURLs:  cfg.CloneBaseURLs(),
		Isolation:      &activities.Isolation{Off: !cfg.BuildIsolation, Bridge: cfg.BuildBridge},
		TaskQueue:      cfg.TaskQueue,
		Limits:         activities.Limits{MaxTimeout: cfg.MaxBuildTimeout, NamespaceMaxRunning: cfg.NamespaceMaxRunning},
		Frontends:      cfg.BuildFrontends,
		Cgroups:        cgroups,
		NoStreamedPush: !cfg.StreamedPush,
		// Under SLIPWAY_HOME, so that workers sharing it serialize their writes of a tag.
		TagLockDir: filepath.Join(cfg.Home, "locks", "tags"),
		Sources:    sources,
	}, nil
}

// releaseFolder removes one of this worker's folders as it stops.
func releaseFolder(o *ownFolder, logger *slog.Logger) {
	if err := o.release(); err != nil {
		logger.Warn("removing the worker's folder", "folder", o.Dir, "error", err)
	}
}

// openAccounts gives the worker the connected accounts of the gateway's database when it has
// the secret key, so private sources clone and commit statuses post, and the database itself,
// for notifications; without the key it builds public sources only and notifies nobody.
func openAccounts(ctx context.Context, getenv func(string) string, cfg config.Config, logger *slog.Logger) (activities.Accounts, *store.Store, func(), error) {
	box, err := accounts.LoadKey(getenv, cfg.Home, false)
	if err != nil {
		logger.Info("no secret key: private sources, commit statuses and notifications are off", "reason", err)
		return nil, nil, func() {}, nil
	}
	st, err := store.Open(ctx, cfg.DatabaseURL, store.WithSecretBox(box))
	if err != nil {
		return nil, nil, nil, fmt.Errorf("opening the accounts database: %w", err)
	}
	return accounts.New(st, box, cfg.ProviderAPIURLs()).WithOAuth(cfg.OAuthApps()), st, func() { st.Close() }, nil
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
