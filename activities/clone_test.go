package activities

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/slipway-dev/slipway/build"
	"github.com/slipway-dev/slipway/internal/testing/gitserver"
	"github.com/slipway-dev/slipway/logstore"
)

func TestClone(t *testing.T) {
	srv := gitserver.Start(t)
	repo := srv.NewRepo(t, "octo", "hello")
	first := repo.Commit("main", map[string]string{"Dockerfile": "FROM busybox\n", ".gitmodules": "[submodule \"evil\"]\n\tpath = evil\n\turl = http://127.0.0.1:1/evil.git\n"})
	head := repo.Commit("main", map[string]string{"README": "second\n"})
	repo.Tag("main", "v1.0.0", true)
	feature := repo.Commit("feature/login", map[string]string{"login.txt": "x\n"})
	other := repo.Commit("other", map[string]string{"other.txt": "x\n"})
	repo.PlantEntry("dotdot", "..", "escaped.sh", "#!/bin/sh\ntouch /tmp/slipway-escaped\n")
	repo.PlantEntry("dotgit", ".GIT", "post-checkout", "#!/bin/sh\ntouch /tmp/slipway-hook-ran\n")

	logs, err := logstore.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	act := &Activities{
		WorkspaceRoot: t.TempDir(),
		Logs:          logs,
		LogURLBase:    "http://gw/api/v1/builds",
		CloneBaseURLs: map[string]string{"github": srv.URL},
	}
	var suite testsuite.WorkflowTestSuite
	tests := []struct {
		name       string
		src        build.Source
		ref        build.Ref
		commit     string
		wantCommit string
		wantType   string
	}{
		{"branch head", build.Source{Provider: "github", Owner: "octo", Repository: "hello"}, build.Ref{Type: build.RefBranch, Name: "main"}, "", head, ""},
		{"explicit clone url", build.Source{Provider: "github", CloneURL: repo.CloneURL}, build.Ref{Type: build.RefBranch, Name: "main"}, "", head, ""},
		{"branch with slash", build.Source{Provider: "github", Owner: "octo", Repository: "hello"}, build.Ref{Type: build.RefBranch, Name: "feature/login"}, "", feature, ""},
		{"annotated tag peels to commit", build.Source{Provider: "github", Owner: "octo", Repository: "hello"}, build.Ref{Type: build.RefTag, Name: "v1.0.0"}, "", head, ""},
		{"older commit on the ref", build.Source{Provider: "github", Owner: "octo", Repository: "hello"}, build.Ref{Type: build.RefBranch, Name: "main"}, first, first, ""},
		{"commit on another branch", build.Source{Provider: "github", Owner: "octo", Repository: "hello"}, build.Ref{Type: build.RefBranch, Name: "main"}, other, "", build.ErrTypeCommitNotOnRef},
		{"short commit", build.Source{Provider: "github", Owner: "octo", Repository: "hello"}, build.Ref{Type: build.RefBranch, Name: "main"}, head[:7], "", build.ErrTypeCommitNotOnRef},
		{"missing branch", build.Source{Provider: "github", Owner: "octo", Repository: "hello"}, build.Ref{Type: build.RefBranch, Name: "nope"}, "", "", build.ErrTypeRefNotFound},
		{"missing tag", build.Source{Provider: "github", Owner: "octo", Repository: "hello"}, build.Ref{Type: build.RefTag, Name: "v9"}, "", "", build.ErrTypeRefNotFound},
		{"bad ref name", build.Source{Provider: "github", Owner: "octo", Repository: "hello"}, build.Ref{Type: build.RefBranch, Name: "--upload-pack=x"}, "", "", build.ErrTypeRefNotFound},
		{"missing repository", build.Source{Provider: "github", Owner: "octo", Repository: "nope"}, build.Ref{Type: build.RefBranch, Name: "main"}, "", "", build.ErrTypeInvalidSource},
		{"file url refused", build.Source{Provider: "github", CloneURL: "file://" + repo.Bare}, build.Ref{Type: build.RefBranch, Name: "main"}, "", "", build.ErrTypeInvalidSource},
		{"credentials in url refused", build.Source{Provider: "github", CloneURL: "http://u:p@127.0.0.1/x.git"}, build.Ref{Type: build.RefBranch, Name: "main"}, "", "", build.ErrTypeInvalidSource},
		{"unknown provider", build.Source{Provider: "bitbucket", Owner: "o", Repository: "r"}, build.Ref{Type: build.RefBranch, Name: "main"}, "", "", build.ErrTypeInvalidSource},
		{"tree with a .. entry", build.Source{Provider: "github", Owner: "octo", Repository: "hello"}, build.Ref{Type: build.RefBranch, Name: "dotdot"}, "", "", build.ErrTypeInvalidPath},
		{"tree with a .GIT entry", build.Source{Provider: "github", Owner: "octo", Repository: "hello"}, build.Ref{Type: build.RefBranch, Name: "dotgit"}, "", "", build.ErrTypeInvalidPath},
	}
	for _, mode := range cloneModes {
		t.Run(mode.name, func(t *testing.T) {
			act.Sources = mode.sources(t)
			for i, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					env := suite.NewTestActivityEnvironment()
					env.RegisterActivity(act)
					ws := mode.name + "-ws" + string(rune('a'+i))
					val, err := env.ExecuteActivity(act.Clone, CloneInput{Workspace: ws, Source: tt.src, Ref: tt.ref, Commit: tt.commit})
					if tt.wantType != "" {
						var appErr *temporal.ApplicationError
						if !errors.As(err, &appErr) || appErr.Type() != tt.wantType || !appErr.NonRetryable() {
							t.Fatalf("error = %v, want non-retryable %s", err, tt.wantType)
						}
						return
					}
					if err != nil {
						t.Fatal(err)
					}
					var res CloneResult
					if err := val.Get(&res); err != nil {
						t.Fatal(err)
					}
					if res.Commit != tt.wantCommit {
						t.Fatalf("commit = %s, want %s", res.Commit, tt.wantCommit)
					}
					if !strings.HasPrefix(res.LogURL, "http://gw/api/v1/builds/") || !strings.HasSuffix(res.LogURL, "/logs") {
						t.Fatalf("log url = %q", res.LogURL)
					}
					src := filepath.Join(act.WorkspaceRoot, ws, checkoutDir)
					if _, err := os.Stat(filepath.Join(src, "Dockerfile")); err != nil {
						t.Fatalf("checkout lacks Dockerfile: %v", err)
					}
					exactTree(t, src, res.Commit)
					// Submodules are never fetched, whatever .gitmodules says.
					if _, err := os.Stat(filepath.Join(src, "evil", ".git")); !errors.Is(err, os.ErrNotExist) {
						t.Fatalf("submodule was fetched: %v", err)
					}
				})
			}
		})
	}
}
