package main

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/slipway-dev/slipway/devstack"
	"github.com/slipway-dev/slipway/registryauth"
)

// networkRunSteps is how many RUN steps the network section's Dockerfile has.
const networkRunSteps = 8

// networkRestarts is how many times the section restarts each buildkitd to time its start.
const networkRestarts = 5

// Sides of the network section: the bench stack's buildkitd on its build bridge (CNI, egress
// filter) and a second stack's buildkitd on the host network.
const (
	sideBridge = "bridge"
	sideHost   = "host"
)

// networkSide is what one side measured.
type networkSide struct {
	// wall is each buildctl build, process start to exit; runs is the sum of BuildKit's DONE
	// times of its RUN vertices; starts is each buildkitd start, launch to a listed worker.
	wall, runs, starts []time.Duration
}

// networkSection measures what running RUN steps on the build network costs against the host
// network, with raw buildctl builds of a Dockerfile of short RUN steps.
type networkSection struct {
	runs, warmups int
	sides         map[string]*networkSide
	sample        []string
	// dockerConfig holds the registry tokens buildctl pulls the base image with.
	dockerConfig string
}

// newNetworkSection is the "network" section.
func newNetworkSection() section { return &networkSection{} }

// title heads the section.
func (s *networkSection) title() string {
	return "Build network: RUN steps on the stack's bridge (CNI + egress filter) vs the host network"
}

// key is the section's name for -only.
func (s *networkSection) key() string { return "network" }

// networkDockerfile runs networkRunSteps short RUN steps, each writing a small file; NONCE, a
// build argument in scope of every RUN, changes their cache keys, so each build runs all of
// them. The first also prints the step's IPv4 addresses, which tell the networks apart.
func networkDockerfile() string {
	var b strings.Builder
	b.WriteString("FROM busybox\nARG NONCE\nRUN ip -4 -o addr > /step1 && cat /step1\n")
	for i := 2; i <= networkRunSteps; i++ {
		fmt.Fprintf(&b, "RUN echo \"step %d $NONCE\" > /step%d\n", i, i)
	}
	return b.String()
}

// run starts a second stack whose buildkitd uses the host network (Temporal stays the bench's),
// builds on both buildkitds interleaved, then restarts each a few times to time its start.
func (s *networkSection) run(ctx context.Context, e *env, o options) error {
	s.runs, s.warmups = o.runs, o.warmups
	s.sides = map[string]*networkSide{sideBridge: {}, sideHost: {}}
	dir := filepath.Join(e.home, "network", "context")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("creating build context: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(networkDockerfile()), 0o644); err != nil {
		return fmt.Errorf("writing Dockerfile: %w", err)
	}
	startCtx, cancel := context.WithTimeout(ctx, stackStartTimeout)
	host, err := devstack.Start(startCtx, devstack.Options{
		Home: filepath.Join(e.home, "hostnet"), ToolsDir: o.toolsDir,
		ExternalTemporal: e.stack.TemporalAddress, BuildHostNetwork: true, Logger: e.logger,
	})
	cancel()
	if err != nil {
		return fmt.Errorf("starting the host-network stack: %w", err)
	}
	defer host.Close()
	stacks := map[string]*devstack.Stack{sideBridge: e.stack, sideHost: host}
	if s.dockerConfig, err = pullConfig(filepath.Join(e.home, "network", "docker-config"), e.timeout, e.stack, host); err != nil {
		return err
	}

	for i := range o.warmups + o.runs {
		for _, side := range []string{sideBridge, sideHost} {
			wall, runs, err := s.build(ctx, e, stacks[side].BuildkitAddr, dir, side, i)
			if err != nil {
				return err
			}
			if i < o.warmups {
				continue
			}
			e.logger.Info("network build", "side", side, "run", i-o.warmups, "took", wall.Round(time.Millisecond), "run_steps", runs)
			s.sides[side].wall = append(s.sides[side].wall, wall)
			s.sides[side].runs = append(s.sides[side].runs, runs)
		}
	}
	for range networkRestarts {
		for _, side := range []string{sideBridge, sideHost} {
			st := stacks[side]
			if err := st.KillBuildkitd(); err != nil {
				return fmt.Errorf("stopping the %s buildkitd: %w", side, err)
			}
			begin := time.Now()
			if err := st.StartBuildkitd(ctx); err != nil {
				return fmt.Errorf("starting the %s buildkitd again: %w", side, err)
			}
			s.sides[side].starts = append(s.sides[side].starts, time.Since(begin))
		}
	}
	return nil
}

// build runs one buildctl build on addr with a new nonce, without export, and checks from its
// plain progress that every RUN step ran (none was a cache hit). It returns the command's
// wall-clock time and the sum of the RUN vertices' DONE times.
func (s *networkSection) build(ctx context.Context, e *env, addr, dir, side string, i int) (wall, runs time.Duration, err error) {
	ctx, cancel := context.WithTimeout(ctx, e.timeout)
	defer cancel()
	nonce := side + "-" + strconv.Itoa(i) + "-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	args := []string{e.buildctl, "--addr", addr, "build", "--progress", "plain", "--frontend", "dockerfile.v0",
		"--local", "context=" + dir, "--local", "dockerfile=" + dir, "--opt", "build-arg:NONCE=" + nonce}
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+s.dockerConfig)
	cmd.WaitDelay = 5 * time.Second
	begin := time.Now()
	out, err := cmd.CombinedOutput()
	wall = time.Since(begin)
	if err != nil {
		return 0, 0, fmt.Errorf("buildctl build on the %s buildkitd: %w; output:\n%s", side, err, lastBytes(out, 4096))
	}
	s.sample = args
	if err := checkNetwork(string(out), side, e.stack.BuildGateway); err != nil {
		return 0, 0, err
	}
	runs, ran, cached := runVertices(string(out))
	if ran != networkRunSteps || cached != 0 {
		return 0, 0, fmt.Errorf("build on the %s buildkitd ran %d RUN steps and found %d cached, want %d run and none cached; output:\n%s",
			side, ran, cached, networkRunSteps, lastBytes(out, 4096))
	}
	return wall, runs, nil
}

// runVertices sums the DONE times of the Dockerfile RUN vertices in BuildKit's plain progress
// output and counts those that ran and those that were cache hits.
func runVertices(text string) (sum time.Duration, ran, cached int) {
	isRun := map[string]bool{}
	for line := range strings.Lines(text) {
		num, rest, ok := strings.Cut(strings.TrimSpace(line), " ")
		if !ok || len(num) < 2 || num[0] != '#' {
			continue
		}
		if _, seen := isRun[num]; !seen {
			inst, ok := dockerfileInstruction(rest)
			isRun[num] = ok && inst == "RUN"
			continue
		}
		if !isRun[num] {
			continue
		}
		if rest == "CACHED" {
			cached++
		} else if secs, ok := strings.CutPrefix(rest, "DONE "); ok {
			if d, err := time.ParseDuration(strings.TrimSpace(secs)); err == nil {
				sum += d
				ran++
			}
		}
	}
	return sum, ran, cached
}

// checkNetwork checks, from the addresses the first RUN step printed, that it ran where its
// side says: on the bridge, an address of the bridge's /24 that is not the gateway (the
// host's end); on the host network, the host's own interfaces, the bridge's gateway among them.
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
	if (side == sideBridge) != (onBridge && !seesGateway) || (side == sideHost) != seesGateway {
		return fmt.Errorf("RUN step on the %s buildkitd had addresses %v, not those of its network (bridge %s, gateway %s)",
			side, addrs, subnet, gw)
	}
	return nil
}

// lastBytes is at most the last n bytes of b, trimmed, for error messages.
func lastBytes(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return strings.TrimSpace(string(b))
}

// pairDiffs is each interleaved pair's bridge time minus its host time.
func (s *networkSection) pairDiffs() []time.Duration {
	b, h := s.sides[sideBridge].wall, s.sides[sideHost].wall
	out := make([]time.Duration, 0, len(b))
	for i := range min(len(b), len(h)) {
		out = append(out, b[i]-h[i])
	}
	return out
}

// table is one row per figure: wall clock, RUN vertices, buildkitd start, bridge against host.
func (s *networkSection) table() table {
	b, h := s.sides[sideBridge], s.sides[sideHost]
	row := func(name string, bs, hs []time.Duration, steps int) []string {
		mb, mh := median(bs), median(hs)
		perStep := "–"
		if steps > 0 {
			perStep = signedMS((mb - mh) / time.Duration(steps))
		}
		return []string{name, spread(summarize(bs)), spread(summarize(hs)), signedMS(mb - mh), perStep, ratio(mb, mh)}
	}
	return table{
		header: []string{"", "bridge min / median / max", "host min / median / max", "difference", "per RUN step", "ratio"},
		rows: [][]string{
			row(fmt.Sprintf("buildctl build, %d RUN steps (wall clock)", networkRunSteps), b.wall, h.wall, networkRunSteps),
			row("sum of the RUN vertices' DONE times (BuildKit, 0.1 s resolution)", b.runs, h.runs, networkRunSteps),
			row("buildkitd start (launch → lists a worker)", b.starts, h.starts, 0),
		},
	}
}

// finding states the per-build and per-RUN cost in one line.
func (s *networkSection) finding() string {
	d := median(s.sides[sideBridge].wall) - median(s.sides[sideHost].wall)
	return fmt.Sprintf("The build network costs %s per build of %d RUN steps (medians), %s per RUN step; "+
		"paired bridge − host differences of the %d interleaved pairs: %s (min / median / max).",
		signedMS(d), networkRunSteps, signedMS(d/networkRunSteps), len(s.pairDiffs()), spread(summarize(s.pairDiffs())))
}

// text prints the table and the finding.
func (s *networkSection) text(w io.Writer) {
	s.table().text(w)
	fmt.Fprintln(w)
	writeList(w, "*", []string{s.finding()})
}

// markdown writes what is measured and how, the table, the finding and the command.
func (s *networkSection) markdown(w io.Writer) {
	fmt.Fprintf(w, "The same Dockerfile (`FROM busybox`, `ARG NONCE`, then %d RUN steps each writing a small "+
		"file; the first writes and prints its IPv4 addresses) is built with raw `buildctl build --frontend "+
		"dockerfile.v0` and no export on two buildkitds: the bench stack's, whose RUN steps run on the stack's "+
		"own bridge through CNI behind the nftables egress filter (`networkMode = \"cni\"`, Slipway's default), "+
		"and that of a second stack the section starts with `devstack.Options{BuildHostNetwork: true}` (the "+
		"operator's opt-out, `networkMode = \"host\"`; its own registry and buildkitd, the bench's Temporal). "+
		"Every build passes a new `NONCE` build argument, which changes every RUN step's cache key; the bench "+
		"checks in the plain progress output that all %d RUN steps ran, none a cache hit, and that the printed "+
		"addresses are the bridge's subnet on the bridge side and the host's interfaces on the host side. "+
		"Builds run interleaved (bridge, host, bridge, host, …): %d unmeasured warm-up pair(s), then %d "+
		"measured pairs, each timed from buildctl's start to its exit. The per-RUN cost is the difference of "+
		"the medians divided by %d. Each buildkitd is then killed and started again %d times, interleaved, on "+
		"its warm root, timed from launch until it lists a worker.\n\n",
		networkRunSteps, networkRunSteps, s.warmups, s.runs, networkRunSteps, networkRestarts)
	s.table().markdown(w)
	fmt.Fprintln(w)
	writeList(w, "-", []string{s.finding()})
	fmt.Fprintf(w, "\nOne build (the last, with the bench's paths):\n\n```sh\n%s\n```\n", shellJoin(s.sample))
}

// benchstat writes one line per measured build: BenchmarkNetwork/SIDE.
func (s *networkSection) benchstat(w io.Writer) {
	for _, side := range []string{sideBridge, sideHost} {
		for _, d := range s.sides[side].wall {
			fmt.Fprintf(w, "BenchmarkNetwork/%s 1 %d ns/op\n", side, d.Nanoseconds())
		}
	}
}

// pullConfig writes a Docker config into dir holding, for the registry of each stack, a token
// minted with that stack's key to pull the base images, as an operator's CI would hold one;
// both registries want a token.
func pullConfig(dir string, ttl time.Duration, stacks ...*devstack.Stack) (string, error) {
	tokens := map[string]string{}
	for _, st := range stacks {
		tok, err := st.RegistryKey.Mint("bench network", []registryauth.Access{
			{Type: "repository", Name: "library/busybox", Actions: []string{registryauth.Pull}}}, ttl+time.Minute)
		if err != nil {
			return "", err
		}
		tokens[st.Registry] = tok.Raw
	}
	return dir, writeDockerConfig(dir, tokens)
}
