package activities

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/slipway-dev/slipway/build"
	"github.com/slipway-dev/slipway/internal/testing/gitserver"
	"github.com/slipway-dev/slipway/logstore"
)

func TestAccountRefCheck(t *testing.T) {
	ref := build.AccountRef{ID: "a-1", Namespace: "team", Provider: "github"}
	tests := []struct {
		name         string
		ref          build.AccountRef
		ns, provider string // the account's own
		want         string // "" means allowed
	}{
		{"same namespace and provider", ref, "team", "github", ""},
		{"another namespace", ref, "other", "github", `not an account of namespace "team"`},
		{"another provider", ref, "team", "gitlab", "is a gitlab account"},
		{"build without a namespace", build.AccountRef{ID: "a-1", Provider: "github"}, "team", "github", "not an account of namespace"},
		{"namespace differs in case", ref, "Team", "github", "not an account of namespace"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.ref.Check(tt.ns, tt.provider)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if !errors.Is(err, build.ErrAccountNotBound) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want build.ErrAccountNotBound containing %q", err, tt.want)
			}
			if tt.ns != tt.ref.Namespace && strings.Contains(err.Error(), `"`+tt.ns+`"`) {
				t.Fatalf("error names the account's own namespace: %v", err)
			}
		})
	}
}

func TestCheckOrigin(t *testing.T) {
	tests := []struct {
		remote, base string
		ok           bool
	}{
		{"https://github.com/octo/hello.git", "https://github.com", true},
		{"https://GitHub.com/octo/hello.git", "https://github.com/", true},
		{"https://github.com:443/octo/hello.git", "https://github.com", true},
		{"http://127.0.0.1:8080/o/r.git", "http://127.0.0.1:8080", true},
		{"https://ghe.example/git/o/r.git", "https://ghe.example/git", true},
		{"http://github.com/octo/hello.git", "https://github.com", false},        // scheme
		{"https://github.com.evil.example/o/r.git", "https://github.com", false}, // host
		{"https://evil.example/o/r.git", "https://github.com", false},
		{"https://github.com:8443/o/r.git", "https://github.com", false}, // port
		{"http://127.0.0.1:8081/o/r.git", "http://127.0.0.1:8080", false},
		{"http://localhost:8080/o/r.git", "http://127.0.0.1:8080", false},
		{"http://127.0.0.1:8080/o/r.git", "", false}, // no configured URL
	}
	for _, tt := range tests {
		t.Run(tt.remote+" on "+tt.base, func(t *testing.T) {
			err := checkOrigin(tt.remote, tt.base)
			if (err == nil) != tt.ok {
				t.Fatalf("checkOrigin = %v, want ok %v", err, tt.ok)
			}
		})
	}
}

// TestCloneTokenStaysBound clones through real smart-HTTP servers: the configured host of the
// provider, and a foreign host on another loopback port that must never see the token.
func TestCloneTokenStaysBound(t *testing.T) {
	const secret = "ghp_b0undTOKENvalue0123456789"
	home := gitserver.StartAuth(t, "x-access-token", secret)
	home.NewRepo(t, "octo", "private").Commit("main", map[string]string{"Dockerfile": "FROM busybox\n"})
	// The foreign host serves the same repositories without asking for credentials, so a
	// token sent there would be taken and a clone through it would succeed.
	foreign := gitserver.Start(t)
	foreign.NewRepo(t, "octo", "moved").Commit("main", map[string]string{"Dockerfile": "FROM busybox\n"})
	foreign.NewRepo(t, "octo", "public").Commit("main", map[string]string{"Dockerfile": "FROM busybox\n"})
	home.Redirect("octo", "moved", foreign.URL)
	home.Redirect("octo", "public", foreign.URL)

	logs, err := logstore.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	act := &Activities{
		WorkspaceRoot: t.TempDir(), Logs: logs, LogURLBase: "http://gw/api/v1/builds",
		CloneBaseURLs: map[string]string{"github": home.URL, "gitlab": home.URL},
		Accounts:      tokens{"a-team": {"team", "github", secret}, "a-other": {"other", "github", secret}},
	}
	var suite testsuite.WorkflowTestSuite
	tests := []struct {
		name string
		ns   string
		src  build.Source
		want string // a message of the InvalidSource error; "" means the clone succeeds
	}{
		{"account with the built URL", "team", build.Source{Provider: "github", Owner: "octo", Repository: "private", AccountID: "a-team"}, ""},
		{"clone_url with account_id", "team", build.Source{Provider: "github", Owner: "octo", Repository: "private", AccountID: "a-team",
			CloneURL: foreign.URL + "/octo/moved.git"}, "both clone_url and account_id"},
		{"clone_url of the configured host with account_id", "team", build.Source{Provider: "github", Owner: "octo", Repository: "private",
			AccountID: "a-team", CloneURL: home.URL + "/octo/private.git"}, "both clone_url and account_id"},
		{"account of another namespace", "team", build.Source{Provider: "github", Owner: "octo", Repository: "private", AccountID: "a-other"},
			`not an account of namespace "team"`},
		{"account for a source on another provider", "team", build.Source{Provider: "gitlab", Owner: "octo", Repository: "private", AccountID: "a-team"},
			"is a github account"},
		{"redirect to another host with a token", "team", build.Source{Provider: "github", Owner: "octo", Repository: "moved", AccountID: "a-team"},
			"never follows a redirect"},
		{"redirect of a public source", "team", build.Source{Provider: "github", Owner: "octo", Repository: "public"}, ""},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := suite.NewTestActivityEnvironment()
			env.RegisterActivity(act)
			_, err := env.ExecuteActivity(act.Clone, CloneInput{
				Workspace: fmt.Sprintf("b%d", i), Namespace: tt.ns, Source: tt.src, Ref: build.Ref{Type: build.RefBranch, Name: "main"},
			})
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var appErr *temporal.ApplicationError
			if !errors.As(err, &appErr) || appErr.Type() != build.ErrTypeInvalidSource || !appErr.NonRetryable() ||
				!strings.Contains(appErr.Message(), tt.want) {
				t.Fatalf("error = %v, want non-retryable %s containing %q", err, build.ErrTypeInvalidSource, tt.want)
			}
			if strings.Contains(err.Error(), secret) {
				t.Fatalf("error shows the token: %v", err)
			}
		})
	}
	reqs := foreign.Requests()
	if len(reqs) == 0 {
		t.Fatal("the foreign host saw no request: the public redirect did not happen, so this test proves nothing")
	}
	for _, r := range reqs {
		if r.Authorization != "" {
			t.Errorf("the foreign host received credentials: %s %s %q", r.Method, r.Path, r.Authorization)
		}
	}
}
