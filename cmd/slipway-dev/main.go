// Command slipway-dev is what `make run` runs: it starts the local stack
// (Temporal with its web UI, buildkitd, a registry seeded with busybox) on the
// usual ports, then the worker and gateway binaries pointed at it, prints
// where everything is, and stops it all on Ctrl-C.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/slipway-dev/slipway/accounts"
	"github.com/slipway-dev/slipway/buildnet"
	"github.com/slipway-dev/slipway/devstack"
	"github.com/slipway-dev/slipway/registryauth"
)

// childStopGrace is how long the worker and gateway get to finish after
// SIGTERM before they are killed.
const childStopGrace = 10 * time.Second

func main() {
	os.Exit(run())
}

func run() int {
	toolsDir := flag.String("tools", ".tools/bin", "folder holding temporal, buildkitd and buildctl (built by scripts/tools.sh)")
	workerBin := flag.String("worker", "", "path of the built worker binary; started when the file exists")
	gatewayBin := flag.String("gateway", "", "path of the built gateway binary; started when the file exists")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: slipway-dev [-tools DIR] [-worker BIN] [-gateway BIN]\n\n"+
			"Starts the local Slipway stack. SLIPWAY_HOME (default ./.slipway) holds its data and logs.\n\n")
		flag.PrintDefaults()
	}
	flag.Parse()

	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	home := os.Getenv("SLIPWAY_HOME")
	if home == "" {
		home = ".slipway"
	}
	home, err := filepath.Abs(home)
	if err != nil {
		logger.Error("resolving SLIPWAY_HOME", "err", err)
		return 1
	}

	allow, err := buildnet.ParseAllow(os.Getenv(buildnet.EnvEgressAllow))
	if err != nil {
		logger.Error("reading the build network's allow-list", "err", err)
		return 1
	}
	hostNetwork := false
	switch v := os.Getenv("SLIPWAY_BUILD_ISOLATION"); v {
	case "", "on":
	case "off":
		hostNetwork = true
	default:
		logger.Error("SLIPWAY_BUILD_ISOLATION is neither on nor off", "value", v)
		return 1
	}
	// The web UI shows every namespace's builds; its write actions (terminate, cancel,
	// signal, reset, start) are an operator's explicit choice.
	uiWrite := false
	if v := os.Getenv("SLIPWAY_TEMPORAL_UI_WRITE"); v != "" {
		if uiWrite, err = strconv.ParseBool(v); err != nil {
			logger.Error("SLIPWAY_TEMPORAL_UI_WRITE is not a boolean such as 1 or 0", "value", v)
			return 1
		}
	}
	stack, err := devstack.Start(ctx, devstack.Options{
		Home:                   home,
		ToolsDir:               *toolsDir,
		TemporalPort:           7233,
		TemporalUIPort:         8233,
		TemporalUIWriteActions: uiWrite,
		RegistryPort:           5000,
		BuildHostNetwork:       hostNetwork,
		BuildEgressAllow:       allow,
		// The gateway is the registry's token service. By name, not 127.0.0.1:
		// go-containerregistry (crane) refuses a token realm on a loopback IP.
		RegistryTokenRealm: "http://" + realmHost(gatewayAddr()) + registryauth.TokenPath,
		Logger:             logger,
	})
	if err != nil {
		logger.Error("starting local stack", "err", err)
		return 1
	}
	defer stack.Close()
	// The key that seals connected accounts' tokens is made before the worker and the gateway
	// start, so both read the same one.
	if _, err := accounts.LoadKey(os.Getenv, home, true); err != nil {
		logger.Error("preparing the secret key", "err", err)
		return 1
	}

	env := append(os.Environ(),
		"SLIPWAY_HOME="+home,
		"SLIPWAY_TEMPORAL_ADDRESS="+stack.TemporalAddress,
		"SLIPWAY_TEMPORAL_UI_URL="+stack.TemporalUIURL,
		"SLIPWAY_BUILDKIT_ADDR="+stack.BuildkitAddr,
		"SLIPWAY_BUILD_CGROUP="+stack.BuildCgroup,
		"SLIPWAY_REGISTRY="+stack.Registry,
		"SLIPWAY_BUILD_BRIDGE="+stack.BuildBridge,
	)
	out := &console{stdout: os.Stdout, stderr: os.Stderr}
	exited := make(chan *child, 2)
	var children []*child
	for _, c := range []struct{ name, bin string }{{"worker", *workerBin}, {"gateway", *gatewayBin}} {
		if c.bin == "" {
			continue
		}
		if _, err := os.Stat(c.bin); err != nil {
			logger.Warn("not starting "+c.name, "bin", c.bin, "err", err)
			continue
		}
		ch, err := startChild(out, c.name, c.bin, env, exited)
		if err != nil {
			logger.Error("starting "+c.name, "err", err)
			stopChildren(children)
			return 1
		}
		children = append(children, ch)
	}

	out.mu.Lock()
	printSummary(out.stdout, stack, home, *toolsDir, children)
	out.mu.Unlock()

	code := 0
	select {
	case <-ctx.Done():
		logger.Info("stopping")
	case c := <-exited:
		logger.Error(c.name+" exited unexpectedly; stopping everything", "err", c.err)
		code = 1
	}
	stopChildren(children)
	if err := stack.Close(); err != nil {
		logger.Error("stopping local stack", "err", err)
		code = 1
	}
	return code
}

// child is the worker or the gateway, run in its own process group so that
// Ctrl-C reaches only slipway-dev, which then stops children before the stack.
type child struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

func startChild(out *console, name, bin string, env []string, exited chan<- *child) (*child, error) {
	cmd := exec.Command(bin)
	cmd.Env = env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("piping %s output: %w", name, err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, fmt.Errorf("piping %s output: %w", name, err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	c := &child{name: name, cmd: cmd, done: make(chan struct{})}
	var copies sync.WaitGroup
	prefix := fmt.Sprintf("%-8s| ", name)
	copies.Go(func() { out.copyPrefixed(out.stdout, stdout, prefix) })
	copies.Go(func() { out.copyPrefixed(out.stderr, stderr, prefix) })
	go func() {
		// Wait closes the pipes, so drain them first.
		copies.Wait()
		c.err = cmd.Wait()
		if c.err == nil {
			c.err = errors.New("exit status 0")
		}
		close(c.done)
		exited <- c
	}()
	return c, nil
}

// console passes the output of the worker and the gateway through, each line
// whole and prefixed with the child's name.
type console struct {
	mu             sync.Mutex
	stdout, stderr io.Writer
}

func (c *console) copyPrefixed(w io.Writer, r io.Reader, prefix string) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		c.mu.Lock()
		fmt.Fprintf(w, "%s%s\n", prefix, sc.Bytes())
		c.mu.Unlock()
	}
	// A line longer than the buffer ends the scan; keep the pipe drained so
	// the child never blocks on a full pipe.
	_, _ = io.Copy(w, r)
}

func stopChildren(children []*child) {
	var wg sync.WaitGroup
	for _, c := range children {
		wg.Go(func() {
			pgid := c.cmd.Process.Pid
			_ = syscall.Kill(-pgid, syscall.SIGTERM)
			select {
			case <-c.done:
			case <-time.After(childStopGrace):
				_ = syscall.Kill(-pgid, syscall.SIGKILL)
				<-c.done
			}
		})
	}
	wg.Wait()
}

// gatewayAddr is where the gateway listens.
func gatewayAddr() string {
	if a := os.Getenv("SLIPWAY_GATEWAY_ADDR"); a != "" {
		return a
	}
	return "127.0.0.1:8080"
}

// realmHost is addr with a loopback IP spelled localhost.
func realmHost(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); ip != nil && (ip.IsLoopback() || ip.IsUnspecified()) {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}

func printSummary(w io.Writer, s *devstack.Stack, home, toolsDir string, children []*child) {
	gateway := gatewayAddr()
	running := map[string]bool{}
	for _, c := range children {
		running[c.name] = true
	}
	state := func(name string) string {
		if running[name] {
			return "running"
		}
		return "not started: pass -" + name + " BIN"
	}

	fmt.Fprintln(w)
	fmt.Fprintln(w, "Slipway local stack is up. Ctrl-C stops everything.")
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "Temporal gRPC\t%s\n", s.TemporalAddress)
	fmt.Fprintf(tw, "Temporal web UI\t%s\n", s.TemporalUIURL)
	fmt.Fprintf(tw, "BuildKit\t%s\n", s.BuildkitAddr)
	if s.BuildBridge != "" {
		fmt.Fprintf(tw, "Build network\tbridge %s, host address %s; RUN steps reach the internet and %s only\n",
			s.BuildBridge, s.BuildGateway, buildnet.EnvEgressAllow)
	} else {
		fmt.Fprintf(tw, "Build network\tnone: SLIPWAY_BUILD_ISOLATION=off, RUN steps share the host's network\n")
	}
	fmt.Fprintf(tw, "Registry\thttp://%s (busybox is %s/library/busybox:latest), tokens from %s\n", s.Registry, s.Registry, s.RegistryTokenRealm)
	metrics := os.Getenv("SLIPWAY_WORKER_METRICS_ADDR")
	if metrics == "" {
		metrics = "127.0.0.1:9090"
	}
	fmt.Fprintf(tw, "Worker\t%s, metrics http://%s/metrics\n", state("worker"), metrics)
	fmt.Fprintf(tw, "Gateway\thttp://%s, %s, metrics http://%s/metrics\n", gateway, state("gateway"), gateway)
	fmt.Fprintf(tw, "Admin token\t%s\n", filepath.Join(home, "admin-token"))
	fmt.Fprintf(tw, "SLIPWAY_HOME\t%s\n", home)
	fmt.Fprintf(tw, "Stack logs\t%s\n", s.LogDir())
	tw.Flush()

	input := fmt.Sprintf(`{"namespace":"demo","repository":"app","rule_id":"r-1",`+
		`"source":{"provider":"github","owner":"octo","repository":"hello","clone_url":"https://github.com/octo/hello.git"},`+
		`"ref":{"type":"branch","name":"main"},"tag_template":"{branch}-{short_commit}",`+
		`"image":"%s/demo/app","trigger":"manual"}`, s.Registry)
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Start a build with the temporal CLI:")
	fmt.Fprintf(w, "  %s workflow start --address %s --type workflow_docker_builder --task-queue docker-builder \\\n"+
		"    --workflow-id demo-build-1 --input '%s'\n",
		temporalCLI(toolsDir), s.TemporalAddress, input)
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Log in to the registry with a Slipway user and its API token (the site admin is \"admin\"):")
	fmt.Fprintf(w, "  crane auth login %s -u admin -p \"$(cat %s)\"    # or: docker login %s -u admin\n",
		s.Registry, filepath.Join(home, "admin-token"), s.Registry)
	fmt.Fprintln(w)
}

// temporalCLI is how to call the pinned temporal binary from the repository.
func temporalCLI(toolsDir string) string {
	p := filepath.Join(toolsDir, "temporal")
	if filepath.IsAbs(p) {
		return p
	}
	return "./" + p
}
