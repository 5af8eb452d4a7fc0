package activities

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/mocks"
	"go.temporal.io/sdk/testsuite"

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

// countsBy answers CountWorkflow from the builds the test says exist, by ref and commit.
type countsBy struct {
	builds map[string][]string // ref name to the commits built
}

func (c countsBy) count(q string) int64 {
	var n int64
	for ref, commits := range c.builds {
		if !strings.Contains(q, "GitRef = '"+ref+"'") {
			continue
		}
		for _, commit := range commits {
			if !strings.Contains(q, "GitCommit") || strings.Contains(q, "GitCommit = '"+commit+"'") {
				n++
			}
		}
	}
	return n
}

func TestMissedHeads(t *testing.T) {
	srv := gitserver.Start(t)
	repo := srv.NewRepo(t, "octo", "missed")
	old := repo.Commit("main", map[string]string{"Dockerfile": "FROM busybox\n"})
	repo.Tag("main", "v1", false)
	head := repo.Commit("main", map[string]string{"a": "a\n"})
	repo.Tag("main", "v2", false)
	release := repo.Commit("release/1", map[string]string{"b": "b\n"})
	repo.Commit("other", map[string]string{"c": "c\n"})

	in := build.ReconcileInput{
		Template: build.Input{Namespace: "demo", RuleID: "r-1", Source: build.Source{Provider: "github", Owner: "octo", Repository: "missed"}},
		Triggers: build.Triggers{Branches: []string{"main", "/^release/(\\d+)$/"}, Tags: true},
	}
	tests := []struct {
		name  string
		built map[string][]string
		seen  map[string]string
		want  string
	}{
		{"first run: only refs built before, at a new head", map[string][]string{"main": {old}, "v1": {old}}, nil,
			"branch main " + head[:7]},
		{"first run: everything built", map[string][]string{"main": {head}, "v1": {old}, "v2": {head}, "release/1": {release}}, nil, ""},
		{"a tag new since the last run", map[string][]string{"main": {head}},
			map[string]string{"refs/heads/main": head, "refs/tags/v1": old, "refs/heads/release/1": release},
			"tag v2 " + head[:7]},
		{"a branch moved since the last run, never built", map[string][]string{},
			map[string]string{"refs/heads/main": head, "refs/tags/v1": old, "refs/tags/v2": head, "refs/heads/release/1": old},
			"branch release/1 " + release[:7] + " 1=1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tc := &mocks.Client{}
			c := countsBy{builds: tt.built}
			tc.On("CountWorkflow", mock.Anything, mock.Anything).Return(
				func(_ context.Context, r *workflowservice.CountWorkflowExecutionsRequest) (*workflowservice.CountWorkflowExecutionsResponse, error) {
					if !strings.Contains(r.Query, "SlipwayRule = 'r-1'") {
						return nil, errors.New("query names no rule: " + r.Query)
					}
					return &workflowservice.CountWorkflowExecutionsResponse{Count: c.count(r.Query)}, nil
				})
			act := &Activities{CloneBaseURLs: map[string]string{"github": srv.URL}, Temporal: tc}
			var suite testsuite.WorkflowTestSuite
			env := suite.NewTestActivityEnvironment()
			env.RegisterActivity(act)
			val, err := env.ExecuteActivity(act.MissedHeads, MissedHeadsInput{ReconcileInput: in, Seen: tt.seen})
			if err != nil {
				t.Fatal(err)
			}
			var got MissedHeads
			if err := val.Get(&got); err != nil {
				t.Fatal(err)
			}
			var parts []string
			for _, h := range got.Missed {
				s := h.Ref.Type + " " + h.Ref.Name + " " + h.Commit[:7]
				for k, v := range h.Captures {
					s += " " + k + "=" + v
				}
				parts = append(parts, s)
			}
			if g := strings.Join(parts, ", "); g != tt.want {
				t.Errorf("missed %q, want %q", g, tt.want)
			}
			if len(got.Seen) != 4 || got.Seen["refs/heads/main"] != head || got.Seen["refs/heads/other"] != "" {
				t.Errorf("seen %v, want the four heads of the rule's refs", got.Seen)
			}
		})
	}
}
