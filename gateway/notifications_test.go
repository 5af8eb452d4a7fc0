package gateway

import (
	"regexp"
	"strings"
	"testing"
)

func TestNotificationValidation(t *testing.T) {
	t.Parallel()
	h := mockStack(t)
	tm := h.newTeam(t, "nval")
	foreign := h.foreignTeam(t, "nvalf")
	otherRule := h.storeRule(t, foreign.ns, "github")
	path := "/api/v1/namespaces/" + tm.ns + "/notifications"
	for _, tc := range []struct {
		name string
		body map[string]any
		want string
	}{
		{"no url", map[string]any{"events": []string{"failed"}}, "url"},
		{"ftp url", map[string]any{"url": "ftp://hooks.example/x", "events": []string{"failed"}}, "not http or https"},
		{"credentials in the url", map[string]any{"url": "https://user:pw@hooks.example/x", "events": []string{"failed"}}, "credentials"},
		{"relative url", map[string]any{"url": "/hooks", "events": []string{"failed"}}, "not http or https"},
		{"no events", map[string]any{"url": "https://hooks.example/x", "events": []string{}}, "events is empty"},
		{"unknown event", map[string]any{"url": "https://hooks.example/x", "events": []string{"exploded"}}, `"exploded"`},
		{"event twice", map[string]any{"url": "https://hooks.example/x", "events": []string{"failed", "failed"}}, "twice"},
		{"unknown format", map[string]any{"url": "https://hooks.example/x", "events": []string{"failed"}, "format": "xml"}, `"xml"`},
		{"rule of another namespace", map[string]any{"url": "https://hooks.example/x", "events": []string{"failed"}, "rule_id": otherRule.ID}, "is not a build rule of namespace"},
		{"no rule id", map[string]any{"url": "https://hooks.example/x", "events": []string{"failed"}, "rule_id": "../x"}, "is not a build rule"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := h.do(t, "POST", path, h.writer, tc.body)
			expect(t, r, 400, tc.name)
			if msg := r.errorMessage(t); !strings.Contains(msg, tc.want) {
				t.Fatalf("message %q does not say %q", msg, tc.want)
			}
		})
	}
}

// TestNotificationSecretShownOnce checks that the signing secret is in the answers that make
// it and in no other.
func TestNotificationSecretShownOnce(t *testing.T) {
	t.Parallel()
	h := mockStack(t)
	tm := h.newTeam(t, "nsec")
	rule := h.createRule(t, tm, githubRule())
	path := "/api/v1/namespaces/" + tm.ns + "/notifications"
	r := h.do(t, "POST", path, h.writer, map[string]any{"url": "https://hooks.example/x?team=1", "events": []string{"failed", "succeeded"}, "rule_id": rule.ID, "format": "slack"})
	expect(t, r, 201, "creating a notification")
	var created struct{ ID, Secret string }
	var v map[string]any
	r.decode(t, &v)
	created.ID, _ = v["id"].(string)
	created.Secret, _ = v["secret"].(string)
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(created.Secret) || v["format"] != "slack" || v["rule_id"] != rule.ID || v["created_by"] != "writer" {
		t.Fatalf("created %s", r)
	}
	for _, p := range []string{path, path + "/" + created.ID} {
		r := h.do(t, "GET", p, h.reader, nil)
		expect(t, r, 200, "reading "+p)
		if strings.Contains(string(r.body), created.Secret) || strings.Contains(string(r.body), `"secret"`) {
			t.Fatalf("GET %s shows the secret: %s", p, r)
		}
		// A receiver's path and query are often its credential: readers see the host only.
		if strings.Contains(string(r.body), "team=1") || !strings.Contains(string(r.body), `"https://hooks.example/…"`) {
			t.Fatalf("GET %s shows a reader the receiver's URL: %s", p, r)
		}
		w := h.do(t, "GET", p, h.writer, nil)
		if !strings.Contains(string(w.body), "hooks.example/x?team=1") {
			t.Fatalf("GET %s hides the URL from a writer: %s", p, w)
		}
	}
	r = h.do(t, "PUT", path+"/"+created.ID, h.writer, map[string]any{"url": "https://hooks.example/y", "events": []string{"started"}})
	expect(t, r, 200, "updating")
	if strings.Contains(string(r.body), created.Secret) || !strings.Contains(string(r.body), `"format":"json"`) {
		t.Fatalf("update answered %s", r)
	}
	r = h.do(t, "POST", path+"/"+created.ID+"/secret", h.writer, nil)
	expect(t, r, 200, "rotating")
	var rot map[string]any
	r.decode(t, &rot)
	if s, _ := rot["secret"].(string); len(s) != 64 || s == created.Secret {
		t.Fatalf("rotation answered %s", r)
	}
	r = h.do(t, "GET", path+"/"+created.ID, h.reader, nil)
	var got struct {
		Deliveries []any `json:"deliveries"`
	}
	r.decode(t, &got)
	if got.Deliveries == nil {
		t.Fatalf("no delivery log in %s", r)
	}
	expect(t, h.do(t, "DELETE", path+"/"+created.ID, h.writer, nil), 204, "deleting")
	expect(t, h.do(t, "GET", path+"/"+created.ID, h.reader, nil), 404, "reading a deleted notification")
}

// TestBadge checks a rule's badge: its URL on the rule, an SVG with short caching and no
// sign-in, a 404 for any other token, and a new URL after rotation.
func TestBadge(t *testing.T) {
	t.Parallel()
	h := devStack(t)
	tm := h.newTeam(t, "badge")
	rule := h.createRule(t, tm, githubRule())
	r := h.do(t, "GET", tm.rule(rule.ID), h.reader, nil)
	var v struct {
		Badge struct {
			URL string `json:"url"`
		} `json:"badge"`
	}
	r.decode(t, &v)
	m := regexp.MustCompile(`/badges/([a-z2-7]{32})\.svg$`).FindStringSubmatch(v.Badge.URL)
	if m == nil {
		t.Fatalf("rule shows badge %q", v.Badge.URL)
	}
	path := "/badges/" + m[1] + ".svg"
	for _, q := range []string{"", "?branch=main"} {
		r = h.do(t, "GET", path+q, "", nil)
		expect(t, r, 200, "reading the badge")
		if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "image/svg+xml") {
			t.Errorf("Content-Type %q", ct)
		}
		if cc := r.header.Get("Cache-Control"); cc != "public, max-age=30" {
			t.Errorf("Cache-Control %q", cc)
		}
		if !strings.HasPrefix(string(r.body), "<svg") || !strings.Contains(string(r.body), ">unknown</text>") {
			t.Fatalf("badge of a rule without builds: %s", r.body)
		}
	}
	expect(t, h.do(t, "GET", "/badges/"+strings.Repeat("a", 32)+".svg", "", nil), 404, "an unknown token")
	expect(t, h.do(t, "GET", "/badges/"+m[1], "", nil), 404, "no .svg")
	expect(t, h.do(t, "GET", path+"?branch=it's", "", nil), 400, "a branch no query can hold")
	expect(t, h.do(t, "POST", tm.rule(rule.ID)+"/badge-token", h.reader, nil), 403, "a reader rotating")
	r = h.do(t, "POST", tm.rule(rule.ID)+"/badge-token", h.writer, nil)
	expect(t, r, 200, "rotating")
	r.decode(t, &v)
	if strings.HasSuffix(v.Badge.URL, path) {
		t.Fatalf("rotation kept %s", v.Badge.URL)
	}
	expect(t, h.do(t, "GET", path, "", nil), 404, "the old badge")
}

func TestBadgeSVG(t *testing.T) {
	for _, state := range []string{"passing", "failing", "canceled", "unknown"} {
		t.Run(state, func(t *testing.T) {
			svg := badgeSVG("build", state)
			if !strings.Contains(svg, ">"+state+"</text>") || !strings.Contains(svg, badgeColors[state]) || strings.Count(svg, "<svg") != 1 || !strings.HasSuffix(svg, "</svg>") {
				t.Fatalf("badge %s: %s", state, svg)
			}
		})
	}
}
