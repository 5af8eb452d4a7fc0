package e2e

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/slipway-dev/slipway/build"
	"github.com/slipway-dev/slipway/buildnet"
	"github.com/slipway-dev/slipway/internal/testing/gitserver"
)

// probeListener accepts connections on addr, answers each with a line and counts them, so a
// test can tell a probe that got through from one that did not, on both sides.
type probeListener struct {
	ln       net.Listener
	accepted atomic.Int64
}

func listenProbe(t *testing.T, addr string) *probeListener {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listening on %s: %v", addr, err)
	}
	p := &probeListener{ln: ln}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.accepted.Add(1)
			fmt.Fprintln(c, "slipway-probe")
			c.Close()
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return p
}

func (p *probeListener) port() int { return p.ln.Addr().(*net.TCPAddr).Port }

// TestBuildNetworkIsolation runs a RUN step that tries every control-plane port on loopback
// and on the build bridge's own address, and two servers on that address of which only the
// allow-listed one must answer. Traffic goes to loopback and to the stack's own bridge only.
func TestBuildNetworkIsolation(t *testing.T) {
	if env.stack.BuildBridge == "" {
		t.Fatal("the stack runs builds on the host network: no build network to test")
	}
	gw := env.stack.BuildGateway.String()
	// A service on every address of the host (as the worker's metrics listen in compose): a
	// build without the filter reaches it through the bridge's address.
	anyAddr := listenProbe(t, "0.0.0.0:0")
	// On the bridge's address itself: one allow-listed, one not.
	allowed := listenProbe(t, net.JoinHostPort(gw, "0"))
	denied := listenProbe(t, net.JoinHostPort(gw, "0"))
	// On loopback, where the whole control plane listens.
	local := listenProbe(t, "127.0.0.1:0")

	ctx := context.Background()
	allow := []buildnet.Allow{{Prefix: netip.PrefixFrom(env.stack.BuildGateway, 32), Port: uint16(allowed.port())}}
	if err := env.stack.AllowBuildEgress(ctx, allow); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := env.stack.AllowBuildEgress(context.Background(), nil); err != nil {
			t.Errorf("restoring the allow-list: %v", err)
		}
	})

	ui, err := url.Parse(env.stack.TemporalUIURL)
	if err != nil {
		t.Fatal(err)
	}
	w := startWorker(t)
	defer w.stop()
	gwProc := startGateway(t)
	controlPlane := map[string]string{
		"temporal":  env.stack.TemporalAddress,
		"registry":  env.stack.Registry,
		"web UI":    ui.Host,
		"gateway":   gwProc.addr,
		"loopback":  fmt.Sprintf("127.0.0.1:%d", local.port()),
		"all addrs": fmt.Sprintf("127.0.0.1:%d", anyAddr.port()),
	}
	var targets []string
	for _, hostport := range controlPlane {
		_, port, _ := net.SplitHostPort(hostport)
		targets = append(targets, hostport, net.JoinHostPort(gw, port))
	}
	deniedTarget := fmt.Sprintf("%s:%d", gw, denied.port())
	allowedTarget := fmt.Sprintf("%s:%d", gw, allowed.port())
	targets = append(targets, deniedTarget, allowedTarget)

	// Each probe is a TCP connect with a 3 s timeout: a refused port and a dropped packet
	// both count as not reached. The nonce keeps BuildKit from answering from its cache.
	script := fmt.Sprintf("for t in %s; do if nc -w 3 ${t%%:*} ${t##*:} </dev/null >/dev/null 2>&1; "+
		"then echo \"reached $t\"; else echo \"blocked $t\"; fi; done > /probes; echo %d >> /probes",
		strings.Join(targets, " "), time.Now().UnixNano())
	owner := "e2e-netprobe"
	srv := &gitserver.Server{Root: env.gitRoot, URL: env.gitURL}
	repo := srv.NewRepo(t, owner, "hello")
	repo.Commit("main", map[string]string{
		"Dockerfile":          "FROM busybox\nRUN " + script + "\n",
		"host/Dockerfile":     "FROM busybox\nRUN --network=host echo on the host network > /net\n",
		"insecure/Dockerfile": "FROM busybox\nRUN --security=insecure echo insecure > /sec\n",
	})

	in := baseInput(owner)
	in.Image = env.stack.Registry + "/demo/netprobe"
	in.TagTemplate = "probe"
	id := fmt.Sprintf("e2e-netprobe-%d", time.Now().UnixNano())
	run := startBuild(t, id, in)
	cctx, cancel := context.WithTimeout(ctx, 4*time.Minute)
	defer cancel()
	var res build.Result
	if err := run.Get(cctx, &res); err != nil {
		t.Fatalf("probe build failed: %v\nlog:\n%s", err, readLog(t, id, run.GetRunID()))
	}
	probes := pull(t, in.Image+":probe").files["probes"]
	t.Logf("probes from the RUN step:\n%s", probes)
	lines := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(probes), "\n") {
		if verdict, target, ok := strings.Cut(l, " "); ok {
			lines[target] = verdict
		}
	}
	for _, target := range targets {
		want := "blocked"
		if target == allowedTarget {
			want = "reached"
		}
		if got := lines[target]; got != want {
			t.Errorf("%s from a RUN step: %q, want %s", target, got, want)
		}
	}
	if n := allowed.accepted.Load(); n != 1 {
		t.Errorf("the allow-listed server took %d connections, want 1", n)
	}
	for name, p := range map[string]*probeListener{"denied": denied, "all addresses": anyAddr, "loopback": local} {
		if n := p.accepted.Load(); n != 0 {
			t.Errorf("the %s server took %d connections from the build, want 0", name, n)
		}
	}

	// The entitlements that would undo the network (and the sandbox) are never granted.
	for _, dir := range []string{"host", "insecure"} {
		t.Run("RUN --"+dir, func(t *testing.T) {
			in := baseInput(owner)
			in.Image = env.stack.Registry + "/demo/netprobe-" + dir
			in.DockerfilePath = dir + "/Dockerfile"
			id := fmt.Sprintf("e2e-net-%s-%d", dir, time.Now().UnixNano())
			run := startBuild(t, id, in)
			err := run.Get(cctx, nil)
			var appErr *temporal.ApplicationError
			if !errors.As(err, &appErr) || appErr.Type() != build.ErrTypeBuildFailed {
				t.Fatalf("error = %v, want %s", err, build.ErrTypeBuildFailed)
			}
			if !strings.Contains(appErr.Message(), "not allowed") {
				t.Errorf("error does not say the entitlement is not allowed: %s", appErr.Message())
			}
		})
	}
}

// TestWorkerRefusesWithoutBuildNetwork: a worker told to build on a bridge that does not
// exist refuses the build, naming what is missing, rather than run it unguarded.
func TestWorkerRefusesWithoutBuildNetwork(t *testing.T) {
	queue := fmt.Sprintf("e2e-noisolation-%d", time.Now().UnixNano())
	w := startWorker(t, "SLIPWAY_BUILD_BRIDGE=slwmissing", "SLIPWAY_TASK_QUEUE="+queue)
	defer w.stop()
	owner := "e2e-noisolation"
	fixture(t, owner)
	in := baseInput(owner)
	id := fmt.Sprintf("e2e-noisolation-%d", time.Now().UnixNano())
	run, err := env.temporal.ExecuteWorkflow(context.Background(), client.StartWorkflowOptions{ID: id, TaskQueue: queue},
		build.WorkflowName, in)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	err = run.Get(ctx, nil)
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) || appErr.Type() != build.ErrTypeIsolationMissing {
		t.Fatalf("error = %v, want %s", err, build.ErrTypeIsolationMissing)
	}
	if !strings.Contains(appErr.Message(), "slwmissing") {
		t.Errorf("the refusal does not name the missing bridge: %s", appErr.Message())
	}
	if log := readLog(t, id, run.GetRunID()); !strings.Contains(log, "build refused") || strings.Contains(log, "RUN echo root") {
		t.Errorf("the build log should hold the refusal and no build step:\n%s", log)
	}
}

// TestBuildsCannotReachEachOther runs two builds at once on the build bridge: one listens on
// a port (and reaches itself there), the other tries that port on every address of the
// bridge's subnet and must reach none.
func TestBuildsCannotReachEachOther(t *testing.T) {
	if env.stack.BuildBridge == "" {
		t.Fatal("the stack runs builds on the host network: no build network to test")
	}
	w := startWorker(t)
	defer w.stop()
	owner := "e2e-crossbuild"
	srv := &gitserver.Server{Root: env.gitRoot, URL: env.gitURL}
	repo := srv.NewRepo(t, owner, "hello")
	nonce := time.Now().UnixNano()
	myIP := "$(ip -4 -o addr show scope global | awk '{print $4}' | cut -d/ -f1 | head -n 1)"
	repo.Commit("main", map[string]string{
		"listen/Dockerfile": fmt.Sprintf("FROM busybox\nRUN ip=%s; echo $ip > /ip; (nc -ll -p 9999 -e /bin/true &); sleep 1; "+
			"if nc -w 2 $ip 9999 </dev/null; then echo self-ok > /self; fi; echo \"listening on $ip %d\"; sleep 20\n", myIP, nonce),
		"scan/Dockerfile": fmt.Sprintf("FROM busybox\nRUN me=%s; net=${me%%.*}; : > /reach; for i in $(seq 1 254); do "+
			"(nc -w 2 $net.$i 9999 </dev/null >/dev/null 2>&1 && echo $net.$i >> /reach) & done; wait; echo scanned %d\n", myIP, nonce),
	})
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	in := baseInput(owner)
	in.Image = env.stack.Registry + "/demo/crossbuild-listen"
	in.DockerfilePath = "listen/Dockerfile"
	lid := fmt.Sprintf("e2e-crossbuild-listen-%d", nonce)
	listen := startBuild(t, lid, in)
	for !strings.Contains(readLogQuiet(lid, listen.GetRunID()), "listening on") {
		if ctx.Err() != nil {
			t.Fatalf("the listening build never listened; log:\n%s", readLogQuiet(lid, listen.GetRunID()))
		}
		time.Sleep(200 * time.Millisecond)
	}
	scanIn := baseInput(owner)
	scanIn.Image = env.stack.Registry + "/demo/crossbuild-scan"
	scanIn.DockerfilePath = "scan/Dockerfile"
	sid := fmt.Sprintf("e2e-crossbuild-scan-%d", nonce)
	scan := startBuild(t, sid, scanIn)
	if err := scan.Get(ctx, nil); err != nil {
		t.Fatalf("scan build: %v\n%s", err, readLog(t, sid, scan.GetRunID()))
	}
	if err := listen.Get(ctx, nil); err != nil {
		t.Fatalf("listening build: %v\n%s", err, readLog(t, lid, listen.GetRunID()))
	}
	l := pull(t, in.Image+":main")
	if l.files["self"] != "self-ok\n" {
		t.Fatalf("the listening build could not reach its own port (%q): the scan would prove nothing; log:\n%s", l.files["self"], readLog(t, lid, listen.GetRunID()))
	}
	if reach := pull(t, scanIn.Image+":main").files["reach"]; reach != "" {
		t.Fatalf("a build reached another build's port at %s (the listener was at %s)", reach, l.files["ip"])
	}
	t.Logf("listener at %s; the other build reached no address of the bridge", strings.TrimSpace(l.files["ip"]))
}
