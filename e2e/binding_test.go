package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/slipway-dev/slipway/build"
	"github.com/slipway-dev/slipway/internal/testing/gitserver"
	"github.com/slipway-dev/slipway/internal/testing/providertest"
)

// TestAccountTokenStaysBound connects a GitHub account to team-a and starts builds as the
// temporal CLI would, naming that account in ways that would carry its token elsewhere: a
// clone_url of a foreign host, a build of team-b, a repository the configured host redirects
// to the foreign host. The foreign host, a real smart-HTTP server on another loopback port that
// serves without asking for credentials, must never see an Authorization header; team-b's
// build must send the token nowhere.
func TestAccountTokenStaysBound(t *testing.T) {
	const token = "ghp_B0UNDe2eTOKEN0123456789abcdef"
	key := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{9}, 32))
	files := map[string]string{"Dockerfile": "FROM busybox\nCOPY app.txt /app.txt\n", "app.txt": "code\n"}

	// The provider's configured host: private, every request needs the token.
	home := gitserver.StartAuth(t, "x-access-token", token)
	head := home.NewRepo(t, "octo", "bound-app").Commit("main", files)
	// The foreign host: would take a token and serve the same repositories to it.
	foreign := gitserver.Start(t)
	foreign.NewRepo(t, "octo", "loot").Commit("main", files)
	foreign.NewRepo(t, "octo", "moved-app").Commit("main", files)
	home.Redirect("octo", "moved-app", foreign.URL)

	api := providertest.NewGitHub(t)
	api.AddUser("octo", token)
	for _, name := range []string{"bound-app", "moved-app"} {
		api.AddRepo(providertest.Repo{Owner: "octo", Name: name, Private: true,
			Branches: []providertest.Ref{{Name: "main", Commit: head}}})
	}
	providerEnv := []string{"SLIPWAY_SECRET_KEY=" + key, "SLIPWAY_GITHUB_API_URL=" + api.URL, "SLIPWAY_GITHUB_URL=" + home.URL}
	g := startGateway(t, providerEnv...)
	w := startWorker(t, append(providerEnv, "SLIPWAY_DATABASE_URL="+g.db)...)
	t.Cleanup(w.stop)

	var alice, bob struct{ Token string }
	g.call(t, "POST", "/api/v1/users", g.admin, map[string]string{"name": "alice-bound"}, &alice)
	g.call(t, "POST", "/api/v1/users", g.admin, map[string]string{"name": "bob-bound"}, &bob)
	g.call(t, "POST", "/api/v1/namespaces", alice.Token, map[string]string{"name": "team-a"}, nil)
	g.call(t, "POST", "/api/v1/namespaces", bob.Token, map[string]string{"name": "team-b"}, nil)
	g.call(t, "POST", "/api/v1/namespaces/team-a/repositories", alice.Token, map[string]string{"name": "app"}, nil)
	var acct struct{ ID string }
	if code := g.call(t, "POST", "/api/v1/namespaces/team-a/accounts", alice.Token,
		map[string]string{"provider": "github", "token": token}, &acct); code != http.StatusCreated {
		t.Fatalf("connect: %d", code)
	}

	// The gateway takes no clone_url at all: a rule's source is provider, owner, repository.
	var refused struct{ Error string }
	code := g.call(t, "POST", "/api/v1/namespaces/team-a/repositories/app/build-rules", alice.Token, map[string]any{
		"source": map[string]string{"provider": "github", "owner": "octo", "repository": "bound-app",
			"clone_url": foreign.URL + "/octo/loot.git"},
		"triggers": map[string]any{"branches": []string{}}, "account_id": acct.ID,
	}, &refused)
	if code != http.StatusBadRequest || !strings.Contains(refused.Error, "clone_url") {
		t.Fatalf("rule with clone_url and account_id: %d %q, want 400 naming clone_url", code, refused.Error)
	}

	runBuild := func(t *testing.T, ns, repo, cloneURL string) error {
		t.Helper()
		in := build.Input{
			Namespace: ns, Repository: "app", RuleID: "r-bound",
			Source: build.Source{Provider: "github", Owner: "octo", Repository: repo,
				AccountID: acct.ID, CloneURL: cloneURL},
			Ref:     build.Ref{Type: build.RefBranch, Name: "main"},
			Image:   env.stack.Registry + "/" + ns + "/app",
			Trigger: build.TriggerManual,
		}
		run := startBuild(t, fmt.Sprintf("e2e-bound-%s-%s-%d", ns, repo, time.Now().UnixNano()), in)
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		return run.Get(ctx, nil)
	}
	refusals := []struct {
		name, ns, repo, cloneURL string
		want                     string
	}{
		{"clone_url of a foreign host with account_id", "team-a", "bound-app", foreign.URL + "/octo/loot.git", "both clone_url and account_id"},
		{"team-a's account in a build of team-b", "team-b", "bound-app", "", `not an account of namespace "team-b"`},
		{"a redirect from the configured host to a foreign one", "team-a", "moved-app", "", "never follows a redirect"},
	}
	for _, tt := range refusals {
		t.Run(tt.name, func(t *testing.T) {
			authedBefore := authorized(home.Requests())
			start := time.Now()
			err := runBuild(t, tt.ns, tt.repo, tt.cloneURL)
			var appErr *temporal.ApplicationError
			if !errors.As(err, &appErr) || !appErr.NonRetryable() || !strings.Contains(appErr.Message(), tt.want) {
				t.Fatalf("build error = %v, want non-retryable containing %q", err, tt.want)
			}
			if strings.Contains(err.Error(), token) {
				t.Fatalf("the error shows the token: %v", err)
			}
			t.Logf("refused in %s: %s", time.Since(start).Round(time.Millisecond), appErr.Message())
			// Only the redirect case may reach the configured host with the token: its first
			// request goes there, and is answered with the redirect.
			if got := authorized(home.Requests()) - authedBefore; tt.repo != "moved-app" && got != 0 {
				t.Fatalf("the configured host saw %d requests with credentials from a refused build", got)
			}
		})
	}
	// The redirect did happen, so the foreign host was one hop away from the token.
	var redirected bool
	for _, r := range home.Requests() {
		redirected = redirected || strings.HasPrefix(r.Path, "/octo/moved-app.git/")
	}
	if !redirected {
		t.Fatal("the configured host never saw the moved repository: the redirect case proves nothing")
	}

	// The same account in its own namespace builds: the binding refuses only what it should.
	if err := runBuild(t, "team-a", "bound-app", ""); err != nil {
		t.Fatalf("team-a's own build: %v", err)
	}
	if got := pull(t, env.stack.Registry+"/team-a/app:main").files["app.txt"]; got != "code\n" {
		t.Fatalf("/app.txt = %q", got)
	}
	for _, r := range foreign.Requests() {
		if r.Authorization != "" {
			t.Errorf("the foreign host received credentials: %s %s", r.Method, r.Path)
		}
	}
	t.Logf("foreign host: %d requests, none with credentials", len(foreign.Requests()))
}

// authorized counts the requests that carried credentials.
func authorized(reqs []gitserver.Request) int {
	n := 0
	for _, r := range reqs {
		if r.Authorization != "" {
			n++
		}
	}
	return n
}
