//go:build chaos

package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	controlapi "github.com/moby/buildkit/api/services/control"
	bkclient "github.com/moby/buildkit/client"
	enumspb "go.temporal.io/api/enums/v1"

	"github.com/slipway-dev/slipway/build"
)

// slowFixture adds a Dockerfile whose RUN sleeps for secs and then writes /survived, unique to
// this test so that no cached layer skips the RUN; it returns the Dockerfile's path and the
// new head.
func slowFixture(t *testing.T, owner string, secs int) (dockerfile, head string) {
	t.Helper()
	repo, _ := fixture(t, owner)
	dockerfile = "chaos/Dockerfile"
	head = repo.Commit("main", map[string]string{dockerfile: fmt.Sprintf(
		"FROM busybox\nRUN sleep %d && echo %s-%d > /survived\n", secs, owner, time.Now().UnixNano())})
	return dockerfile, head
}

// manifestPuts counts the manifest uploads of repo:tag the registry accepted, from its log.
func manifestPuts(t *testing.T, repo, tag string) int {
	t.Helper()
	b, err := os.ReadFile(env.stack.LogDir() + "/registry.log")
	if err != nil {
		t.Fatal(err)
	}
	uri := "http.request.uri=/v2/" + repo + "/manifests/" + tag + " "
	n := 0
	for _, line := range strings.Split(string(b), "\n") {
		if strings.Contains(line, "http.request.method=PUT") && strings.Contains(line, uri) &&
			strings.Contains(line, "http.response.status=201") {
			n++
		}
	}
	return n
}

// TestChaosWorkerKilledMidRun kills the worker with SIGKILL while its build's RUN step runs and
// starts another: the build starts over on the new host, finishes, and pushes once.
func TestChaosWorkerKilledMidRun(t *testing.T) {
	rep := newReport(t, "Worker killed mid-RUN",
		"The worker is killed with SIGKILL while the build's `RUN sleep` runs; a new worker starts at once. The build must start over on the new host, finish, push its tag once, and its record must show the second host.")
	owner := "chaos-kill"
	dockerfile, head := slowFixture(t, owner, 6)
	g := startGateway(t)
	token := g.setupTeam(t, "kim", "kill", "app")
	rule := g.createRule(t, token, "kill", "app", map[string]any{
		"source":          map[string]string{"provider": "github", "owner": owner, "repository": "hello"},
		"dockerfile_path": dockerfile,
		"tag_template":    "{short_commit}",
	})
	first := startWorker(t)
	id := g.buildNow(t, token, "kill", "app", rule.ID, "main")
	runID := g.record(t, token, id).RunID

	waitLog(t, id, runID, "RUN sleep 6", 2*time.Minute)
	first.Kill()
	killed := time.Now()
	second := startWorker(t)
	t.Cleanup(second.stop)

	if s := waitClosed(t, id, 3*time.Minute); s != enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED {
		_, err := buildResult(t, id)
		t.Fatalf("build ended %s: %v\nlog:\n%s", s, err, readLogQuiet(id, runID))
	}
	recovered := time.Since(killed)
	rec := g.record(t, token, id)
	if rec.Status != "succeeded" || rec.Commit != head {
		t.Fatalf("record = %+v", rec)
	}
	secondHost := time.Time{}
	for _, st := range rec.Steps {
		if st.HostAttempt == 2 && secondHost.IsZero() {
			secondHost = st.StartedAt
		}
	}
	if secondHost.IsZero() {
		t.Fatalf("the record shows no step on a second host: %+v", rec.Steps)
	}
	tag := head[:7]
	p := pull(t, env.stack.Registry+"/kill/app:"+tag)
	if !strings.HasPrefix(p.files["survived"], owner+"-") {
		t.Fatalf("/survived = %q", p.files["survived"])
	}
	puts := manifestPuts(t, "kill/app", tag)
	if puts != 1 {
		t.Errorf("the registry took %d manifest PUTs of kill/app:%s, want 1", puts, tag)
	}
	pushes := ofType(activityRuns(t, id), "Push")
	if len(pushes) != 1 || pushes[0].Attempt != 1 {
		t.Errorf("push activities %+v, want one, first attempt", pushes)
	}
	if left := buildWorkspaces(t); len(left) != 0 {
		t.Errorf("workspaces left behind: %v", left)
	}
	rep.add("faults injected", "1 (SIGKILL of the worker during RUN)")
	rep.add("host attempts in the record", hostAttempts(rec.Steps))
	rep.add("kill to the second host's first step", secondHost.Sub(killed))
	rep.add("kill to build finished", recovered)
	rep.add("manifest PUTs of the tag (registry log)", puts)
	rep.add("push activities (history)", len(pushes))
	rep.note("The second host is taken only once the dead one's session heartbeat (10 s) and the running Build activity's heartbeat (15 s) have timed out, which is most of the time to recover.")
}

func hostAttempts(steps []build.StepStatus) int {
	n := 0
	for _, s := range steps {
		n = max(n, s.HostAttempt)
	}
	return n
}

// TestChaosTemporalRestart stops the Temporal dev server while a build runs and starts it
// again on the same SQLite file: the build finishes.
func TestChaosTemporalRestart(t *testing.T) {
	rep := newReport(t, "Temporal restarted mid-build",
		"The Temporal dev server is stopped while the build's `RUN sleep` runs and started again on the same SQLite file a few seconds later. The build must finish and push.")
	owner := "chaos-temporal"
	dockerfile, head := slowFixture(t, owner, 8)
	w := startWorker(t)
	t.Cleanup(w.stop)
	in := baseInput(owner)
	in.DockerfilePath = dockerfile
	in.TagTemplate = "{short_commit}"
	id := fmt.Sprintf("chaos-temporal-%d", time.Now().UnixNano())
	run := startBuild(t, id, in)

	waitLog(t, id, run.GetRunID(), "RUN sleep 8", 2*time.Minute)
	stopped := time.Now()
	if err := env.stack.StopTemporal(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := env.stack.StartTemporal(ctx); err != nil {
		t.Fatalf("starting temporal again: %v", err)
	}
	down := time.Since(stopped)

	if s := waitClosed(t, id, 4*time.Minute); s != enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED {
		_, err := buildResult(t, id)
		t.Fatalf("build ended %s: %v\nlog:\n%s", s, err, readLogQuiet(id, run.GetRunID()))
	}
	recovered := time.Since(stopped)
	res, err := buildResult(t, id)
	if err != nil || res.Commit != head {
		t.Fatalf("result %+v, %v", res, err)
	}
	p := pull(t, in.Image+":"+head[:7])
	if !strings.HasPrefix(p.files["survived"], owner+"-") {
		t.Fatalf("/survived = %q", p.files["survived"])
	}
	runs := activityRuns(t, id)
	st := buildStatus(t, id)
	rep.add("faults injected", "1 (Temporal stopped with SIGTERM, started again)")
	rep.add("Temporal away (stop, wait, start until healthy)", down)
	rep.add("stop to build finished", recovered)
	rep.add("host attempts", st.HostAttempts)
	rep.add("Build activity attempts", attempts(ofType(runs, "Build")))
	rep.add("Push activity attempts", attempts(ofType(runs, "Push")))
}

// attempts lists the attempt numbers of activity runs, such as "1" or "1, 2".
func attempts(runs []activityRun) string {
	var s []string
	for _, r := range runs {
		s = append(s, fmt.Sprint(r.Attempt))
	}
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

// TestChaosBuildkitdKilled kills buildkitd (and the RUN's container with it) mid-solve and
// starts it again a few seconds later: the build step retries and the build finishes.
func TestChaosBuildkitdKilled(t *testing.T) {
	rep := newReport(t, "buildkitd killed mid-solve",
		"buildkitd and its build containers are killed with SIGKILL while the build's `RUN sleep` runs, and buildkitd is started again 3 s later, as a supervisor would. The Build step must be retried (attempt > 1) and the build must finish.")
	owner := "chaos-buildkitd"
	dockerfile, head := slowFixture(t, owner, 6)
	w := startWorker(t)
	t.Cleanup(w.stop)
	in := baseInput(owner)
	in.DockerfilePath = dockerfile
	in.TagTemplate = "{short_commit}"
	id := fmt.Sprintf("chaos-buildkitd-%d", time.Now().UnixNano())
	run := startBuild(t, id, in)

	waitLog(t, id, run.GetRunID(), "RUN sleep 6", 2*time.Minute)
	killed := time.Now()
	if err := env.stack.KillBuildkitd(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := env.stack.StartBuildkitd(ctx); err != nil {
		t.Fatalf("starting buildkitd again: %v", err)
	}
	down := time.Since(killed)

	if s := waitClosed(t, id, 3*time.Minute); s != enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED {
		_, err := buildResult(t, id)
		t.Fatalf("build ended %s: %v\nlog:\n%s", s, err, readLogQuiet(id, run.GetRunID()))
	}
	recovered := time.Since(killed)
	builds := ofType(activityRuns(t, id), "Build")
	if len(builds) != 1 || builds[0].Attempt < 2 {
		t.Fatalf("Build activities %+v, want one retried at least once", builds)
	}
	p := pull(t, in.Image+":"+head[:7])
	if !strings.HasPrefix(p.files["survived"], owner+"-") {
		t.Fatalf("/survived = %q", p.files["survived"])
	}
	rep.add("faults injected", "1 (SIGKILL of buildkitd's process group)")
	rep.add("buildkitd away (kill, wait, start until it lists a worker)", down)
	rep.add("kill to build finished", recovered)
	rep.add("Build activity attempts", builds[0].Attempt)
	rep.add("failure the retry recovered from", firstLine(builds[0].LastFailure))
}

// TestChaosRegistryDownDuringPush stops the registry before the push and starts it again once
// a push attempt has failed: the push is retried without building again.
func TestChaosRegistryDownDuringPush(t *testing.T) {
	rep := newReport(t, "Registry down during push",
		"The registry is stopped while the build runs (after the base image is pulled), so the push finds it down; it is started again once a push attempt has failed. The push must be retried without a rebuild (Build ran once, Push attempts > 1) and the tag must be pushed once.")
	owner := "chaos-registry"
	dockerfile, head := slowFixture(t, owner, 3)
	w := startWorker(t)
	t.Cleanup(w.stop)
	in := baseInput(owner)
	in.DockerfilePath = dockerfile
	in.TagTemplate = "{short_commit}"
	id := fmt.Sprintf("chaos-registry-%d", time.Now().UnixNano())
	run := startBuild(t, id, in)

	waitLog(t, id, run.GetRunID(), "RUN sleep 3", 2*time.Minute)
	if err := env.stack.StopRegistry(); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	waitLog(t, id, run.GetRunID(), "==> push failed", 2*time.Minute)
	firstFailure := time.Since(stopped)
	time.Sleep(2 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := env.stack.StartRegistry(ctx); err != nil {
		t.Fatalf("starting the registry again: %v", err)
	}
	down := time.Since(stopped)

	if s := waitClosed(t, id, 3*time.Minute); s != enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED {
		_, err := buildResult(t, id)
		t.Fatalf("build ended %s: %v\nlog:\n%s", s, err, readLogQuiet(id, run.GetRunID()))
	}
	recovered := time.Since(stopped)
	runs := activityRuns(t, id)
	builds, pushes := ofType(runs, "Build"), ofType(runs, "Push")
	if len(builds) != 1 || builds[0].Attempt != 1 {
		t.Errorf("Build activities %+v, want one, first attempt: the push retry rebuilt", builds)
	}
	if len(pushes) != 1 || pushes[0].Attempt < 2 {
		t.Errorf("Push activities %+v, want one retried at least once", pushes)
	}
	logText := readLogQuiet(id, run.GetRunID())
	if n := strings.Count(logText, "==> build "); n != 1 {
		t.Errorf("the log shows %d builds, want 1:\n%s", n, logText)
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
	rep.add("faults injected", "1 (registry stopped for the push)")
	rep.add("registry stop to the first failed push", firstFailure)
	rep.add("registry away", down)
	rep.add("stop to build finished", recovered)
	rep.add("Build activity attempts", attempts(builds))
	rep.add("Push activity attempts", attempts(pushes))
	rep.add("failed push attempts in the build log", strings.Count(logText, "==> push failed"))
	rep.add("manifest PUTs of the tag (registry log)", puts)
}

// TestChaosBuildTimeout gives a hanging build (RUN sleep 600) a 20 s timeout through its rule:
// it ends as timed_out, and leaves nothing running in BuildKit and no workspace.
func TestChaosBuildTimeout(t *testing.T) {
	rep := newReport(t, "Hanging build ends at its timeout",
		"A rule with `timeout: 20s` builds a Dockerfile whose `RUN sleep 600` never ends. The record must say `timed_out`, and neither a `sleep 600` process, an active BuildKit solve nor a workspace may remain.")
	owner := "chaos-timeout"
	repo, _ := fixture(t, owner)
	nonce := time.Now().UnixNano()
	repo.Commit("main", map[string]string{"hang/Dockerfile": fmt.Sprintf("FROM busybox\nRUN echo %d && sleep 600\n", nonce)})
	g := startGateway(t)
	token := g.setupTeam(t, "tim", "hang", "app")
	rule := g.createRule(t, token, "hang", "app", map[string]any{
		"source":          map[string]string{"provider": "github", "owner": owner, "repository": "hello"},
		"dockerfile_path": "hang/Dockerfile",
		"timeout":         "20s",
	})
	w := startWorker(t)
	t.Cleanup(w.stop)
	id := g.buildNow(t, token, "hang", "app", rule.ID, "main")
	rec := g.record(t, token, id)
	started := time.Now()
	waitLog(t, id, rec.RunID, "sleep 600", 2*time.Minute)
	if out, _ := exec.Command("pgrep", "-f", "sleep 600").Output(); len(strings.TrimSpace(string(out))) == 0 {
		t.Fatal("no sleep 600 process while the build hangs: the checks below would prove nothing")
	}
	if n := activeSolves(t); n == 0 {
		t.Fatal("no active BuildKit solve while the build hangs: the checks below would prove nothing")
	}

	waitClosed(t, id, 2*time.Minute)
	closed := time.Since(started)
	rec = g.record(t, token, id)
	if rec.Status != "timed_out" || !strings.Contains(rec.Error, "timeout of 20s") {
		t.Fatalf("record status %q error %q, want timed_out naming the 20s timeout", rec.Status, rec.Error)
	}
	var gone time.Duration
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		out, _ := exec.Command("pgrep", "-f", "sleep 600").Output()
		if len(strings.TrimSpace(string(out))) == 0 && activeSolves(t) == 0 {
			gone = time.Since(started)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the timeout: sleep 600 pids %q, %d active solves", out, activeSolves(t))
		}
	}
	if left := buildWorkspaces(t); len(left) != 0 {
		t.Fatalf("workspaces left behind: %v", left)
	}
	rep.add("timeout", "20s")
	rep.add("record status", rec.Status)
	rep.add("record error", rec.Error)
	rep.add("build start (as the test saw it) to record closed", closed)
	rep.add("build start to no sleep process and no active solve", gone)
	rep.add("workspaces left", 0)
}

// activeSolves counts the builds buildkitd is running.
func activeSolves(t *testing.T) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := bkclient.New(ctx, env.stack.BuildkitAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	stream, err := c.ControlClient().ListenBuildHistory(ctx, &controlapi.BuildHistoryRequest{ActiveOnly: true, EarlyExit: true})
	if err != nil {
		t.Fatalf("listing buildkitd's builds: %v", err)
	}
	n := 0
	for {
		ev, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return n
		}
		if err != nil {
			t.Fatalf("listing buildkitd's builds: %v", err)
		}
		if ev.GetRecord() != nil && ev.GetRecord().GetCompletedAt() == nil {
			n++
		}
	}
}

// TestChaosQueuedBuilds queues 20 builds at once on one worker that runs two at a time: all
// finish, and no more than two ever run at once.
func TestChaosQueuedBuilds(t *testing.T) {
	const n, limit = 20, 2
	rep := newReport(t, "20 builds queued on a worker that runs 2",
		fmt.Sprintf("%d builds are started at once; one worker runs with `SLIPWAY_MAX_CONCURRENT_BUILDS=%d`. All must finish, and the Build activities' start and end times in history must never show more than %d at once.", n, limit, limit))
	owner := "chaos-queue"
	repo, _ := fixture(t, owner)
	repo.Commit("main", map[string]string{"queue/Dockerfile": fmt.Sprintf(
		"FROM busybox\nARG N\nRUN sleep 1 && echo \"%d $N\" > /n\n", time.Now().UnixNano())})
	w := startWorker(t, fmt.Sprintf("SLIPWAY_MAX_CONCURRENT_BUILDS=%d", limit))
	t.Cleanup(w.stop)

	queued := time.Now()
	ids := make([]string, n)
	for i := range ids {
		in := baseInput(owner)
		in.DockerfilePath = "queue/Dockerfile"
		in.TagTemplate = fmt.Sprintf("b%02d", i)
		in.BuildArgs = map[string]string{"N": fmt.Sprint(i)}
		ids[i] = fmt.Sprintf("chaos-queue-%d-%d", i, time.Now().UnixNano())
		startBuild(t, ids[i], in)
	}
	var builds, sessions [][2]time.Time
	for i, id := range ids {
		if s := waitClosed(t, id, 8*time.Minute); s != enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED {
			_, err := buildResult(t, id)
			t.Fatalf("build %d ended %s: %v", i, s, err)
		}
		for _, r := range ofType(activityRuns(t, id), "Build") {
			builds = append(builds, [2]time.Time{r.Started, r.Ended})
		}
		// From the clone's start to the push's end: the part of a build that holds a slot.
		st := buildStatus(t, id)
		if len(st.Steps) == 0 || st.Steps[len(st.Steps)-1].EndedAt == nil {
			t.Fatalf("build %d status %+v", i, st)
		}
		sessions = append(sessions, [2]time.Time{st.Steps[0].StartedAt, *st.Steps[len(st.Steps)-1].EndedAt})
	}
	all := time.Since(queued)
	for i := range ids {
		p := pull(t, fmt.Sprintf("%s/demo/%s:b%02d", env.stack.Registry, owner, i))
		if !strings.HasSuffix(p.files["n"], fmt.Sprintf(" %d\n", i)) {
			t.Errorf("build %d made /n = %q", i, p.files["n"])
		}
	}
	mostBuilds, mostSessions := maxOverlap(builds), maxOverlap(sessions)
	if mostBuilds > limit || mostSessions > limit {
		t.Errorf("up to %d Build activities and %d builds ran at once, want at most %d", mostBuilds, mostSessions, limit)
	}
	if mostSessions < limit {
		t.Errorf("never more than %d build ran at once: the worker does not use its %d slots", mostSessions, limit)
	}
	rep.add("builds queued / finished", fmt.Sprintf("%d / %d", n, len(sessions)))
	rep.add("most Build activities at once (history)", mostBuilds)
	rep.add("most builds at once, clone start to push end (status query)", mostSessions)
	rep.add("queue to the last build finished", all)
}
