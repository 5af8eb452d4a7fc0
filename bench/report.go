package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/slipway-dev/slipway/build"
)

// machine describes where the bench ran.
type machine struct {
	date            time.Time
	goVersion       string
	nproc           string
	memory          string
	cpu             string
	kernel          string
	loadStart       string
	loadEnd         string
	temporalVersion string
	buildctlVersion string
	snapshotter     string
	buildkitVersion string
}

// describeMachine reads the machine's description; what it cannot read it calls "unknown".
func describeMachine(ctx context.Context, toolsDir string) machine {
	m := machine{
		date:            time.Now().UTC(),
		goVersion:       commandOutput(ctx, "go", "version"),
		nproc:           commandOutput(ctx, "nproc"),
		memory:          "unknown",
		cpu:             "unknown",
		kernel:          "unknown",
		loadStart:       loadAverage(),
		temporalVersion: commandOutput(ctx, filepath.Join(toolsDir, "temporal"), "--version"),
		buildctlVersion: commandOutput(ctx, filepath.Join(toolsDir, "buildctl"), "--version"),
	}
	if v := procField("/proc/meminfo", "MemTotal"); v != "" {
		var kb int64
		if _, err := fmt.Sscanf(v, "%d kB", &kb); err == nil {
			m.memory = fmt.Sprintf("%.1f GiB", float64(kb)/(1<<20))
		}
	}
	if v := procField("/proc/cpuinfo", "model name"); v != "" {
		m.cpu = v
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.kernel = strings.TrimSpace(string(b))
	}
	return m
}

// commandOutput is the trimmed output of a command, or "unknown".
func commandOutput(ctx context.Context, name string, args ...string) string {
	out, err := exec.CommandContext(ctx, name, args...).Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(out))
}

// procField returns the value of the first "key : value" line of a /proc file.
func procField(path, key string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// loadAverage is the 1, 5 and 15 minute load average.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// load1 is the 1-minute load average.
func load1() (float64, bool) {
	var l float64
	if _, err := fmt.Sscanf(loadAverage(), "%g", &l); err != nil {
		return 0, false
	}
	return l, true
}

// loadRange is the lowest and highest 1-minute load average seen after the measured pairs.
func (rep *report) loadRange() string {
	var all []float64
	for _, r := range rep.results {
		all = append(all, r.loads...)
	}
	if len(all) == 0 {
		return "unknown"
	}
	return fmt.Sprintf("%.2f – %.2f", slices.Min(all), slices.Max(all))
}

// cacheSetting says which registry cache the Slipway builds used.
func (rep *report) cacheSetting() string {
	switch rep.opts.cache {
	case "":
		return "Slipway's default, imported from and exported to `IMAGE:buildcache` with mode=max"
	case build.CacheOff:
		return "off (`-cache off`)"
	}
	return "`" + rep.opts.cache + "`"
}

// report renders the results.
type report struct {
	machine machine
	opts    options
	args    []string
	results []*scenarioResult
	// sections are the further measurements that ran, in order.
	sections []section
	took     time.Duration
	// temporalAddress is where the bench's stack served Temporal, for the sample command.
	temporalAddress string
}

// table is a header and rows of cells, rendered as aligned text or as markdown.
type table struct {
	header []string
	rows   [][]string
	// left keeps every markdown column left-aligned; by default all but the first are
	// right-aligned, as figures are.
	left bool
}

func (t table) text(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(t.header, "\t"))
	for _, r := range t.rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	tw.Flush()
}

func (t table) markdown(w io.Writer) {
	fmt.Fprintf(w, "| %s |\n", strings.Join(t.header, " | "))
	seps := make([]string, len(t.header))
	for i := range seps {
		seps[i] = "---"
		if i > 0 && !t.left {
			seps[i] = "---:"
		}
	}
	fmt.Fprintf(w, "| %s |\n", strings.Join(seps, " | "))
	for _, r := range t.rows {
		fmt.Fprintf(w, "| %s |\n", strings.Join(r, " | "))
	}
}

func (rep *report) scenarioHeader(first string) []string {
	h := []string{first}
	for _, r := range rep.results {
		h = append(h, r.name())
	}
	return h
}

// totals is the headline table: both sides' spread, the ratio of medians and the overhead.
func (rep *report) totals() table {
	t := table{header: []string{"scenario", "runs", "Slipway min / median / max", "raw min / median / max", "ratio of medians", "overhead (median diff)"}}
	for _, r := range rep.results {
		s, rw := summarize(r.slipwayTotals()), summarize(r.rawTotals())
		t.rows = append(t.rows, []string{r.name(), fmt.Sprint(s.n), spread(s), spread(rw), ratio(s.median, rw.median), signedMS(s.median - rw.median)})
	}
	return t
}

// startToClone is the time from the workflow's start to the Clone activity starting.
func (rep *report) startToClone() table {
	t := table{header: []string{"scenario", "start → Clone started, min / median / max", "server time (started → completed), median", "client time, median"}}
	for _, r := range rep.results {
		var stc, srv []time.Duration
		for _, s := range r.slipway {
			stc = append(stc, s.timeline.startToClone())
			srv = append(srv, s.timeline.server())
		}
		t.rows = append(t.rows, []string{r.name(), spread(summarize(stc)), ms(median(srv)), ms(median(r.slipwayTotals()))})
	}
	return t
}

// statusSteps is the status query's per-step durations, medians.
func (rep *report) statusSteps() table {
	steps := []string{build.StepClone, build.StepResolve, build.StepTag, build.StepBuild, build.StepPush}
	t := table{header: rep.scenarioHeader("status step (median, StartedAt → EndedAt)")}
	sums := make([]time.Duration, len(rep.results))
	for _, step := range steps {
		row := []string{step}
		for i, r := range rep.results {
			var ds []time.Duration
			for _, s := range r.slipway {
				ds = append(ds, s.stepDurations()[step])
			}
			m := median(ds)
			sums[i] += m
			row = append(row, ms(m))
		}
		t.rows = append(t.rows, row)
	}
	row, rest := []string{"sum of steps"}, []string{"total − sum of steps"}
	for i, r := range rep.results {
		row = append(row, ms(sums[i]))
		rest = append(rest, ms(median(r.slipwayTotals())-sums[i]))
	}
	t.rows = append(t.rows, row, rest)
	return t
}

// rawSplit is the raw pair cut in its two commands, medians.
func (rep *report) rawSplit() table {
	t := table{header: rep.scenarioHeader("raw command (median)")}
	clone, build, total := []string{"git clone --depth 1"}, []string{"buildctl build … push=true"}, []string{"pair"}
	for _, r := range rep.results {
		var c, b []time.Duration
		for _, rw := range r.raw {
			c, b = append(c, rw.clone), append(b, rw.build)
		}
		clone, build, total = append(clone, ms(median(c))), append(build, ms(median(b))), append(total, ms(median(r.rawTotals())))
	}
	t.rows = append(t.rows, clone, build, total)
	return t
}

// vertexTable is BuildKit's own timing of the vertices where Slipway and the raw command
// differ, medians, "Slipway / raw".
func (rep *report) vertexTable() table {
	t := table{header: rep.scenarioHeader("BuildKit vertex (median, Slipway / raw)")}
	for _, k := range vertexKinds() {
		row := []string{k}
		for _, r := range rep.results {
			var s, rw []time.Duration
			for _, x := range r.slipway {
				s = append(s, x.vertices[k])
			}
			for _, x := range r.raw {
				rw = append(rw, x.vertices[k])
			}
			row = append(row, ms(median(s))+" / "+ms(median(rw)))
		}
		t.rows = append(t.rows, row)
	}
	return t
}

// attribution is one scenario's overhead cut into parts, from medians.
type attribution struct {
	overhead                                time.Duration
	clone, buildPush, steps, orchestration  time.Duration
	beforeClone, dispatch, client, residual time.Duration
}

func (r *scenarioResult) attribution() attribution {
	var cloneRun, bpRun, steps, orch, client, stc, disp []time.Duration
	for _, s := range r.slipway {
		var k [4]time.Duration
		var c, bp, d time.Duration
		for _, p := range s.phases() {
			k[p.kind] += p.d
			if p.dispatch {
				d += p.d
			}
			switch p.name {
			case "Clone runs":
				c += p.d
			case "Build runs", "Push runs":
				bp += p.d
			}
		}
		cloneRun, bpRun = append(cloneRun, c), append(bpRun, bp)
		steps, orch, client = append(steps, k[kindStep]), append(orch, k[kindOrchestration]), append(client, k[kindClient])
		stc = append(stc, s.timeline.startToClone())
		disp = append(disp, d)
	}
	var rawClone, rawBuild []time.Duration
	for _, rw := range r.raw {
		rawClone, rawBuild = append(rawClone, rw.clone), append(rawBuild, rw.build)
	}
	a := attribution{
		overhead:      median(r.slipwayTotals()) - median(r.rawTotals()),
		clone:         median(cloneRun) - median(rawClone),
		buildPush:     median(bpRun) - median(rawBuild),
		steps:         median(steps),
		orchestration: median(orch),
		client:        median(client),
	}
	// Clone's own dispatch is the last part of the wait before it starts, and is in orch.
	a.beforeClone = median(stc)
	a.dispatch = median(disp)
	a.residual = a.overhead - a.clone - a.buildPush - a.steps - a.orchestration - a.client
	return a
}

// overheadTable cuts each scenario's overhead into what Slipway does more than the raw tools.
func (rep *report) overheadTable() table {
	t := table{header: rep.scenarioHeader("where the overhead goes (medians)")}
	rows := []struct {
		name string
		get  func(attribution) time.Duration
	}{
		{"overhead: Slipway − raw", func(a attribution) time.Duration { return a.overhead }},
		{"Clone activity runs − git clone", func(a attribution) time.Duration { return a.clone }},
		{"Build + Push activities run − buildctl build --push", func(a attribution) time.Duration { return a.buildPush }},
		{"extra activities run (ResolveDockerfile, RenderTag, Cleanup, session completion)", func(a attribution) time.Duration { return a.steps }},
		{"Temporal orchestration (workflow tasks, activity dispatch, session creation)", func(a attribution) time.Duration { return a.orchestration }},
		{"  of which: activity dispatch (each scheduled → started, session's included)", func(a attribution) time.Duration { return a.dispatch }},
		{"  of which: workflow start → Clone started", func(a attribution) time.Duration { return a.beforeClone }},
		{"client: start call and result poll", func(a attribution) time.Duration { return a.client }},
		{"residual (medians do not add up exactly)", func(a attribution) time.Duration { return a.residual }},
	}
	atts := make([]attribution, len(rep.results))
	for i, r := range rep.results {
		atts[i] = r.attribution()
	}
	for _, row := range rows {
		cells := []string{row.name}
		for _, a := range atts {
			cells = append(cells, signedMS(row.get(a)))
		}
		t.rows = append(t.rows, cells)
	}
	return t
}

// phaseTable is the history of a build cut into consecutive phases, medians per scenario.
func (rep *report) phaseTable() table {
	t := table{header: rep.scenarioHeader("phase of a Slipway build (median)")}
	var names []string
	meds := make([]map[string]time.Duration, len(rep.results))
	var wfts []string
	for i, r := range rep.results {
		all := map[string][]time.Duration{}
		var wftN, wftDispatch, wftRun []time.Duration
		for _, s := range r.slipway {
			for _, p := range s.phases() {
				if !slices.Contains(names, p.name) {
					names = append(names, p.name)
				}
				all[p.name] = append(all[p.name], p.d)
			}
			wftN = append(wftN, time.Duration(s.timeline.workflowTasks))
			wftDispatch = append(wftDispatch, s.timeline.wftDispatch)
			wftRun = append(wftRun, s.timeline.wftRun)
		}
		meds[i] = map[string]time.Duration{}
		for n, ds := range all {
			meds[i][n] = median(ds)
		}
		wfts = append(wfts, fmt.Sprintf("%d tasks, %s + %s", int(median(wftN)), ms(median(wftDispatch)), ms(median(wftRun))))
	}
	for _, n := range names {
		row := []string{n}
		for i := range rep.results {
			d, ok := meds[i][n]
			if !ok {
				row = append(row, "–")
				continue
			}
			row = append(row, ms(d))
		}
		t.rows = append(t.rows, row)
	}
	t.rows = append(t.rows, append([]string{"(workflow tasks: count, summed scheduled → started + started → completed)"}, wfts...))
	return t
}

func (r *scenarioResult) slipwayTotals() []time.Duration {
	var ds []time.Duration
	for _, s := range r.slipway {
		ds = append(ds, s.total)
	}
	return ds
}

func (r *scenarioResult) rawTotals() []time.Duration {
	var ds []time.Duration
	for _, rw := range r.raw {
		ds = append(ds, rw.total)
	}
	return ds
}

// findings names, per scenario, the largest parts of the overhead.
func (rep *report) findings() []string {
	var out []string
	for _, r := range rep.results {
		a := r.attribution()
		parts := []struct {
			name string
			d    time.Duration
		}{
			{"Temporal orchestration", a.orchestration},
			{"Clone activity vs git clone", a.clone},
			{"Build+Push activities vs buildctl", a.buildPush},
			{"extra activities", a.steps},
			{"client round trips", a.client},
		}
		sort.SliceStable(parts, func(i, j int) bool { return abs(parts[i].d) > abs(parts[j].d) })
		var ps []string
		for _, p := range parts[:3] {
			ps = append(ps, fmt.Sprintf("%s %s", p.name, signedMS(p.d)))
		}
		var export, cacheExport, rawExport []time.Duration
		for _, s := range r.slipway {
			export, cacheExport = append(export, s.vertices[vertexExport]), append(cacheExport, s.vertices[vertexCacheExport])
		}
		for _, rw := range r.raw {
			rawExport = append(rawExport, rw.vertices[vertexExport])
		}
		out = append(out, fmt.Sprintf("%s: overhead %s (%s of raw); largest parts: %s; workflow start → Clone started %s; "+
			"BuildKit: image export into the worker's image store %s and registry cache export %s on the Slipway side, image export with push %s on the raw side.",
			r.name(), signedMS(a.overhead), ratio(median(r.slipwayTotals()), median(r.rawTotals())), strings.Join(ps, ", "), ms(a.beforeClone),
			ms(median(export)), ms(median(cacheExport)), ms(median(rawExport))))
	}
	return out
}

func abs(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

// benchstat writes one line per measured run in the Go benchmark format.
func (rep *report) benchstat(w io.Writer) {
	fmt.Fprintf(w, "goos: %s\ngoarch: %s\npkg: github.com/slipway-dev/slipway/bench\ncpu: %s\n", runtime.GOOS, runtime.GOARCH, rep.machine.cpu)
	for _, r := range rep.results {
		for _, s := range r.slipway {
			fmt.Fprintf(w, "BenchmarkE2E/%s/slipway 1 %d ns/op\n", r.name(), s.total.Nanoseconds())
		}
		for _, rw := range r.raw {
			fmt.Fprintf(w, "BenchmarkE2E/%s/raw 1 %d ns/op\n", r.name(), rw.total.Nanoseconds())
		}
	}
	for _, s := range rep.sections {
		s.benchstat(w)
	}
}

// writeText prints the tables and the benchstat lines to stdout.
func (rep *report) writeText(w io.Writer) {
	sections := []struct {
		title string
		t     table
	}{
		{"End to end, Slipway (ExecuteWorkflow → result) vs raw (git clone + buildctl build --push)", rep.totals()},
		{"Workflow start → Clone activity started (from history)", rep.startToClone()},
		{"Where the overhead goes", rep.overheadTable()},
		{"Per-step durations from the status query", rep.statusSteps()},
		{"Raw commands", rep.rawSplit()},
		{"BuildKit's own timing of the vertices where the two sides differ", rep.vertexTable()},
		{"Phases of a Slipway build (history events)", rep.phaseTable()},
	}
	fmt.Fprintf(w, "\n%s; %s CPUs; load average %s at start, %s at end; 1-minute load during the runs %s\n",
		rep.machine.goVersion, rep.machine.nproc, rep.machine.loadStart, rep.machine.loadEnd, rep.loadRange())
	for _, s := range sections {
		fmt.Fprintf(w, "\n== %s\n\n", s.title)
		s.t.text(w)
	}
	fmt.Fprintln(w)
	writeList(w, "*", rep.findings())
	for _, s := range rep.sections {
		fmt.Fprintf(w, "\n== %s\n\n", s.title())
		s.text(w)
	}
	fmt.Fprintln(w)
	rep.benchstat(w)
}

// writeMarkdownFile writes the report as markdown to path.
func (rep *report) writeMarkdownFile(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("creating report folder: %w", err)
	}
	var b strings.Builder
	rep.markdown(&b)
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("writing report: %w", err)
	}
	return nil
}

func (rep *report) markdown(w io.Writer) {
	m := rep.machine
	o := rep.opts
	fmt.Fprintf(w, "# Performance: Slipway end to end against the raw tools\n\n")
	fmt.Fprintf(w, "Generated by `make bench` (`go run ./bench -out docs/performance.md`); re-run it rather than "+
		"editing this file. Each figure is a wall-clock time on a local stack started by the bench itself "+
		"(Temporal dev server on SQLite, buildkitd with the OCI worker, a distribution registry, a smart-HTTP "+
		"Git server with `git http-backend`), all on one machine.\n\n")

	fmt.Fprintf(w, "## Machine\n\n")
	mt := table{header: []string{"", ""}, left: true, rows: [][]string{
		{"date", m.date.Format(time.RFC3339)},
		{"go version", "`" + m.goVersion + "`"},
		{"nproc", m.nproc},
		{"memory", m.memory},
		{"CPU", m.cpu},
		{"kernel", m.kernel},
		{"load average (1, 5, 15 min) at start", m.loadStart},
		{"load average (1, 5, 15 min) at end", m.loadEnd},
		{"1-minute load average after each measured pair, min – max", rep.loadRange() + " (the bench's own processes count in it)"},
		{"temporal CLI (dev server)", "`" + oneLine(m.temporalVersion) + "`"},
		{"buildkitd", m.buildkitVersion + ", snapshotter " + m.snapshotter},
		{"buildctl", "`" + oneLine(m.buildctlVersion) + "`"},
		{"registry cache of the Slipway builds", rep.cacheSetting()},
		{"bench flags", "`" + strings.Join(append([]string{"go run ./bench"}, rep.args...), " ") + "`"},
		{"duration of the runs", rep.took.Round(time.Second).String()},
	}}
	mt.markdown(w)

	fmt.Fprintf(w, "\n## What is measured\n\n")
	fmt.Fprintf(w, "Fixtures, generated at run time (nothing is committed):\n\n")
	seen := map[string]bool{}
	for _, r := range rep.results {
		if seen[r.fixture.name] {
			continue
		}
		seen[r.fixture.name] = true
		fmt.Fprintf(w, "- **%s**: %s.\n", r.fixture.name, r.fixture.description)
	}
	fmt.Fprintf(w, "\nScenarios:\n\n"+
		"- **changed**: every run, on either side, first commits a new content of a file the Dockerfile "+
		"COPYs (`app/version.txt`, `data/stamp.txt`), so the base image is cached but the COPY, every RUN "+
		"after it and the new layers' upload are real work. Slipway and raw never build the same commit, "+
		"since the second would be a cache hit.\n"+
		"- **unchanged**: every run builds the same commit again: all steps are BuildKit cache hits; left "+
		"are the clone, the context transfer, the export and a push of blobs the registry already holds.\n\n")
	fmt.Fprintf(w, "Each scenario runs %d unmeasured warm-up pair(s), then %d measured pairs, interleaved "+
		"Slipway, raw, Slipway, raw, … so that machine noise hits both sides alike. Every run pushes a new "+
		"tag.\n\n", o.warmups, o.runs)
	fmt.Fprintf(w, "- **Slipway**: `ExecuteWorkflow(workflow_docker_builder)` through the Temporal Go client, "+
		"timed until `run.Get` returns the result. That covers the session, Clone (git init + fetch "+
		"--depth=1 + checkout), ResolveDockerfile and RenderTag (scheduled together), Build (BuildKit solve exporting into "+
		"the worker's image store, which skips the blobs it holds, and an OCI layout in the workspace "+
		"pointing into it; registry cache: %s), Push (go-containerregistry from that layout, removing the "+
		"workspace), and the session's completion, with one worker (`./worker`, default settings).\n"+
		"- **raw**: `git clone --depth 1 --branch main URL DIR` followed by `buildctl build … "+
		"--output type=image,name=…,push=true` of the same fixture, timed as one command pair (process start "+
		"of both included; removing DIR afterwards is not).\n"+
		"- Timelines come from each build's history (`GetWorkflowHistory`: the times of "+
		"WorkflowExecutionStarted, of each activity's scheduled, started and closed events, and of "+
		"WorkflowExecutionCompleted); step durations come from the `status` query.\n\n", rep.cacheSetting())

	fmt.Fprintf(w, "## Results\n\n")
	rep.totals().markdown(w)
	fmt.Fprintf(w, "\nRatio and overhead compare medians. Times in milliseconds.\n\n")

	fmt.Fprintf(w, "### Workflow start → Clone activity started\n\n")
	fmt.Fprintf(w, "From the history: the Clone activity's ActivityTaskStarted event time minus the "+
		"WorkflowExecutionStarted event time. Server time is WorkflowExecutionStarted → "+
		"WorkflowExecutionCompleted; client time adds the start call and the result poll.\n\n")
	rep.startToClone().markdown(w)

	fmt.Fprintf(w, "\n### Where the overhead goes\n\n")
	fmt.Fprintf(w, "Each build's client-observed time is cut into consecutive phases between the history's "+
		"events (next table), and grouped: the activities with a raw counterpart (Clone vs `git clone`, "+
		"Build + Push vs `buildctl build --push`), the activities without one, Temporal's orchestration "+
		"between activities (workflow tasks, activity dispatch, the session's creation activity and its "+
		"signal) and the client's own round trips.\n\n")
	rep.overheadTable().markdown(w)
	fmt.Fprintln(w)
	writeList(w, "-", rep.findings())

	fmt.Fprintf(w, "\n### Phases of a Slipway build\n\n")
	fmt.Fprintf(w, "Consecutive stretches between history events, medians over the measured runs; "+
		"each run's phases add up to its client-observed time exactly. \"X scheduled → X started\" is the "+
		"activity's dispatch to the worker; \"Y closed → X scheduled\" is the workflow task that reacts to "+
		"Y and schedules X. The last row counts the workflow tasks and sums their dispatch (scheduled → "+
		"started) and their run on the worker including its reply to the server (started → completed).\n\n")
	rep.phaseTable().markdown(w)

	fmt.Fprintf(w, "\n### Per-step durations from the `status` query\n\n")
	fmt.Fprintf(w, "`StartedAt` is the workflow time when the step's activity is scheduled and `EndedAt` "+
		"when the workflow sees it close, so each includes the activity's dispatch and the workflow task "+
		"that records its end.\n\n")
	rep.statusSteps().markdown(w)

	fmt.Fprintf(w, "\n### Raw commands\n\n")
	rep.rawSplit().markdown(w)

	fmt.Fprintf(w, "\n### BuildKit's own timing of the vertices where the two sides differ\n\n")
	fmt.Fprintf(w, "From BuildKit's plain progress output (the build log on the Slipway side, buildctl's "+
		"output on the raw side): the `DONE` time of the build-context transfer, of the registry cache "+
		"import and export (Slipway's default; `-cache off` turns it off), and of the image export: into the "+
		"worker's image store on the Slipway side (pushed afterwards by the Push activity), to the "+
		"registry including the push on the raw side. BuildKit prints them with 0.1 s resolution.\n\n")
	rep.vertexTable().markdown(w)

	for _, s := range rep.sections {
		fmt.Fprintf(w, "\n## %s\n\n", s.title())
		s.markdown(w)
	}

	fmt.Fprintf(w, "\n## Commands\n\n")
	fmt.Fprintf(w, "```sh\nmake bench    # scripts/tools.sh once, then: go run ./bench -out docs/performance.md\n"+
		"go run ./bench -n 5 -out docs/performance.md    # the same without the tools check\n```\n\n")
	if len(rep.results) > 0 {
		last := rep.results[len(rep.results)-1]
		in, _ := json.Marshal(last.sampleInput)
		fmt.Fprintf(w, "One Slipway run (the bench calls the Go client; the CLI equivalent, from the last run "+
			"of %s; addresses and paths are the bench's own, picked at run time):\n\n", last.name())
		fmt.Fprintf(w, "```sh\ntemporal workflow execute --address %s --task-queue %s --type %s --workflow-id ID \\\n  --input %s\n```\n\n",
			rep.temporalAddress, build.DefaultTaskQueue, build.WorkflowName, shellQuote(string(in)))
		fmt.Fprintf(w, "One raw run (the same run's pair, timed together):\n\n```sh\n")
		for _, c := range last.sampleRaw {
			fmt.Fprintln(w, shellJoin(c))
		}
		fmt.Fprintf(w, "```\n\nWith benchstat: `go run ./bench | grep ^Benchmark > new.txt; benchstat new.txt`.\n")
	}
	fmt.Fprintf(w, "\n## Every run (benchstat format)\n\n```\n")
	rep.benchstat(w)
	fmt.Fprintf(w, "```\n")
}

func oneLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}

// shellQuote quotes s for sh unless it is made of characters sh takes literally.
func shellQuote(s string) string {
	plain := s != ""
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("_./:=,@+%-", c)) {
			plain = false
			break
		}
	}
	if plain {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func shellJoin(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = shellQuote(a)
	}
	return strings.Join(q, " ")
}
