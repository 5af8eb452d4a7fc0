package e2e

import (
	"os/exec"
	"testing"

	"github.com/slipway-dev/slipway/devstack"
)

// TestRePushedTag is issue #15's tag that is deleted and pushed again at the same commit: it
// builds again, on the real stack, while a redelivery of either push builds nothing new.
func TestRePushedTag(t *testing.T) {
	w := startWorker(t)
	t.Cleanup(w.stop)
	g := startGateway(t)
	owner := "e2e-retag"
	repo, head := fixture(t, owner)

	var alice struct{ Token string }
	if code := g.call(t, "POST", "/api/v1/users", g.admin, map[string]string{"name": "alice"}, &alice); code != 201 {
		t.Fatalf("create user: %d", code)
	}
	g.call(t, "POST", "/api/v1/namespaces", alice.Token, map[string]string{"name": "retag"}, nil)
	g.call(t, "POST", "/api/v1/namespaces/retag/repositories", alice.Token, map[string]string{"name": "app"}, nil)
	var rule struct {
		ID      string `json:"id"`
		Webhook struct{ URL, Secret string }
	}
	code := g.call(t, "POST", "/api/v1/namespaces/retag/repositories/app/build-rules", alice.Token, map[string]any{
		"source":       map[string]string{"provider": "github", "owner": owner, "repository": "hello"},
		"triggers":     map[string]any{"tag_patterns": []string{"v*"}},
		"tag_template": "{tag}-{short_commit}",
	}, &rule)
	if code != 201 {
		t.Fatalf("create rule: %d", code)
	}
	path := "/webhooks/github/" + rule.ID
	payload := func(file string) []byte {
		return fixturePayload(t, file, func(m map[string]any) {
			m["ref"] = "refs/tags/v2.0.0"
			if hc, ok := m["head_commit"].(map[string]any); ok {
				m["after"], hc["id"] = head, head
			}
			r := m["repository"].(map[string]any)
			r["name"] = "hello"
			r["owner"].(map[string]any)["login"] = owner
		})
	}
	deliver := func(body []byte, delivery string) []string {
		t.Helper()
		code, builds, _ := g.deliver(t, path, body, map[string]string{"X-GitHub-Event": "push", "X-GitHub-Delivery": delivery,
			"X-Hub-Signature-256": devstack.SignGitHub(rule.Webhook.Secret, body)})
		if code != 202 {
			t.Fatalf("delivery %s: %d", delivery, code)
		}
		return builds
	}
	git := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("git", append([]string{"-C", repo.Dir}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}

	repo.Tag("main", "v2.0.0", false)
	push := payload("github/push_tag.json")
	first := deliver(push, "push-1")
	if len(first) != 1 {
		t.Fatalf("first push of the tag started %v", first)
	}
	if again := deliver(push, "push-1"); len(again) != 1 || again[0] != first[0] {
		t.Fatalf("redelivered push answered %v, want %v", again, first)
	}
	if rec := g.waitBuild(t, alice.Token, first[0]); rec.Status != "succeeded" || rec.Ref != "v2.0.0" {
		t.Fatalf("first build: %+v", rec)
	}

	// The tag is deleted and pushed again at the same commit.
	git("push", "-q", "origin", ":refs/tags/v2.0.0")
	git("tag", "-d", "v2.0.0")
	if none := deliver(payload("github/push_tag_deleted.json"), "delete-1"); len(none) != 0 {
		t.Fatalf("deletion of the tag started %v", none)
	}
	repo.Tag("main", "v2.0.0", false)
	second := deliver(push, "push-2")
	if len(second) != 1 || second[0] == first[0] {
		t.Fatalf("the tag pushed again answered %v, want a new build (the first was %s)", second, first[0])
	}
	if again := deliver(push, "push-2"); len(again) != 1 || again[0] != second[0] {
		t.Fatalf("redelivered second push answered %v, want %v", again, second)
	}
	rec := g.waitBuild(t, alice.Token, second[0])
	if rec.Status != "succeeded" || rec.Commit != head || len(rec.Tags) == 0 || rec.Tags[0] != "v2.0.0-"+head[:7] {
		t.Fatalf("second build: %+v", rec)
	}
}
