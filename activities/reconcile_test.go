package activities

import (
	"context"
	"fmt"
	"testing"

	"github.com/slipway-dev/slipway/build"
	"github.com/slipway-dev/slipway/internal/testing/gitserver"
)

func TestLsRemote(t *testing.T) {
	srv := gitserver.Start(t)
	repo := srv.NewRepo(t, "octo", "heads")
	first := repo.Commit("main", map[string]string{"Dockerfile": "FROM busybox\n"})
	repo.Tag("main", "v1", true)
	repo.Tag("main", "light", false)
	head := repo.Commit("main", map[string]string{"a": "a\n"})
	feature := repo.Commit("release/1", map[string]string{"b": "b\n"})
	act := &Activities{CloneBaseURLs: map[string]string{"github": srv.URL}}
	src := build.Source{Provider: "github", Owner: "octo", Repository: "heads"}
	remote, err := act.cloneURL(src)
	if err != nil {
		t.Fatal(err)
	}
	rh, err := act.lsRemote(context.Background(), "demo", src, remote)
	if err != nil {
		t.Fatal(err)
	}
	if rh.defaultBranch != "main" {
		t.Errorf("default branch %q, want main", rh.defaultBranch)
	}
	got := fmt.Sprint(rh.heads)
	want := fmt.Sprint([]MissedHead{
		{Ref: build.Ref{Type: build.RefBranch, Name: "main"}, Commit: head},
		{Ref: build.Ref{Type: build.RefBranch, Name: "release/1"}, Commit: feature},
		// The annotated tag is peeled to its commit.
		{Ref: build.Ref{Type: build.RefTag, Name: "light"}, Commit: first},
		{Ref: build.Ref{Type: build.RefTag, Name: "v1"}, Commit: first},
	})
	if got != want {
		t.Errorf("heads\n got %s\nwant %s", got, want)
	}
	if _, err := act.lsRemote(context.Background(), "demo", build.Source{Provider: "github", Owner: "octo", Repository: "nope"},
		srv.URL+"/octo/nope.git"); err == nil {
		t.Error("listing a missing repository succeeded")
	}
}
