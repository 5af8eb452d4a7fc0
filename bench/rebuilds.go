package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// rebuildKinds are the builds each repetition times, in order: cold (an emptied buildkitd, no
// registry cache yet), unchanged (the same commit again), one-file-change, and fresh-buildkitd
// (the last commit again on an emptied buildkitd: only the registry cache can help).
var rebuildKinds = []string{"cold", "unchanged", "one-file-change", "fresh-buildkitd"}

// rebuildRun is one timed rebuild of either side.
type rebuildRun struct {
	total time.Duration
	// clone, build and push are the activities' run times (Slipway) or the two commands (raw,
	// whose push is inside the build).
	clone, build, push time.Duration
	vertices           map[string]time.Duration
	retries            int
}

// measureRebuilds times, per fixture, repetitions of the four rebuild kinds on both sides,
// Slipway and raw interleaved, each into an image repository of its own so that its registry
// cache does not exist before the cold build. There is no warm-up: every repetition starts from
// an emptied buildkitd.
func measureRebuilds(ctx context.Context, e *env, o options) (result, error) {
	res := result{key: "rebuilds", title: "Rebuilds: unchanged, one-file change, fresh buildkitd with only the registry cache"}
	totals := table{header: []string{"fixture/rebuild", "runs", "Slipway min / median / max", "raw min / median / max", "Slipway / raw (medians)"}}
	goals := table{title: "Goal figures", header: []string{"fixture", "side", "cold / fresh-buildkitd, ratio of medians",
		"per-run ratios min / median / max", "activity retries"}}
	parts := table{title: "Where the time goes (medians; bk: BuildKit's own DONE times, 0.1 s resolution)",
		header: []string{"fixture/rebuild/side", "total", "clone", "build", "push", "rest"}}
	for _, g := range vertexGroupNames() {
		parts.header = append(parts.header, "bk: "+g)
	}
	restarts := table{title: "buildkitd restart with an empty root (not part of any build's time)", header: []string{"fixture", "restarts", "min / median / max"}}
	for _, fx := range []fixture{smallFixture("rebuilds-small"), heavyFixture("rebuilds-heavy")} {
		label := strings.TrimPrefix(fx.name, "rebuilds-")
		r, err := e.createRepo(fx)
		if err != nil {
			return res, err
		}
		runs := map[string][]rebuildRun{}
		var restartTimes []time.Duration
		for i := range o.runs {
			for _, side := range []string{"slipway", "raw"} {
				image := fmt.Sprintf("%s/bench/rebuilds-%s-%s-%d", e.stack.Registry, label, side, i)
				commit, err := r.change()
				if err != nil {
					return res, err
				}
				for _, kind := range rebuildKinds {
					switch kind {
					case "cold", "fresh-buildkitd":
						took, err := e.restartBuildkitdEmpty(ctx)
						if err != nil {
							return res, err
						}
						restartTimes = append(restartTimes, took)
					case "one-file-change":
						if commit, err = r.change(); err != nil {
							return res, err
						}
					}
					name := fmt.Sprintf("rb-%s-%s-%s-%d", label, kind, side, i)
					run, err := e.rebuild(ctx, r, side, name, commit, image)
					if err != nil {
						return res, fmt.Errorf("%s rebuild %s: %w", side, name, err)
					}
					runs[kind+"/"+side] = append(runs[kind+"/"+side], run)
				}
			}
		}
		totalsOf := func(key string) []time.Duration {
			var ds []time.Duration
			for _, run := range runs[key] {
				ds = append(ds, run.total)
			}
			return ds
		}
		for _, kind := range rebuildKinds {
			sw, rw := totalsOf(kind+"/slipway"), totalsOf(kind+"/raw")
			totals.rows = append(totals.rows, []string{label + "/" + kind, fmt.Sprintf("%d + %d", len(sw), len(rw)), spread(sw), spread(rw), ratio(median(sw), median(rw))})
			for _, side := range []string{"slipway", "raw"} {
				res.durations(fmt.Sprintf("BenchmarkRebuild/%s/%s/%s", label, kind, side), totalsOf(kind+"/"+side))
				parts.rows = append(parts.rows, partsRow(label+"/"+kind+"/"+side, runs[kind+"/"+side], side == "raw"))
			}
		}
		for _, side := range []string{"slipway", "raw"} {
			cold, fresh := runs["cold/"+side], runs["fresh-buildkitd/"+side]
			var perRun []float64
			retries := 0
			for i := range min(len(cold), len(fresh)) {
				perRun = append(perRun, float64(cold[i].total)/float64(fresh[i].total))
			}
			for _, kind := range rebuildKinds {
				for _, run := range runs[kind+"/"+side] {
					retries += run.retries
				}
			}
			goals.rows = append(goals.rows, []string{label, side,
				ratio(median(totalsOf("cold/"+side)), median(totalsOf("fresh-buildkitd/"+side))), floatSpread("%.2f×", perRun), strconv.Itoa(retries)})
		}
		restarts.rows = append(restarts.rows, []string{label, strconv.Itoa(len(restartTimes)), spread(restartTimes)})
	}
	res.tables = []table{totals, goals, parts, restarts}
	return res, nil
}

// partsRow is the medians of where the runs' time went.
func partsRow(name string, runs []rebuildRun, raw bool) []string {
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
	if raw {
		push, other = "(in build)", "–"
	}
	row := []string{name, ms(median(tot)), ms(median(cl)), ms(median(bu)), push, other}
	for _, g := range vertexGroupNames() {
		row = append(row, ms(median(groups[g])))
	}
	return row
}

// rebuild builds commit into image on one side with a registry cache at IMAGE:buildcache,
// mode=max: Slipway's default (whatever -cache says: this part is about that cache), and the
// same flags for buildctl.
func (e *env) rebuild(ctx context.Context, r *repo, side, label, commit, image string) (rebuildRun, error) {
	if side == "raw" {
		rw, err := e.raw(ctx, r, label, commit, image, cacheFlags(image+":buildcache")...)
		return rebuildRun{total: rw.total, clone: rw.clone, build: rw.build, vertices: vertexGroups(rw.output)}, err
	}
	b, err := e.build(ctx, label, buildInput(r, "main", label, commit, image, ""))
	if err != nil {
		return rebuildRun{}, err
	}
	return rebuildRun{total: b.total(), clone: b.tl.ran("Clone"), build: b.tl.ran("Build"), push: b.tl.ran("Push"),
		vertices: vertexGroups(b.log), retries: b.tl.retries}, nil
}

// restartBuildkitdEmpty kills buildkitd, empties its root (its whole local cache) and starts it
// again on the same socket. The worker keeps its BuildKit client: gRPC dials again.
func (e *env) restartBuildkitdEmpty(ctx context.Context) (time.Duration, error) {
	start := time.Now()
	if err := e.stack.KillBuildkitd(); err != nil {
		return 0, fmt.Errorf("stopping buildkitd: %w", err)
	}
	if err := e.stack.EmptyBuildkitdRoot(); err != nil {
		return 0, err
	}
	if err := e.stack.StartBuildkitd(ctx); err != nil {
		return 0, fmt.Errorf("starting buildkitd again: %w", err)
	}
	return time.Since(start), nil
}
