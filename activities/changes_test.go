package activities

import (
	"strings"
	"testing"

	"go.temporal.io/sdk/testsuite"

	"github.com/slipway-dev/slipway/build"
	"github.com/slipway-dev/slipway/internal/testing/gitserver"
	"github.com/slipway-dev/slipway/logstore"
)

func TestCloneChangedFiles(t *testing.T) {
	srv := gitserver.Start(t)
	repo := srv.NewRepo(t, "octo", "paths")
	c1 := repo.Commit("main", map[string]string{"Dockerfile": "FROM busybox\n", "src/x.go": "x\n", "docs/a.md": "a\n"})
	c2 := repo.Commit("main", map[string]string{"docs/b.md": "b\n"})
	c3 := repo.Commit("main", map[string]string{"src/y.go": "y\n"})
	f1 := repo.Commit("feature", map[string]string{"docs/c.md": "c\n"})
	rootless := repo.PlantEntry("rootless", "docs", "d.md", "d\n")

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
	src := build.Source{Provider: "github", Owner: "octo", Repository: "paths"}
	main := build.Ref{Type: build.RefBranch, Name: "main"}
	feature := build.Ref{Type: build.RefBranch, Name: "feature"}
	srcOnly := &build.PathFilter{Include: []string{"src/**"}}
	noDocs := &build.PathFilter{Ignore: []string{"docs/**", "*.md"}}
	zero := strings.Repeat("0", 40)
	var suite testsuite.WorkflowTestSuite
	tests := []struct {
		name     string
		ref      build.Ref
		commit   string
		before   string
		paths    *build.PathFilter
		wantSkip string // a part of the skip reason; "" wants a build
	}{
		{"no filter builds", main, c2, c1, nil, ""},
		{"docs only push, include src", main, c2, c1, srcOnly, "since commit " + c1 + ": "},
		{"docs only push, ignore docs", main, c2, c1, noDocs, "since commit " + c1 + ": "},
		{"src push", main, c3, c2, srcOnly, ""},
		{"two pushes at once", main, c3, c1, srcOnly, ""},
		{"new branch: against the default branch", feature, "", zero, srcOnly, "since the default branch (" + c3 + ")"},
		{"new branch, include docs", feature, "", "", &build.PathFilter{Include: []string{"docs/*.md"}}, ""},
		{"force push: old head off the ref", main, c3, f1, srcOnly, "since commit " + f1},
		{"force push, include docs", main, c3, f1, &build.PathFilter{Include: []string{"docs/**"}}, ""},
		{"force push: only docs differ", feature, "", c3, srcOnly, "since commit " + c3},
		{"no common history: every file", build.Ref{Type: build.RefBranch, Name: "rootless"}, rootless, zero, srcOnly, "every file"},
		{"no common history, Dockerfile wanted", build.Ref{Type: build.RefBranch, Name: "rootless"}, rootless, zero, &build.PathFilter{Include: []string{"Dockerfile"}}, ""},
	}
	for _, mode := range cloneModes {
		t.Run(mode.name, func(t *testing.T) {
			act.Sources = mode.sources(t)
			for i, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					env := suite.NewTestActivityEnvironment()
					env.RegisterActivity(act)
					val, err := env.ExecuteActivity(act.Clone, CloneInput{
						Workspace: mode.name + "-changes" + string(rune('a'+i)), Source: src, Ref: tt.ref, Commit: tt.commit,
						Paths: tt.paths, Before: tt.before,
					})
					if err != nil {
						t.Fatal(err)
					}
					var res CloneResult
					if err := val.Get(&res); err != nil {
						t.Fatal(err)
					}
					switch {
					case tt.wantSkip == "" && res.Skip != "":
						t.Fatalf("skip = %q, want a build", res.Skip)
					case tt.wantSkip != "" && !strings.Contains(res.Skip, tt.wantSkip):
						t.Fatalf("skip = %q, want one naming %q", res.Skip, tt.wantSkip)
					}
				})
			}
		})
	}
}
