package devstack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"text/template"
	"time"

	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
)

// ServerOptions configure a Temporal server in the production shape: the server built from
// go.temporal.io/server (not the CLI's dev server), persistence and advanced visibility on
// PostgreSQL, its schemas applied by temporal-sql-tool and its namespace and search attributes
// made by the temporal CLI, through the same scripts docker-compose.temporal.yml runs
// (deploy/temporal-schema.sh, deploy/temporal-init.sh).
type ServerOptions struct {
	// Home holds the server's rendered config (Home/temporal-config) and its logs
	// (Home/stack-logs).
	Home string
	// ToolsDir holds temporal-server, temporal-sql-tool, the temporal CLI and the
	// temporal-schema folder (`scripts/tools.sh prod`).
	ToolsDir string
	// DeployDir is the repository's deploy/ folder, holding the two scripts and the dynamic
	// config (temporal-dynamicconfig.yaml).
	DeployDir string
	// Postgres is the "host:port" of a PostgreSQL 12+ server; User and Password log in to
	// it with the right to create databases.
	Postgres, User, Password string
	// Databases names the persistence and visibility databases; empty means "temporal" and
	// "temporal_visibility".
	Database, VisibilityDatabase string
	// UIWriteActions turns the web UI's write actions on (terminate, cancel, signal, reset,
	// start, batch). Off by default: the UI shows every Slipway namespace's builds and any
	// of its users could stop them.
	UIWriteActions bool
	// Logger receives progress; nil discards it.
	Logger *slog.Logger
}

// TemporalServer is a running Temporal server on PostgreSQL.
type TemporalServer struct {
	// Address is the frontend's gRPC address, "127.0.0.1:PORT".
	Address string
	// MetricsURL is the server's Prometheus endpoint.
	MetricsURL string
	// UIURL is the Temporal web UI, "http://127.0.0.1:PORT".
	UIURL string

	logger *slog.Logger
	logDir string
	proc   *Process
	ui     *Process
}

// uiConfig is the web UI server's config file. disableWriteActions hides the UI's write
// actions and makes its API answer 405 to anything but reads and queries.
var uiConfig = template.Must(template.New("base.yaml").Parse(`# Rendered by devstack.
temporalGrpcAddress: "{{.Address}}"
host: 127.0.0.1
port: {{.Port}}
enableUi: true
defaultNamespace: default
disableWriteActions: {{not .Write}}
cors:
  allowOrigins:
    - "{{.URL}}"
  # Served over plain HTTP on loopback, as the dev server's own UI: the CSRF cookie must
  # not be Secure or the browser drops it.
  cookieInsecure: true
`))

// serverReadyTimeout bounds the server's start: four services joining their ring on a fresh
// database take a while on two cores.
const serverReadyTimeout = 3 * time.Minute

// serverConfig is the server's config file (config/prod.yaml); the fields are the ports
// picked at start and the database settings.
var serverConfig = template.Must(template.New("prod.yaml").Parse(`# Rendered by devstack.StartTemporalServer.
log:
  stdout: true
  level: warn
persistence:
  defaultStore: default
  visibilityStore: visibility
  numHistoryShards: 4
  datastores:
    default:
      sql:
        pluginName: postgres12
        databaseName: {{.Database}}
        connectAddr: "{{.Postgres}}"
        connectProtocol: tcp
        user: "{{.User}}"
        password: "{{.Password}}"
        maxConns: 20
        maxIdleConns: 20
        maxConnLifetime: 1h
    visibility:
      sql:
        pluginName: postgres12
        databaseName: {{.VisibilityDatabase}}
        connectAddr: "{{.Postgres}}"
        connectProtocol: tcp
        user: "{{.User}}"
        password: "{{.Password}}"
        maxConns: 10
        maxIdleConns: 10
        maxConnLifetime: 1h
global:
  membership:
    maxJoinDuration: 30s
    broadcastAddress: 127.0.0.1
  metrics:
    prometheus:
      framework: tally
      timerType: histogram
      listenAddress: "127.0.0.1:{{.Ports.metrics}}"
services:
  frontend:
    rpc:
      grpcPort: {{.Ports.frontend}}
      membershipPort: {{.Ports.frontendMembership}}
      httpPort: {{.Ports.frontendHTTP}}
      bindOnLocalHost: true
  matching:
    rpc:
      grpcPort: {{.Ports.matching}}
      membershipPort: {{.Ports.matchingMembership}}
      bindOnLocalHost: true
  history:
    rpc:
      grpcPort: {{.Ports.history}}
      membershipPort: {{.Ports.historyMembership}}
      bindOnLocalHost: true
  worker:
    rpc:
      grpcPort: {{.Ports.worker}}
      membershipPort: {{.Ports.workerMembership}}
      bindOnLocalHost: true
clusterMetadata:
  enableGlobalNamespace: false
  failoverVersionIncrement: 10
  masterClusterName: active
  currentClusterName: active
  clusterInformation:
    active:
      enabled: true
      initialFailoverVersion: 1
      rpcName: frontend
      rpcAddress: "127.0.0.1:{{.Ports.frontend}}"
dcRedirectionPolicy:
  policy: noop
# Slipway's dynamic config (deploy/temporal-dynamicconfig.yaml), as the compose stack mounts it.
dynamicConfigClient:
  filepath: "{{.DynamicConfig}}"
  pollInterval: 60s
`))

// StartTemporalServer applies Temporal's schemas to PostgreSQL (creating the databases when
// missing), starts the server, and returns once it serves the "default" namespace with
// Slipway's search attributes. Close stops it.
func StartTemporalServer(ctx context.Context, opts ServerOptions) (_ *TemporalServer, err error) {
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if opts.Home == "" || opts.ToolsDir == "" || opts.DeployDir == "" || opts.Postgres == "" {
		return nil, errors.New("starting temporal server: Home, ToolsDir, DeployDir and Postgres are required")
	}
	if opts.Database == "" {
		opts.Database = "temporal"
	}
	if opts.VisibilityDatabase == "" {
		opts.VisibilityDatabase = "temporal_visibility"
	}
	bin, err := findTool(opts.ToolsDir, "temporal-server")
	if err != nil {
		return nil, fmt.Errorf("%w (scripts/tools.sh prod)", err)
	}
	for _, tool := range []string{"temporal-sql-tool", "temporal"} {
		if _, err := findTool(opts.ToolsDir, tool); err != nil {
			return nil, fmt.Errorf("%w (scripts/tools.sh prod)", err)
		}
	}
	host, port, err := net.SplitHostPort(opts.Postgres)
	if err != nil {
		return nil, fmt.Errorf("starting temporal server: postgres address %q: %w", opts.Postgres, err)
	}

	t := &TemporalServer{logger: logger, logDir: filepath.Join(opts.Home, "stack-logs")}
	if err := os.MkdirAll(t.logDir, 0o755); err != nil {
		return nil, fmt.Errorf("creating %s: %w", t.logDir, err)
	}
	env := childEnv(opts.ToolsDir)

	// The schema, as the temporal-schema service of the compose file applies it.
	begin := time.Now()
	schema := append(env,
		"POSTGRES_SEEDS="+host, "DB_PORT="+port,
		"POSTGRES_USER="+opts.User, "POSTGRES_PWD="+opts.Password,
		"TEMPORAL_DB="+opts.Database, "TEMPORAL_VISIBILITY_DB="+opts.VisibilityDatabase,
		"TEMPORAL_SCHEMA_DIR="+filepath.Join(opts.ToolsDir, "temporal-schema", "postgresql", "v12"))
	if err := t.runScript(ctx, "temporal-schema", filepath.Join(opts.DeployDir, "temporal-schema.sh"), schema); err != nil {
		return nil, err
	}
	logger.Info("temporal schemas applied", "took", time.Since(begin).Round(time.Millisecond))

	ports, err := pickLowPorts([]string{
		"frontend", "frontendMembership", "frontendHTTP",
		"matching", "matchingMembership",
		"history", "historyMembership",
		"worker", "workerMembership",
		"metrics", "ui",
	})
	if err != nil {
		return nil, err
	}
	dynamicConfig, err := filepath.Abs(filepath.Join(opts.DeployDir, "temporal-dynamicconfig.yaml"))
	if err != nil {
		return nil, fmt.Errorf("finding the dynamic config: %w", err)
	}
	if _, err := os.Stat(dynamicConfig); err != nil {
		return nil, fmt.Errorf("starting temporal server: %w", err)
	}
	configDir := filepath.Join(opts.Home, "temporal-config")
	if err := os.MkdirAll(configDir, 0o755); err != nil {
		return nil, fmt.Errorf("creating %s: %w", configDir, err)
	}
	var cfg strings.Builder
	if err := serverConfig.Execute(&cfg, map[string]any{
		"Database": opts.Database, "VisibilityDatabase": opts.VisibilityDatabase,
		"Postgres": opts.Postgres, "User": opts.User, "Password": opts.Password, "Ports": ports,
		"DynamicConfig": dynamicConfig,
	}); err != nil {
		return nil, fmt.Errorf("rendering temporal config: %w", err)
	}
	if err := os.WriteFile(filepath.Join(configDir, "prod.yaml"), []byte(cfg.String()), 0o600); err != nil {
		return nil, fmt.Errorf("writing temporal config: %w", err)
	}
	t.Address = loopback(ports["frontend"])
	t.MetricsURL = "http://" + loopback(ports["metrics"]) + "/metrics"

	t.proc, err = startProcess(logger, t.logDir, "temporal-server", env, bin,
		"--root", opts.Home, "--config", "temporal-config", "--env", "prod", "--allow-no-auth", "start")
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			t.Close()
		}
	}()
	if err := t.waitHealthy(ctx); err != nil {
		return nil, err
	}
	// Namespace and search attributes, as the temporal-init service of the compose file makes them.
	initEnv := append(env, "TEMPORAL_ADDRESS="+t.Address, "SLIPWAY_TEMPORAL_NAMESPACE="+temporalNamespace)
	if err := t.runScript(ctx, "temporal-init", filepath.Join(opts.DeployDir, "temporal-init.sh"), initEnv); err != nil {
		return nil, err
	}
	if err := t.waitStarts(ctx); err != nil {
		return nil, err
	}
	if err := t.startUI(ctx, opts, env, ports["ui"]); err != nil {
		return nil, err
	}
	logger.Info("temporal server ready", "address", t.Address, "ui", t.UIURL, "metrics", t.MetricsURL,
		"took", time.Since(begin).Round(time.Millisecond))
	return t, nil
}

// startUI starts the Temporal web UI server on port, pointed at the frontend.
func (t *TemporalServer) startUI(ctx context.Context, opts ServerOptions, env []string, port int) error {
	bin, err := findTool(opts.ToolsDir, "temporal-ui-server")
	if err != nil {
		return fmt.Errorf("%w (scripts/tools.sh)", err)
	}
	t.UIURL = "http://" + loopback(port)
	if t.ui, err = startUIServer(t.logger, t.logDir, env, bin, opts.Home, t.Address, port, opts.UIWriteActions); err != nil {
		return err
	}
	return waitReady(ctx, t.ui, temporalReadyTimeout, func(ctx context.Context) error {
		return httpOK(ctx, t.UIURL)
	})
}

// startUIServer starts temporal-ui-server on loopback port for the frontend at address, with
// its config rendered into home/temporal-ui-config, and returns without waiting for it.
// Without write, its write actions are off.
func startUIServer(logger *slog.Logger, logDir string, env []string, bin, home, address string, port int, write bool) (*Process, error) {
	url := "http://" + loopback(port)
	dir := filepath.Join(home, "temporal-ui-config")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating %s: %w", dir, err)
	}
	var cfg strings.Builder
	if err := uiConfig.Execute(&cfg, map[string]any{"Address": address, "Port": port, "URL": url, "Write": write}); err != nil {
		return nil, fmt.Errorf("rendering temporal UI config: %w", err)
	}
	for name, text := range map[string]string{"base.yaml": cfg.String(), "prod.yaml": "# base.yaml holds it all\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			return nil, fmt.Errorf("writing temporal UI config: %w", err)
		}
	}
	if write {
		logger.Warn("the Temporal web UI's write actions are on: anyone who reaches it can terminate, cancel, signal or start any namespace's builds", "ui", url)
	}
	return startProcess(logger, logDir, "temporal-ui", env, bin,
		"--root", home, "--config", "temporal-ui-config", "--env", "prod", "start")
}

// pickLowPorts picks free loopback ports below 32768 for the names: Temporal stores each
// service's membership port in a PostgreSQL smallint, which the kernel's ephemeral ports
// (32768 and up) overflow. It starts at a random point so that stacks side by side rarely try
// the same ports.
func pickLowPorts(names []string) (map[string]int, error) {
	const lo, hi = 20000, 32767
	got := make(map[string]int, len(names))
	var held []net.Listener
	defer func() {
		for _, l := range held {
			l.Close()
		}
	}()
	port := lo + rand.IntN(hi-lo)
	for _, name := range names {
		for tries := 0; ; tries++ {
			if tries == hi-lo {
				return nil, fmt.Errorf("no free loopback port between %d and %d for %s", lo, hi, name)
			}
			port++
			if port > hi {
				port = lo
			}
			l, err := net.Listen("tcp", loopback(port))
			if err != nil {
				continue
			}
			held = append(held, l)
			got[name] = port
			break
		}
	}
	return got, nil
}

// runScript runs a deploy script with sh, its output going to logDir/NAME.log.
func (t *TemporalServer) runScript(ctx context.Context, name, script string, env []string) error {
	logPath := filepath.Join(t.logDir, name+".log")
	logf, err := os.Create(logPath)
	if err != nil {
		return fmt.Errorf("creating %s: %w", logPath, err)
	}
	defer logf.Close()
	cmd := exec.CommandContext(ctx, "sh", script)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("running %s: %w; see %s:\n%s", script, err, logPath, TailFile(logPath, 20))
	}
	return nil
}

// waitHealthy waits until the frontend answers a health check.
func (t *TemporalServer) waitHealthy(ctx context.Context) error {
	var c client.Client
	defer func() {
		if c != nil {
			c.Close()
		}
	}()
	return waitReady(ctx, t.proc, serverReadyTimeout, func(ctx context.Context) error {
		if c == nil {
			conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", t.Address)
			if err != nil {
				return err
			}
			conn.Close()
			if c, err = client.NewLazyClient(client.Options{
				HostPort: t.Address,
				Logger:   sdklog.NewStructuredLogger(slog.New(slog.DiscardHandler)),
			}); err != nil {
				return permanent(fmt.Errorf("creating temporal client: %w", err))
			}
		}
		_, err := c.CheckHealth(ctx, &client.CheckHealthRequest{})
		return err
	})
}

// waitStarts waits until the server takes a workflow start with Slipway's search attributes:
// a namespace and search attributes just made reach the frontend's and the history service's
// caches some seconds later, and starts fail until then.
func (t *TemporalServer) waitStarts(ctx context.Context) error {
	c, err := client.NewLazyClient(client.Options{
		HostPort:  t.Address,
		Namespace: temporalNamespace,
		Logger:    sdklog.NewStructuredLogger(slog.New(slog.DiscardHandler)),
	})
	if err != nil {
		return fmt.Errorf("creating temporal client: %w", err)
	}
	defer c.Close()
	var attrs []temporal.SearchAttributeUpdate
	for _, name := range SearchAttributes() {
		attrs = append(attrs, temporal.NewSearchAttributeKeyKeyword(name).ValueSet("probe"))
	}
	n := 0
	return waitReady(ctx, t.proc, serverReadyTimeout, func(ctx context.Context) error {
		n++
		id := fmt.Sprintf("devstack-start-probe-%d", n)
		run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
			ID:                    id,
			TaskQueue:             "devstack-start-probe",
			TypedSearchAttributes: temporal.NewSearchAttributes(attrs...),
		}, "devstack-start-probe")
		if err != nil {
			return fmt.Errorf("starting a probe workflow: %w", err)
		}
		if err := c.TerminateWorkflow(ctx, id, run.GetRunID(), "devstack: the server takes starts"); err != nil {
			return fmt.Errorf("terminating the probe workflow: %w", err)
		}
		return nil
	})
}

// Close stops the web UI and the server: SIGTERM, then SIGKILL after a grace period.
func (t *TemporalServer) Close() error {
	if t.ui != nil {
		_ = t.ui.Stop(stopGrace)
		t.ui = nil
	}
	if t.proc != nil {
		_ = t.proc.Stop(temporalStopGrace)
		t.proc = nil
	}
	return nil
}
