package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"

	"github.com/slipway-dev/slipway/build"
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
	first.Kill()
	killed := time.Now()
	second := startWorker(t)
	t.Cleanup(second.stop)

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var res build.Result
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
	v, err := env.temporal.QueryWorkflow(ctx, id, "", build.StatusQuery)
	if err != nil {
		t.Fatal(err)
	}
	var st build.Status
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

// TestTwoWorkersOneKilled runs two workers on the build queue, as a deployment with several
// worker hosts does, and SIGKILLs the one whose session holds a build mid-RUN: the other
// worker, already polling, finishes the build, and the dead worker's workspace is swept.
func TestTwoWorkersOneKilled(t *testing.T) {
	owner := "e2e-two-workers"
	srvRepo, _ := fixture(t, owner)
	head := srvRepo.Commit("main", map[string]string{"slowish/Dockerfile": "FROM busybox\nRUN sleep 4 && echo second > /survived\n"})
	workers := map[int]*worker{}
	for range 2 {
		w := startWorker(t)
		workers[w.Pid()] = w
	}
	t.Cleanup(func() {
		for _, w := range workers {
			w.stop()
		}
	})
	in := baseInput(owner)
	in.DockerfilePath = "slowish/Dockerfile"
	in.TagTemplate = "{short_commit}"
	id := fmt.Sprintf("e2e-two-workers-%d", time.Now().UnixNano())
	run := startBuild(t, id, in)

	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	var holder int
	deadline := time.Now().Add(2 * time.Minute)
	for holder == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no worker reached the RUN step; log:\n%s", readLogQuiet(id, run.GetRunID()))
		}
		time.Sleep(100 * time.Millisecond)
		if !strings.Contains(readLogQuiet(id, run.GetRunID()), "sleep 4") {
			continue
		}
		holder = buildHolder(ctx, t, id)
	}
	dead, ok := workers[holder]
	if !ok {
		t.Fatalf("the Build activity runs on pid %d, which is neither worker %v", holder, workers)
	}
	deadID := dead.id(t)
	dead.Kill()
	delete(workers, holder)
	var survivor int
	for pid := range workers {
		survivor = pid
	}
	killed := time.Now()

	var res build.Result
	if err := run.Get(ctx, &res); err != nil {
		t.Fatalf("build did not survive its worker: %v\nlog:\n%s", err, readLogQuiet(id, run.GetRunID()))
	}
	t.Logf("worker %d killed mid-RUN; worker %d finished the build %s later", holder, survivor, time.Since(killed).Round(time.Millisecond))
	if res.Commit != head {
		t.Fatalf("built %s, want %s", res.Commit, head)
	}
	if p := pull(t, in.Image+":"+head[:7]); p.files["survived"] != "second\n" {
		t.Fatalf("/survived = %q", p.files["survived"])
	}
	// The push after the kill came from the survivor: its identity is on the last Push.
	if got := lastActivityWorker(ctx, t, id, "Push"); got != survivor {
		t.Fatalf("Push ran on pid %d, want the surviving worker %d", got, survivor)
	}
	// The survivor sweeps the dead worker's folder within its sweep interval (30 s).
	deadDir := filepath.Join(env.home, "workspaces", "worker-"+deadID)
	for deadline := time.Now().Add(90 * time.Second); ; {
		if _, err := os.Stat(deadDir); errors.Is(err, os.ErrNotExist) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the dead worker's workspaces are still in %s", deadDir)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// buildHolder is the pid of the worker running the build's Build activity, from the worker
// identity Temporal records for it ("PID@HOST@..."), or 0 while none holds it.
func buildHolder(ctx context.Context, t *testing.T, id string) int {
	t.Helper()
	desc, err := env.temporal.DescribeWorkflow(ctx, id, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range desc.RawResponse.GetPendingActivities() {
		if a.GetActivityType().GetName() == "Build" && a.GetLastWorkerIdentity() != "" {
			return identityPID(t, a.GetLastWorkerIdentity())
		}
	}
	return 0
}

// lastActivityWorker is the pid of the worker that last started activity name, from the
// execution's history.
func lastActivityWorker(ctx context.Context, t *testing.T, id, name string) int {
	t.Helper()
	scheduled := map[int64]string{}
	pid := 0
	iter := env.temporal.GetWorkflowHistory(ctx, id, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for iter.HasNext() {
		ev, err := iter.Next()
		if err != nil {
			t.Fatal(err)
		}
		if a := ev.GetActivityTaskScheduledEventAttributes(); a != nil {
			scheduled[ev.GetEventId()] = a.GetActivityType().GetName()
		}
		if a := ev.GetActivityTaskStartedEventAttributes(); a != nil && scheduled[a.GetScheduledEventId()] == name {
			pid = identityPID(t, a.GetIdentity())
		}
	}
	if pid == 0 {
		t.Fatalf("no %s activity started in %s", name, id)
	}
	return pid
}

func identityPID(t *testing.T, identity string) int {
	t.Helper()
	before, _, _ := strings.Cut(identity, "@")
	pid, err := strconv.Atoi(before)
	if err != nil {
		t.Fatalf("worker identity %q does not start with a pid", identity)
	}
	return pid
}
