package main

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/slipway-dev/slipway/devstack"
)

// networkRunSteps is how many RUN steps the network Dockerfile has.
const networkRunSteps = 8

// measureNetwork builds a Dockerfile of short RUN steps with raw buildctl on two buildkitds,
// interleaved: the bench stack's, whose RUN steps run on its bridge (CNI, egress filter), and a
// second stack's on the host network; then restarts each a few times to time its start.
func measureNetwork(ctx context.Context, e *env, o options) (result, error) {
	res := result{key: "network", title: "Build network: RUN steps on the stack's bridge (CNI + egress filter) vs the host network"}
	dir := filepath.Join(e.home, "network")
	// NONCE, in scope of every RUN, changes their cache keys, so each build runs all of them;
	// the first prints the step's IPv4 addresses, which tell the networks apart.
	dockerfile := "FROM busybox\nARG NONCE\nRUN ip -4 -o addr > /step1 && cat /step1\n"
	for i := 2; i <= networkRunSteps; i++ {
		dockerfile += fmt.Sprintf("RUN echo \"step %d $NONCE\" > /step%d\n", i, i)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return res, fmt.Errorf("creating build context: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(dockerfile), 0o644); err != nil {
		return res, fmt.Errorf("writing Dockerfile: %w", err)
	}
	startCtx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	host, err := devstack.Start(startCtx, devstack.Options{Home: filepath.Join(e.home, "hostnet"), ToolsDir: o.toolsDir,
		ExternalTemporal: e.stack.TemporalAddress, BuildHostNetwork: true, Logger: e.logger})
	cancel()
	if err != nil {
		return res, fmt.Errorf("starting the host-network stack: %w", err)
	}
	defer host.Close()
	auth, err := e.dockerConfig("network", []*devstack.Stack{e.stack, host})
	if err != nil {
		return res, err
	}
	sides := []string{"bridge", "host"}
	stacks := map[string]*devstack.Stack{"bridge": e.stack, "host": host}
	wall, runs, starts := map[string][]time.Duration{}, map[string][]time.Duration{}, map[string][]time.Duration{}
	for i := range o.warmups + o.runs {
		for _, side := range sides {
			args := []string{"--addr", stacks[side].BuildkitAddr, "build", "--progress", "plain", "--frontend", "dockerfile.v0",
				"--local", "context=" + dir, "--local", "dockerfile=" + dir, "--opt", "build-arg:NONCE=" + side + strconv.Itoa(i) + randomHex(4)}
			cmd := exec.CommandContext(ctx, e.buildctl, args...)
			cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+auth)
			begin := time.Now()
			out, err := cmd.CombinedOutput()
			took := time.Since(begin)
			if err == nil {
				err = checkNetwork(string(out), side, e.stack.BuildGateway)
			}
			sum, ran, cached := runVertices(string(out))
			if err == nil && (ran != networkRunSteps || cached != 0) {
				err = fmt.Errorf("ran %d RUN steps and found %d cached, want %d run", ran, cached, networkRunSteps)
			}
			if err != nil {
				return res, fmt.Errorf("build on the %s buildkitd: %w; output:\n%s", side, err, lastBytes(out, 4096))
			}
			if i >= o.warmups {
				wall[side], runs[side] = append(wall[side], took), append(runs[side], sum)
			}
		}
	}
	for range 5 {
		for _, side := range sides {
			if err := stacks[side].KillBuildkitd(); err != nil {
				return res, fmt.Errorf("stopping the %s buildkitd: %w", side, err)
			}
			begin := time.Now()
			if err := stacks[side].StartBuildkitd(ctx); err != nil {
				return res, fmt.Errorf("starting the %s buildkitd again: %w", side, err)
			}
			starts[side] = append(starts[side], time.Since(begin))
		}
	}
	row := func(name string, m map[string][]time.Duration, steps int) []string {
		d := median(m["bridge"]) - median(m["host"])
		per := "–"
		if steps > 0 {
			per = signedMS(d / time.Duration(steps))
		}
		return []string{name, spread(m["bridge"]), spread(m["host"]), signedMS(d), per, ratio(median(m["bridge"]), median(m["host"]))}
	}
	var pairs []time.Duration
	for i := range min(len(wall["bridge"]), len(wall["host"])) {
		pairs = append(pairs, wall["bridge"][i]-wall["host"][i])
	}
	res.tables = []table{{header: []string{"", "bridge min / median / max", "host min / median / max", "difference of medians", "per RUN step", "ratio"},
		rows: [][]string{
			row(fmt.Sprintf("buildctl build, %d RUN steps (wall clock)", networkRunSteps), wall, networkRunSteps),
			row("sum of the RUN vertices' DONE times (BuildKit, 0.1 s resolution)", runs, networkRunSteps),
			row("buildkitd start on a warm root (launch → lists a worker)", starts, 0),
			{"paired bridge − host difference of the interleaved builds", spread(pairs), "", "", "", ""},
		}}}
	for _, side := range sides {
		res.durations("BenchmarkNetwork/"+side, wall[side])
	}
	return res, nil
}

// runVertices sums the DONE times of the Dockerfile RUN vertices in BuildKit's plain progress
// output and counts those that ran and those that were cache hits.
func runVertices(text string) (sum time.Duration, ran, cached int) {
	for _, v := range vertices(text) {
		if inst, ok := dockerfileInstruction(v.name); !ok || inst != "RUN" {
			continue
		} else if v.cached {
			cached++
		} else if v.done {
			sum, ran = sum+v.doneAfter, ran+1
		}
	}
	return sum, ran, cached
}

// checkNetwork checks, from the addresses the first RUN step printed, that it ran where its
// side says: on the bridge, an address of the bridge's /24 that is not the gateway (the host's
// end); on the host network, the host's own interfaces, the bridge's gateway among them.
func checkNetwork(out, side string, gw netip.Addr) error {
	subnet, err := gw.Prefix(24)
	if err != nil {
		return fmt.Errorf("bench stack has no build bridge (gateway %v): %w", gw, err)
	}
	var addrs []netip.Addr
	for line := range strings.Lines(out) {
		_, after, ok := strings.Cut(line, " inet ")
		if f := strings.Fields(after); ok && len(f) > 0 {
			if p, err := netip.ParsePrefix(f[0]); err == nil {
				addrs = append(addrs, p.Addr())
			}
		}
	}
	onBridge := slices.ContainsFunc(addrs, func(a netip.Addr) bool { return subnet.Contains(a) && a != gw })
	seesGateway := slices.Contains(addrs, gw)
	if (side == "bridge") != (onBridge && !seesGateway) || (side == "host") != seesGateway {
		return fmt.Errorf("RUN step on the %s buildkitd had addresses %v, not those of its network (bridge %s, gateway %s)", side, addrs, subnet, gw)
	}
	return nil
}

// lastBytes is at most the last n bytes of b, trimmed, for error messages.
func lastBytes(b []byte, n int) string {
	return strings.TrimSpace(string(b[max(0, len(b)-n):]))
}
