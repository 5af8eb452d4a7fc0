package e2e

import (
	"context"
	"net/http"
	"os"
	"reflect"
	"sort"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/slipway-dev/slipway/activities"
	"github.com/slipway-dev/slipway/devstack"
	"github.com/slipway-dev/slipway/retention"
)

// TestRetention pushes tags by real builds (a push of main tagging latest, a semver release)
// and straight to the registry (older images), sets a policy, dry-runs it, runs the
// repository's Schedule now, and checks the run deleted exactly the dry run's list while the
// kept tags (latest, the semver tags, a tag on a semver tag's image, the newest N, the cache)
// still pull. Then a build whose execution Temporal deleted loses its log to the worker's
// sweeper, while an old log of a run Temporal still has stays.
func TestRetention(t *testing.T) {
	const queue = "retention-e2e" // this test's own: no other test's worker reads its database
	g := startGateway(t, "SLIPWAY_TASK_QUEUE="+queue)
	w := startWorker(t, "SLIPWAY_DATABASE_URL="+g.db, "SLIPWAY_TASK_QUEUE="+queue, "SLIPWAY_LOG_SWEEP_EVERY=2s")
	t.Cleanup(w.stop)
	owner := "e2e-retention"
	_, head := fixture(t, owner)
	ns := "ret"
	base := "/api/v1/namespaces/" + ns + "/repositories/app"
	if code := g.call(t, "POST", "/api/v1/namespaces", g.admin, map[string]string{"name": ns}, nil); code != 201 {
		t.Fatalf("create namespace: %d", code)
	}
	if code := g.call(t, "POST", "/api/v1/namespaces/"+ns+"/repositories", g.admin, map[string]string{"name": "app"}, nil); code != 201 {
		t.Fatalf("create repository: %d", code)
	}
	var rule struct {
		ID      string `json:"id"`
		Webhook struct{ Secret string }
	}
	if code := g.call(t, "POST", base+"/build-rules", g.admin, map[string]any{
		"source":       map[string]string{"provider": "github", "owner": owner, "repository": "hello"},
		"triggers":     map[string]any{"branches": []string{"main"}, "tags": true},
		"tag_template": "{ref}-{short_commit}",
		"tag_latest":   "default_branch",
		"semver":       true,
	}, &rule); code != 201 {
		t.Fatalf("create rule: %d", code)
	}
	image := env.stack.Registry + "/" + ns + "/app"
	short := head[:7]

	// Real builds: main (main-SHORT and latest), then the tag v1.0.0 (v1.0.0-SHORT, 1.0.0,
	// 1.0 and 1).
	code, ids := deliverPush(t, g, rule.ID, rule.Webhook.Secret, owner, head, "ret-1")
	if code != http.StatusAccepted || len(ids) != 1 {
		t.Fatalf("push delivery: %d %v", code, ids)
	}
	mainBuild := waitOrder(t, g, ids[0])
	var started struct{ ID string }
	if code := g.call(t, "POST", base+"/build-rules/"+rule.ID+"/builds", g.admin, map[string]string{"tag": "v1.0.0"}, &started); code != http.StatusAccepted {
		t.Fatalf("build now of v1.0.0: %d", code)
	}
	tagBuild := waitOrder(t, g, started.ID)
	for _, b := range []orderRecord{mainBuild, tagBuild} {
		if b.Status != "succeeded" {
			t.Fatalf("build %s: %s %s", b.ID, b.Status, b.Error)
		}
	}

	// Older images, pushed as earlier builds would have: ages from their configs.
	repo, err := name.NewRepository(image)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	push := func(img v1.Image, tags ...string) {
		t.Helper()
		for _, tag := range tags {
			if err := remote.Write(repo.Tag(tag), img, operatorAuth()); err != nil {
				t.Fatalf("pushing %s: %v", tag, err)
			}
		}
	}
	aged := func(days int) v1.Image {
		t.Helper()
		img, err := random.Image(256, 1)
		if err != nil {
			t.Fatal(err)
		}
		if img, err = mutate.CreatedAt(img, v1.Time{Time: now.Add(-time.Duration(days) * 24 * time.Hour)}); err != nil {
			t.Fatal(err)
		}
		return img
	}
	push(aged(10), "main-old1")
	push(aged(9), "main-old2")
	push(aged(8), "main-old3")
	push(aged(7), "main-old4")
	push(aged(20), "main-older", "0.9") // 0.9 is a semver tag: main-older shares its image
	push(aged(30), "v0.9.0-old")

	policy := map[string]any{"rules": []map[string]any{
		{"tag_pattern": "main-*", "keep_last": 2},
		{"tag_pattern": "v*", "keep_younger_than": "24h"},
	}, "every": "24h"}
	if code := g.call(t, "PUT", base+"/retention", g.admin, policy, nil); code != 200 {
		t.Fatalf("setting the policy: %d", code)
	}
	var dry struct {
		Delete []retention.Decision `json:"delete"`
		Keep   []retention.Decision `json:"keep"`
	}
	if code := g.call(t, "POST", base+"/retention/dry-run", g.admin, nil, &dry); code != 200 {
		t.Fatalf("dry run: %d", code)
	}
	wantDelete := []string{"main-old1", "main-old2", "main-old3", "v0.9.0-old"}
	wantKeep := []string{"0.9", "1", "1.0", "1.0.0", "buildcache", "latest", "main-" + short, "main-old4", "main-older", "v1.0.0-" + short}
	if got := decisionNames(dry.Delete); !reflect.DeepEqual(got, wantDelete) {
		t.Fatalf("dry run deletes %v, want %v\n%+v", got, wantDelete, dry)
	}
	if got := decisionNames(dry.Keep); !reflect.DeepEqual(got, wantKeep) {
		t.Fatalf("dry run keeps %v, want %v\n%+v", got, wantKeep, dry)
	}
	for _, d := range append(dry.Delete, dry.Keep...) {
		if d.Reason == "" {
			t.Errorf("tag %s has no reason", d.Name)
		}
	}
	t.Logf("dry run: %+v", dry)

	// Run the Schedule now, as `temporal schedule trigger` does.
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	h := env.temporal.ScheduleClient().GetHandle(ctx, retention.ScheduleID(ns, "app"))
	if err := h.Trigger(ctx, client.ScheduleTriggerOptions{}); err != nil {
		t.Fatal(err)
	}
	var wfID, runID string
	err = devstack.Poll(ctx, 200*time.Millisecond, time.Minute, func() (bool, error) {
		d, err := h.Describe(ctx)
		if err != nil {
			return false, err
		}
		if n := len(d.Info.RecentActions); n > 0 {
			wfID, runID = d.Info.RecentActions[n-1].StartWorkflowResult.WorkflowID, d.Info.RecentActions[n-1].StartWorkflowResult.FirstExecutionRunID
			return true, nil
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("the schedule started nothing: %v", err)
	}
	var res activities.RetentionResult
	if err := env.temporal.GetWorkflow(ctx, wfID, runID).Get(ctx, &res); err != nil {
		t.Fatalf("retention run %s: %v", wfID, err)
	}
	if got := decisionNames(res.Deleted); !reflect.DeepEqual(got, wantDelete) || len(res.Skipped) != 0 {
		t.Fatalf("the run deleted %v (skipped %+v), want the dry run's %v", got, res.Skipped, wantDelete)
	}
	left := listTags(t, image)
	sort.Strings(left)
	if !reflect.DeepEqual(left, wantKeep) {
		t.Fatalf("tags left %v, want %v", left, wantKeep)
	}
	for _, tag := range wantKeep {
		if tag == "buildcache" {
			continue // a cache manifest, not an image
		}
		pull(t, image+":"+tag)
	}
	for _, tag := range wantDelete {
		if _, err := remote.Head(repo.Tag(tag), operatorAuth()); err == nil {
			t.Errorf("deleted tag %s still resolves", tag)
		}
	}

	// Logs go with their records: Temporal's retention deletes a closed execution; the
	// sweeper then removes its log. The logs are made to look older than the namespace's
	// retention (a day on the dev server, 30 days on the production shape), and the execution
	// is deleted as retention would.
	logs := logstoreAt()
	gone := logs.Path(mainBuild.ID, runOf(t, mainBuild.ID))
	stays := logs.Path(tagBuild.ID, runOf(t, tagBuild.ID))
	nsInfo, err := env.temporal.WorkflowService().DescribeNamespace(ctx, &workflowservice.DescribeNamespaceRequest{Namespace: "default"})
	if err != nil {
		t.Fatal(err)
	}
	old := now.Add(-nsInfo.GetConfig().GetWorkflowExecutionRetentionTtl().AsDuration() - time.Hour)
	for _, p := range []string{gone, stays} {
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatalf("the build's log: %v", err)
		}
	}
	if _, err := env.temporal.WorkflowService().DeleteWorkflowExecution(ctx, &workflowservice.DeleteWorkflowExecutionRequest{
		Namespace: "default", WorkflowExecution: &commonpb.WorkflowExecution{WorkflowId: mainBuild.ID, RunId: runOf(t, mainBuild.ID)}}); err != nil {
		t.Fatal(err)
	}
	err = devstack.Poll(ctx, 500*time.Millisecond, 2*time.Minute, func() (bool, error) {
		_, err := os.Stat(gone)
		return os.IsNotExist(err), nil
	})
	if err != nil {
		t.Fatalf("the log of the deleted build is still there: %v", err)
	}
	if _, err := os.Stat(stays); err != nil {
		t.Fatalf("the log of a build Temporal still has was removed: %v", err)
	}
	if code := g.call(t, "GET", "/api/v1/builds/"+tagBuild.ID+"/logs", g.admin, nil, nil); code != 200 {
		t.Errorf("the kept build's log answers %d", code)
	}
}

// runOf is the run id of build id's latest run.
func runOf(t *testing.T, id string) string {
	t.Helper()
	d, err := env.temporal.DescribeWorkflowExecution(context.Background(), id, "")
	if err != nil {
		t.Fatal(err)
	}
	return d.GetWorkflowExecutionInfo().GetExecution().GetRunId()
}

func decisionNames(ds []retention.Decision) []string {
	out := []string{}
	for _, d := range ds {
		out = append(out, d.Name)
	}
	sort.Strings(out)
	return out
}
