package retention

import (
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/build"
)

func TestSelect(t *testing.T) {
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	ago := func(h int) time.Time { return now.Add(-time.Duration(h) * time.Hour) }
	tag := func(name, digest string, h int) Tag { return Tag{Name: name, Digest: digest, Created: ago(h)} }
	tests := []struct {
		name      string
		tags      []Tag
		policy    build.RetentionPolicy
		protected Protected
		// del maps each deleted tag to a fragment of its reason; every other tag is kept
		// with a reason containing keep's fragment.
		del  map[string]string
		keep map[string]string
	}{
		{
			name:   "keep last two of main-*",
			tags:   []Tag{tag("main-a", "sha256:a", 40), tag("main-b", "sha256:b", 30), tag("main-c", "sha256:c", 20), tag("main-d", "sha256:d", 10)},
			policy: build.RetentionPolicy{Rules: []build.RetentionRule{{TagPattern: "main-*", KeepLast: 2}}},
			del:    map[string]string{"main-a": "number 4 of 4", "main-b": "number 3 of 4"},
			keep:   map[string]string{"main-c": "newest 2 of 4", "main-d": "newest 1 of 4"},
		},
		{
			name:   "younger than a day",
			tags:   []Tag{tag("x1", "sha256:1", 48), tag("x2", "sha256:2", 23)},
			policy: build.RetentionPolicy{Rules: []build.RetentionRule{{TagPattern: "x*", KeepYoungerThan: "24h"}}},
			del:    map[string]string{"x1": "48h0m0s old, not younger than 24h"},
			keep:   map[string]string{"x2": "younger than 24h"},
		},
		{
			name:   "last N or young: either keeps",
			tags:   []Tag{tag("a", "sha256:1", 100), tag("b", "sha256:2", 90), tag("c", "sha256:3", 1)},
			policy: build.RetentionPolicy{Rules: []build.RetentionRule{{TagPattern: "*", KeepLast: 1, KeepYoungerThan: "95h"}}},
			del:    map[string]string{"a": "not among the newest 1"},
			keep:   map[string]string{"b": "younger than 95h", "c": "newest 1 of 3"},
		},
		{
			name:   "unmatched tags are kept",
			tags:   []Tag{tag("main-a", "sha256:a", 40), tag("v9", "sha256:9", 400)},
			policy: build.RetentionPolicy{Rules: []build.RetentionRule{{TagPattern: "main-*", KeepLast: 1}}},
			keep:   map[string]string{"main-a": "newest", "v9": "no rule matches"},
		},
		{
			name: "first matching rule governs",
			tags: []Tag{tag("rel-1", "sha256:1", 50), tag("rel-2", "sha256:2", 40), tag("dev-1", "sha256:3", 30)},
			policy: build.RetentionPolicy{Rules: []build.RetentionRule{
				{TagPattern: "/^rel-\\d+$/", KeepLast: 5}, {TagPattern: "*", KeepLast: 0, KeepYoungerThan: "1h"}}},
			del:  map[string]string{"dev-1": `rule "*"`},
			keep: map[string]string{"rel-1": `rule "/^rel-\\d+$/"`, "rel-2": "newest 1 of 2"},
		},
		{
			name:      "protected tags and their manifest stay",
			tags:      []Tag{tag("latest", "sha256:old", 500), tag("main-old", "sha256:old", 500), tag("main-other", "sha256:x", 400), tag("main-new", "sha256:n", 1), tag("buildcache", "sha256:c", 900)},
			policy:    build.RetentionPolicy{Rules: []build.RetentionRule{{TagPattern: "*", KeepLast: 1}}},
			protected: Protected{"latest": "tag_latest of rule r-1", "buildcache": "registry cache"},
			del:       map[string]string{"main-other": "number 2 of 3"},
			keep: map[string]string{"latest": "protected: tag_latest", "main-old": `same image as kept tag "latest"`,
				"main-new": "newest 1 of 3", "buildcache": "protected: registry cache"},
		},
		{
			name:   "a deleted tag on a kept tag's manifest stays",
			tags:   []Tag{tag("a", "sha256:same", 10), tag("b", "sha256:same", 20), tag("c", "sha256:c", 30)},
			policy: build.RetentionPolicy{Rules: []build.RetentionRule{{TagPattern: "*", KeepLast: 1}}},
			del:    map[string]string{"c": "number 3 of 3"},
			keep:   map[string]string{"a": "newest 1", "b": `same image as kept tag "a"`},
		},
		{
			name:   "unknown age is kept",
			tags:   []Tag{{Name: "noage", Digest: "sha256:z"}, tag("old", "sha256:o", 1000)},
			policy: build.RetentionPolicy{Rules: []build.RetentionRule{{TagPattern: "*", KeepYoungerThan: "1h"}}},
			del:    map[string]string{"old": "not younger than 1h"},
			keep:   map[string]string{"noage": "age unknown"},
		},
		{
			name:   "ties ordered by name",
			tags:   []Tag{tag("t1", "sha256:1", 5), tag("t2", "sha256:2", 5)},
			policy: build.RetentionPolicy{Rules: []build.RetentionRule{{TagPattern: "t?", KeepLast: 1}}},
			del:    map[string]string{"t1": "number 2 of 2"},
			keep:   map[string]string{"t2": "newest 1 of 2"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			plan, err := Select(tt.tags, tt.policy, tt.protected, now)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := names(plan.Delete), keys(tt.del); !reflect.DeepEqual(got, want) {
				t.Errorf("deleted %v, want %v", got, want)
			}
			if got, want := names(plan.Keep), keys(tt.keep); !reflect.DeepEqual(got, want) {
				t.Errorf("kept %v, want %v", got, want)
			}
			for _, d := range plan.Delete {
				if !strings.Contains(d.Reason, tt.del[d.Name]) {
					t.Errorf("delete %s: reason %q lacks %q", d.Name, d.Reason, tt.del[d.Name])
				}
			}
			for _, d := range plan.Keep {
				if !strings.Contains(d.Reason, tt.keep[d.Name]) {
					t.Errorf("keep %s: reason %q lacks %q", d.Name, d.Reason, tt.keep[d.Name])
				}
			}
			kept := map[string]bool{}
			for _, d := range plan.Keep {
				kept[d.Digest] = true
			}
			for _, d := range plan.DeleteDigests() {
				if kept[d] {
					t.Errorf("digest %s is deleted and kept", d)
				}
			}
		})
	}
}

func TestSelectRefusesBadPolicies(t *testing.T) {
	for _, p := range []build.RetentionPolicy{
		{},
		{Rules: []build.RetentionRule{{TagPattern: "*"}}},
		{Rules: []build.RetentionRule{{TagPattern: "", KeepLast: 1}}},
		{Rules: []build.RetentionRule{{TagPattern: "/(/", KeepLast: 1}}},
		{Rules: []build.RetentionRule{{TagPattern: "*", KeepYoungerThan: "soon"}}},
		{Rules: []build.RetentionRule{{TagPattern: "*", KeepLast: -1, KeepYoungerThan: "1h"}}},
		{Rules: []build.RetentionRule{{TagPattern: "*", KeepLast: 1}}, Every: "1s"},
	} {
		if _, err := Select(nil, p, nil, time.Now()); err == nil {
			t.Errorf("Select accepted %+v", p)
		}
	}
}

func TestProtectedTags(t *testing.T) {
	tags := []Tag{{Name: "1.2.3"}, {Name: "1.2"}, {Name: "1"}, {Name: "1.3.0-rc.1"}, {Name: "main-abc"}, {Name: "v1.2.3"}, {Name: "mycache"}}
	tests := []struct {
		name  string
		rules []RuleView
		want  []string
	}{
		{"no rules: the cache only", nil, []string{"buildcache"}},
		{"latest", []RuleView{{ID: "r-1", TagLatest: "default_branch"}}, []string{"buildcache", "latest"}},
		{"semver", []RuleView{{ID: "r-1", Semver: true}}, []string{"1", "1.2", "1.2.3", "1.3.0-rc.1", "buildcache"}},
		{"own cache tag", []RuleView{{ID: "r-1", Cache: "mycache"}}, []string{"buildcache", "mycache"}},
		{"cache image reference", []RuleView{{ID: "r-1", Cache: "127.0.0.1:5000/ns/app:mycache"}}, []string{"buildcache", "mycache"}},
		{"cache off", []RuleView{{ID: "r-1", Cache: "off"}}, []string{"buildcache"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for k := range ProtectedTags(tags, tt.rules) {
				got = append(got, k)
			}
			sort.Strings(got)
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("protected %v, want %v", got, tt.want)
			}
		})
	}
}

func names(ds []Decision) []string {
	out := []string{}
	for _, d := range ds {
		out = append(out, d.Name)
	}
	return out
}

func keys(m map[string]string) []string {
	out := []string{}
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
