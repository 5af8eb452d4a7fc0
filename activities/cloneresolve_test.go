package activities

import (
	"strings"
	"testing"

	"go.temporal.io/sdk/testsuite"

	"github.com/slipway-dev/slipway/build"
	"github.com/slipway-dev/slipway/internal/testing/gitserver"
	"github.com/slipway-dev/slipway/logstore"
)

// TestCloneResolves checks the resolve step's work done by a clone asked to: the paths
// checked on the fresh checkout, a refusal reported in the result for the workflow to show as
// the resolve step's, and nothing at all for a clone not asked.
func TestCloneResolves(t *testing.T) {
	srv := gitserver.Start(t)
	repo := srv.NewRepo(t, "octo", "hello")
	head := repo.Commit("main", map[string]string{"Dockerfile": "FROM busybox\n", "build/Dockerfile": "FROM busybox\n", "docs/dockerfile": "x\n"})
	logs, err := logstore.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	act := &Activities{WorkspaceRoot: t.TempDir(), Logs: logs, LogURLBase: "http://gw/api/v1/builds",
		CloneBaseURLs: map[string]string{"github": srv.URL}}
	var suite testsuite.WorkflowTestSuite
	tests := []struct {
		name         string
		resolve      *ResolveInput
		want         *ResolveResult
		wantType     string
		wantInReason string
	}{
		{name: "not asked"},
		{name: "defaults", resolve: &ResolveInput{}, want: &ResolveResult{DockerfilePath: "Dockerfile", ContextPath: "."}},
		{name: "nested", resolve: &ResolveInput{DockerfilePath: "./build/Dockerfile", ContextPath: "build/"}, want: &ResolveResult{DockerfilePath: "build/Dockerfile", ContextPath: "build"}},
		{name: "missing dockerfile", resolve: &ResolveInput{DockerfilePath: "docs/Dockerfile"}, wantType: build.ErrTypeDockerfileNotFound, wantInReason: "case-sensitive"},
		{name: "missing context", resolve: &ResolveInput{ContextPath: "nope"}, wantType: build.ErrTypeInvalidPath, wantInReason: "no such folder"},
		{name: "dockerfile is a folder", resolve: &ResolveInput{DockerfilePath: "build"}, wantType: build.ErrTypeInvalidPath, wantInReason: "not a regular file"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := suite.NewTestActivityEnvironment()
			env.RegisterActivity(act)
			in := CloneInput{Workspace: "rs" + string(rune('a'+i)), Source: build.Source{Provider: "github", Owner: "octo", Repository: "hello"},
				Ref: build.Ref{Type: build.RefBranch, Name: "main"}, Resolve: tt.resolve}
			val, err := env.ExecuteActivity(act.Clone, in)
			if err != nil {
				t.Fatal(err)
			}
			var res CloneResult
			if err := val.Get(&res); err != nil {
				t.Fatal(err)
			}
			if res.Commit != head {
				t.Fatalf("commit = %s, want %s", res.Commit, head)
			}
			switch {
			case tt.wantType != "":
				if res.Resolved != nil || res.ResolveFailure == nil || res.ResolveFailure.Type != tt.wantType ||
					!strings.Contains(res.ResolveFailure.Message, tt.wantInReason) {
					t.Fatalf("resolved %+v, failure %+v; want %s saying %q", res.Resolved, res.ResolveFailure, tt.wantType, tt.wantInReason)
				}
			case tt.want == nil:
				if res.Resolved != nil || res.ResolveFailure != nil {
					t.Fatalf("resolved %+v, failure %+v; want neither", res.Resolved, res.ResolveFailure)
				}
			default:
				if res.ResolveFailure != nil || res.Resolved == nil || *res.Resolved != *tt.want {
					t.Fatalf("resolved %+v, failure %+v; want %+v", res.Resolved, res.ResolveFailure, *tt.want)
				}
			}
		})
	}
}
