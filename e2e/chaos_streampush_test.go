//go:build chaos

package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"

	"github.com/slipway-dev/slipway/build"
)

// TestChaosRegistryDownDuringStreamedPush stops the registry while a build without a registry
// cache runs, so BuildKit's streamed push in the build's solve fails; the registry comes back
// once a Push attempt has failed. The solve's failed push must not fail the build nor build
// again: the Build step keeps the worker's copy, and the Push step, retried, uploads it.
func TestChaosRegistryDownDuringStreamedPush(t *testing.T) {
	rep := newReport(t, "Registry down during the build's streamed push",
		"A build without a registry cache (so BuildKit pushes the image in the build's solve) finds the registry stopped during its solve; the registry comes back once a Push attempt has failed. The build must not fail nor build again (Build ran once, Push attempts > 1): the worker's copy is kept and the Push step uploads it, writing the tag once.")
	owner := "chaos-streampush"
	dockerfile, head := slowFixture(t, owner, 3)
	w := startWorker(t, "SLIPWAY_STREAMED_PUSH=on")
	t.Cleanup(w.stop)
	in := baseInput(owner)
	in.DockerfilePath = dockerfile
	in.TagTemplate = "{short_commit}"
	in.Cache = build.CacheOff // the streamed push runs only without a cache in the image's repository
	id := fmt.Sprintf("chaos-streampush-%d", time.Now().UnixNano())
	run := startBuild(t, id, in)

	waitLog(t, id, run.GetRunID(), "RUN sleep 3", 2*time.Minute)
	if err := env.stack.StopRegistry(); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	waitLog(t, id, run.GetRunID(), "==> push failed", 2*time.Minute)
	time.Sleep(2 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := env.stack.StartRegistry(ctx); err != nil {
		t.Fatalf("starting the registry again: %v", err)
	}
	if s := waitClosed(t, id, 3*time.Minute); s != enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED {
		_, err := buildResult(t, id)
		t.Fatalf("build ended %s: %v\nlog:\n%s", s, err, readLogQuiet(id, run.GetRunID()))
	}
	runs := activityRuns(t, id)
	builds, pushes := ofType(runs, "Build"), ofType(runs, "Push")
	if len(builds) != 1 || builds[0].Attempt != 1 {
		t.Errorf("Build activities %+v, want one, first attempt", builds)
	}
	if len(pushes) != 1 || pushes[0].Attempt < 2 {
		t.Errorf("Push activities %+v, want one retried at least once", pushes)
	}
	logText := readLogQuiet(id, run.GetRunID())
	if n := strings.Count(logText, "==> build "); n != 1 {
		t.Errorf("the log shows %d builds, want 1:\n%s", n, logText)
	}
	if !strings.Contains(logText, "the Push step uploads the image from the worker's copy") {
		t.Errorf("the log does not show the solve's push failing and the worker's copy kept:\n%s", logText)
	}
	tag := head[:7]
	p := pull(t, in.Image+":"+tag)
	if !strings.HasPrefix(p.files["survived"], owner+"-") {
		t.Fatalf("/survived = %q", p.files["survived"])
	}
	puts := manifestPuts(t, "demo/"+owner, tag)
	if puts != 1 {
		t.Errorf("the registry took %d manifest PUTs of the tag, want 1", puts)
	}
	rep.add("faults injected", "1 (registry stopped during the solve's push)")
	rep.add("stop to build finished", time.Since(stopped))
	rep.add("Build activity attempts", attempts(builds))
	rep.add("Push activity attempts", attempts(pushes))
	rep.add("manifest PUTs of the tag (registry log)", puts)
}
