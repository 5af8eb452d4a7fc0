package webhook

import (
	"strings"
	"testing"

	"github.com/slipway-dev/slipway/build"
)

func TestMatch(t *testing.T) {
	src := build.Source{Provider: "github", Owner: "octo", Repository: "hello"}
	trg := build.Triggers{Branches: []string{"main", "release/*"}, Tags: true}
	const commit = "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c"
	branch := func(name string) Event {
		return Event{Provider: "github", Kind: KindBranch, Owner: "octo", Repository: "hello", Ref: name, Commit: commit}
	}
	tag := func(name string) Event {
		return Event{Provider: "github", Kind: KindTag, Owner: "octo", Repository: "hello", Ref: name, Commit: commit}
	}
	with := func(ev Event, edit func(*Event)) Event { edit(&ev); return ev }

	tests := []struct {
		name       string
		src        build.Source
		trg        build.Triggers
		ev         Event
		want       bool
		wantReason string // a substring of Decision.Reason
	}{
		{"branch in list", src, trg, branch("main"), true, "main"},
		{"branch not in list", src, trg, branch("develop"), false, "branch develop is not in the rule's branches"},
		{"glob", src, trg, branch("release/1.2"), true, `"release/*"`},
		{"glob stops at slash", src, trg, branch("release/1.2/hotfix"), false, "not in the rule's branches"},
		{"glob needs its prefix", src, trg, branch("prerelease/1.2"), false, "not in the rule's branches"},
		{"branch names are case-sensitive", src, trg, branch("Main"), false, "not in the rule's branches"},
		{"no branches", src, build.Triggers{Tags: true}, branch("main"), false, "not in the rule's branches"},
		{"star matches branches without slash", src, build.Triggers{Branches: []string{"*"}}, branch("anything"), true, ""},
		{"malformed pattern matches itself", src, build.Triggers{Branches: []string{"fix[1"}}, branch("fix[1"), true, ""},
		{"malformed pattern matches nothing else", src, build.Triggers{Branches: []string{"fix[1"}}, branch("fix1"), false, ""},
		{"tag with tags", src, trg, tag("v1.2.0"), true, "tag v1.2.0"},
		{"tag without tags", src, build.Triggers{Branches: []string{"main"}}, tag("v1.2.0"), false, "does not build tags"},
		{"tag from create without commit", src, trg, with(tag("v1.2.0"), func(e *Event) { e.Commit = "" }), true, ""},
		{"tag is not a branch", src, build.Triggers{Branches: []string{"v1.2.0"}}, tag("v1.2.0"), false, "does not build tags"},
		{"branch is not a tag", src, build.Triggers{Tags: true}, branch("v1.2.0"), false, ""},
		{"deleted branch", src, trg, with(branch("main"), func(e *Event) { e.Deleted, e.Commit = true, "" }), false, "branch main was deleted"},
		{"deleted tag", src, trg, with(tag("v1"), func(e *Event) { e.Deleted, e.Commit = true, "" }), false, "tag v1 was deleted"},
		{"other repository", src, trg, with(branch("main"), func(e *Event) { e.Repository = "other" }), false, "event is for octo/other, rule builds octo/hello"},
		{"other owner", src, trg, with(branch("main"), func(e *Event) { e.Owner = "evil" }), false, "event is for evil/hello"},
		{"other provider", src, trg, with(branch("main"), func(e *Event) { e.Provider = "gitlab" }), false, `event is from "gitlab", rule builds from "github"`},
		{"owner and repository case", src, trg, with(branch("main"), func(e *Event) { e.Owner, e.Repository = "Octo", "HELLO" }), true, ""},
		{"rule case", build.Source{Provider: "github", Owner: "OCTO", Repository: "Hello"}, trg, branch("main"), true, ""},
		{
			"gitlab subgroup", build.Source{Provider: "gitlab", Owner: "acme/platform", Repository: "hello"}, trg,
			Event{Provider: "gitlab", Kind: KindBranch, Owner: "acme/platform", Repository: "hello", Ref: "main", Commit: commit}, true, "",
		},
		{
			"gitlab other subgroup", build.Source{Provider: "gitlab", Owner: "acme/platform", Repository: "hello"}, trg,
			Event{Provider: "gitlab", Kind: KindBranch, Owner: "acme/other", Repository: "hello", Ref: "main", Commit: commit}, false, "acme/other/hello",
		},
		{"ping", src, trg, Event{Provider: "github", Kind: KindPing, Owner: "octo", Repository: "hello"}, false, "ping"},
		{"ignored", src, trg, Event{Provider: "github", Kind: KindIgnore, Reason: "github event \"issues\" does not start builds"}, false, "issues"},
		{"zero event", src, trg, Event{}, false, "unknown event kind"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Match(tt.src, tt.trg, tt.ev)
			if got.Build != tt.want {
				t.Fatalf("Match() = %+v, want Build %v", got, tt.want)
			}
			if got.Reason == "" {
				t.Error("Match() gives no reason")
			}
			if !strings.Contains(got.Reason, tt.wantReason) {
				t.Errorf("Match() reason %q, want it to contain %q", got.Reason, tt.wantReason)
			}
		})
	}
}

// TestMatchFixtures runs whole deliveries through parse and match, as the
// handler does.
func TestMatchFixtures(t *testing.T) {
	trg := build.Triggers{Branches: []string{"main", "master"}, Tags: true}
	tests := []struct {
		parse     func(string, []byte) (Event, error)
		eventType string
		fixture   string
		src       build.Source
		want      bool
	}{
		{ParseGitHub, "push", "github/push_branch.json", build.Source{Provider: "github", Owner: "octo", Repository: "hello"}, true},
		{ParseGitHub, "push", "github/push_tag.json", build.Source{Provider: "github", Owner: "octo", Repository: "hello"}, true},
		{ParseGitHub, "create", "github/create_tag.json", build.Source{Provider: "github", Owner: "octo", Repository: "hello"}, false},
		{ParseGitHub, "push", "github/push_branch_deleted.json", build.Source{Provider: "github", Owner: "octo", Repository: "hello"}, false},
		{ParseGitHub, "push", "github/push_tag_deleted.json", build.Source{Provider: "github", Owner: "octo", Repository: "hello"}, false},
		{ParseGitHub, "create", "github/create_branch.json", build.Source{Provider: "github", Owner: "octo", Repository: "hello"}, false},
		{ParseGitHub, "ping", "github/ping.json", build.Source{Provider: "github", Owner: "octo", Repository: "hello"}, false},
		{ParseGitHub, "push", "github/push_branch.json", build.Source{Provider: "gitlab", Owner: "octo", Repository: "hello"}, false},
		{ParseGitLab, "Push Hook", "gitlab/push.json", build.Source{Provider: "gitlab", Owner: "mike", Repository: "diaspora"}, true},
		{ParseGitLab, "Tag Push Hook", "gitlab/tag_push.json", build.Source{Provider: "gitlab", Owner: "jsmith", Repository: "example"}, true},
		{ParseGitLab, "Tag Push Hook", "gitlab/tag_push_deleted.json", build.Source{Provider: "gitlab", Owner: "acme/platform", Repository: "hello"}, false},
		{ParseGitLab, "Push Hook", "gitlab/push_deleted.json", build.Source{Provider: "gitlab", Owner: "mike", Repository: "diaspora"}, false},
		{ParseGitLab, "Push Hook", "gitlab/push.json", build.Source{Provider: "github", Owner: "mike", Repository: "diaspora"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.fixture+"/"+tt.src.Provider, func(t *testing.T) {
			ev, err := tt.parse(tt.eventType, fixture(t, tt.fixture))
			if err != nil {
				t.Fatal(err)
			}
			if got := Match(tt.src, trg, ev); got.Build != tt.want {
				t.Errorf("Match() = %+v, want Build %v", got, tt.want)
			}
		})
	}
}
