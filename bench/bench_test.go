package main

import (
	"context"
	"maps"
	"net/netip"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestSummarize(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name string
		in   []time.Duration
		want stats[time.Duration]
	}{
		{"empty", nil, stats[time.Duration]{}},
		{"one", []time.Duration{5 * ms}, stats[time.Duration]{n: 1, min: 5 * ms, median: 5 * ms, p99: 5 * ms, max: 5 * ms, mean: 5 * ms}},
		{"odd, unsorted", []time.Duration{9 * ms, 1 * ms, 5 * ms}, stats[time.Duration]{n: 3, min: ms, median: 5 * ms, p99: 9 * ms, max: 9 * ms, mean: 5 * ms}},
		{"even: median is the mean of the middle two", []time.Duration{8 * ms, 2 * ms, 4 * ms, 6 * ms}, stats[time.Duration]{n: 4, min: 2 * ms, median: 5 * ms, p99: 8 * ms, max: 8 * ms, mean: 5 * ms}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := append([]time.Duration(nil), tt.in...)
			if got := summarize(tt.in); got != tt.want {
				t.Fatalf("summarize(%v) = %+v, want %+v", tt.in, got, tt.want)
			}
			for i := range in {
				if in[i] != tt.in[i] {
					t.Fatalf("summarize reordered its input: %v", tt.in)
				}
			}
		})
	}
	var hundred []time.Duration
	for i := range 100 {
		hundred = append(hundred, time.Duration(i+1)*ms)
	}
	if got := summarize(hundred).p99; got != 99*ms {
		t.Errorf("p99 of 1..100 ms = %s, want the nearest rank, 99ms", got)
	}
}

// TestPhasesAddUp checks that a build's phases cover its client-observed time exactly, that
// the runs of clone, build and push count as work and the rest as orchestration or steps.
func TestPhasesAddUp(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	run := buildRun{
		start: t0.Add(-20 * time.Millisecond),
		end:   at(980),
		tl: timeline{
			started: at(0),
			closed:  at(950),
			session: span{name: sessionCreation, scheduled: at(20), started: at(30)},
			signal:  at(40),
			activities: []span{
				{name: "Clone", scheduled: at(60), started: at(70), closed: at(300)},
				{name: "ResolveDockerfile", scheduled: at(320), started: at(330), closed: at(340)},
				{name: "Build", scheduled: at(360), started: at(370), closed: at(800)},
				{name: "Cleanup", scheduled: at(820), started: at(830), closed: at(900)},
			},
		},
	}
	var sum, dispatch time.Duration
	kinds := map[phaseKind]time.Duration{}
	for _, p := range run.phases() {
		if p.d < 0 {
			t.Errorf("phase %q is negative: %s", p.name, p.d)
		}
		sum += p.d
		kinds[p.kind] += p.d
		if p.dispatch {
			dispatch += p.d
		}
	}
	if sum != run.total() {
		t.Fatalf("phases add up to %s, want %s", sum, run.total())
	}
	if want := (230 + 430) * time.Millisecond; kinds[kindWork] != want {
		t.Errorf("work = %s, want %s", kinds[kindWork], want)
	}
	if want := (10 + 70) * time.Millisecond; kinds[kindStep] != want {
		t.Errorf("steps = %s, want %s", kinds[kindStep], want)
	}
	if want := 50 * time.Millisecond; kinds[kindClient] != want {
		t.Errorf("client = %s, want %s", kinds[kindClient], want)
	}
	if want := 5 * 10 * time.Millisecond; dispatch != want {
		t.Errorf("dispatch = %s, want %s (session, Clone, ResolveDockerfile, Build, Cleanup)", dispatch, want)
	}
	if got, want := run.tl.startToClone(), 70*time.Millisecond; got != want {
		t.Errorf("startToClone = %s, want %s", got, want)
	}
}

// TestRender checks the one renderer: markdown cells escape pipes, benchstat lines are in Go's
// benchmark format, and many samples become ten batches with a p99.
func TestRender(t *testing.T) {
	r := result{key: "x", title: "X", tables: []table{{title: "T", header: []string{"a", "b"}, rows: [][]string{{"1 | 2", "3"}}}}}
	r.durations("BenchmarkX/one", []time.Duration{123 * time.Millisecond})
	many := make([]time.Duration, 100)
	for i := range many {
		many[i] = time.Duration(i+1) * time.Millisecond
	}
	r.durations("BenchmarkX/many", many)
	var md, text strings.Builder
	writeText(&md, []result{r}, true)
	writeText(&text, []result{r}, false)
	for _, want := range []string{"## X\n", "### T\n", "| a | b |\n| --- | --- |\n| 1 \\| 2 | 3 |\n",
		"BenchmarkX/one 1 123000000 ns/op\n", "BenchmarkX/many 10 95500000 ns/op 100000000 p99-ns\n"} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("markdown lacks %q:\n%s", want, md.String())
		}
	}
	if got := strings.Count(text.String(), "BenchmarkX/many "); got != 10 {
		t.Errorf("text has %d lines of BenchmarkX/many, want 10", got)
	}
}

// TestVertexGroups checks the grouping of BuildKit's plain progress: steps, the base image,
// the cache and the export, and the DONE that a CACHED step gets later when its layers are
// pulled for the export (seen on a fresh buildkitd with only the registry cache).
func TestVertexGroups(t *testing.T) {
	s := 100 * time.Millisecond
	tests := []struct {
		name string
		log  string
		want map[string]time.Duration
	}{
		{"cold", `#1 [internal] load build definition from Dockerfile
#1 DONE 0.1s
#2 [internal] load metadata for docker.io/library/busybox:latest
#2 DONE 0.1s
#4 importing cache manifest from 127.0.0.1:5000/bench/x:buildcache
#4 ERROR: not found
#5 [1/5] FROM docker.io/library/busybox:latest@sha256:82f8
#6 [internal] load build context
#6 DONE 0.1s
#5 DONE 0.4s
#8 [3/5] RUN dd if=/dev/urandom of=/blob bs=1M count=64
#8 DONE 2.1s
#10 [stage-1 5/5] COPY app/ /app
#10 DONE 0.1s
#11 exporting to oci image format
#11 exporting layers 4.3s done
#11 DONE 5.6s
#12 exporting cache to registry
#12 DONE 1.0s
`, map[string]time.Duration{groupContext: s, groupBase: 5 * s, groupSteps: 22 * s, groupExport: 56 * s, groupCacheExport: 10 * s}},
		{"fresh buildkitd: cached steps pulled for the export", `#5 importing cache manifest from r/x:buildcache
#5 DONE 0.0s
#7 [3/5] RUN dd if=/dev/urandom of=/blob bs=1M count=64
#7 CACHED
#10 [5/5] COPY app/ /app
#10 CACHED
#11 exporting to oci image format
#11 ...
#10 [5/5] COPY app/ /app
#10 sha256:e88b 67.13MB / 67.13MB 0.4s done
#10 DONE 0.6s
#11 exporting to oci image format
#11 DONE 2.0s
`, map[string]time.Duration{groupCacheImport: 0, groupPull: 6 * s, groupExport: 20 * s}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := vertexGroups(tt.log); !maps.Equal(got, tt.want) {
				t.Fatalf("vertexGroups = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestDockerfileInstruction checks which vertex names count as Dockerfile steps.
func TestDockerfileInstruction(t *testing.T) {
	tests := []struct {
		name, want string
		ok         bool
	}{
		{"[2/5] COPY app/ /app", "COPY", true},
		{"[stage-1 1/3] FROM docker.io/library/busybox", "FROM", true},
		{"[internal] load build context", "", false},
		{"exporting to image", "", false},
		{"[a/b] RUN x", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := dockerfileInstruction(tt.name)
			if got != tt.want || ok != tt.ok {
				t.Fatalf("dockerfileInstruction(%q) = %q, %v; want %q, %v", tt.name, got, ok, tt.want, tt.ok)
			}
		})
	}
}
func TestCheckNetwork(t *testing.T) {
	gw := netip.MustParseAddr("10.213.7.1")
	bridgeOut := "#6 0.101 1: lo    inet 127.0.0.1/8 scope host lo\n#6 0.101 2: eth0    inet 10.213.7.5/24 brd 10.213.7.255 scope global eth0\n"
	hostOut := "#6 0.090 1: lo    inet 127.0.0.1/8 scope host lo\n#6 0.090 4: eth0    inet 192.0.2.2/24 scope global eth0\n" +
		"#6 0.090 9: slw-b1    inet 10.213.7.1/24 scope global slw-b1\n"
	for _, tc := range []struct {
		name, out, side string
		ok              bool
	}{
		{"bridge on bridge", bridgeOut, "bridge", true},
		{"host on host", hostOut, "host", true},
		{"bridge side ran on host", hostOut, "bridge", false},
		{"host side ran on bridge", bridgeOut, "host", false},
		{"no addresses", "#6 DONE 0.1s\n", "bridge", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := checkNetwork(tc.out, tc.side, gw); (err == nil) != tc.ok {
				t.Fatalf("checkNetwork(%s) = %v, want ok %v", tc.side, err, tc.ok)
			}
		})
	}
}

func TestRunVertices(t *testing.T) {
	out := `#5 [1/3] FROM docker.io/library/busybox:latest
#5 DONE 0.0s
#6 [2/3] RUN ip -4 -o addr > /step1 && cat /step1
#6 0.101 1: lo    inet 127.0.0.1/8 scope host lo
#6 DONE 0.2s
#7 [3/3] RUN echo "step 2 $NONCE" > /step2
#7 CACHED
#8 [3/3] RUN echo "step 3 $NONCE" > /step3
#8 DONE 0.3s
`
	sum, ran, cached := runVertices(out)
	if sum != 500*time.Millisecond || ran != 2 || cached != 1 {
		t.Fatalf("runVertices = %s, %d ran, %d cached; want 500ms, 2 ran, 1 cached", sum, ran, cached)
	}
}

// TestHistoryGenerated checks that the history fixture is the same repository every time (so a
// cached one stands for a new one), with its commits, its tree and about its size.
func TestHistoryGenerated(t *testing.T) {
	h := history{commits: 20, mib: 2}
	var heads []string
	for i := range 2 {
		dir := filepath.Join(t.TempDir(), "h.git")
		if err := h.generate(context.Background(), dir); err != nil {
			t.Fatal(err)
		}
		gitOut := func(args ...string) string {
			out, err := exec.Command("git", append([]string{"-C", dir}, args...)...).Output()
			if err != nil {
				t.Fatalf("git %v: %v", args, err)
			}
			return strings.TrimSpace(string(out))
		}
		heads = append(heads, gitOut("rev-parse", "main"))
		if i > 0 {
			continue
		}
		if got := gitOut("rev-list", "--count", "main"); got != "20" {
			t.Errorf("%s commits, want 20", got)
		}
		files := strings.Split(gitOut("ls-tree", "-r", "--name-only", "main"), "\n")
		if len(files) != historyFiles+2 || !slices.Contains(files, "Dockerfile") || !slices.Contains(files, h.fixture().changePath) {
			t.Errorf("head tree has %d files (want %d), Dockerfile and %s: %v", len(files), historyFiles+2, h.fixture().changePath, files[:3])
		}
		var size int64
		for line := range strings.Lines(gitOut("count-objects", "-v")) {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), "size-pack: "); ok {
				size, _ = strconv.ParseInt(v, 10, 64)
			}
		}
		// size-pack in KiB: the blobs are incompressible, so the pack is about their sum.
		if size < 2*1024*8/10 || size > 2*1024*12/10 {
			t.Errorf("pack of %d KiB, want about 2 MiB", size)
		}
	}
	if heads[0] != heads[1] {
		t.Errorf("two generations gave heads %s and %s, want the same", heads[0], heads[1])
	}
}

// TestTargets checks the targets against both raw columns, at and around their limits.
func TestTargets(t *testing.T) {
	ms := time.Millisecond
	run := func(d time.Duration) buildRun {
		t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
		return buildRun{start: t0, end: t0.Add(d)}
	}
	tests := []struct {
		name              string
		sc                *scenarioRuns
		gotRaw, metRaw    string
		gotCache, metFair string
	}{
		{"ratio met against raw, not against raw + cache",
			&scenarioRuns{name: "large/changed", slipway: []buildRun{run(800 * ms)}, raw: []rawRun{{total: 1000 * ms}}, cached: []rawRun{{total: 900 * ms}}},
			"0.80×", "met", "0.89×", "not met"},
		{"difference at the limit and over it",
			&scenarioRuns{name: "small/changed", slipway: []buildRun{run(650 * ms)}, raw: []rawRun{{total: 500 * ms}}, cached: []rawRun{{total: 499 * ms}}},
			"+150 ms", "met", "+151 ms", "not met"},
		{"no fair column",
			&scenarioRuns{name: "large/unchanged", slipway: []buildRun{run(600 * ms)}, raw: []rawRun{{total: 1000 * ms}}},
			"0.60×", "met", "–", "–"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tb := targetsTable([]*scenarioRuns{{name: "history/changed"}, tt.sc})
			if len(tb.rows) != 1 {
				t.Fatalf("%d rows, want 1: %v", len(tb.rows), tb.rows)
			}
			want := []string{tt.sc.name, "", tt.gotRaw, tt.metRaw, tt.gotCache, tt.metFair}
			got := tb.rows[0]
			want[1] = got[1]
			if !slices.Equal(got, want) {
				t.Errorf("row %q, want %q", got, want)
			}
		})
	}
}
