// Package devstack starts the real local Slipway stack on this machine: a
// Temporal dev server on SQLite with its web UI (read-only unless asked), a distribution registry seeded
// with a busybox base image, and buildkitd with the OCI worker, pulling
// docker.io images from that registry. `make run` (cmd/slipway-dev) and the
// end-to-end tests use it; several stacks with different homes can run side
// by side.
package devstack

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/slipway-dev/slipway/build"
	"github.com/slipway-dev/slipway/buildnet"
	"github.com/slipway-dev/slipway/cgroup"
	"github.com/slipway-dev/slipway/registryauth"
)

// Options configure a local stack. Zero ports mean "pick a free loopback port".
type Options struct {
	// Home is SLIPWAY_HOME: all data lives under it (the Temporal SQLite
	// database, registry storage, BuildKit root) and each process logs to
	// Home/stack-logs/NAME.log.
	Home string
	// ToolsDir holds the temporal, buildkitd and buildctl binaries that
	// scripts/tools.sh builds.
	ToolsDir string
	// TemporalPort is Temporal's gRPC port; `make run` uses 7233.
	TemporalPort int
	// TemporalUIPort is the Temporal web UI's port; `make run` uses 8233.
	TemporalUIPort int
	// TemporalUIWriteActions turns the web UI's write actions on (terminate, cancel,
	// signal, reset, start). Off by default: the UI is an operator's tool that shows every
	// Slipway namespace's builds, and whoever reaches it could stop them.
	TemporalUIWriteActions bool
	// RegistryPort is the registry's port; `make run` uses 5000.
	RegistryPort int
	// ExternalTemporal, when set, is the address of a Temporal server started elsewhere (a
	// cluster on PostgreSQL, see prodstack): the stack then starts no dev server and serves
	// only the registry and buildkitd. ExternalTemporalUI is its web UI, if any.
	ExternalTemporal, ExternalTemporalUI string
	// BuildHostNetwork runs RUN steps on the host's network, as buildkitd's "host" mode:
	// a build then reaches every service of the host. It is the operator's opt-out for a
	// machine without bridges or nftables; the stack warns at every start.
	BuildHostNetwork bool
	// BuildEgressAllow is the build network's allow-list (SLIPWAY_BUILD_EGRESS_ALLOW): the
	// private or host addresses that RUN steps may reach besides the public internet.
	BuildEgressAllow []buildnet.Allow
	// RegistryTokenKey is the file of the key that signs registry tokens; the registry trusts
	// its certificate (beside it, see registryauth.CertPath). Empty means
	// Home/registry-token.key, which the gateway and the worker find by default too.
	RegistryTokenKey string
	// RegistryTokenRealm is the URL of the token service (the gateway's
	// registryauth.TokenPath) the registry sends clients to; empty means the gateway of
	// `make run`, http://localhost:8080/auth/registry/token. Its host is a name, not
	// 127.0.0.1: go-containerregistry (crane) refuses a realm on a loopback IP.
	RegistryTokenRealm string
	// Logger receives progress; nil discards it.
	Logger *slog.Logger
}

// Stack is a running local stack. Its addresses are fixed for its lifetime,
// across the restarts of the fault-injection methods.
type Stack struct {
	// TemporalAddress is the frontend's gRPC address, "127.0.0.1:PORT".
	TemporalAddress string
	// TemporalUIURL is the web UI, "http://127.0.0.1:PORT".
	TemporalUIURL string
	// BuildkitAddr is buildkitd's address, "unix:///.../buildkitd.sock".
	BuildkitAddr string
	// Registry is the registry's host and port, "127.0.0.1:PORT", served over
	// plain HTTP. It requires a token (registryauth) for every request.
	Registry string
	// BuildBridge is the bridge RUN steps run on, and BuildGateway its own address (the
	// host as a build sees it); both are zero when builds use the host network.
	BuildBridge  string
	BuildGateway netip.Addr
	// RegistryTokenKey is the path of the key that signs registry tokens, and RegistryKey the
	// key itself: the stack's operator tools (seeding busybox, tests) mint tokens with it.
	RegistryTokenKey string
	RegistryKey      *registryauth.Key
	// RegistryTokenRealm is where the registry sends clients for a token.
	RegistryTokenRealm string
	// BuildCgroup is the cgroup (below /sys/fs/cgroup) under which workers make each build's
	// cgroup: the worker's SLIPWAY_BUILD_CGROUP.
	BuildCgroup string

	logger *slog.Logger
	home   string
	// external is set when Temporal runs elsewhere (Options.ExternalTemporal).
	external bool
	// buildNet is the build network the stack set up; nil with BuildHostNetwork.
	buildNet *buildnet.Config
	logDir   string
	env      []string

	temporalBin, buildkitdBin, registryBin    string
	temporalArgs, buildkitdArgs, registryArgs []string
	// uiBin serves the web UI on uiPort, write actions on only with uiWrite.
	uiBin   string
	uiPort  int
	uiWrite bool

	cgroups       *cgroup.Parent
	defaultCgroup string

	// emulation is what foreign platforms build with (devstack/emulation.go).
	emulation emulation

	mu        sync.Mutex
	closed    bool
	temporal  *Process
	ui        *Process
	buildkitd *Process
	registry  *Process
}

// SearchAttributes lists the Keyword search attributes the stack registers in
// the "default" namespace; every build sets them.
func SearchAttributes() []string {
	return build.AttributeNames()
}

// Timeouts for readiness and shutdown. Temporal's first start creates its
// schema, and a cold buildkitd probes its snapshotter, so both get more time.
const (
	registryReadyTimeout  = 30 * time.Second
	buildkitdReadyTimeout = 60 * time.Second
	temporalReadyTimeout  = 90 * time.Second
	stopGrace             = 5 * time.Second
	temporalStopGrace     = 10 * time.Second
)

// maxSocketPath keeps a unix socket path under the kernel's 108-byte sun_path
// limit, with room for the terminating NUL.
const maxSocketPath = 100

// Start starts the registry (and seeds busybox into it), buildkitd and the
// Temporal dev server, and returns once each of them answers. Temporal is
// launched first because it takes longest to come up; it is awaited last. On
// error everything already started is stopped again.
func Start(ctx context.Context, opts Options) (*Stack, error) {
	s, err := newStack(opts)
	if err != nil {
		return nil, err
	}
	begin := time.Now()
	if err := s.start(ctx); err != nil {
		s.Close()
		return nil, err
	}
	s.logger.Info("local stack ready", "took", time.Since(begin).Round(time.Millisecond),
		"temporal", s.TemporalAddress, "temporal_ui", s.TemporalUIURL,
		"buildkit", s.BuildkitAddr, "registry", s.Registry, "logs", s.logDir)
	return s, nil
}

func (s *Stack) start(ctx context.Context) error {
	if s.external {
		if err := s.StartRegistry(ctx); err != nil {
			return err
		}
		if err := seedBusybox(ctx, s.Registry, s.RegistryKey, s.emulation.busybox); err != nil {
			return fmt.Errorf("seeding busybox into the registry: %w", err)
		}
		return s.StartBuildkitd(ctx)
	}
	if err := s.launchTemporal(); err != nil {
		return err
	}
	if err := s.StartRegistry(ctx); err != nil {
		return err
	}
	if err := seedBusybox(ctx, s.Registry, s.RegistryKey, s.emulation.busybox); err != nil {
		return fmt.Errorf("seeding busybox into the registry: %w", err)
	}
	s.logger.Info("busybox seeded", "image", s.Registry+"/library/busybox:latest")
	if err := s.StartBuildkitd(ctx); err != nil {
		return err
	}
	return s.waitTemporal(ctx)
}

func newStack(opts Options) (*Stack, error) {
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if opts.Home == "" {
		return nil, errors.New("starting local stack: Options.Home is empty")
	}
	home, err := filepath.Abs(opts.Home)
	if err != nil {
		return nil, fmt.Errorf("resolving home %q: %w", opts.Home, err)
	}
	if opts.ToolsDir == "" {
		return nil, errors.New("starting local stack: Options.ToolsDir is empty")
	}
	toolsDir, err := filepath.Abs(opts.ToolsDir)
	if err != nil {
		return nil, fmt.Errorf("resolving tools dir %q: %w", opts.ToolsDir, err)
	}

	s := &Stack{
		logger: logger,
		home:   home,
		logDir: filepath.Join(home, "stack-logs"),
		env:    childEnv(toolsDir),
	}
	for _, dir := range []string{home, s.logDir, filepath.Join(home, "registry"), filepath.Join(home, "buildkit")} {
		// Private to the stack's user: the home holds databases, keys and logs. buildkitd runs
		// as root and the registry as this user, so both still reach their folders.
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("creating %s: %w", dir, err)
		}
	}

	s.external = opts.ExternalTemporal != ""
	if !s.external {
		if s.temporalBin, err = findTool(toolsDir, "temporal"); err != nil {
			return nil, err
		}
		if s.uiBin, err = findTool(toolsDir, "temporal-ui-server"); err != nil {
			return nil, err
		}
	}
	if s.buildkitdBin, err = findTool(toolsDir, "buildkitd"); err != nil {
		return nil, err
	}
	if s.registryBin, err = lookPath(s.env, "docker-registry"); err != nil {
		return nil, fmt.Errorf("finding docker-registry (Debian package docker-registry; run scripts/tools.sh): %w", err)
	}
	if _, err := lookPath(s.env, "runc"); err != nil {
		return nil, fmt.Errorf("finding runc for buildkitd (Debian package runc; run scripts/tools.sh): %w", err)
	}

	want := map[string]int{"registry": opts.RegistryPort}
	if !s.external {
		want["temporal"], want["temporal UI"] = opts.TemporalPort, opts.TemporalUIPort
	}
	ports, err := pickPorts(want)
	if err != nil {
		return nil, err
	}
	s.Registry = loopback(ports["registry"])
	if s.external {
		s.TemporalAddress, s.TemporalUIURL = opts.ExternalTemporal, opts.ExternalTemporalUI
	} else {
		s.TemporalAddress = loopback(ports["temporal"])
		s.TemporalUIURL = "http://" + loopback(ports["temporal UI"])
		s.temporalArgs = s.temporalCommandArgs(ports["temporal"])
		s.uiPort, s.uiWrite = ports["temporal UI"], opts.TemporalUIWriteActions
	}

	s.RegistryTokenKey = opts.RegistryTokenKey
	if s.RegistryTokenKey == "" {
		s.RegistryTokenKey = filepath.Join(home, registryauth.KeyFile)
	}
	if s.RegistryKey, err = registryauth.LoadOrCreate(s.RegistryTokenKey); err != nil {
		return nil, err
	}
	s.RegistryTokenRealm = opts.RegistryTokenRealm
	if s.RegistryTokenRealm == "" {
		s.RegistryTokenRealm = "http://localhost:8080" + registryauth.TokenPath
	}
	if s.registryArgs, err = s.registryConfig(); err != nil {
		return nil, err
	}
	if err := s.buildCgroup(); err != nil {
		return nil, err
	}
	network := buildkitdNetwork{mode: "host"}
	if opts.BuildHostNetwork {
		logger.Warn("build isolation is off: RUN steps run on the host's network and reach every service on it")
	} else {
		network.mode = "cni"
		if network.confPath, network.pluginDir, err = s.setupBuildNetwork(context.Background(), opts.BuildEgressAllow); err != nil {
			s.teardownBuildNetwork()
			return nil, fmt.Errorf("setting up the build network (or opt out with SLIPWAY_BUILD_ISOLATION=off): %w", err)
		}
	}
	if s.emulation, err = setupEmulation(logger, home, toolsDir); err != nil {
		s.teardownBuildNetwork()
		return nil, err
	}
	s.env = withPathFirst(s.env, s.emulation.dir)
	if s.buildkitdArgs, err = s.buildkitdConfig(network); err != nil {
		s.teardownBuildNetwork()
		return nil, err
	}
	return s, nil
}

// Close stops everything the stack started: SIGTERM to each process group,
// SIGKILL after a few seconds. It is idempotent and safe to call on a
// partially started stack.
func (s *Stack) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	var wg sync.WaitGroup
	for _, p := range []*Process{s.temporal, s.ui, s.buildkitd, s.registry} {
		if p == nil {
			continue
		}
		wg.Go(func() {
			grace := stopGrace
			if p == s.temporal {
				grace = temporalStopGrace
			}
			_ = p.Stop(grace)
		})
	}
	wg.Wait()
	s.temporal, s.ui, s.buildkitd, s.registry = nil, nil, nil, nil
	// A buildkitd that was killed (KillBuildkitd, a crash) leaves its running container's
	// rootfs mounted; the next one does not know it, and the home could not be removed.
	if err := unmountUnder(filepath.Join(s.home, "buildkit")); err != nil {
		return fmt.Errorf("stopping local stack: %w", err)
	}
	if err := s.removeBuildCgroup(); err != nil {
		s.logger.Warn("build cgroups left behind", "error", err)
	}
	if err := s.teardownBuildNetwork(); err != nil {
		return fmt.Errorf("stopping local stack: %w", err)
	}
	s.logger.Info("local stack stopped", "home", s.home)
	return nil
}

// LogDir is the folder holding one log file per process of the stack.
func (s *Stack) LogDir() string { return s.logDir }

// launch starts a process unless the stack is closed or the process already
// runs; slot points at the field that holds it.
func (s *Stack) launch(slot **Process, name, bin string, args []string) (*Process, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, fmt.Errorf("starting %s: stack is closed", name)
	}
	if *slot != nil && !(*slot).exited() {
		return nil, fmt.Errorf("starting %s: already running", name)
	}
	p, err := startProcess(s.logger, s.logDir, name, s.env, bin, args...)
	if err != nil {
		return nil, err
	}
	*slot = p
	return p, nil
}

// halt stops the process in slot and waits until it is gone: SIGTERM and up to grace for it
// to end, or SIGKILL at once when grace is zero.
func (s *Stack) halt(slot **Process, name string, grace time.Duration) error {
	s.mu.Lock()
	p := *slot
	*slot = nil
	s.mu.Unlock()
	if p == nil {
		return fmt.Errorf("stopping %s: not running", name)
	}
	sig := syscall.SIGKILL
	if grace > 0 {
		sig = syscall.SIGTERM
		_ = p.Stop(grace)
	} else {
		p.Kill()
	}
	s.logger.Info("stopped", "process", name, "signal", sig.String())
	return nil
}

// childEnv is this process's environment with the tools folder and the sbin
// folders (runc lives in /usr/sbin) on PATH. REGISTRY_* variables would
// override the registry's config file, so they are dropped.
func childEnv(toolsDir string) []string {
	var env []string
	path := ""
	for _, kv := range os.Environ() {
		switch {
		case strings.HasPrefix(kv, "PATH="):
			path = strings.TrimPrefix(kv, "PATH=")
		case strings.HasPrefix(kv, "REGISTRY_"):
		default:
			env = append(env, kv)
		}
	}
	var dirs []string
	if toolsDir != "" {
		dirs = append(dirs, toolsDir)
	}
	dirs = append(dirs, filepath.SplitList(path)...)
	for _, d := range []string{"/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"} {
		dirs = appendMissing(dirs, d)
	}
	return append(env, "PATH="+strings.Join(dirs, string(filepath.ListSeparator)))
}

func appendMissing(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}

// lookPath finds name on the PATH of env.
func lookPath(env []string, name string) (string, error) {
	for _, kv := range env {
		if path, ok := strings.CutPrefix(kv, "PATH="); ok {
			for _, dir := range filepath.SplitList(path) {
				p := filepath.Join(dir, name)
				if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
					return p, nil
				}
			}
		}
	}
	return "", fmt.Errorf("%s: %w", name, exec.ErrNotFound)
}

func findTool(toolsDir, name string) (string, error) {
	p := filepath.Join(toolsDir, name)
	st, err := os.Stat(p)
	if err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
		return "", fmt.Errorf("%s not found in %s: run scripts/tools.sh to build it", name, toolsDir)
	}
	return p, nil
}

// pickPorts checks that the fixed ports are free and picks free loopback
// ports for the zero ones.
func pickPorts(want map[string]int) (map[string]int, error) {
	got := make(map[string]int, len(want))
	var held []net.Listener
	defer func() {
		for _, l := range held {
			l.Close()
		}
	}()
	for name, port := range want {
		// Holding every listener until all are picked keeps two zero ports
		// of this stack from landing on the same number.
		l, err := net.Listen("tcp", loopback(port))
		if err != nil {
			if port != 0 {
				return nil, fmt.Errorf("%s port %d on 127.0.0.1 is in use (is another stack running?): %w", name, port, err)
			}
			return nil, fmt.Errorf("picking a free port for %s: %w", name, err)
		}
		held = append(held, l)
		got[name] = l.Addr().(*net.TCPAddr).Port
	}
	return got, nil
}

func loopback(port int) string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
}

// socketPath returns where buildkitd's socket goes: under home, unless that
// path is too long for a unix socket, then under /tmp/slipway-HASH/ (the hash
// of home keeps stacks apart and stable across restarts).
func socketPath(home, name string) (string, error) {
	p := filepath.Join(home, name)
	if len(p) <= maxSocketPath {
		return p, nil
	}
	sum := sha256.Sum256([]byte(home))
	dir := filepath.Join(os.TempDir(), "slipway-"+hex.EncodeToString(sum[:6]))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("creating socket folder: %w", err)
	}
	return filepath.Join(dir, name), nil
}
