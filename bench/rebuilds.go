package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/slipway-dev/slipway/build"
	"github.com/slipway-dev/slipway/logstore"
)

// Goals of the rebuilds issue.
const (
	// unchangedGoal is the longest an unchanged rebuild may take end to end.
	unchangedGoal = 3 * time.Second
	// freshSpeedupGoal is how much faster than the cold build a rebuild on a fresh buildkitd,
	// helped by the registry cache alone, must be.
	freshSpeedupGoal = 5.0
)

// rebuildKind is one of the builds each repetition of the rebuilds section times.
type rebuildKind string

const (
	// rebuildCold builds on a buildkitd with an empty root into an image repository that has
	// no registry cache yet: nothing is cached anywhere but the base image in the registry.
	rebuildCold rebuildKind = "cold"
	// rebuildUnchanged builds the cold build's commit again: every step is a local cache hit.
	rebuildUnchanged rebuildKind = "unchanged"
	// rebuildChanged builds a commit that changes one file only the last COPY uses.
	rebuildChanged rebuildKind = "one-file-change"
	// rebuildFresh builds the last commit again after buildkitd was restarted with an empty
	// root: only the image repository's registry cache can help.
	rebuildFresh rebuildKind = "fresh-buildkitd"
)

// rebuildKinds lists the kinds in the order a repetition runs them.
func rebuildKinds() []rebuildKind {
	return []rebuildKind{rebuildCold, rebuildUnchanged, rebuildChanged, rebuildFresh}
}

// Sides of a rebuild measurement.
const (
	sideSlipway = "slipway"
	sideRaw     = "raw"
)

// heavyFixture is a build whose cold run does real work: a RUN writes 64 MiB of random bytes
// (which neither compress nor dedupe, so the layer costs its full size to compress, export
// and push) and hashes them, and a RUN spins the CPU for a few seconds in a shell loop. The
// file the change scenario rewrites is used only by the last COPY.
func heavyFixture() fixture {
	files := map[string][]byte{
		"Dockerfile": []byte(`FROM busybox
COPY deps.txt /deps.txt
RUN dd if=/dev/urandom of=/blob bs=1M count=64 2>/dev/null && sha256sum /blob > /blob.sha256
RUN i=0; while [ $i -lt 1200000 ]; do i=$((i+1)); done; echo "$i iterations" > /cpu.txt
COPY app/ /app
`),
		"deps.txt":        []byte("dependencies of the heavy fixture, version 1\n"),
		"app/main.sh":     []byte("#!/bin/sh\necho hello from the heavy fixture\n"),
		"app/version.txt": []byte("change 0\n"),
		"README.md":       []byte("heavy fixture of the slipway bench: a cold build does real work\n"),
	}
	return fixture{
		name: "rebuilds-heavy",
		description: "Dockerfile `FROM busybox`, COPY deps.txt, `RUN dd if=/dev/urandom of=/blob bs=1M count=64 && " +
			"sha256sum /blob` (a 64 MiB layer of random bytes), a RUN with a shell loop of 1.2 million iterations " +
			"(a few seconds of one core), COPY app/ last; the change rewrites app/version.txt, which only that last COPY uses",
		files:      files,
		changePath: "app/version.txt",
		totalBytes: sumSizes(files),
	}
}

// rebuildRun is one timed build of either side.
type rebuildRun struct {
	total time.Duration
	// clone, build and push are the Clone, Build and Push activities' run times on the
	// Slipway side, and git clone and buildctl build --push (push in build) on the raw side.
	clone, build, push time.Duration
	// vertices are BuildKit's own DONE times, summed per vertexGroup.
	vertices map[string]time.Duration
	// retries counts activity attempts after the first (Slipway only): a restarted buildkitd
	// that the worker failed to reach again would show here.
	retries int
}

// rebuildFixture holds one fixture's repetitions, per kind and side.
type rebuildFixture struct {
	// label names the fixture in tables and benchstat lines.
	label string
	fx    fixture
	runs  map[string]map[rebuildKind][]rebuildRun
	// restarts are the times buildkitd took to stop, lose its root and answer again.
	restarts []time.Duration
	// sampleRaw are the raw commands of the last fresh-buildkitd run, for the report.
	sampleRaw [][]string
}

// rebuildsSection measures rebuilds: the same commit again, a one-file change, and a rebuild
// on a freshly started buildkitd that has only the registry cache, against a cold build.
type rebuildsSection struct {
	fixtures []*rebuildFixture
	runs     int
}

// newRebuildsSection is the "rebuilds" section.
func newRebuildsSection() section { return &rebuildsSection{} }

// title heads the section.
func (s *rebuildsSection) title() string {
	return "Rebuilds: unchanged, one-file change, fresh buildkitd with only the registry cache"
}

// key is the section's name for -only.
func (s *rebuildsSection) key() string { return "rebuilds" }

// run measures both fixtures, repetition by repetition, Slipway and raw interleaved. There is
// no warm-up: every repetition starts from an emptied buildkitd.
func (s *rebuildsSection) run(ctx context.Context, e *env, o options) error {
	s.runs = o.runs
	small := smallFixture()
	small.name = "rebuilds-small"
	small.description += "; the change rewrites app/version.txt, which the first COPY uses, so both RUNs run again"
	for _, f := range []struct {
		label string
		fx    fixture
	}{{"small", small}, {"heavy", heavyFixture()}} {
		r, err := e.createRepo(ctx, f.fx)
		if err != nil {
			return err
		}
		rf := &rebuildFixture{label: f.label, fx: f.fx, runs: map[string]map[rebuildKind][]rebuildRun{
			sideSlipway: {}, sideRaw: {},
		}}
		s.fixtures = append(s.fixtures, rf)
		for i := range o.runs {
			// Interleaved per repetition, so machine noise hits both sides alike.
			for _, side := range []string{sideSlipway, sideRaw} {
				if err := s.repetition(ctx, e, r, rf, side, i); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// repetition runs the four builds of one repetition on one side, into an image repository
// of its own so that the cold build finds no registry cache.
func (s *rebuildsSection) repetition(ctx context.Context, e *env, r *repo, rf *rebuildFixture, side string, i int) error {
	image := fmt.Sprintf("%s/bench/rebuilds-%s-%s-%d", e.stack.Registry, rf.label, side, i)
	commit, err := r.change(ctx)
	if err != nil {
		return err
	}
	for _, kind := range rebuildKinds() {
		switch kind {
		case rebuildCold, rebuildFresh:
			took, err := e.restartBuildkitdEmpty(ctx)
			if err != nil {
				return err
			}
			rf.restarts = append(rf.restarts, took)
		case rebuildChanged:
			if commit, err = r.change(ctx); err != nil {
				return err
			}
		}
		label := fmt.Sprintf("rb-%s-%s-%s-%d", rf.label, kind, side, i)
		var run rebuildRun
		if side == sideSlipway {
			run, err = e.slipwayRebuild(ctx, r, label, commit, image)
		} else {
			var cmds [][]string
			run, cmds, err = e.rawRebuild(ctx, r, label, commit, image)
			rf.sampleRaw = cmds
		}
		if err != nil {
			return fmt.Errorf("%s rebuild %s: %w", side, label, err)
		}
		e.logger.Info("rebuild", "fixture", rf.label, "kind", kind, "side", side, "run", i,
			"took", run.total.Round(time.Millisecond), "retries", run.retries)
		rf.runs[side][kind] = append(rf.runs[side][kind], run)
	}
	return nil
}

// restartBuildkitdEmpty kills buildkitd, removes its root (snapshots, content store, cache
// metadata: its whole local cache) and starts it again on the same socket, so the next build
// has nothing but the registry. The worker keeps its BuildKit client: gRPC dials again on the
// next call.
func (e *env) restartBuildkitdEmpty(ctx context.Context) (time.Duration, error) {
	start := time.Now()
	if err := e.stack.KillBuildkitd(); err != nil {
		return 0, fmt.Errorf("stopping buildkitd: %w", err)
	}
	// devstack keeps buildkitd's root here (devstack/buildkitd.go).
	root := filepath.Join(e.home, "buildkit")
	if err := removeTree(root); err != nil {
		return 0, fmt.Errorf("emptying buildkitd's root: %w", err)
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return 0, fmt.Errorf("creating buildkitd's root: %w", err)
	}
	if err := e.stack.StartBuildkitd(ctx); err != nil {
		return 0, fmt.Errorf("starting buildkitd again: %w", err)
	}
	return time.Since(start), nil
}

// removeTree removes dir; a killed buildkitd may leave mounts under it, which are detached
// first when the removal fails.
func removeTree(dir string) error {
	if err := os.RemoveAll(dir); err == nil {
		return nil
	}
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return fmt.Errorf("listing mounts: %w", err)
	}
	var points []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fields := strings.Fields(sc.Text()); len(fields) > 4 && strings.HasPrefix(fields[4], dir+"/") {
			points = append(points, fields[4])
		}
	}
	f.Close()
	// Deepest first.
	for i := len(points) - 1; i >= 0; i-- {
		if err := syscall.Unmount(points[i], syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) {
			return fmt.Errorf("unmounting %s: %w", points[i], err)
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("removing %s: %w", dir, err)
	}
	return nil
}

// slipwayRebuild runs one build through workflow_docker_builder with Slipway's default
// registry cache (IMAGE:buildcache, mode=max), whatever -cache says: the section is about
// that cache.
func (e *env) slipwayRebuild(ctx context.Context, r *repo, label, commit, image string) (rebuildRun, error) {
	in := sectionInput(r, "main", label, commit, image)
	b, err := e.runBuild(ctx, "bench-"+label+"-"+strconv.FormatInt(time.Now().UnixNano(), 36), in, e.worker)
	if err != nil {
		return rebuildRun{}, err
	}
	if err := e.inspectBuild(ctx, &b); err != nil {
		return rebuildRun{}, err
	}
	run := rebuildRun{total: b.end.Sub(b.start), vertices: vertexGroups(b.log), retries: b.retries}
	for _, a := range b.tl.activities {
		d := a.closed.Sub(a.started)
		switch a.name {
		case "Clone":
			run.clone += d
		case "Build":
			run.build += d
		case "Push":
			run.push += d
		}
	}
	return run, nil
}

// rawRebuild clones and builds the commit with the raw tools, importing and exporting a
// registry cache of the same style as Slipway's (IMAGE:buildcache, mode=max), timed as one
// command pair.
func (e *env) rawRebuild(ctx context.Context, r *repo, label, commit, image string) (rebuildRun, [][]string, error) {
	dir := filepath.Join(e.home, "raw", label)
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return rebuildRun{}, nil, fmt.Errorf("creating raw folder: %w", err)
	}
	cacheRef := image + ":buildcache"
	cmds := [][]string{
		{"git", "clone", "--depth", "1", "--branch", "main", r.cloneURL, dir},
		{e.buildctl, "--addr", e.stack.BuildkitAddr, "build", "--progress", "plain", "--frontend", "dockerfile.v0",
			"--local", "context=" + dir, "--local", "dockerfile=" + dir,
			"--import-cache", "type=registry,ref=" + cacheRef,
			"--export-cache", "type=registry,ref=" + cacheRef + ",mode=max,ignore-error=true",
			"--output", "type=image,name=" + image + ":" + label + ",push=true"},
	}
	p, err := e.runRaw(ctx, label, commit, dir, cmds)
	if err != nil {
		return rebuildRun{}, nil, err
	}
	return rebuildRun{total: p.total, clone: p.clone, build: p.build, vertices: vertexGroups(p.output)}, cmds, nil
}

// sectionInput is the BuildInput of a section's build of branch at commit into image, tagged
// after label; the registry cache is Slipway's default.
func sectionInput(r *repo, branch, label, commit, image string) build.Input {
	return build.Input{
		Namespace:   benchOwner,
		Repository:  r.fixture.name,
		RuleID:      "bench",
		Source:      build.Source{Provider: "github", Owner: benchOwner, Repository: r.fixture.name},
		Ref:         build.Ref{Type: build.RefBranch, Name: branch},
		Commit:      commit,
		TagTemplate: label + "-{short_commit}",
		Image:       image,
		Trigger:     build.TriggerManual,
	}
}

// sectionBuild is one build a section started, with what its history and log say once read.
type sectionBuild struct {
	id, runID string
	// start and end are the client's view: ExecuteWorkflow called, result returned.
	start, end time.Time
	tl         timeline
	// retries counts activity attempts after the first.
	retries int
	// identity is the identity of the worker that ran the Clone activity.
	identity string
	log      string
}

// runBuild starts one build with the given workflow ID and waits for its result. It gives up
// when a worker of watch exits or after the bench's build timeout.
func (e *env) runBuild(ctx context.Context, id string, in build.Input, watch ...*workerProcess) (sectionBuild, error) {
	ctx, cancel := context.WithTimeoutCause(ctx, e.timeout, fmt.Errorf("build %s took longer than %s", id, e.timeout))
	defer cancel()
	ctx, cancelCause := context.WithCancelCause(ctx)
	defer cancelCause(nil)
	for _, w := range watch {
		go func() {
			select {
			case <-w.done:
				cancelCause(fmt.Errorf("worker exited (%v); log:\n%s", w.err, tail(w.logPath, 2048)))
			case <-ctx.Done():
			}
		}()
	}

	b := sectionBuild{id: id, start: time.Now()}
	run, err := e.temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:        id,
		TaskQueue: build.DefaultTaskQueue,
	}, build.WorkflowName, in)
	if err != nil {
		return b, fmt.Errorf("starting build %s: %w", id, withCause(ctx, err))
	}
	var out build.Result
	err = run.Get(ctx, &out)
	b.end = time.Now()
	b.runID = run.GetRunID()
	if err != nil {
		return b, fmt.Errorf("build %s: %w; build log:\n%s", id, withCause(ctx, err), e.buildLog(id, b.runID))
	}
	if out.Commit != in.Commit {
		return b, fmt.Errorf("build %s built commit %s, want %s", id, out.Commit, in.Commit)
	}
	return b, nil
}

// inspectBuild reads a finished build's history and log into b, outside any timing.
func (e *env) inspectBuild(ctx context.Context, b *sectionBuild) error {
	tl, err := e.timeline(ctx, b.id, b.runID)
	if err != nil {
		return err
	}
	b.tl = tl
	names := map[int64]string{}
	it := e.temporal.GetWorkflowHistory(ctx, b.id, b.runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			return fmt.Errorf("reading history of %s: %w", b.id, err)
		}
		switch ev.GetEventType() {
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
			names[ev.GetEventId()] = ev.GetActivityTaskScheduledEventAttributes().GetActivityType().GetName()
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_STARTED:
			a := ev.GetActivityTaskStartedEventAttributes()
			name := names[a.GetScheduledEventId()]
			if name != sessionCreation && a.GetAttempt() > 1 {
				b.retries += int(a.GetAttempt()) - 1
			}
			if name == "Clone" {
				b.identity = a.GetIdentity()
			}
		}
	}
	s, err := logstore.New(filepath.Join(e.home, "logs"))
	if err != nil {
		return fmt.Errorf("opening log store: %w", err)
	}
	if raw, err := os.ReadFile(s.Path(b.id, b.runID)); err == nil {
		b.log = string(raw)
	}
	return nil
}

// Groups of BuildKit vertices in the rebuilds report, in report order.
const (
	groupContext     = "context"
	groupBase        = "base image"
	groupSteps       = "COPY/RUN"
	groupCacheImport = "cache import"
	groupPull        = "cached-layer pull"
	groupExport      = "export"
	groupCacheExport = "cache export"
)

// vertexGroupNames lists the groups in report order.
func vertexGroupNames() []string {
	return []string{groupContext, groupBase, groupSteps, groupCacheImport, groupPull, groupExport, groupCacheExport}
}

// vertexGroups sums, per group, the "#N DONE 1.2s" times of the vertices in BuildKit's plain
// progress output. A vertex that ends CACHED or with an ERROR adds nothing. A step that was
// CACHED and is DONE later had its layers pulled for the export: a cache hit from the registry
// leaves the blobs there until an exporter needs their bytes.
func vertexGroups(text string) map[string]time.Duration {
	groupOf := map[string]string{}
	cached := map[string]bool{}
	out := map[string]time.Duration{}
	for line := range strings.Lines(text) {
		num, rest, ok := strings.Cut(strings.TrimSpace(line), " ")
		if !ok || len(num) < 2 || num[0] != '#' {
			continue
		}
		if _, seen := groupOf[num]; !seen {
			groupOf[num] = vertexGroup(rest)
			continue
		}
		if rest == "CACHED" {
			cached[num] = true
			continue
		}
		secs, ok := strings.CutPrefix(rest, "DONE ")
		if !ok || groupOf[num] == "" {
			continue
		}
		g := groupOf[num]
		if cached[num] {
			g = groupPull
		}
		if d, err := time.ParseDuration(strings.TrimSpace(secs)); err == nil {
			out[g] += d
		}
	}
	return out
}

// vertexGroup is the group of a vertex by its name, or "" for the small internal ones
// (load build definition, .dockerignore).
func vertexGroup(name string) string {
	switch {
	case strings.HasPrefix(name, "[internal] load build context"):
		return groupContext
	case strings.HasPrefix(name, "[internal] load metadata for"):
		return groupBase
	case strings.HasPrefix(name, "importing cache"):
		return groupCacheImport
	case strings.HasPrefix(name, "exporting cache"):
		return groupCacheExport
	case strings.HasPrefix(name, "exporting to "):
		return groupExport
	}
	if inst, ok := dockerfileInstruction(name); ok {
		if inst == "FROM" {
			return groupBase
		}
		return groupSteps
	}
	return ""
}

// dockerfileInstruction is the instruction of a Dockerfile step's vertex name, "COPY" of
// "[2/5] COPY app/ /app" (or "[stage 2/5] COPY ..."); ok is false for other vertices.
func dockerfileInstruction(name string) (inst string, ok bool) {
	rest, ok := strings.CutPrefix(name, "[")
	if !ok {
		return "", false
	}
	pos, rest, ok := strings.Cut(rest, "] ")
	if !ok {
		return "", false
	}
	fields := strings.Fields(pos)
	if len(fields) == 0 {
		return "", false
	}
	n, m, ok := strings.Cut(fields[len(fields)-1], "/")
	if _, err := strconv.Atoi(n); !ok || err != nil {
		return "", false
	}
	if _, err := strconv.Atoi(m); err != nil {
		return "", false
	}
	inst, _, _ = strings.Cut(rest, " ")
	return inst, inst != ""
}

// totals are the totals of one fixture, side and kind.
func (rf *rebuildFixture) totals(side string, kind rebuildKind) []time.Duration {
	var ds []time.Duration
	for _, r := range rf.runs[side][kind] {
		ds = append(ds, r.total)
	}
	return ds
}

// speedups are the per-repetition cold / fresh-buildkitd ratios of one side.
func (rf *rebuildFixture) speedups(side string) []float64 {
	cold, fresh := rf.runs[side][rebuildCold], rf.runs[side][rebuildFresh]
	var out []float64
	for i := range min(len(cold), len(fresh)) {
		if fresh[i].total > 0 {
			out = append(out, float64(cold[i].total)/float64(fresh[i].total))
		}
	}
	return out
}

// totalsTable is the headline: each kind's spread on both sides and their ratio.
func (s *rebuildsSection) totalsTable() table {
	t := table{header: []string{"fixture/rebuild", "runs", "Slipway min / median / max", "raw min / median / max", "Slipway / raw (medians)"}}
	for _, rf := range s.fixtures {
		for _, k := range rebuildKinds() {
			sw, rw := summarize(rf.totals(sideSlipway, k)), summarize(rf.totals(sideRaw, k))
			t.rows = append(t.rows, []string{rf.label + "/" + string(k), fmt.Sprintf("%d + %d", sw.n, rw.n),
				spread(sw), spread(rw), ratio(sw.median, rw.median)})
		}
	}
	return t
}

// goalsTable says whether each fixture meets the two goals, on both sides.
func (s *rebuildsSection) goalsTable() table {
	t := table{header: []string{"fixture", "side", "unchanged rebuild, median (max)", "under 3 s?",
		"cold / fresh-buildkitd, ratio of medians", "per-run ratios min / median / max", "fresh ≥ 5× faster?"}}
	for _, rf := range s.fixtures {
		for _, side := range []string{sideSlipway, sideRaw} {
			u := summarize(rf.totals(side, rebuildUnchanged))
			under := 0
			for _, d := range rf.totals(side, rebuildUnchanged) {
				if d < unchangedGoal {
					under++
				}
			}
			cold, fresh := median(rf.totals(side, rebuildCold)), median(rf.totals(side, rebuildFresh))
			sp := rf.speedups(side)
			f := float64(cold) / float64(max(fresh, 1))
			t.rows = append(t.rows, []string{rf.label, side, ms(u.median) + " (" + ms(u.max) + ")",
				fmt.Sprintf("%s (%d of %d runs)", yesNo(u.median < unchangedGoal), under, u.n),
				fmt.Sprintf("%.2f×", f), floatSpread(sp), yesNo(f >= freshSpeedupGoal)})
		}
	}
	return t
}

// partsTable is where each kind's time goes, medians: the activities (Slipway) or commands
// (raw), and BuildKit's own vertex times.
func (s *rebuildsSection) partsTable() table {
	h := []string{"fixture/rebuild/side", "total", "clone", "build", "push", "rest"}
	for _, g := range vertexGroupNames() {
		h = append(h, "bk: "+g)
	}
	t := table{header: h}
	for _, rf := range s.fixtures {
		for _, k := range rebuildKinds() {
			for _, side := range []string{sideSlipway, sideRaw} {
				runs := rf.runs[side][k]
				var tot, cl, bu, pu, rest []time.Duration
				groups := map[string][]time.Duration{}
				for _, r := range runs {
					tot, cl, bu, pu = append(tot, r.total), append(cl, r.clone), append(bu, r.build), append(pu, r.push)
					rest = append(rest, r.total-r.clone-r.build-r.push)
					for _, g := range vertexGroupNames() {
						groups[g] = append(groups[g], r.vertices[g])
					}
				}
				push, other := ms(median(pu)), ms(median(rest))
				if side == sideRaw {
					// The raw pair is its two commands and nothing else; buildctl pushes.
					push, other = "(in build)", "–"
				}
				row := []string{rf.label + "/" + string(k) + "/" + side, ms(median(tot)), ms(median(cl)), ms(median(bu)), push, other}
				for _, g := range vertexGroupNames() {
					row = append(row, ms(median(groups[g])))
				}
				t.rows = append(t.rows, row)
			}
		}
	}
	return t
}

// findings are the section's conclusions in sentences.
func (s *rebuildsSection) findings() []string {
	var out []string
	for _, rf := range s.fixtures {
		sw := summarize(rf.totals(sideSlipway, rebuildUnchanged))
		cold, fresh := median(rf.totals(sideSlipway, rebuildCold)), median(rf.totals(sideSlipway, rebuildFresh))
		rcold, rfresh := median(rf.totals(sideRaw, rebuildCold)), median(rf.totals(sideRaw, rebuildFresh))
		retries := 0
		for _, k := range rebuildKinds() {
			for _, r := range rf.runs[sideSlipway][k] {
				retries += r.retries
			}
		}
		fv := map[string][]time.Duration{}
		for _, r := range rf.runs[sideSlipway][rebuildFresh] {
			for _, g := range vertexGroupNames() {
				fv[g] = append(fv[g], r.vertices[g])
			}
		}
		largest, largestD := "", time.Duration(0)
		for _, g := range vertexGroupNames() {
			if d := median(fv[g]); d > largestD {
				largest, largestD = g, d
			}
		}
		var rawExport []time.Duration
		for _, r := range rf.runs[sideRaw][rebuildFresh] {
			rawExport = append(rawExport, r.vertices[groupExport])
		}
		out = append(out, fmt.Sprintf("%s: unchanged rebuild through Slipway %s median (goal < 3 s: %s); "+
			"cold %s → fresh-buildkitd %s, %s faster (goal ≥ 5×: %s); the raw tools: cold %s → fresh %s, %s. "+
			"Largest BuildKit part of Slipway's fresh-buildkitd rebuild: %s (%s median); there Slipway pulls the "+
			"cached layers back from the registry (%s) and exports the image into the worker's image "+
			"store, which skips the blobs it holds (%s), where buildctl's export with push=true takes %s "+
			"because the registry already holds the blobs. Activity retries across all Slipway builds: %d.",
			rf.label, ms(sw.median), metOrNot(sw.median < unchangedGoal),
			ms(cold), ms(fresh), ratio(cold, fresh), metOrNot(float64(cold) >= freshSpeedupGoal*float64(fresh)),
			ms(rcold), ms(rfresh), ratio(rcold, rfresh), largest, ms(largestD),
			ms(median(fv[groupPull])), ms(median(fv[groupExport])), ms(median(rawExport)), retries))
	}
	return out
}

// text prints the tables and findings.
func (s *rebuildsSection) text(w io.Writer) {
	s.totalsTable().text(w)
	fmt.Fprintln(w)
	s.goalsTable().text(w)
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Where the time goes (medians; bk: BuildKit's own vertex DONE times, 0.1 s resolution):")
	s.partsTable().text(w)
	fmt.Fprintln(w)
	for _, rf := range s.fixtures {
		fmt.Fprintf(w, "buildkitd restart with an empty root (%s): %s over %d restarts\n", rf.label, spread(summarize(rf.restarts)), len(rf.restarts))
	}
	writeList(w, "*", s.findings())
}

// markdown writes what is measured and how, then the tables and findings.
func (s *rebuildsSection) markdown(w io.Writer) {
	fmt.Fprintf(w, "Each repetition (%d per fixture and side, Slipway and raw interleaved) times four builds in a row, "+
		"into an image repository of its own (`REGISTRY/bench/rebuilds-FIXTURE-SIDE-N`), so its registry cache "+
		"`IMAGE:buildcache` does not exist before the first build. There is no warm-up: each repetition starts "+
		"from an emptied buildkitd.\n\n", s.runs)
	fmt.Fprintf(w, "1. **cold**: buildkitd is killed, its root (snapshots, content store, cache metadata) removed and "+
		"it is started again; the build finds no local cache and no registry cache, only busybox in the registry.\n"+
		"2. **unchanged**: the same commit again; every step is a local cache hit.\n"+
		"3. **one-file-change**: a new commit rewriting one file (`app/version.txt`).\n"+
		"4. **fresh-buildkitd**: buildkitd is killed, emptied and started again as for the cold build, then the "+
		"last commit is built again into the same image repository: only the registry cache written by the "+
		"previous builds (mode=max) can help.\n\n")
	fmt.Fprintf(w, "Fixtures:\n\n")
	for _, rf := range s.fixtures {
		fmt.Fprintf(w, "- **%s**: %s.\n", rf.label, rf.fx.description)
	}
	fmt.Fprintf(w, "\nSlipway side: `workflow_docker_builder` with Slipway's default registry cache (import from and "+
		"export to `IMAGE:buildcache`, mode=max, whatever `-cache` says), timed from ExecuteWorkflow to the result, "+
		"with the bench's one worker; the worker keeps its BuildKit client across the restarts (gRPC dials again). "+
		"Raw side: `git clone --depth 1` + `buildctl build --import-cache type=registry,ref=IMAGE:buildcache "+
		"--export-cache type=registry,ref=IMAGE:buildcache,mode=max,ignore-error=true --output "+
		"type=image,name=IMAGE:TAG,push=true`, timed as one pair. Goals from the issue: an unchanged rebuild "+
		"under 3 s end to end, and a fresh-buildkitd rebuild at least 5× faster than the cold build.\n\n")
	s.totalsTable().markdown(w)
	fmt.Fprintf(w, "\nGoals (the ratio compares medians; per-run ratios pair each repetition's cold and fresh builds):\n\n")
	s.goalsTable().markdown(w)
	fmt.Fprintf(w, "\nWhere the time goes, medians: clone, build and push are the Clone, Build and Push activities' "+
		"run times from the history (Slipway) or the two commands (raw, whose push happens inside the build); "+
		"rest is everything else (orchestration, other activities, client); `bk:` columns are BuildKit's "+
		"own `DONE` times from the build log or buildctl's output, summed per group (base image: metadata and "+
		"FROM; cached-layer pull: steps that were cache hits from the registry cache and whose layers the "+
		"export then downloaded; export: into the worker's image store on the Slipway side (blobs it "+
		"holds are skipped; SLIPWAY_IMAGE_STORE_TTL), to the registry with push on the raw side).\n\n")
	s.partsTable().markdown(w)
	fmt.Fprintln(w)
	for _, rf := range s.fixtures {
		fmt.Fprintf(w, "- buildkitd restart with an empty root (%s): %s over %d restarts, not part of any build's time.\n",
			rf.label, spread(summarize(rf.restarts)), len(rf.restarts))
	}
	writeList(w, "-", s.findings())
	if len(s.fixtures) > 0 {
		last := s.fixtures[len(s.fixtures)-1]
		fmt.Fprintf(w, "\nOne raw run (the last of %s):\n\n```sh\n", last.label)
		for _, c := range last.sampleRaw {
			fmt.Fprintln(w, shellJoin(c))
		}
		fmt.Fprintf(w, "```\n")
	}
}

// benchstat writes one line per build: BenchmarkRebuild/FIXTURE/KIND/SIDE.
func (s *rebuildsSection) benchstat(w io.Writer) {
	for _, rf := range s.fixtures {
		for _, k := range rebuildKinds() {
			for _, side := range []string{sideSlipway, sideRaw} {
				for _, r := range rf.runs[side][k] {
					fmt.Fprintf(w, "BenchmarkRebuild/%s/%s/%s 1 %d ns/op\n", rf.label, k, side, r.total.Nanoseconds())
				}
			}
		}
	}
}

// yesNo is "yes" or "no".
func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// metOrNot is "met" or "not met".
func metOrNot(b bool) string {
	if b {
		return "met"
	}
	return "not met"
}

// floatSpread formats the min, median and max of ratios as "1.20× / 3.40× / 5.60×".
func floatSpread(fs []float64) string {
	if len(fs) == 0 {
		return "n/a"
	}
	lo, med, hi := summarizeFloats(fs)
	return fmt.Sprintf("%.2f× / %.2f× / %.2f×", lo, med, hi)
}

// summarizeFloats is the min, median and max of fs (the median of an even count is the mean
// of the middle two); fs must not be empty.
func summarizeFloats(fs []float64) (lo, med, hi float64) {
	s := slices.Clone(fs)
	slices.Sort(s)
	med = s[len(s)/2]
	if len(s)%2 == 0 {
		med = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return s[0], med, s[len(s)-1]
}
