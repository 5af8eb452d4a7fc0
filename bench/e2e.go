package main

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/slipway-dev/slipway/build"
)

// scenarioRuns are the measured runs of one fixture in one scenario: "changed" runs build a new
// commit each, which changes a file the Dockerfile copies; "unchanged" runs build the same
// commit again, every step a cache hit. cached are the raw tools given Slipway's registry cache
// flags (the fair column); empty when the cache is off.
type scenarioRuns struct {
	name    string
	slipway []buildRun
	raw     []rawRun
	cached  []rawRun
}

// e2eFixtures are the e2e part's repositories by name, in the order they run, each made when
// its turn comes.
func e2eFixtures(ctx context.Context, e *env, o options) []struct {
	name string
	make func() (*repo, error)
} {
	return []struct {
		name string
		make func() (*repo, error)
	}{
		{"small", func() (*repo, error) { return e.createRepo(smallFixture("small")) }},
		{"large", func() (*repo, error) { return e.createRepo(largeFixture(300, 48)) }},
		{"history", func() (*repo, error) { return e.historyRepo(ctx, o.history, o.work) }},
	}
}

// cacheFlags are buildctl's flags for the registry cache Slipway uses by default: ref imported
// and exported with mode=max, an export error not failing the build.
func cacheFlags(ref string) []string {
	return []string{"--import-cache", "type=registry,ref=" + ref, "--export-cache", "type=registry,ref=" + ref + ",mode=max,ignore-error=true"}
}

// measureE2E builds each fixture, changed and unchanged, through Slipway, with the raw tools
// and with the raw tools given the same registry cache, interleaved run by run (A B C A B C ...)
// so machine noise hits every side alike.
func measureE2E(ctx context.Context, e *env, o options) (result, error) {
	var all []*scenarioRuns
	for _, f := range e2eFixtures(ctx, e, o) {
		if !listed(o.scenarios, f.name) {
			continue
		}
		r, err := f.make()
		if err != nil {
			return result{}, fmt.Errorf("fixture %s: %w", f.name, err)
		}
		for _, changed := range []bool{true, false} {
			sc := &scenarioRuns{name: f.name + "/unchanged"}
			if changed {
				sc.name = f.name + "/changed"
			}
			for i := range o.warmups + o.runs {
				label := strings.ReplaceAll(sc.name, "/", "-") + "-" + strconv.Itoa(i)
				// A changed run gets a new commit on each side: building Slipway's commit
				// again would be a cache hit and flatter the raw tools.
				next := func() (string, error) {
					if changed {
						return r.change()
					}
					return r.head, nil
				}
				commit, err := next()
				if err != nil {
					return result{}, err
				}
				s, err := e.build(ctx, label, buildInput(r, "main", label, commit, e.stack.Registry+"/bench/slipway", e.cache))
				if err != nil {
					return result{}, err
				}
				var raws []rawRun
				for _, side := range []string{"raw", "rawcache"} {
					if side == "rawcache" && e.cache == build.CacheOff {
						break
					}
					if commit, err = next(); err != nil {
						return result{}, err
					}
					image := e.stack.Registry + "/bench/" + side
					var flags []string
					if side == "rawcache" {
						flags = cacheFlags(image + ":buildcache")
					}
					rw, err := e.raw(ctx, r, label, commit, image, flags...)
					if err != nil {
						return result{}, err
					}
					raws = append(raws, rw)
				}
				e.logger.Info("run", "scenario", sc.name, "run", i, "slipway", s.total().Round(time.Millisecond),
					"raw", raws[0].total.Round(time.Millisecond), "raw+cache", raws[len(raws)-1].total.Round(time.Millisecond))
				if i >= o.warmups {
					sc.slipway, sc.raw = append(sc.slipway, s), append(sc.raw, raws[0])
					if len(raws) > 1 {
						sc.cached = append(sc.cached, raws[1])
					}
					e.loads = append(e.loads, load1())
				}
			}
			all = append(all, sc)
		}
	}
	return e2eResult(all), nil
}

// e2eResult lays the scenarios out: totals, where the overhead goes, the phases of a build, the
// raw commands and BuildKit's own vertex times.
func e2eResult(all []*scenarioRuns) result {
	res := result{key: "e2e", title: "End to end: Slipway (ExecuteWorkflow → result) vs git clone + buildctl build --push, without and with Slipway's cache flags"}
	head := func(first string) []string {
		h := []string{first}
		for _, sc := range all {
			h = append(h, sc.name)
		}
		return h
	}
	tot := table{header: []string{"scenario", "runs", "Slipway min / median / max", "raw min / median / max", "raw + cache min / median / max",
		"Slipway / raw", "Slipway / raw + cache", "Slipway − raw", "Slipway − (raw + cache)"}}
	over := table{title: "Where the overhead goes (medians)", header: head("part")}
	phases := table{title: "Phases of a Slipway build (medians)", header: head("phase")}
	rawT := table{title: "Raw commands (medians; raw + cache: the same with Slipway's registry cache flags)", header: head("command")}
	vert := table{title: "BuildKit's own vertex times (medians, Slipway / raw / raw + cache; 0.1 s resolution)", header: head("vertex")}
	overRows := []string{"overhead: Slipway − raw", "Clone activity runs − git clone", "Build + Push activities run − buildctl build --push",
		"other activities run (session completion; ResolveDockerfile, RenderTag in builds before they were folded)", "Temporal orchestration (workflow tasks, dispatch, session creation)",
		"  of which activity dispatch (scheduled → started)", "  of which workflow start → Clone started", "client: start call and result poll", "residual (medians do not add up)"}
	over.rows = rowsOf(overRows)
	rawT.rows = rowsOf([]string{"git clone --depth 1", "buildctl build … push=true", "pair",
		"raw + cache: git clone --depth 1", "raw + cache: buildctl build … push=true", "raw + cache: pair"})
	groups := []string{groupContext, groupCacheImport, groupExport, groupCacheExport}
	vert.rows = rowsOf(groups)
	push := table{title: "Push step: what it sent the registry (medians)", header: head("count")}
	push.rows = rowsOf([]string{"registry requests", "bytes sent (request bodies)"})
	var phaseNames []string
	var phaseMeds []map[string]time.Duration
	var wfts []string
	for _, sc := range all {
		var st, rt []time.Duration
		per := map[string][]time.Duration{}
		kinds := map[phaseKind][]time.Duration{}
		var disp, stc, cloneRun, bpRun, wftN, wftD, wftR []time.Duration
		for _, s := range sc.slipway {
			st = append(st, s.total())
			k := map[phaseKind]time.Duration{}
			var d time.Duration
			for _, p := range s.phases() {
				if !slices.Contains(phaseNames, p.name) {
					phaseNames = append(phaseNames, p.name)
				}
				per[p.name] = append(per[p.name], p.d)
				k[p.kind] += p.d
				if p.dispatch {
					d += p.d
				}
			}
			for _, kind := range []phaseKind{kindWork, kindStep, kindOrchestration, kindClient} {
				kinds[kind] = append(kinds[kind], k[kind])
			}
			disp, stc = append(disp, d), append(stc, s.tl.startToClone())
			cloneRun, bpRun = append(cloneRun, s.tl.ran("Clone")), append(bpRun, s.tl.ran("Build", "Push"))
			wftN = append(wftN, time.Duration(s.tl.workflowTasks))
			wftD, wftR = append(wftD, s.tl.wftDispatch), append(wftR, s.tl.wftRun)
		}
		var rc, rb, cc, cb []time.Duration
		for _, r := range sc.raw {
			rt, rc, rb = append(rt, r.total), append(rc, r.clone), append(rb, r.build)
		}
		for _, r := range sc.cached {
			cc, cb = append(cc, r.clone), append(cb, r.build)
		}
		ct := rawTotals(sc.cached)
		fair := "–"
		if len(ct) > 0 {
			fair = signedMS(median(st) - median(ct))
		}
		tot.rows = append(tot.rows, []string{sc.name, strconv.Itoa(len(st)), spread(st), spread(rt), spread(ct),
			ratio(median(st), median(rt)), ratio(median(st), median(ct)), signedMS(median(st) - median(rt)), fair})
		parts := []time.Duration{median(st) - median(rt), median(cloneRun) - median(rc), median(bpRun) - median(rb),
			median(kinds[kindStep]), median(kinds[kindOrchestration]), median(disp), median(stc), median(kinds[kindClient])}
		parts = append(parts, parts[0]-parts[1]-parts[2]-parts[3]-parts[4]-parts[7])
		for i, d := range parts {
			over.rows[i] = append(over.rows[i], signedMS(d))
		}
		for i, ds := range [][]time.Duration{rc, rb, rt, cc, cb, ct} {
			rawT.rows[i] = append(rawT.rows[i], msOrDash(ds))
		}
		for i, g := range groups {
			var sv, rv, cv []time.Duration
			for _, s := range sc.slipway {
				sv = append(sv, vertexGroups(s.log)[g])
			}
			for _, r := range sc.raw {
				rv = append(rv, vertexGroups(r.output)[g])
			}
			for _, r := range sc.cached {
				cv = append(cv, vertexGroups(r.output)[g])
			}
			vert.rows[i] = append(vert.rows[i], ms(median(sv))+" / "+ms(median(rv))+" / "+msOrDash(cv))
		}
		var reqs, sent []int64
		for _, s := range sc.slipway {
			if r, b, ok := pushCounts(s.log); ok {
				reqs, sent = append(reqs, r), append(sent, b)
			}
		}
		push.rows[0], push.rows[1] = append(push.rows[0], medianCount(reqs)), append(push.rows[1], medianCount(sent))
		meds := map[string]time.Duration{}
		for n, ds := range per {
			meds[n] = median(ds)
		}
		phaseMeds = append(phaseMeds, meds)
		wfts = append(wfts, fmt.Sprintf("%d tasks, %s + %s", int(median(wftN)), ms(median(wftD)), ms(median(wftR))))
		res.durations("BenchmarkE2E/"+sc.name+"/slipway", st)
		res.durations("BenchmarkE2E/"+sc.name+"/raw", rt)
		res.durations("BenchmarkE2E/"+sc.name+"/rawcache", ct)
	}
	for _, n := range phaseNames {
		row := []string{n}
		for _, m := range phaseMeds {
			if d, ok := m[n]; ok {
				row = append(row, ms(d))
			} else {
				row = append(row, "–")
			}
		}
		phases.rows = append(phases.rows, row)
	}
	phases.rows = append(phases.rows, append([]string{"(workflow tasks: count, scheduled → started + started → completed)"}, wfts...))
	res.tables = []table{tot}
	if tg := targetsTable(all); len(tg.rows) > 0 {
		res.tables = append(res.tables, tg)
	}
	res.tables = append(res.tables, over, phases, rawT, vert, push)
	return res
}

// msOrDash is the median of ds in milliseconds, "–" for none.
func msOrDash(ds []time.Duration) string {
	if len(ds) == 0 {
		return "–"
	}
	return ms(median(ds))
}

// rowsOf starts one row per name.
func rowsOf(names []string) [][]string {
	rows := make([][]string, len(names))
	for i, n := range names {
		rows[i] = []string{n}
	}
	return rows
}

// phaseKind says what a phase of a build is spent on.
type phaseKind int

const (
	// kindWork is an activity the raw tools also do: Clone, Build, Push.
	kindWork phaseKind = iota
	// kindStep is an activity the raw tools have no counterpart for.
	kindStep
	// kindOrchestration is Temporal between activities: workflow tasks, dispatch, session.
	kindOrchestration
	// kindClient is the client's own round trips: the start call and the result poll.
	kindClient
)

// phase is one stretch of a build between two consecutive milestones of its history.
type phase struct {
	name string
	d    time.Duration
	kind phaseKind
	// dispatch marks an activity's scheduled → started: matching the task to a worker.
	dispatch bool
}

// phases cuts the client-observed total into consecutive phases that add up to it exactly: each
// milestone of the history (session creation scheduled and started, its signal, each activity's
// scheduled, started and closed events, completion) ends one phase.
func (b buildRun) phases() []phase {
	type milestone struct {
		t          time.Time
		name, what string // what is the activity whose event this is
		ev         string
	}
	tl := b.tl
	ms := []milestone{{t: tl.started, name: "workflow started"}}
	for _, m := range []milestone{{tl.session.scheduled, "session creation scheduled", sessionCreation, "scheduled"},
		{tl.session.started, "session creation started", sessionCreation, "started"}, {tl.signal, "session signal", "", ""}} {
		if !m.t.IsZero() && m.t.Before(tl.closed) {
			ms = append(ms, m)
		}
	}
	for _, a := range tl.activities {
		for _, m := range []milestone{{a.scheduled, a.name + " scheduled", a.name, "scheduled"},
			{a.started, a.name + " started", a.name, "started"}, {a.closed, a.name + " closed", a.name, "closed"}} {
			if !m.t.IsZero() {
				ms = append(ms, m)
			}
		}
	}
	ms = append(ms, milestone{t: tl.closed, name: "workflow completed"})
	sort.SliceStable(ms, func(i, j int) bool { return ms[i].t.Before(ms[j].t) })
	var out []phase
	for i := 1; i < len(ms); i++ {
		a, z := ms[i-1], ms[i]
		p := phase{name: a.name + " → " + z.name, d: z.t.Sub(a.t), kind: kindOrchestration}
		if a.what != "" && a.what == z.what {
			switch {
			case a.ev == "scheduled" && z.ev == "started":
				p.dispatch = true
			case a.ev == "started" && z.ev == "closed":
				p.name, p.kind = a.what+" runs", kindStep
				if a.what == "Clone" || a.what == "Build" || a.what == "Push" {
					p.kind = kindWork
				}
			}
		}
		out = append(out, p)
	}
	return append(out, phase{name: "client: start call and result poll", d: b.total() - tl.closed.Sub(tl.started), kind: kindClient})
}
