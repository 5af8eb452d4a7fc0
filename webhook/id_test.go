package webhook

import (
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"
)

// idPattern is what a build ID may hold: safe in Temporal, URLs, shells and
// logs.
var idPattern = regexp.MustCompile(`^build-[A-Za-z0-9._-]+$`)

func checkID(t testing.TB, id string) {
	t.Helper()
	if !idPattern.MatchString(id) {
		t.Errorf("ID %q holds characters outside [A-Za-z0-9._-]", id)
	}
	if len(id) > 255 || !utf8.ValidString(id) {
		t.Errorf("ID %q is %d bytes", id, len(id))
	}
}

func TestBuildIDFormat(t *testing.T) {
	const commit = "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c"
	id := BuildID("r-1", Event{Provider: "github", Kind: KindBranch, Ref: "main", Commit: commit})
	want := regexp.MustCompile(`^build-r-1-branch-main-[0-9a-f]{12}-` + commit + `$`)
	if !want.MatchString(id) {
		t.Errorf("BuildID() = %q, want %v", id, want)
	}
	id = BuildID("r-1", Event{Provider: "github", Kind: KindTag, Ref: "v1.2.0", Commit: commit})
	if want := regexp.MustCompile(`^build-r-1-tag-v1\.2\.0-[0-9a-f]{12}-` + commit + `$`); !want.MatchString(id) {
		t.Errorf("BuildID() = %q, want %v", id, want)
	}
	id = BuildID("r-1", Event{Provider: "github", Kind: KindTag, Ref: "v1.2.0", Commit: commit, Generation: "delivery-1"})
	if want := regexp.MustCompile(`^build-r-1-tag-v1\.2\.0-[0-9a-f]{12}-` + commit + `-g[0-9a-f]{8}$`); !want.MatchString(id) {
		t.Errorf("BuildID() = %q, want %v", id, want)
	}
}

func TestBuildIDSameBuild(t *testing.T) {
	parse := func(p func(string, []byte) (Event, error), eventType, name, delivery string) Event {
		t.Helper()
		ev, err := p(eventType, fixture(t, name))
		if err != nil {
			t.Fatal(err)
		}
		ev.Delivery = delivery
		return ev
	}
	tests := []struct {
		name string
		a, b Event
	}{
		{
			"redelivered tag push",
			parse(ParseGitHub, "push", "github/push_tag.json", "d-push"),
			parse(ParseGitHub, "push", "github/push_tag.json", "d-again"),
		},
		{
			"tag pushed and redelivered after one deletion",
			generation(parse(ParseGitHub, "push", "github/push_tag.json", "d-push"), "deleted-1"),
			generation(parse(ParseGitHub, "push", "github/push_tag.json", "d-again"), "deleted-1"),
		},
		{
			"redelivered branch push",
			parse(ParseGitHub, "push", "github/push_branch.json", "72d3162e-cc78-11e3-81ab-4c9367dc0958"),
			parse(ParseGitHub, "push", "github/push_branch.json", "8a4c5a1e-cc78-11e3-81ab-4c9367dc0958"),
		},
		{
			"redelivered gitlab tag",
			parse(ParseGitLab, "Tag Push Hook", "gitlab/tag_push.json", "uuid-1"),
			parse(ParseGitLab, "Tag Push Hook", "gitlab/tag_push.json", "uuid-2"),
		},
		{
			"branch push from either provider",
			Event{Provider: "github", Kind: KindBranch, Ref: "main", Commit: strings.Repeat("a", 40)},
			Event{Provider: "gitlab", Kind: KindBranch, Ref: "main", Commit: strings.Repeat("A", 40)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := BuildID("r-1", tt.a), BuildID("r-1", tt.b)
			if a != b {
				t.Errorf("BuildID() = %q and %q, want one ID", a, b)
			}
			checkID(t, a)
		})
	}
}

func TestBuildIDDifferentBuilds(t *testing.T) {
	const c1, c2 = "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c", "c441029cf673f84c8b7db52d0a5944ee5c52ff89"
	br := func(ref, commit string) Event { return Event{Kind: KindBranch, Ref: ref, Commit: commit} }
	long := strings.Repeat("x", 300)
	tests := []struct {
		name         string
		ruleA, ruleB string
		a, b         Event
	}{
		{"different commits", "r-1", "r-1", br("main", c1), br("main", c2)},
		{"different branches", "r-1", "r-1", br("main", c1), br("develop", c1)},
		{"different rules", "r-1", "r-2", br("main", c1), br("main", c1)},
		{"branch and tag of one name", "r-1", "r-1", br("v1", c1), Event{Kind: KindTag, Ref: "v1"}},
		{"different tags", "r-1", "r-1", Event{Kind: KindTag, Ref: "v1"}, Event{Kind: KindTag, Ref: "v2"}},
		{"tag moved to another commit", "r-1", "r-1", Event{Kind: KindTag, Ref: "v1", Commit: c1}, Event{Kind: KindTag, Ref: "v1", Commit: c2}},
		{"tag pushed again after its deletion", "r-1", "r-1", Event{Kind: KindTag, Ref: "v1", Commit: c1}, Event{Kind: KindTag, Ref: "v1", Commit: c1, Generation: "d-1"}},
		{"tag pushed again after a second deletion", "r-1", "r-1", Event{Kind: KindTag, Ref: "v1", Commit: c1, Generation: "d-1"}, Event{Kind: KindTag, Ref: "v1", Commit: c1, Generation: "d-2"}},
		{"refs that read alike", "r-1", "r-1", br("feature/a$b", c1), br("feature/a-b", c1)},
		{"unicode that reads alike", "r-1", "r-1", br("función", c1), br("funci-n", c1)},
		{"long refs sharing 300 bytes", "r-1", "r-1", br(long+"a", c1), br(long+"b", c1)},
		{"rule IDs that read alike", "r/1", "r-1", br("main", c1), br("main", c1)},
		{"rule and ref boundary", "r-1-branch-main", "r-1", br("x", c1), br("main-branch-x", c1)},
		{"commitless deliveries", "r-1", "r-1", Event{Kind: KindBranch, Ref: "main", Delivery: "a"}, Event{Kind: KindBranch, Ref: "main", Delivery: "b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := BuildID(tt.ruleA, tt.a), BuildID(tt.ruleB, tt.b)
			if a == b {
				t.Errorf("BuildID() = %q for both", a)
			}
			checkID(t, a)
			checkID(t, b)
		})
	}
}

func TestBuildIDWeirdInput(t *testing.T) {
	tests := []struct {
		rule string
		ev   Event
	}{
		{"r-1", Event{Kind: KindBranch, Ref: "feature/a$b", Commit: strings.Repeat("f", 40)}},
		{"r-1", Event{Kind: KindTag, Ref: "发布/版本-1.0"}},
		{"r-1", Event{Kind: KindBranch, Ref: strings.Repeat("ü", 300), Commit: strings.Repeat("0a", 32)}},
		{strings.Repeat("r", 300), Event{Kind: KindTag, Ref: strings.Repeat("v", 300)}},
		{"r 1\n", Event{Kind: KindBranch, Ref: "a b\x00c\td", Commit: "not a hash", Delivery: "x"}},
		{"", Event{}},
		{"r-1", Event{Kind: KindIgnore, Delivery: strings.Repeat("d", 1000)}},
		{"r-1", Event{Kind: "bogus", Ref: "\xff\xfe"}},
	}
	for _, tt := range tests {
		id := BuildID(tt.rule, tt.ev)
		checkID(t, id)
		if again := BuildID(tt.rule, tt.ev); again != id {
			t.Errorf("BuildID() is not deterministic: %q, then %q", id, again)
		}
	}
	if id := BuildID("r-1", Event{Kind: KindBranch, Ref: "feature/a$b", Commit: strings.Repeat("f", 40)}); !strings.HasPrefix(id, "build-r-1-branch-feature-a-b-") {
		t.Errorf("BuildID() = %q, want the ref readable", id)
	}
}

func TestManualBuildID(t *testing.T) {
	a := ManualBuildID("r-1", "key-1")
	checkID(t, a)
	if !strings.HasPrefix(a, "build-r-1-manual-") {
		t.Errorf("ManualBuildID() = %q", a)
	}
	if strings.Contains(a, "key-1") {
		t.Errorf("ManualBuildID() = %q shows the key", a)
	}
	if b := ManualBuildID("r-1", "key-1"); b != a {
		t.Errorf("ManualBuildID() = %q, then %q", a, b)
	}
	for _, other := range []string{ManualBuildID("r-1", "key-2"), ManualBuildID("r-2", "key-1"), ManualBuildID("r-1", "")} {
		if other == a {
			t.Errorf("ManualBuildID() = %q for different requests", a)
		}
		checkID(t, other)
	}
	checkID(t, ManualBuildID(strings.Repeat("ř", 200), strings.Repeat("k", 10000)))
	// A manual build never takes the ID of a webhook build.
	if strings.Contains(a, "-branch-") || strings.Contains(a, "-tag-") {
		t.Errorf("ManualBuildID() = %q looks like a webhook build", a)
	}
}

func generation(ev Event, g string) Event {
	ev.Generation = g
	return ev
}
