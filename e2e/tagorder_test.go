package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"

	"github.com/slipway-dev/slipway/activities"
	"github.com/slipway-dev/slipway/build"
	"github.com/slipway-dev/slipway/devstack"
	"github.com/slipway-dev/slipway/internal/testing/gitserver"
)

// orderRecord is a build record with the fields of the tag-order checks.
type orderRecord struct {
	record
	Reason   string          `json:"reason"`
	HeldTags []build.HeldTag `json:"held_tags"`
}

// orderRule makes a namespace, repository and GitHub rule on owner/hello building branch
// main with template, and returns the rule id, its webhook secret and the image.
func orderRule(t *testing.T, g *gateway, ns, owner, dockerfile, template string) (ruleID, secret, image string) {
	t.Helper()
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
	code := g.call(t, "POST", "/api/v1/namespaces/"+ns+"/repositories/app/build-rules", g.admin, map[string]any{
		"source":          map[string]string{"provider": "github", "owner": owner, "repository": "hello"},
		"triggers":        map[string]any{"branches": []string{"main"}},
		"tag_template":    template,
		"dockerfile_path": dockerfile,
	}, &rule)
	if code != 201 {
		t.Fatalf("create rule: %d", code)
	}
	return rule.ID, rule.Webhook.Secret, env.stack.Registry + "/" + ns + "/app"
}

// deliverPush delivers GitHub's push of commit to main, as GitHub would, and returns the
// answer's status and build ids.
func deliverPush(t *testing.T, g *gateway, ruleID, secret, owner, commit, delivery string) (int, []string) {
	t.Helper()
	body := fixturePayload(t, "github/push_branch.json", func(m map[string]any) {
		m["after"], m["ref"] = commit, "refs/heads/main"
		m["head_commit"].(map[string]any)["id"] = commit
		r := m["repository"].(map[string]any)
		r["name"] = "hello"
		r["owner"].(map[string]any)["login"] = owner
	})
	code, builds, _ := g.deliver(t, "/webhooks/github/"+ruleID, body, map[string]string{
		"X-GitHub-Event": "push", "X-GitHub-Delivery": delivery, "X-Hub-Signature-256": devstack.SignGitHub(secret, body)})
	return code, builds
}

// waitOrder polls a build record until it leaves running (and queued).
func waitOrder(t *testing.T, g *gateway, id string) orderRecord {
	t.Helper()
	deadline := time.Now().Add(4 * time.Minute)
	for {
		var rec orderRecord
		code := g.call(t, http.MethodGet, "/api/v1/builds/"+id, g.admin, nil, &rec)
		if code == http.StatusOK && rec.Status != "running" && rec.Status != "queued" {
			return rec
		}
		if time.Now().After(deadline) {
			t.Fatalf("build %s still %q (%d)", id, rec.Status, code)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// revisionOf reads the commit image:tag records in its org.opencontainers.image.revision label.
func revisionOf(t *testing.T, ref string) string {
	t.Helper()
	cf, err := pull(t, ref).img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	return cf.Config.Labels[activities.RevisionLabel]
}

// TestTagsNeverMoveBackwards pushes commit A, whose RUN step sleeps, then its child B while A
// builds: B's build ends first and moves main and latest to B; A's ends later and must leave
// them on B (held back, with the reason in its record), while still pushing its own
// {short_commit} tag. Then Temporal forgets A's build (its execution is deleted, as retention
// would) and A's event is delivered again: the gateway answers with A's build and starts
// nothing.
func TestTagsNeverMoveBackwards(t *testing.T) {
	w := startWorker(t)
	t.Cleanup(w.stop)
	g := startGateway(t)
	owner := "e2e-tagorder"
	repo, _ := fixture(t, owner)
	dockerfile := "order/Dockerfile"
	// Unique RUN text, so no cached layer skips the sleep.
	a := repo.Commit("main", map[string]string{dockerfile: fmt.Sprintf(
		"FROM busybox\nRUN sleep 25 && echo a-%d > /which\n", time.Now().UnixNano())})
	ruleID, secret, image := orderRule(t, g, "tagorder", owner, dockerfile, "{branch}, latest, {short_commit}")

	code, builds := deliverPush(t, g, ruleID, secret, owner, a, "d-a")
	if code != 202 || len(builds) != 1 {
		t.Fatalf("push of A: %d %v", code, builds)
	}
	idA := builds[0]
	// B is pushed once A's build runs its RUN step.
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(200 * time.Millisecond) {
		var rec orderRecord
		g.call(t, http.MethodGet, "/api/v1/builds/"+idA, g.admin, nil, &rec)
		if slices.ContainsFunc(rec.Steps, func(s struct {
			Name string `json:"name"`
		}) bool {
			return s.Name == "build"
		}) {
			break
		}
		if rec.Status != "" && rec.Status != "running" && rec.Status != "queued" || time.Now().After(deadline) {
			t.Fatalf("build of A never reached its build step: %+v", rec)
		}
	}
	b := repo.Commit("main", map[string]string{dockerfile: fmt.Sprintf(
		"FROM busybox\nRUN echo b-%d > /which\n", time.Now().UnixNano())})
	code, builds = deliverPush(t, g, ruleID, secret, owner, b, "d-b")
	if code != 202 || len(builds) != 1 {
		t.Fatalf("push of B: %d %v", code, builds)
	}
	idB := builds[0]

	recB := waitOrder(t, g, idB)
	if recB.Status != "succeeded" || len(recB.HeldTags) != 0 {
		t.Fatalf("record of B = %+v", recB)
	}
	// The sleep must still be running, or this test shows nothing about the order.
	var mid orderRecord
	g.call(t, http.MethodGet, "/api/v1/builds/"+idA, g.admin, nil, &mid)
	if mid.Status != "running" {
		t.Fatalf("A ended (%s) before B did: the sleep is too short for this machine", mid.Status)
	}
	recA := waitOrder(t, g, idA)
	t.Logf("A: tags %v, held %+v", recA.Tags, recA.HeldTags)
	if recA.Status != "succeeded" {
		t.Fatalf("record of A = %+v", recA)
	}
	held := map[string]string{}
	for _, h := range recA.HeldTags {
		held[h.Tag] = h.Reason
	}
	for _, tag := range []string{"main", "latest"} {
		if !strings.Contains(held[tag], "newer than "+a) {
			t.Errorf("A's record does not hold %s back as older: %+v", tag, recA.HeldTags)
		}
		if got := revisionOf(t, image+":"+tag); got != b {
			t.Errorf("%s carries %s, want B %s", tag, got, b)
		}
	}
	if !slices.Equal(recA.Tags, []string{a[:7]}) {
		t.Errorf("A's written tags = %v, want only its short commit %s", recA.Tags, a[:7])
	}
	if got := revisionOf(t, image+":"+a[:7]); got != a {
		t.Errorf("%s carries %s, want A", a[:7], got)
	}
	if !slices.Equal(recB.Tags, []string{"main", "latest", b[:7]}) {
		t.Errorf("B's written tags = %v", recB.Tags)
	}

	// Temporal forgets A's build, as it does after the namespace's retention.
	ctx := context.Background()
	if _, err := env.temporal.WorkflowService().DeleteWorkflowExecution(ctx, &workflowservice.DeleteWorkflowExecutionRequest{
		Namespace: "default", WorkflowExecution: &commonpb.WorkflowExecution{WorkflowId: idA},
	}); err != nil {
		t.Fatalf("deleting A's execution: %v", err)
	}
	gone := func() bool {
		_, err := env.temporal.DescribeWorkflow(ctx, idA, "")
		var nf *serviceerror.NotFound
		return errors.As(err, &nf)
	}
	for deadline := time.Now().Add(time.Minute); !gone(); time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("A's execution still there a minute after its deletion")
		}
	}
	code, builds = deliverPush(t, g, ruleID, secret, owner, a, "d-a-replayed")
	if code != 202 || !slices.Equal(builds, []string{idA}) {
		t.Fatalf("replayed delivery of A: %d %v, want 202 with %s", code, builds, idA)
	}
	time.Sleep(2 * time.Second)
	if !gone() {
		t.Fatal("the replayed delivery started a build of A again")
	}
	if got := revisionOf(t, image+":main"); got != b {
		t.Errorf("after the replay main carries %s, want B", got)
	}
}

// TestForcePushSupersedes pushes commit A to main, force-pushes main to an unrelated commit
// B, and only then delivers A's push event (as a delivery that arrives after the force push,
// or a build that waited for a slot): the build of A finds A no longer on main when it clones,
// and ends superseded with the reason, pushing nothing.
func TestForcePushSupersedes(t *testing.T) {
	w := startWorker(t)
	t.Cleanup(w.stop)
	g := startGateway(t)
	owner := "e2e-forcepush"
	repo, _ := fixture(t, owner)
	a := repo.Commit("main", map[string]string{"force/Dockerfile": "FROM busybox\nRUN echo a > /which\n"})
	b := forcePushOrphan(t, repo, "main", "FROM busybox\nRUN echo b > /which\n")
	ruleID, secret, image := orderRule(t, g, "forcepush", owner, "Dockerfile", "{branch}-{short_commit}")

	code, builds := deliverPush(t, g, ruleID, secret, owner, a, "d-force-a")
	if code != 202 || len(builds) != 1 {
		t.Fatalf("push of A: %d %v", code, builds)
	}
	rec := waitOrder(t, g, builds[0])
	t.Logf("record: status %s, reason %q", rec.Status, rec.Reason)
	if rec.Status != "superseded" || !strings.Contains(rec.Reason, a) || !strings.Contains(rec.Reason, "not on branch") || rec.Error != "" {
		t.Fatalf("record of A = %+v, want superseded with the reason", rec)
	}
	if len(rec.Tags) != 0 {
		t.Fatalf("superseded build wrote tags %v", rec.Tags)
	}
	var list struct{ Builds []orderRecord }
	g.call(t, "GET", "/api/v1/namespaces/forcepush/repositories/app/builds?status=superseded", g.admin, nil, &list)
	if len(list.Builds) != 1 || list.Builds[0].ID != builds[0] {
		t.Fatalf("?status=superseded lists %+v", list.Builds)
	}
	g.call(t, "GET", "/api/v1/namespaces/forcepush/repositories/app/builds?status=succeeded", g.admin, nil, &list)
	if len(list.Builds) != 0 {
		t.Fatalf("?status=succeeded lists the superseded build: %+v", list.Builds)
	}
	if tags := listTagsOrNone(t, image); slices.Contains(tags, "main-"+a[:7]) {
		t.Fatalf("superseded build pushed main-%s: %v", a[:7], tags)
	}
	// The branch's new head builds as usual.
	code, builds = deliverPush(t, g, ruleID, secret, owner, b, "d-force-b")
	if code != 202 || len(builds) != 1 {
		t.Fatalf("push of B: %d %v", code, builds)
	}
	if rec := waitOrder(t, g, builds[0]); rec.Status != "succeeded" {
		t.Fatalf("record of B = %+v", rec)
	}
}

// forcePushOrphan force-pushes to branch a commit with no parent (unrelated to its history)
// holding only a Dockerfile, and returns it.
func forcePushOrphan(t *testing.T, repo *gitserver.Repo, branch, dockerfile string) string {
	t.Helper()
	gitc := func(stdin string, args ...string) string {
		cmd := exec.Command("git", append([]string{"-c", "user.name=Slipway Test", "-c", "user.email=test@slipway.invalid"}, args...)...)
		cmd.Dir = repo.Dir
		cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null")
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	blob := gitc(dockerfile, "hash-object", "-w", "--stdin")
	tree := gitc(fmt.Sprintf("100644 blob %s\tDockerfile\n", blob), "mktree")
	commit := gitc("", "commit-tree", "-m", "rewritten history", tree)
	gitc("", "push", "-q", "--force", "origin", commit+":refs/heads/"+branch)
	return commit
}

// listTagsOrNone lists an image repository's tags; a repository never pushed has none.
func listTagsOrNone(t *testing.T, repo string) []string {
	t.Helper()
	r, err := name.NewRepository(repo)
	if err != nil {
		t.Fatal(err)
	}
	tags, err := remote.List(r, operatorAuth())
	var terr *transport.Error
	if errors.As(err, &terr) && terr.StatusCode == http.StatusNotFound {
		return nil
	}
	if err != nil {
		t.Fatalf("listing %s: %v", repo, err)
	}
	return tags
}
