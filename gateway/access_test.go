package gateway

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/config"
	"github.com/slipway-dev/slipway/internal/testing/providertest"
	"github.com/slipway-dev/slipway/store"
)

// TestManagedHookLifecycle follows the hook a rule manages through a secret rotation, a source
// change, a hook that cannot be removed and the deletion of the rule's repository, against the
// GitHub fake.
func TestManagedHookLifecycle(t *testing.T) {
	t.Parallel()
	h := mockStack(t)
	x := newAccountsAPI(t, h)
	const token = "ghp_hookLifecycleTOKEN0000000000"
	x.tokens = []string{token}
	x.github.AddUser("octo", token)
	x.github.AddOrg("acme", "octo")
	for _, n := range []string{"app", "lib"} {
		x.github.AddRepo(providertest.Repo{Owner: "acme", Name: n, Private: true,
			Branches: []providertest.Ref{{Name: "main", Commit: providertest.SHA(n)}}, Admins: []string{"octo"}})
	}
	tm := h.newTeam(t, "hooks")
	var acct struct{ ID string }
	if code := x.call(t, "POST", "/api/v1/namespaces/"+tm.ns+"/accounts", h.writer, map[string]string{"provider": "github", "token": token}, &acct); code != 201 {
		t.Fatalf("connect: %d", code)
	}
	body := func(repo string) map[string]any {
		return map[string]any{
			"source":     map[string]string{"provider": "github", "owner": "acme", "repository": repo},
			"triggers":   map[string]any{"branches": []string{"main"}},
			"account_id": acct.ID,
		}
	}
	type view struct {
		ID   string
		Hook struct {
			ID    int64
			State string
		}
		OrphanedHooks []store.OrphanedHook `json:"orphaned_hooks"`
		Webhook       struct{ URL, Secret string }
	}
	var r view
	if code := x.call(t, "POST", tm.rules(), h.writer, body("app"), &r); code != 201 || r.Hook.State != "active" {
		t.Fatalf("create: %d %+v", code, r)
	}
	x.tokens = append(x.tokens, r.Webhook.Secret)
	first := r.Webhook.Secret

	t.Run("rotating the secret updates the hook", func(t *testing.T) {
		var rot view
		if code := x.call(t, "POST", tm.rule(r.ID)+"/webhook-secret", h.writer, nil, &rot); code != 200 {
			t.Fatalf("rotate: %d", code)
		}
		if rot.Webhook.Secret == "" || rot.Webhook.Secret == first || rot.Hook.State != "active" {
			t.Fatalf("rotation answer: %+v", rot)
		}
		hooks := x.github.Hooks("acme", "app")
		if len(hooks) != 1 || hooks[0].Config["secret"] != rot.Webhook.Secret {
			t.Fatalf("hooks after rotation: %+v", hooks)
		}
		// Reading the rule never shows the secret again.
		var again view
		x.call(t, "GET", tm.rule(r.ID), h.reader, nil, &again)
		if again.Webhook.Secret != "" {
			t.Error("GET shows the webhook secret")
		}
		if code := x.call(t, "POST", tm.rule(r.ID)+"/webhook-secret", h.reader, nil, nil); code != http.StatusForbidden {
			t.Errorf("read rotates: %d, want 403", code)
		}
	})

	t.Run("a new source takes the hook off the old one", func(t *testing.T) {
		var moved view
		if code := x.call(t, "PUT", tm.rule(r.ID), h.writer, body("lib"), &moved); code != 200 {
			t.Fatalf("move: %d", code)
		}
		if n := len(x.github.Hooks("acme", "app")); n != 0 {
			t.Errorf("the old source keeps %d hooks", n)
		}
		if hooks := x.github.Hooks("acme", "lib"); len(hooks) != 1 || moved.Hook.State != "active" || moved.Hook.ID != hooks[0].ID {
			t.Errorf("new source hooks %+v, rule hook %+v", hooks, moved.Hook)
		}
		if len(moved.OrphanedHooks) != 0 {
			t.Errorf("orphaned hooks: %+v", moved.OrphanedHooks)
		}
	})

	t.Run("a hook that cannot be removed is reported, then retried", func(t *testing.T) {
		libHook := x.github.Hooks("acme", "lib")[0].ID
		x.github.FailOnce(http.StatusInternalServerError) // the DELETE on lib
		var moved view
		if code := x.call(t, "PUT", tm.rule(r.ID), h.writer, body("app"), &moved); code != 200 {
			t.Fatalf("move back: %d", code)
		}
		if len(moved.OrphanedHooks) != 1 || moved.OrphanedHooks[0].HookID != libHook ||
			moved.OrphanedHooks[0].Source.Repository != "lib" || moved.OrphanedHooks[0].Error == "" {
			t.Fatalf("orphaned hooks: %+v", moved.OrphanedHooks)
		}
		var read view
		x.call(t, "GET", tm.rule(r.ID), h.reader, nil, &read)
		if len(read.OrphanedHooks) != 1 {
			t.Errorf("GET shows orphaned hooks %+v", read.OrphanedHooks)
		}
		// The next save tries again, and succeeds.
		if code := x.call(t, "PUT", tm.rule(r.ID), h.writer, body("app"), &moved); code != 200 || len(moved.OrphanedHooks) != 0 {
			t.Fatalf("retry: %d %+v", code, moved.OrphanedHooks)
		}
		if n := len(x.github.Hooks("acme", "lib")); n != 0 {
			t.Errorf("lib keeps %d hooks", n)
		}
		if n := len(x.github.Hooks("acme", "app")); n != 1 {
			t.Errorf("app has %d hooks, want 1", n)
		}
	})

	t.Run("deleting the repository removes its rules' hooks", func(t *testing.T) {
		build := h.startBuild(t, store.Rule{ID: r.ID, Namespace: tm.ns, Repository: "app",
			Source: store.Source{Provider: "github", Owner: "acme", Repository: "app"}})
		if code := x.call(t, "DELETE", "/api/v1/namespaces/"+tm.ns+"/repositories/app", h.writer, nil, nil); code != http.StatusForbidden {
			t.Fatalf("write deletes a repository: %d, want 403", code)
		}
		if code := x.call(t, "DELETE", "/api/v1/namespaces/"+tm.ns+"/repositories/app?images=maybe", h.owner, nil, nil); code != http.StatusBadRequest {
			t.Fatalf("images=maybe: %d, want 400", code)
		}
		var gone struct {
			Images        string
			DeletedRules  []string     `json:"deleted_rules"`
			OrphanedHooks []hookReport `json:"orphaned_hooks"`
		}
		if code := x.call(t, "DELETE", "/api/v1/namespaces/"+tm.ns+"/repositories/app", h.owner, nil, &gone); code != 200 {
			t.Fatalf("delete: %d", code)
		}
		if gone.Images != "kept" || len(gone.DeletedRules) != 1 || gone.DeletedRules[0] != r.ID || len(gone.OrphanedHooks) != 0 {
			t.Errorf("answer: %+v", gone)
		}
		if n := len(x.github.Hooks("acme", "app")); n != 0 {
			t.Errorf("app keeps %d hooks", n)
		}
		if code := x.call(t, "GET", tm.rule(r.ID), h.reader, nil, nil); code != http.StatusNotFound {
			t.Errorf("rule after deletion: %d", code)
		}
		if code := x.call(t, "GET", "/api/v1/builds/"+build, h.reader, nil, nil); code != 200 {
			t.Errorf("build record after deletion: %d, want 200", code)
		}
		if code := x.call(t, "DELETE", "/api/v1/namespaces/"+tm.ns+"/repositories/app", h.owner, nil, nil); code != http.StatusNotFound {
			t.Errorf("deleting again: %d", code)
		}
	})
}

// TestPeopleAndTokens walks the API of item 1: who am I, namespaces, members, the last admin,
// rotation, disabling, and the namespace creators setting.
func TestPeopleAndTokens(t *testing.T) {
	t.Parallel()
	h := mockStack(t)
	name, tok := h.freshUserToken(t, "", "")
	other, otherTok := h.freshUserToken(t, "", "")
	ns := h.name("people")
	expect(t, h.do(t, "POST", "/api/v1/namespaces", tok, map[string]string{"name": ns}), 201, "create namespace")
	expect(t, h.do(t, "PUT", "/api/v1/namespaces/"+ns+"/members/"+other, tok, map[string]string{"role": "read"}), 200, "grant")

	var me struct {
		User struct {
			Name      string
			SiteAdmin bool `json:"site_admin"`
			Token     struct {
				LastUsedAt *time.Time `json:"last_used_at"`
			}
		}
		Namespaces []store.Membership
	}
	h.do(t, "GET", "/api/v1/user", otherTok, nil).decode(t, &me)
	if me.User.Name != other || me.User.SiteAdmin || len(me.Namespaces) != 1 || me.Namespaces[0].Namespace != ns || me.Namespaces[0].Role != store.RoleRead {
		t.Errorf("who am I: %+v", me)
	}
	if me.User.Token.LastUsedAt == nil {
		t.Error("the token's last use is not recorded")
	}
	var all struct{ Namespaces []store.Membership }
	h.do(t, "GET", "/api/v1/namespaces", h.admin, nil).decode(t, &all)
	found := false
	for _, m := range all.Namespaces {
		found = found || (m.Namespace == ns && m.Role == store.RoleAdmin)
	}
	if !found {
		t.Errorf("the site admin's namespaces miss %s", ns)
	}

	var members struct{ Members []store.Member }
	h.do(t, "GET", "/api/v1/namespaces/"+ns+"/members", otherTok, nil).decode(t, &members)
	if len(members.Members) != 2 {
		t.Errorf("members: %+v", members)
	}
	steps := []struct {
		name, method, path, token string
		body                      any
		want                      int
		msg                       string
	}{
		{"the last admin stays", "DELETE", "/members/" + name, tok, nil, 409, "last admin"},
		{"nor is demoted", "PUT", "/members/" + name, tok, map[string]string{"role": "write"}, 409, "last admin"},
		{"a reader removes no one", "DELETE", "/members/" + name, otherTok, nil, 403, ""},
		{"no such member reads like no such user", "DELETE", "/members/nobody-at-all", tok, nil, 404, "no member"},
		{"a member is removed", "DELETE", "/members/" + other, tok, nil, 204, ""},
		{"and is shut out", "GET", "/repositories", otherTok, nil, 404, ""},
	}
	for _, st := range steps {
		r := h.do(t, st.method, "/api/v1/namespaces/"+ns+st.path, st.token, st.body)
		if r.code != st.want {
			t.Errorf("%s: %s, want %d", st.name, r, st.want)
			continue
		}
		if st.msg != "" && !strings.Contains(r.errorMessage(t), st.msg) {
			t.Errorf("%s: %s does not say %q", st.name, r, st.msg)
		}
	}

	// Rotation and disabling.
	var rot struct{ Token string }
	h.do(t, "POST", "/api/v1/user/token", otherTok, nil).decode(t, &rot)
	h.addToken(rot.Token)
	expect(t, h.do(t, "GET", "/api/v1/user", otherTok, nil), 401, "old token")
	expect(t, h.do(t, "GET", "/api/v1/user", rot.Token, nil), 200, "new token")
	expect(t, h.do(t, "PATCH", "/api/v1/users/"+other, h.admin, map[string]any{}), 400, "no disabled field")
	expect(t, h.do(t, "PATCH", "/api/v1/users/admin", h.admin, map[string]bool{"disabled": true}), 409, "disable the site admin")
	expect(t, h.do(t, "POST", "/api/v1/user/token", h.admin, nil), 409, "rotate the site admin's token")
	expect(t, h.do(t, "PATCH", "/api/v1/users/"+other, h.admin, map[string]bool{"disabled": true}), 200, "disable")
	expect(t, h.do(t, "GET", "/api/v1/user", rot.Token, nil), 401, "disabled")
	expect(t, h.do(t, "POST", "/api/v1/users/"+other+"/token", h.admin, nil), 409, "token for a disabled user")
	expect(t, h.do(t, "PATCH", "/api/v1/users/"+other, h.admin, map[string]bool{"disabled": false}), 200, "enable")
	expect(t, h.do(t, "GET", "/api/v1/user", rot.Token, nil), 401, "enabled again, old token")
	var issued struct{ Token string }
	h.do(t, "POST", "/api/v1/users/"+other+"/token", h.admin, nil).decode(t, &issued)
	h.addToken(issued.Token)
	expect(t, h.do(t, "GET", "/api/v1/user", issued.Token, nil), 200, "issued token")
	expect(t, h.do(t, "POST", "/api/v1/users/nobody-at-all/token", h.admin, nil), 404, "no such user")

	t.Run("namespace creators", func(t *testing.T) {
		for _, tt := range []struct {
			creators string
			token    string
			want     int
		}{
			{config.CreatorsAnyone, tok, 201},
			{config.CreatorsAdmin, tok, 403},
			{config.CreatorsAdmin, h.admin, 201},
		} {
			cfg := h.cfg
			cfg.NamespaceCreators = tt.creators
			a := testServer(cfg, h.store, h.temporal, h.logs, h.api.logger)
			rec := serve(t, a, "POST", "/api/v1/namespaces", tt.token, `{"name":"`+h.name("made")+`"}`)
			if rec != tt.want {
				t.Errorf("%s creating with creators=%s: %d, want %d", tt.token[:8], tt.creators, rec, tt.want)
			}
		}
	})
}

// serve sends one request straight to a's router and returns the status.
func serve(t *testing.T, a *Server, method, path, token, body string) int {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), method, path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	rec := httptest.NewRecorder()
	a.Handler().ServeHTTP(rec, req)
	return rec.Code
}
