package gateway

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/slipway-dev/slipway/accounts"
	"github.com/slipway-dev/slipway/internal/testing/providertest"
	"github.com/slipway-dev/slipway/secretbox"
)

// accountsAPI is the shared harness's API with connected accounts on, over fakes of GitHub's
// and GitLab's APIs.
type accountsAPI struct {
	url    string
	github *providertest.GitHub
	gitlab *providertest.GitLab
	tokens []string
}

func newAccountsAPI(t *testing.T, h *harness) *accountsAPI {
	t.Helper()
	box, err := secretbox.New(bytes.Repeat([]byte{3}, secretbox.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	gh, gl := providertest.NewGitHub(t), providertest.NewGitLab(t)
	a := New(Deps{Config: h.cfg, Store: h.store, Temporal: h.temporal, Logs: h.logs,
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
		Accounts: accounts.New(h.store, box, map[string]string{"github": gh.URL, "gitlab": gl.URL})})
	srv := httptest.NewServer(a.Handler())
	t.Cleanup(srv.Close)
	return &accountsAPI{url: srv.URL, github: gh, gitlab: gl}
}

// call sends one request and fails t if an answer shows a provider token.
func (x *accountsAPI) call(t *testing.T, method, path, token string, body any, out any) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, x.url+path, rd)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	for _, tok := range x.tokens {
		if strings.Contains(string(raw), tok) {
			t.Fatalf("%s %s shows a provider token: %s", method, path, raw)
		}
	}
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, raw)
		}
	}
	return resp.StatusCode
}

func TestConnectedAccounts(t *testing.T) {
	t.Parallel()
	h := mockStack(t)
	x := newAccountsAPI(t, h)
	const admin, reader, revoked = "ghp_adminTOKEN000000000000000000", "ghp_readerTOKEN00000000000000000", "ghp_revokedTOKEN0000000000000000"
	x.tokens = []string{admin, reader, revoked}
	x.github.AddUser("octo", admin)
	x.github.AddUser("watcher", reader)
	x.github.AddUser("gone", revoked)
	x.github.RevokeToken(revoked)
	x.github.AddOrg("acme", "octo", "watcher")
	for _, name := range []string{"app", "lib", "tools"} {
		x.github.AddRepo(providertest.Repo{Owner: "acme", Name: name, Private: true,
			Branches: []providertest.Ref{{Name: "main", Commit: providertest.SHA(name)}},
			Tags:     []providertest.Ref{{Name: "v1.0.0", Commit: providertest.SHA(name)}},
			Readers:  []string{"watcher"}, Admins: []string{"octo"}})
	}
	tm := h.newTeam(t, "acct")
	other := h.foreignTeam(t, "acct-other")
	base := "/api/v1/namespaces/" + tm.ns + "/accounts"

	tests := []struct {
		name, token, user string
		provider          string
		want              int
	}{
		{"a valid token", admin, h.writer, "github", http.StatusCreated},
		{"a revoked token is refused when saved", revoked, h.writer, "github", http.StatusBadRequest},
		{"an unknown provider", admin, h.writer, "bitbucket", http.StatusBadRequest},
		{"read may not connect", admin, h.reader, "github", http.StatusForbidden},
		{"another namespace", admin, h.outsider, "github", http.StatusNotFound},
	}
	var acctID string
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got struct{ ID, Login string }
			code := x.call(t, "POST", base, tt.user, map[string]string{"provider": tt.provider, "token": tt.token}, &got)
			if code != tt.want {
				t.Fatalf("connect: %d, want %d", code, tt.want)
			}
			if code == http.StatusCreated {
				if got.Login != "octo" {
					t.Fatalf("login = %q", got.Login)
				}
				acctID = got.ID
			}
		})
	}
	var watcher struct{ ID string }
	if code := x.call(t, "POST", base, h.writer, map[string]string{"provider": "github", "token": reader}, &watcher); code != http.StatusCreated {
		t.Fatalf("connect watcher: %d", code)
	}
	// The token is sealed at rest, bound to its account.
	stored, err := h.store.GetAccount(t.Context(), acctID)
	if err != nil || strings.Contains(stored.TokenSealed, admin) || !strings.HasPrefix(stored.TokenSealed, "v1:") {
		t.Fatalf("stored account %+v, %v", stored, err)
	}

	t.Run("browse like the console", func(t *testing.T) {
		var page struct {
			Items    []map[string]any `json:"items"`
			NextPage int              `json:"next_page"`
		}
		if code := x.call(t, "GET", base+"/"+acctID+"/owners", h.writer, nil, &page); code != 200 || len(page.Items) != 2 {
			t.Fatalf("owners: %d %+v", code, page)
		}
		if code := x.call(t, "GET", base+"/"+acctID+"/repositories?owner=acme", h.writer, nil, &page); code != 200 || len(page.Items) != 3 {
			t.Fatalf("repositories: %d %+v", code, page)
		}
		for _, what := range []string{"branches", "tags"} {
			if code := x.call(t, "GET", base+"/"+acctID+"/"+what+"?owner=acme&repository=app", h.writer, nil, &page); code != 200 || len(page.Items) != 1 {
				t.Fatalf("%s: %d %+v", what, code, page)
			}
		}
		if code := x.call(t, "GET", base+"/"+acctID+"/repositories", h.writer, nil, nil); code != http.StatusBadRequest {
			t.Fatalf("no owner: %d", code)
		}
		// Owner and repository go into go-github's paths unescaped: names a rule's source could
		// not hold are refused before any call to the provider.
		for _, q := range []struct{ what, query, want string }{
			{"branches", "owner=..&repository=..%2F..%2Fuser", "owner"},
			{"branches", "owner=acme&repository=..", "repository"},
			{"branches", "owner=acme&repository=app%2F..%2F..%2Fuser", "repository"},
			{"tags", "owner=.&repository=app", "owner"},
			{"branches", "owner=acme&repository=app%3Fper_page%3D100", "repository"},
			{"repositories", "owner=acme%2F..", "owner"},
			{"repositories", "owner=acme%2Finfra", "owner"}, // GitHub has no nested owners
			{"repositories", "owner=a%20b", "owner"},
			{"tags", "owner=acme%23x&repository=app", "owner"},
		} {
			var e struct{ Error string }
			code := x.call(t, "GET", base+"/"+acctID+"/"+q.what+"?"+q.query, h.writer, nil, &e)
			if code != http.StatusBadRequest || !strings.Contains(e.Error, q.want) {
				t.Errorf("%s?%s: %d %q, want 400 naming the %s", q.what, q.query, code, e.Error, q.want)
			}
		}
		if code := x.call(t, "GET", base+"/"+acctID+"/branches?owner=acme&repository=nope", h.writer, nil, nil); code != http.StatusNotFound {
			t.Fatalf("a repository the account cannot see: %d", code)
		}
		if code := x.call(t, "GET", "/api/v1/namespaces/"+other.ns+"/accounts/"+acctID+"/owners", h.stranger, nil, nil); code != http.StatusNotFound {
			t.Fatalf("an account through another namespace's URL: %d", code)
		}
	})

	rule := map[string]any{
		"source":     map[string]string{"provider": "github", "owner": "acme", "repository": "app"},
		"triggers":   map[string]any{"branches": []string{"main"}, "tags": true},
		"account_id": acctID,
	}
	var created struct {
		ID   string
		Hook struct {
			ID    int64
			State string
		}
		Webhook struct{ URL, Secret string }
	}
	t.Run("a rule with an account manages its webhook", func(t *testing.T) {
		if code := x.call(t, "POST", tm.rules(), h.writer, rule, &created); code != 201 || created.Hook.State != "active" {
			t.Fatalf("create: %d %+v", code, created)
		}
		x.tokens = append(x.tokens, created.Webhook.Secret)
		hooks := x.github.Hooks("acme", "app")
		if len(hooks) != 1 || hooks[0].Config["url"] != created.Webhook.URL || hooks[0].Config["secret"] != created.Webhook.Secret ||
			hooks[0].Config["insecure_ssl"] != "0" || strings.Join(hooks[0].Events, ",") != "create,push" && strings.Join(hooks[0].Events, ",") != "push,create" {
			t.Fatalf("hook = %+v", hooks)
		}
		// Saving again does not add a second hook.
		if code := x.call(t, "PUT", tm.rule(created.ID), h.writer, rule, &created); code != 200 || len(x.github.Hooks("acme", "app")) != 1 {
			t.Fatalf("update: %d, hooks %d", code, len(x.github.Hooks("acme", "app")))
		}
		rule["triggers"] = map[string]any{"branches": []string{}, "tags": false}
		if code := x.call(t, "PUT", tm.rule(created.ID), h.writer, rule, &created); code != 200 || created.Hook.State != "removed" || len(x.github.Hooks("acme", "app")) != 0 {
			t.Fatalf("triggers off: %d %+v", code, created.Hook)
		}
		rule["triggers"] = map[string]any{"branches": []string{"main"}}
		if code := x.call(t, "PUT", tm.rule(created.ID), h.writer, rule, &created); code != 200 || created.Hook.State != "active" {
			t.Fatalf("triggers on again: %d %+v", code, created.Hook)
		}
		if code := x.call(t, "DELETE", tm.rule(created.ID), h.writer, nil, nil); code != http.StatusNoContent || len(x.github.Hooks("acme", "app")) != 0 {
			t.Fatalf("delete: %d, hooks left %d", code, len(x.github.Hooks("acme", "app")))
		}
	})

	t.Run("a hook the account may not create leaves a rule for manual builds", func(t *testing.T) {
		r := map[string]any{
			"source":     map[string]string{"provider": "github", "owner": "acme", "repository": "lib"},
			"triggers":   map[string]any{"branches": []string{"main"}},
			"account_id": watcher.ID,
		}
		var c struct {
			ID   string
			Hook struct{ State string }
		}
		if code := x.call(t, "POST", tm.rules(), h.writer, r, &c); code != 201 || !strings.Contains(c.Hook.State, "no admin right") {
			t.Fatalf("create: %d %+v", code, c)
		}
		if code := x.call(t, "POST", tm.rule(c.ID)+"/builds", h.writer, map[string]string{"branch": "main"}, nil); code != http.StatusAccepted {
			t.Fatalf("build now on a rule without a hook: %d", code)
		}
	})

	t.Run("account checks on rules", func(t *testing.T) {
		for name, r := range map[string]map[string]any{
			"another provider": {"source": map[string]string{"provider": "gitlab", "owner": "g", "repository": "r"}, "account_id": acctID},
			"unknown account":  {"source": map[string]string{"provider": "github", "owner": "acme", "repository": "app"}, "account_id": "a-nope"},
		} {
			var e struct{ Error string }
			if code := x.call(t, "POST", tm.rules(), h.writer, r, &e); code != http.StatusBadRequest || !strings.Contains(e.Error, "account_id") {
				t.Fatalf("%s: %d %q", name, code, e.Error)
			}
		}
	})

	t.Run("gitlab group path", func(t *testing.T) {
		const glToken = "glpat-TOKENforGITLAB000000"
		x.tokens = append(x.tokens, glToken)
		x.gitlab.AddUser("dev", glToken)
		x.gitlab.AddGroup("platform", map[string]int{"dev": providertest.OwnerAccess})
		x.gitlab.AddGroup("platform/infra", map[string]int{"dev": providertest.MaintainerAccess})
		x.gitlab.AddRepo(providertest.Repo{Owner: "platform/infra", Name: "svc", Private: true,
			Branches: []providertest.Ref{{Name: "main", Commit: providertest.SHA("svc")}}})
		var gl struct{ ID string }
		if code := x.call(t, "POST", base, h.writer, map[string]string{"provider": "gitlab", "token": glToken}, &gl); code != 201 {
			t.Fatalf("connect gitlab: %d", code)
		}
		var page struct{ Items []map[string]any }
		if code := x.call(t, "GET", base+"/"+gl.ID+"/repositories?owner=platform/infra", h.writer, nil, &page); code != 200 || len(page.Items) != 1 {
			t.Fatalf("repositories of a subgroup: %d %+v", code, page)
		}
		var c struct {
			Hook    struct{ State string }
			Webhook struct{ URL, Secret string }
		}
		r := map[string]any{
			"source":     map[string]string{"provider": "gitlab", "owner": "platform/infra", "repository": "svc"},
			"triggers":   map[string]any{"branches": []string{"main"}, "tags": true},
			"account_id": gl.ID,
		}
		if code := x.call(t, "POST", tm.rules(), h.writer, r, &c); code != 201 || c.Hook.State != "active" {
			t.Fatalf("gitlab rule: %d %+v", code, c)
		}
		hooks := x.gitlab.Hooks("platform/infra", "svc")
		if len(hooks) != 1 || hooks[0].URL != c.Webhook.URL || hooks[0].Token != c.Webhook.Secret || !hooks[0].PushEvents || !hooks[0].TagPushEvents || !hooks[0].EnableSSLVerification {
			t.Fatalf("gitlab hook = %+v", hooks)
		}
	})

	t.Run("removing an account needs admin", func(t *testing.T) {
		if code := x.call(t, "DELETE", base+"/"+watcher.ID, h.writer, nil, nil); code != http.StatusForbidden {
			t.Fatalf("write removes: %d", code)
		}
		if code := x.call(t, "DELETE", base+"/"+watcher.ID, h.owner, nil, nil); code != http.StatusNoContent {
			t.Fatalf("admin removes: %d", code)
		}
		var list struct{ Accounts []struct{ ID string } }
		if code := x.call(t, "GET", base, h.reader, nil, &list); code != 200 || len(list.Accounts) != 2 {
			t.Fatalf("list after removal: %d %+v", code, list)
		}
	})
}
