package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/workflows"
)

// TestWorkerKilledMidBuild kills the worker with SIGKILL while a RUN step runs: the build
// starts over on a new worker, finishes, and its status shows the second host.
func TestWorkerKilledMidBuild(t *testing.T) {
	owner := "e2e-kill"
	srvRepo, _ := fixture(t, owner)
	head := srvRepo.Commit("main", map[string]string{"slowish/Dockerfile": "FROM busybox\nRUN sleep 4 && echo survived > /survived\n"})
	first := startWorker(t)
	in := baseInput(owner)
	in.DockerfilePath = "slowish/Dockerfile"
	in.TagTemplate = "{short_commit}"
	id := fmt.Sprintf("e2e-kill-%d", time.Now().UnixNano())
	run := startBuild(t, id, in)

	deadline := time.Now().Add(2 * time.Minute)
	for !strings.Contains(readLogQuiet(id, run.GetRunID()), "sleep 4") {
		if time.Now().After(deadline) {
			t.Fatalf("build never reached its RUN step; log:\n%s", readLogQuiet(id, run.GetRunID()))
		}
		time.Sleep(100 * time.Millisecond)
	}
	first.kill()
	killed := time.Now()
	second := startWorker(t)
	t.Cleanup(second.stop)

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var res workflows.BuildResult
	if err := run.Get(ctx, &res); err != nil {
		t.Fatalf("build did not survive its worker: %v\nlog:\n%s", err, readLogQuiet(id, run.GetRunID()))
	}
	t.Logf("finished %s after the kill", time.Since(killed).Round(time.Millisecond))
	if res.Commit != head {
		t.Fatalf("built %s, want %s", res.Commit, head)
	}
	p := pull(t, in.Image+":"+head[:7])
	if p.files["survived"] != "survived\n" {
		t.Fatalf("/survived = %q", p.files["survived"])
	}
	v, err := env.temporal.QueryWorkflow(ctx, id, "", workflows.StatusQuery)
	if err != nil {
		t.Fatal(err)
	}
	var st workflows.Status
	if err := v.Get(&st); err != nil {
		t.Fatal(err)
	}
	if st.HostAttempts != 2 {
		t.Fatalf("host attempts = %d, want 2: %+v", st.HostAttempts, st)
	}
	// The dead worker's workspace is swept by the new worker on this host.
	if left := buildWorkspaces(t); len(left) != 0 {
		t.Fatalf("workspaces left behind: %v", left)
	}
}
