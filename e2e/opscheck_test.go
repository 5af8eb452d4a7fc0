//go:build opscheck

package e2e

// The ops check (make ops-check, build tag opscheck) runs every command of the README's
// "Operating builds with the temporal CLI" against the shared stack, a smart-HTTP Git server
// and a worker binary of its own, so the documented commands keep working. It also scrapes
// the worker's /metrics and /readyz after real builds.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/slipway-dev/slipway/build"
	"github.com/slipway-dev/slipway/devstack"
	"github.com/slipway-dev/slipway/internal/testing/gitserver"
)

// ops is the stack the commands run against.
type ops struct {
	t        *testing.T
	temporal string // the temporal CLI
	env      []string
	tc       client.Client
}

// with is o reporting to t (a subtest's): a failed wait ends that subtest, not its parent.
func (o *ops) with(t *testing.T) *ops {
	c := *o
	c.t = t
	return &c
}

// cli runs the temporal CLI against the stack and returns its output, failing t when it fails.
func (o *ops) cli(args ...string) string {
	o.t.Helper()
	out, err := o.try(args...)
	if err != nil {
		o.t.Fatalf("temporal %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func (o *ops) try(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, o.temporal, args...)
	cmd.Env = o.env
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// waitStatus waits until the latest run of id has status want.
func (o *ops) waitStatus(id string, want enumspb.WorkflowExecutionStatus, within time.Duration) {
	o.t.Helper()
	var last enumspb.WorkflowExecutionStatus
	if err := devstack.Poll(o.t.Context(), 250*time.Millisecond, within, func() (bool, error) {
		ctx, cancel := context.WithTimeout(o.t.Context(), 10*time.Second)
		defer cancel()
		if d, err := o.tc.DescribeWorkflow(ctx, id, ""); err == nil {
			last = d.Status
		}
		return last == want, nil
	}); err != nil {
		o.t.Fatalf("%s is %s, want %s: %v", id, last, want, err)
	}
}

// waitStep waits until the status query of id names step.
func (o *ops) waitStep(id, step string, within time.Duration) {
	o.t.Helper()
	var st build.Status
	if err := devstack.Poll(o.t.Context(), 250*time.Millisecond, within, func() (bool, error) {
		ctx, cancel := context.WithTimeout(o.t.Context(), 10*time.Second)
		defer cancel()
		v, err := o.tc.QueryWorkflow(ctx, id, "", build.StatusQuery)
		return err == nil && v.Get(&st) == nil && st.Step == step, nil
	}); err != nil {
		o.t.Fatalf("%s is at step %q, want %q: %v", id, st.Step, step, err)
	}
}

// waitListed waits until visibility lists exactly want for query (it lags a moment behind).
func (o *ops) waitListed(query string, want ...string) string {
	o.t.Helper()
	var out string
	var n int
	if err := devstack.Poll(o.t.Context(), 300*time.Millisecond, 30*time.Second, func() (bool, error) {
		out = o.cli("workflow", "list", "--query", query)
		n = strings.Count(out, "workflow_docker_builder")
		ok := n == len(want)
		for _, id := range want {
			ok = ok && strings.Contains(out, id)
		}
		return ok, nil
	}); err != nil {
		o.t.Fatalf("temporal workflow list --query %q lists %d builds, want %v: %v\n%s", query, n, want, err, out)
	}
	return out
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// buildInput is the JSON the README's `temporal workflow start` gives.
func buildInput(repo, branch, cloneURL, registry string) string {
	b, _ := json.Marshal(map[string]any{
		"namespace": "ops", "repository": repo, "rule_id": "r-ops",
		"source": map[string]any{"provider": "github", "owner": "octo", "repository": "hello", "clone_url": cloneURL},
		"ref":    map[string]any{"type": "branch", "name": branch}, "commit": "",
		"dockerfile_path": "", "context_path": "", "tag_template": "{branch}-{short_commit}",
		"image": registry + "/ops/" + repo, "trigger": "manual",
	})
	return string(b)
}

func TestTemporalCLIOperations(t *testing.T) {
	git := gitserver.Start(t)
	repo := git.NewRepo(t, "octo", "hello")
	repo.Commit("main", map[string]string{"Dockerfile": "FROM busybox\nRUN echo built > /built\n"})
	repo.Commit("broken", map[string]string{"Dockerfile": "FROM busybox\nRUN echo broken && exit 3\n"})
	repo.Commit("slow", map[string]string{"Dockerfile": "FROM busybox\nRUN sleep 120\n"})

	metricsAddr, err := devstack.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	w := startWorker(t, "SLIPWAY_GITHUB_URL="+git.URL, "SLIPWAY_MAX_CONCURRENT_BUILDS=3",
		"SLIPWAY_WORKER_METRICS_ADDR="+metricsAddr)
	t.Cleanup(func() {
		w.stop()
		if t.Failed() {
			t.Logf("worker log:\n%s", w.Tail(200))
		}
	})
	stack := env.stack
	o := &ops{t: t, temporal: filepath.Join(env.tools, "temporal"), tc: env.temporal,
		env: append(os.Environ(), "TEMPORAL_ADDRESS="+stack.TemporalAddress, "TEMPORAL_NAMESPACE=default")}

	// Builds under a repository name of this run, so lists see only them.
	app := fmt.Sprintf("app%d", time.Now().UnixNano()%1e9)
	start := func(id, branch string) {
		t.Helper()
		out := o.cli("workflow", "start", "--type", build.WorkflowName, "--task-queue", build.DefaultTaskQueue,
			"--workflow-id", id, "--input", buildInput(app, branch, repo.CloneURL, stack.Registry))
		if !strings.Contains(out, id) {
			t.Fatalf("workflow start answered:\n%s", out)
		}
	}
	okID, failID, cancelID, termID := app+"-ok", app+"-broken", app+"-cancel", app+"-term"
	start(okID, "main")
	start(failID, "broken")
	o.waitStatus(okID, enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED, 3*time.Minute)
	o.waitStatus(failID, enumspb.WORKFLOW_EXECUTION_STATUS_FAILED, 3*time.Minute)

	t.Run("list by repository", func(t *testing.T) {
		o := o.with(t)
		o.waitListed(fmt.Sprintf("SlipwayRepository='%s'", app), okID, failID)
	})
	t.Run("list by repository and status", func(t *testing.T) {
		o := o.with(t)
		o.waitListed(fmt.Sprintf("SlipwayRepository='%s' AND ExecutionStatus='Failed'", app), failID)
		o.waitListed(fmt.Sprintf("SlipwayRepository='%s' AND ExecutionStatus='Completed'", app), okID)
	})
	t.Run("list by branch and trigger, count", func(t *testing.T) {
		o := o.with(t)
		o.waitListed(fmt.Sprintf("SlipwayRepository='%s' AND GitRef='main' AND BuildTrigger='manual'", app), okID)
		out := o.cli("workflow", "count", "--query", fmt.Sprintf("SlipwayRepository='%s'", app))
		if !strings.Contains(out, "2") {
			t.Errorf("workflow count answered %q, want 2", out)
		}
	})
	t.Run("show history, describe, query status", func(t *testing.T) {
		o := o.with(t)
		out := o.cli("workflow", "show", "--workflow-id", okID)
		for _, want := range []string{"WorkflowExecutionStarted", "ActivityTaskScheduled", "WorkflowExecutionCompleted"} {
			if !strings.Contains(out, want) {
				t.Errorf("workflow show lacks %s:\n%s", want, out)
			}
		}
		out = o.cli("workflow", "describe", "--workflow-id", okID)
		if !strings.Contains(strings.ToLower(out), "completed") || !strings.Contains(out, "SlipwayRepository") {
			t.Errorf("workflow describe:\n%s", out)
		}
		out = o.cli("workflow", "query", "--workflow-id", okID, "--type", build.StatusQuery)
		if !strings.Contains(out, `"done"`) {
			t.Errorf("status query:\n%s", out)
		}
		out = o.cli("workflow", "describe", "--workflow-id", failID)
		if !strings.Contains(out, "exit code: 3") && !strings.Contains(out, "exit 3") {
			t.Logf("describe of the failed build does not show the RUN's failure:\n%s", out)
		}
	})
	t.Run("cancel", func(t *testing.T) {
		o := o.with(t)
		start(cancelID, "slow")
		o.waitStep(cancelID, build.StepBuild, 2*time.Minute)
		o.cli("workflow", "cancel", "--workflow-id", cancelID)
		o.waitStatus(cancelID, enumspb.WORKFLOW_EXECUTION_STATUS_CANCELED, time.Minute)
	})
	t.Run("terminate", func(t *testing.T) {
		o := o.with(t)
		start(termID, "slow")
		o.waitStep(termID, build.StepBuild, 2*time.Minute)
		o.cli("workflow", "terminate", "--workflow-id", termID, "--reason", "ops check")
		o.waitStatus(termID, enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED, time.Minute)
	})
	t.Run("reset a failed build", func(t *testing.T) {
		o := o.with(t)
		// The fix lands on the branch; the reset run clones again and builds it, under the same
		// workflow id, input and search attributes. (A reset to the workflow task that scheduled
		// Build would run Build in the failed run's workspace, which went with its session.)
		fixed := repo.Commit("broken", map[string]string{"Dockerfile": "FROM busybox\nRUN echo fixed > /fixed\n"})
		o.cli("workflow", "reset", "--workflow-id", failID, "--type", "FirstWorkflowTask",
			"--reason", "rebuild after the Dockerfile fix")
		o.waitStatus(failID, enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED, 3*time.Minute)
		out := o.cli("workflow", "result", "--workflow-id", failID)
		if !strings.Contains(out, fixed) || !strings.Contains(out, "sha256:") {
			t.Errorf("workflow result of the reset build does not show commit %s and a digest:\n%s", fixed, out)
		}
		// Both runs stay in visibility: the failed one and the reset one.
		o.waitListed(fmt.Sprintf("SlipwayRepository='%s' AND WorkflowId='%s'", app, failID), failID, failID)
	})
	t.Run("worker metrics and readiness", func(t *testing.T) {
		if code, body := httpGet(t, "http://"+metricsAddr+"/readyz"); code != 200 {
			t.Errorf("worker /readyz = %d %s", code, body)
		}
		_, body := httpGet(t, "http://"+metricsAddr+"/metrics")
		for _, want := range []string{
			`slipway_build_step_seconds_count{outcome="ok",step="Build"}`,
			`slipway_build_step_seconds_count{outcome="error",step="Build"}`,
			`temporal_activity_execution_latency_seconds_bucket{activity_type="Build"`,
		} {
			if !strings.Contains(body, want) {
				t.Errorf("worker /metrics lacks %s", want)
			}
		}
	})
}
