package gateway

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// TestRulePlatforms checks a rule's platforms are saved in normal form, returned, edited and
// cleared, and that nonsense is a 400 naming the platform.
func TestRulePlatforms(t *testing.T) {
	h := devStack(t)
	tm := h.newTeam(t, "plat")
	withPlatforms := func(p ...string) map[string]any {
		r := githubRule()
		r["platforms"] = p
		return r
	}
	platformsOf := func(t *testing.T, v map[string]any) []string {
		t.Helper()
		raw, ok := v["platforms"].([]any)
		if !ok {
			t.Fatalf("rule %v has no platforms list", v)
		}
		out := []string{}
		for _, p := range raw {
			out = append(out, fmt.Sprint(p))
		}
		return out
	}

	for _, tc := range []struct {
		name string
		in   []string
		want []string
	}{
		{"not os/arch", []string{"linux/amd64", "arm64"}, []string{"platforms", `"arm64"`, "OS/ARCH"}},
		{"unknown architecture", []string{"linux/pdp11"}, []string{"platforms", `"pdp11"`, "architecture"}},
		{"unknown os", []string{"haiku/amd64"}, []string{"platforms", `"haiku"`}},
		{"named twice", []string{"linux/arm64", "linux/aarch64"}, []string{"platforms", "linux/arm64", "twice"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := h.do(t, "POST", tm.rules(), h.writer, withPlatforms(tc.in...))
			if r.code != 400 {
				t.Fatalf("got %s, want 400", r)
			}
			msg := r.errorMessage(t)
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("message %q does not mention %q", msg, w)
				}
			}
		})
	}

	c := h.createRule(t, tm, withPlatforms("linux/x86_64", "linux/aarch64"))
	if got, want := platformsOf(t, c.View), []string{"linux/amd64", "linux/arm64"}; !slices.Equal(got, want) {
		t.Fatalf("created with platforms %q, want the normal form %q", got, want)
	}
	var got map[string]any
	r := h.do(t, "GET", tm.rule(c.ID), h.reader, nil)
	expect(t, r, 200, "reading rule")
	r.decode(t, &got)
	if p := platformsOf(t, got); !slices.Equal(p, []string{"linux/amd64", "linux/arm64"}) {
		t.Fatalf("read back platforms %q", p)
	}
	expect(t, h.do(t, "PUT", tm.rule(c.ID), h.writer, withPlatforms("linux/arm/v7")), 200, "editing platforms")
	r = h.do(t, "GET", tm.rule(c.ID), h.reader, nil)
	r.decode(t, &got)
	if p := platformsOf(t, got); !slices.Equal(p, []string{"linux/arm/v7"}) {
		t.Fatalf("after edit platforms %q", p)
	}
	expect(t, h.do(t, "PUT", tm.rule(c.ID), h.writer, githubRule()), 200, "clearing platforms")
	r = h.do(t, "GET", tm.rule(c.ID), h.reader, nil)
	r.decode(t, &got)
	if p := platformsOf(t, got); len(p) != 0 {
		t.Fatalf("after clearing platforms %q, want []", p)
	}
}
