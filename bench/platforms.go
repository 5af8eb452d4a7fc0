package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/slipway-dev/slipway/build"
)

// platformSets are the builds the platforms part times, each a rule's platforms: native amd64,
// arm64 alone under QEMU user emulation, and both in one build (one solve, one index).
var platformSets = [][]string{{"linux/amd64"}, {"linux/arm64"}, {"linux/amd64", "linux/arm64"}}

// platformsFixture does CPU work in its RUN steps, which is what emulation slows: a shell loop
// and hashing 16 MiB. Its change file is copied first, so every change runs both steps again.
func platformsFixture() fixture {
	return fixture{name: "platforms", changePath: "stamp.txt", files: map[string][]byte{
		"Dockerfile": []byte("FROM busybox\nCOPY stamp.txt /stamp.txt\n" +
			"RUN dd if=/dev/urandom of=/blob bs=1M count=16 2>/dev/null && sha256sum /blob > /blob.sha256\n" +
			"RUN i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done; echo \"$i iterations\" > /cpu.txt\n"),
		"stamp.txt": []byte("change 0\n"),
	}}
}

// measurePlatforms times builds of one fixture per platform set, a new commit each time, so
// every build runs its RUN steps (BuildKit's local cache serves the rest; no registry cache):
// the cost of emulated arm64 against native amd64, whole builds and RUN steps alone.
func measurePlatforms(ctx context.Context, e *env, o options) (result, error) {
	res := result{key: "platforms", title: "Platforms: emulated linux/arm64 (QEMU user emulation) against native linux/amd64"}
	r, err := e.createRepo(platformsFixture())
	if err != nil {
		return res, err
	}
	totals, builds, steps := map[string][]time.Duration{}, map[string][]time.Duration{}, map[string][]time.Duration{}
	for i := range o.warmups + o.runs {
		for _, set := range platformSets {
			label := platformsLabel(set)
			commit, err := r.change()
			if err != nil {
				return res, err
			}
			in := buildInput(r, "main", "pl-"+label, commit, e.stack.Registry+"/bench/platforms-"+label, "off")
			in.Platforms = set
			b, err := e.build(ctx, fmt.Sprintf("pl-%s-%d", label, i), in)
			if err != nil {
				return res, err
			}
			if i < o.warmups {
				continue
			}
			totals[label] = append(totals[label], b.total())
			builds[label] = append(builds[label], b.tl.ran("Build"))
			for p, d := range runStepTimes(b.log, set) {
				steps[label+" "+p] = append(steps[label+" "+p], d)
			}
		}
	}
	whole := table{header: []string{"platforms", "runs", "build total min / median / max", "Build step median", "vs amd64 (Build step medians)"}}
	native := median(builds["amd64"])
	for _, set := range platformSets {
		label := platformsLabel(set)
		whole.rows = append(whole.rows, []string{strings.Join(set, " + "), strconv.Itoa(len(totals[label])),
			spread(totals[label]), ms(median(builds[label])), ratio(median(builds[label]), native)})
		res.durations("BenchmarkPlatforms/"+label, totals[label])
	}
	run := table{title: "RUN steps only (BuildKit's DONE times, 0.1 s resolution), per platform of each build",
		header: []string{"build/platform", "runs", "min / median / max", "vs native amd64 (medians)"}}
	nativeSteps := median(steps["amd64 linux/amd64"])
	for _, set := range platformSets {
		for _, p := range set {
			key := platformsLabel(set) + " " + p
			run.rows = append(run.rows, []string{key, strconv.Itoa(len(steps[key])), spread(steps[key]), ratio(median(steps[key]), nativeSteps)})
		}
	}
	res.tables = []table{whole, run}
	return res, nil
}

// platformsLabel names a platform set by its architectures: "amd64", "amd64-arm64".
func platformsLabel(set []string) string {
	var archs []string
	for _, p := range set {
		archs = append(archs, strings.TrimPrefix(p, "linux/"))
	}
	return strings.Join(archs, "-")
}

// runStepTimes sums the DONE times of the RUN steps in BuildKit's plain progress, per
// platform: a multi-platform build names each step "[linux/arm64 2/3] RUN …"; a build of one
// platform may name it "[2/3] RUN …", which counts for that one.
func runStepTimes(log string, set []string) map[string]time.Duration {
	out := map[string]time.Duration{}
	for _, v := range vertices(log) {
		if inst, ok := dockerfileInstruction(v.name); !ok || inst != "RUN" || !v.done || v.cached {
			continue
		}
		p := set[0]
		if plat, _, ok := strings.Cut(strings.TrimPrefix(v.name, "["), " "); ok && platformName(plat) {
			p = plat
		}
		out[p] += v.doneAfter
	}
	return out
}

// platformName reports whether s is a platform, not a step number such as "2/3".
func platformName(s string) bool {
	_, err := build.ParsePlatform(s)
	return err == nil
}
