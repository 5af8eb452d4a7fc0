package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/converter"

	"github.com/slipway-dev/slipway/build"
	"github.com/slipway-dev/slipway/devstack"
	"github.com/slipway-dev/slipway/internal/testing/gitserver"
)

// waitEnded waits for build id to close and returns how it closed and when.
func waitEnded(t *testing.T, id string, timeout time.Duration) (enumspb.WorkflowExecutionStatus, time.Time, map[string]string) {
	t.Helper()
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(300 * time.Millisecond) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		d, err := env.temporal.DescribeWorkflowExecution(ctx, id, "")
		cancel()
		if err != nil {
			continue
		}
		info := d.GetWorkflowExecutionInfo()
		if info.GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
			continue
		}
		memo := map[string]string{}
		for k, p := range info.GetMemo().GetFields() {
			var s string
			if converter.GetDefaultDataConverter().FromPayload(p, &s) == nil {
				memo[k] = s
			}
		}
		return info.GetStatus(), info.GetCloseTime().AsTime(), memo
	}
	t.Fatalf("build %s still running after %s", id, timeout)
	return 0, time.Time{}, nil
}

// firstClone is when build id scheduled its clone step: when it stopped waiting for slots.
func firstClone(t *testing.T, id string) time.Time {
	t.Helper()
	it := env.temporal.GetWorkflowHistory(context.Background(), id, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		if a := ev.GetActivityTaskScheduledEventAttributes(); a != nil && a.GetActivityType().GetName() == "Clone" {
			return ev.GetEventTime().AsTime()
		}
	}
	t.Fatalf("build %s never cloned", id)
	return time.Time{}
}

// recordHistory writes the history of build id to $SLIPWAY_RECORD_HISTORIES/name.json when
// that is set, for workflows/testdata/replay.
func recordHistory(t *testing.T, id, name string) {
	dir := os.Getenv("SLIPWAY_RECORD_HISTORIES")
	if dir == "" {
		return
	}
	out, err := exec.Command(filepath.Join(env.tools, "temporal"), "workflow", "show",
		"--address", env.stack.TemporalAddress, "--workflow-id", id, "-o", "json").Output()
	if err != nil {
		t.Fatalf("temporal workflow show %s: %v", id, err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".json"), out, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestRunPoliciesAndSkipped runs a rule's builds under each run policy, and a push whose files
// the clone step reads from git, on the real stack.
func TestRunPoliciesAndSkipped(t *testing.T) {
	w := startWorker(t)
	t.Cleanup(w.stop)
	owner := "e2e-runs"
	srv := &gitserver.Server{Root: env.gitRoot, URL: env.gitURL}
	repo := srv.NewRepo(t, owner, "hello")
	first := repo.Commit("main", map[string]string{
		"Dockerfile": "FROM busybox\nRUN echo quick\n",
		// N differs per build, so no build of it is a cache hit and builds overlap for sure.
		"slow/Dockerfile": "FROM busybox\nARG N\nRUN sleep 4 && echo \"$N\"\n",
		"src/app.txt":     "app\n",
	})
	docs := repo.Commit("main", map[string]string{"docs/readme.md": "docs\n"})
	head := repo.Commit("main", map[string]string{"src/app.txt": "app 2\n"})
	stamp := time.Now().Format("150405")
	in := func(rule, policy, dockerfile, commit string) build.Input {
		b := baseInput(owner)
		b.RuleID, b.RunPolicy, b.DockerfilePath, b.Commit = rule, policy, dockerfile, commit
		b.TagTemplate = "{short_commit}-" + rule
		b.BuildArgs = map[string]string{"N": rule + "-" + commit + "-" + time.Now().Format(time.RFC3339Nano)}
		return b
	}

	t.Run("serial", func(t *testing.T) {
		rule := "r-serial-" + stamp
		b1, b2 := "runs-serial-1-"+stamp, "runs-serial-2-"+stamp
		startBuild(t, b1, in(rule, build.RunSerial, "slow/Dockerfile", first))
		time.Sleep(time.Second)
		startBuild(t, b2, in(rule, build.RunSerial, "slow/Dockerfile", head))
		s1, _, _ := waitEnded(t, b1, 3*time.Minute)
		s2, _, _ := waitEnded(t, b2, 3*time.Minute)
		if s1 != enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED || s2 != enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED {
			t.Fatalf("serial builds ended %s and %s", s1, s2)
		}
		// The first build gives its slot back once its push is done, with its session's end.
		if c2, end1 := firstClone(t, b2), pushDone(t, b1); c2.Before(end1) {
			t.Errorf("the second serial build cloned at %s, before the first's push ended at %s", c2, end1)
		}
		recordHistory(t, b2, "v1-serial-queued")
	})

	t.Run("parallel", func(t *testing.T) {
		rule := "r-parallel-" + stamp
		b1, b2 := "runs-parallel-1-"+stamp, "runs-parallel-2-"+stamp
		startBuild(t, b1, in(rule, build.RunParallel, "slow/Dockerfile", first))
		startBuild(t, b2, in(rule, "", "slow/Dockerfile", head))
		_, end1, _ := waitEnded(t, b1, 3*time.Minute)
		_, end2, _ := waitEnded(t, b2, 3*time.Minute)
		if c2, c1 := firstClone(t, b2), firstClone(t, b1); !c2.Before(end1) || !c1.Before(end2) {
			t.Errorf("parallel builds did not overlap: cloned at %s and %s, ended at %s and %s", c1, c2, end1, end2)
		}
	})

	t.Run("latest_only", func(t *testing.T) {
		rule := "r-latest-" + stamp
		old, newer := "runs-latest-1-"+stamp, "runs-latest-2-"+stamp
		startBuild(t, old, in(rule, build.RunLatestOnly, "slow/Dockerfile", first))
		firstCloneWait(t, old)
		startBuild(t, newer, in(rule, build.RunLatestOnly, "Dockerfile", head))
		s1, _, memo := waitEnded(t, old, 3*time.Minute)
		if s1 != enumspb.WORKFLOW_EXECUTION_STATUS_CANCELED || memo[build.MemoReason] != "superseded by build "+newer {
			t.Errorf("the older build ended %s with reason %q, want canceled, superseded by build %s", s1, memo[build.MemoReason], newer)
		}
		if s2, _, _ := waitEnded(t, newer, 3*time.Minute); s2 != enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED {
			t.Errorf("the newer build ended %s", s2)
		}
		recordHistory(t, old, "v1-latest-only-superseded")
	})

	t.Run("skipped", func(t *testing.T) {
		for _, tt := range []struct {
			name, commit, before string
			want                 string
		}{
			{"docs only", docs, first, build.OutcomeSkipped},
			{"src changed", head, docs, ""},
		} {
			id := "runs-paths-" + strings.ReplaceAll(tt.name, " ", "-") + "-" + stamp
			b := in("r-paths-"+stamp, "", "Dockerfile", tt.commit)
			b.Trigger, b.Before, b.Paths = build.TriggerPush, tt.before, &build.PathFilter{Include: []string{"src/**"}}
			startBuild(t, id, b)
			if s, _, _ := waitEnded(t, id, 3*time.Minute); s != enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED {
				t.Fatalf("%s: build ended %s", tt.name, s)
			}
			res, err := buildResultOf(t, id)
			if err != nil {
				t.Fatal(err)
			}
			if res.Status != tt.want || (tt.want == "" && res.Digest == "") {
				t.Errorf("%s: result %+v, want status %q", tt.name, res, tt.want)
			}
			if tt.want != "" {
				recordHistory(t, id, "v1-skipped")
			}
		}
	})
}

// firstCloneWait waits until build id has scheduled its clone step.
func firstCloneWait(t *testing.T, id string) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		it := env.temporal.GetWorkflowHistory(context.Background(), id, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		for it.HasNext() {
			ev, err := it.Next()
			if err != nil {
				break
			}
			if a := ev.GetActivityTaskScheduledEventAttributes(); a != nil && a.GetActivityType().GetName() == "Build" {
				return
			}
		}
	}
	t.Fatalf("build %s never reached its build step", id)
}

// buildResultOf reads the result of a closed build.
func buildResultOf(t *testing.T, id string) (build.Result, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var res build.Result
	err := env.temporal.GetWorkflow(ctx, id, "").Get(ctx, &res)
	return res, err
}

// TestRebuildAndReconcile rebuilds a build through the API, then pushes a commit whose
// delivery never comes: the rule's reconciliation builds it within one interval.
func TestRebuildAndReconcile(t *testing.T) {
	w := startWorker(t)
	t.Cleanup(w.stop)
	g := startGateway(t)
	owner := "e2e-reconcile"
	srv := &gitserver.Server{Root: env.gitRoot, URL: env.gitURL}
	repo := srv.NewRepo(t, owner, "hello")
	first := repo.Commit("main", map[string]string{"Dockerfile": "FROM busybox\nRUN echo reconciled\n"})
	if code := g.call(t, "POST", "/api/v1/namespaces", g.admin, map[string]string{"name": "recon"}, nil); code != 201 {
		t.Fatalf("create namespace: %d", code)
	}
	if code := g.call(t, "POST", "/api/v1/namespaces/recon/repositories", g.admin, map[string]string{"name": "app"}, nil); code != 201 {
		t.Fatalf("create repository: %d", code)
	}
	rules := "/api/v1/namespaces/recon/repositories/app/build-rules"
	var rule struct {
		ID string `json:"id"`
	}
	if code := g.call(t, "POST", rules, g.admin, map[string]any{
		"source":          map[string]any{"provider": "github", "owner": owner, "repository": "hello"},
		"triggers":        map[string]any{"branches": []string{"main"}},
		"tag_template":    "{short_commit}",
		"reconcile_every": "1m",
	}, &rule); code != 201 {
		t.Fatalf("create rule: %d", code)
	}

	var started struct {
		ID        string `json:"id"`
		RebuildOf string `json:"rebuild_of"`
	}
	if code := g.call(t, "POST", rules+"/"+rule.ID+"/builds", g.admin, map[string]string{"branch": "main"}, &started); code != 202 {
		t.Fatalf("build now: %d", code)
	}
	built := g.waitBuild(t, g.admin, started.ID)
	if built.Status != "succeeded" || built.Commit != first {
		t.Fatalf("build: %+v", built)
	}
	orig := started.ID
	if code := g.call(t, "POST", "/api/v1/builds/"+orig+"/rebuild", g.admin, nil, &started); code != 202 || started.RebuildOf != orig {
		t.Fatalf("rebuild: %d %+v", code, started)
	}
	again := g.waitBuild(t, g.admin, started.ID)
	if again.Status != "succeeded" || again.Commit != first || again.Digest == "" {
		t.Fatalf("rebuild: %+v", again)
	}

	// A push whose delivery is lost.
	second := repo.Commit("main", map[string]string{"b.txt": "b\n"})
	deadline := time.Now().Add(100 * time.Second)
	for {
		var list struct {
			Builds []record `json:"builds"`
		}
		g.call(t, "GET", "/api/v1/namespaces/recon/repositories/app/builds?rule="+rule.ID, g.admin, nil, &list)
		var found string
		for _, b := range list.Builds {
			if b.Trigger == build.TriggerReconcile {
				found = b.ID
			}
		}
		if found != "" {
			rec := g.waitBuild(t, g.admin, found)
			if rec.Status != "succeeded" || rec.Commit != second {
				t.Fatalf("reconciled build: %+v", rec)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no build with trigger reconcile within 100s of a push no delivery brought: %+v", list.Builds)
		}
		time.Sleep(2 * time.Second)
	}
	// Turning reconciliation off removes the rule's schedule.
	if code := g.call(t, "DELETE", rules+"/"+rule.ID, g.admin, nil, nil); code != 204 {
		t.Fatalf("delete rule: %d", code)
	}
	if _, err := env.temporal.ScheduleClient().GetHandle(context.Background(), "slipway-reconcile-"+rule.ID).Describe(context.Background()); err == nil {
		t.Error("the reconcile schedule outlived its rule")
	}
}

// TestPathFilterIncompletePayload delivers force pushes, whose payloads cannot say which
// files changed, to a rule with a path filter: the clone step reads the files from git and a
// push that changed only documentation ends skipped.
func TestPathFilterIncompletePayload(t *testing.T) {
	w := startWorker(t)
	t.Cleanup(w.stop)
	g := startGateway(t)
	owner := "e2e-paths"
	srv := &gitserver.Server{Root: env.gitRoot, URL: env.gitURL}
	repo := srv.NewRepo(t, owner, "hello")
	first := repo.Commit("main", map[string]string{"Dockerfile": "FROM busybox\nCOPY src /src\n", "src/app.txt": "1\n"})
	docs := repo.Commit("main", map[string]string{"docs/readme.md": "docs\n"})
	code := repo.Commit("main", map[string]string{"src/app.txt": "2\n"})
	if c := g.call(t, "POST", "/api/v1/namespaces", g.admin, map[string]string{"name": "paths"}, nil); c != 201 {
		t.Fatalf("create namespace: %d", c)
	}
	if c := g.call(t, "POST", "/api/v1/namespaces/paths/repositories", g.admin, map[string]string{"name": "app"}, nil); c != 201 {
		t.Fatalf("create repository: %d", c)
	}
	var rule struct {
		ID      string `json:"id"`
		Webhook struct {
			Secret string `json:"secret"`
		} `json:"webhook"`
	}
	if c := g.call(t, "POST", "/api/v1/namespaces/paths/repositories/app/build-rules", g.admin, map[string]any{
		"source":       map[string]any{"provider": "github", "owner": owner, "repository": "hello"},
		"triggers":     map[string]any{"branches": []string{"main"}, "paths": map[string]any{"include": []string{"src/**"}}},
		"tag_template": "{short_commit}",
	}, &rule); c != 201 {
		t.Fatalf("create rule: %d", c)
	}
	for i, tt := range []struct {
		name, before, after, want string
	}{
		{"docs only", first, docs, "skipped"},
		{"source changed", docs, code, "succeeded"},
	} {
		push := fixturePayload(t, "github/push_branch.json", func(m map[string]any) {
			m["ref"], m["before"], m["after"], m["forced"] = "refs/heads/main", tt.before, tt.after, true
			m["head_commit"].(map[string]any)["id"] = tt.after
			m["head_commit"].(map[string]any)["message"] = "rewrite"
			r := m["repository"].(map[string]any)
			r["name"] = "hello"
			r["owner"].(map[string]any)["login"] = owner
		})
		headers := map[string]string{"X-GitHub-Event": "push", "X-GitHub-Delivery": "paths-" + stampOf(i),
			"X-Hub-Signature-256": devstack.SignGitHub(rule.Webhook.Secret, push)}
		c, builds, _ := g.deliver(t, "/webhooks/github/"+rule.ID, push, headers)
		if c != 202 || len(builds) != 1 {
			t.Fatalf("%s: delivery answered %d %v, want 202 and a build the clone decides", tt.name, c, builds)
		}
		rec := g.waitBuild(t, g.admin, builds[0])
		if rec.Status != tt.want || rec.Commit != tt.after {
			t.Errorf("%s: build %+v, want %s at %s", tt.name, rec, tt.want, tt.after)
		}
	}
}

func stampOf(i int) string { return time.Now().Format("150405.000") + "-" + string(rune('a'+i)) }
