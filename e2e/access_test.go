package e2e

import (
	"bytes"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/slipway-dev/slipway/devstack"
)

// TestAccessEndToEnd takes access back on the real stack: a removed member is shut out at
// their next call, a rotated token stops at once, a disabled user's token answers 401 (and
// stays dead when the user is enabled again), a rotated webhook secret replaces the old one,
// and a repository deleted with ?images=delete loses its rules and its images while its build
// records stay readable.
func TestAccessEndToEnd(t *testing.T) {
	w := startWorker(t)
	t.Cleanup(w.stop)
	g := startGateway(t)
	owner := "e2e-access"
	fixture(t, owner)

	type user struct{ Name, Token string }
	newUser := func(n string) user {
		var u user
		if code := g.call(t, "POST", "/api/v1/users", g.admin, map[string]string{"name": n}, &u); code != 201 {
			t.Fatalf("create user %s: %d", n, code)
		}
		return u
	}
	alice, bob, carol := newUser("alice"), newUser("bob"), newUser("carol")
	if code := g.call(t, "POST", "/api/v1/namespaces", alice.Token, map[string]string{"name": "acc"}, nil); code != 201 {
		t.Fatalf("create namespace: %d", code)
	}
	g.call(t, "PUT", "/api/v1/namespaces/acc/members/bob", alice.Token, map[string]string{"role": "write"}, nil)
	if code := g.call(t, "POST", "/api/v1/namespaces/acc/repositories", alice.Token, map[string]string{"name": "app"}, nil); code != 201 {
		t.Fatalf("create repository: %d", code)
	}

	t.Run("members", func(t *testing.T) {
		var me struct {
			User       struct{ Name string }
			Namespaces []struct{ Name, Role string }
		}
		if code := g.call(t, "GET", "/api/v1/user", bob.Token, nil, &me); code != 200 || me.User.Name != "bob" ||
			len(me.Namespaces) != 1 || me.Namespaces[0].Name != "acc" || me.Namespaces[0].Role != "write" {
			t.Fatalf("who am I: %d %+v", code, me)
		}
		if code := g.call(t, "GET", "/api/v1/namespaces/acc/repositories", bob.Token, nil, nil); code != 200 {
			t.Fatalf("member lists repositories: %d", code)
		}
		if code := g.call(t, "DELETE", "/api/v1/namespaces/acc/members/alice", alice.Token, nil, nil); code != http.StatusConflict {
			t.Fatalf("removing the last admin: %d, want 409", code)
		}
		if code := g.call(t, "DELETE", "/api/v1/namespaces/acc/members/bob", alice.Token, nil, nil); code != http.StatusNoContent {
			t.Fatalf("remove member: %d", code)
		}
		// Shut out at the next call: a non-member is answered as if the namespace did not
		// exist (404), so its name does not leak.
		if code := g.call(t, "GET", "/api/v1/namespaces/acc/repositories", bob.Token, nil, nil); code != http.StatusNotFound {
			t.Fatalf("removed member lists repositories: %d, want 404", code)
		}
		var list struct{ Namespaces []struct{ Name string } }
		if code := g.call(t, "GET", "/api/v1/namespaces", bob.Token, nil, &list); code != 200 || len(list.Namespaces) != 0 {
			t.Fatalf("removed member's namespaces: %d %+v", code, list)
		}
	})

	t.Run("tokens", func(t *testing.T) {
		var rotated user
		if code := g.call(t, "POST", "/api/v1/user/token", carol.Token, nil, &rotated); code != 201 || rotated.Token == "" || rotated.Token == carol.Token {
			t.Fatalf("rotate: %d %+v", code, rotated)
		}
		if code := g.call(t, "GET", "/api/v1/user", carol.Token, nil, nil); code != http.StatusUnauthorized {
			t.Fatalf("old token after rotation: %d, want 401", code)
		}
		if code := g.call(t, "GET", "/api/v1/user", rotated.Token, nil, nil); code != 200 {
			t.Fatalf("new token: %d, want 200", code)
		}
		if code := g.call(t, "PATCH", "/api/v1/users/carol", g.admin, map[string]bool{"disabled": true}, nil); code != 200 {
			t.Fatalf("disable: %d", code)
		}
		if code := g.call(t, "GET", "/api/v1/user", rotated.Token, nil, nil); code != http.StatusUnauthorized {
			t.Fatalf("disabled user's token: %d, want 401", code)
		}
		if code := g.call(t, "PATCH", "/api/v1/users/carol", g.admin, map[string]bool{"disabled": false}, nil); code != 200 {
			t.Fatalf("enable: %d", code)
		}
		if code := g.call(t, "GET", "/api/v1/user", rotated.Token, nil, nil); code != http.StatusUnauthorized {
			t.Fatalf("token of before the disabling, after enabling: %d, want 401", code)
		}
		var issued user
		if code := g.call(t, "POST", "/api/v1/users/carol/token", g.admin, nil, &issued); code != 201 {
			t.Fatalf("admin issues a token: %d", code)
		}
		var me struct {
			User struct {
				Token struct {
					LastUsedAt *string `json:"last_used_at"`
				}
			}
		}
		if code := g.call(t, "GET", "/api/v1/user", issued.Token, nil, &me); code != 200 {
			t.Fatalf("issued token: %d, want 200", code)
		}
		g.call(t, "GET", "/api/v1/user", issued.Token, nil, &me)
		if me.User.Token.LastUsedAt == nil {
			t.Error("last_used_at not recorded")
		}
	})

	var ruleID, secret string
	t.Run("webhook secret", func(t *testing.T) {
		var rule struct {
			ID      string
			Webhook struct{ Secret string }
		}
		if code := g.call(t, "POST", "/api/v1/namespaces/acc/repositories/app/build-rules", alice.Token, map[string]any{
			"source":   map[string]string{"provider": "github", "owner": owner, "repository": "hello"},
			"triggers": map[string]any{"branches": []string{"main"}},
		}, &rule); code != 201 {
			t.Fatalf("create rule: %d", code)
		}
		ruleID = rule.ID
		raw, err := os.ReadFile(filepath.Join("..", "webhook", "testdata", "github", "ping.json"))
		if err != nil {
			t.Fatal(err)
		}
		ping := func(secret string) int {
			code, _, _ := g.deliver(t, "/webhooks/github/"+ruleID, raw,
				map[string]string{"X-GitHub-Event": "ping", "X-Hub-Signature-256": devstack.SignGitHub(secret, raw)})
			return code
		}
		if code := ping(rule.Webhook.Secret); code != 200 {
			t.Fatalf("ping with the first secret: %d", code)
		}
		var rotated struct{ Webhook struct{ Secret string } }
		if code := g.call(t, "POST", "/api/v1/namespaces/acc/repositories/app/build-rules/"+ruleID+"/webhook-secret", alice.Token, nil, &rotated); code != 200 ||
			rotated.Webhook.Secret == "" || rotated.Webhook.Secret == rule.Webhook.Secret {
			t.Fatalf("rotate webhook secret: %d %+v", code, rotated)
		}
		secret = rotated.Webhook.Secret
		if code := ping(rule.Webhook.Secret); code != http.StatusUnauthorized {
			t.Errorf("ping with the old secret: %d, want 401", code)
		}
		if code := ping(secret); code != 200 {
			t.Errorf("ping with the new secret: %d, want 200", code)
		}
		// Sealed at rest: the database does not hold the secret.
		for _, f := range []string{g.db, g.db + "-wal"} {
			if b, err := os.ReadFile(f); err == nil && bytes.Contains(b, []byte(secret)) {
				t.Errorf("the gateway's database %s holds the webhook secret in plain text", f)
			}
		}
	})

	t.Run("delete repository with its images", func(t *testing.T) {
		var started struct{ ID string }
		if code := g.call(t, "POST", "/api/v1/namespaces/acc/repositories/app/build-rules/"+ruleID+"/builds", alice.Token,
			map[string]string{"branch": "main"}, &started); code != 202 {
			t.Fatalf("build now: %d", code)
		}
		rec := g.waitBuild(t, alice.Token, started.ID)
		if rec.Status != "succeeded" {
			t.Fatalf("build: %s %s", rec.Status, rec.Error)
		}
		image := env.stack.Registry + "/acc/app"
		if tags := listTags(t, image); len(tags) == 0 {
			t.Fatalf("no image pushed to %s", image)
		}
		var gone struct {
			Images       string   `json:"images"`
			DeletedRules []string `json:"deleted_rules"`
			Manifests    []string `json:"deleted_manifests"`
		}
		if code := g.call(t, "DELETE", "/api/v1/namespaces/acc/repositories/app?images=delete", alice.Token, nil, &gone); code != 200 {
			t.Fatalf("delete repository: %d", code)
		}
		if gone.Images != "deleted" || len(gone.DeletedRules) != 1 || gone.DeletedRules[0] != ruleID || len(gone.Manifests) == 0 {
			t.Errorf("deletion answer: %+v", gone)
		}
		if code := g.call(t, "GET", "/api/v1/namespaces/acc/repositories/app/build-rules/"+ruleID, alice.Token, nil, nil); code != http.StatusNotFound {
			t.Errorf("rule after deletion: %d, want 404", code)
		}
		raw, _ := os.ReadFile(filepath.Join("..", "webhook", "testdata", "github", "ping.json"))
		if code, _, _ := g.deliver(t, "/webhooks/github/"+ruleID, raw,
			map[string]string{"X-GitHub-Event": "ping", "X-Hub-Signature-256": devstack.SignGitHub(secret, raw)}); code != http.StatusNotFound {
			t.Errorf("delivery to the deleted rule: %d, want 404", code)
		}
		repo, _ := name.NewRepository(image)
		tags, err := remote.List(repo, operatorAuth())
		var terr *transport.Error
		if err != nil && !(errors.As(err, &terr) && terr.StatusCode == http.StatusNotFound) {
			t.Fatalf("listing %s after deletion: %v", image, err)
		}
		if len(tags) != 0 {
			t.Errorf("tags left in the registry: %v", tags)
		}
		for _, tag := range rec.Tags {
			if _, err := remote.Head(repo.Tag(tag), operatorAuth()); err == nil {
				t.Errorf("%s:%s still resolves", image, tag)
			}
		}
		// The build's record stays readable.
		var after record
		if code := g.call(t, "GET", "/api/v1/builds/"+started.ID, alice.Token, nil, &after); code != 200 || after.Status != "succeeded" {
			t.Errorf("build record after deletion: %d %+v", code, after)
		}
	})
}
