package gateway

import (
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"strings"
	"testing"
	"time"
)

// with returns a copy of githubRule with the top-level fields of change replaced.
func with(change map[string]any) map[string]any {
	r := githubRule()
	maps.Copy(r, change)
	return r
}

func TestRuleValidation(t *testing.T) {
	t.Parallel()
	h := mockStack(t)
	tm := h.newTeam(t, "valid")
	src := func(provider, owner, repo string) map[string]any {
		return map[string]any{"source": map[string]any{"provider": provider, "owner": owner, "repository": repo}}
	}
	for _, tc := range []struct {
		name string
		body any
		// want is what the message must hold: the field, and what is wrong with it.
		want []string
	}{
		{"unknown provider", with(src("bitbucket", "octo", "hello")), []string{"source.provider", "bitbucket"}},
		{"empty owner", with(src("github", "", "hello")), []string{"source.owner"}},
		{"empty repository", with(src("github", "octo", "")), []string{"source.repository"}},
		{"repository with a slash", with(src("github", "octo", "a/b")), []string{"source.repository"}},
		{"owner leaving its path", with(src("gitlab", "group/../x", "hello")), []string{"source.owner"}},
		{"unknown placeholder", with(map[string]any{"tag_template": "{branch}-{nope}"}), []string{"tag_template", "{nope}"}},
		{"unclosed placeholder", with(map[string]any{"tag_template": "{branch"}), []string{"tag_template"}},
		{"tag template on a branches-only rule", with(map[string]any{
			"triggers": map[string]any{"branches": []string{"main"}}, "tag_template": "{tag}"}), []string{"tag_template", "branch build"}},
		{"branch template on a tags-only rule", with(map[string]any{
			"triggers": map[string]any{"tags": true}, "tag_template": "{branch}"}), []string{"tag_template", "tag build"}},
		{"branch template on a manual-only rule", with(map[string]any{
			"triggers": map[string]any{}, "tag_template": "{branch}"}), []string{"tag_template", "tag build"}},
		{"template rendering no valid tag", with(map[string]any{"tag_template": "-{ref}"}), []string{"tag_template"}},
		{"absolute dockerfile_path", with(map[string]any{"dockerfile_path": "/etc/Dockerfile"}), []string{"dockerfile_path", "absolute"}},
		{"escaping dockerfile_path", with(map[string]any{"dockerfile_path": "build/../../Dockerfile"}), []string{"dockerfile_path", "leaves the repository"}},
		{"dockerfile_path into .git", with(map[string]any{"dockerfile_path": ".git/config"}), []string{"dockerfile_path"}},
		{"absolute context_path", with(map[string]any{"context_path": "/srv"}), []string{"context_path", "absolute"}},
		{"escaping context_path", with(map[string]any{"context_path": ".."}), []string{"context_path", "leaves the repository"}},
		{"build arg starting with a digit", with(map[string]any{"build_args": map[string]string{"1X": "v"}}), []string{"build_args", "1X"}},
		{"build arg with a dash", with(map[string]any{"build_args": map[string]string{"MY-ARG": "v"}}), []string{"build_args", "MY-ARG"}},
		{"empty build arg name", with(map[string]any{"build_args": map[string]string{"": "v"}}), []string{"build_args"}},
		{"timeout not a duration", with(map[string]any{"timeout": "soon"}), []string{"timeout", "soon"}},
		{"negative timeout", with(map[string]any{"timeout": "-5m"}), []string{"timeout"}},
		{"timeout over a day", with(map[string]any{"timeout": "25h"}), []string{"timeout"}},
		{"timeout over the operator's longest", with(map[string]any{"timeout": "3h1m"}), []string{"timeout", "3h1m", "3h0m0s"}},
		{"cache not a reference", with(map[string]any{"cache": "Not A Ref"}), []string{"cache", "Not A Ref"}},
		{"cache in another namespace", with(map[string]any{"cache": "127.0.0.1:5000/victim/app:buildcache"}), []string{"cache", "victim/app", "outside"}},
		{"cache over another namespace's tag", with(map[string]any{"cache": "127.0.0.1:5000/victim/app:latest"}), []string{"cache", "outside"}},
		{"cache in another registry", with(map[string]any{"cache": "registry.example/cache/app:main"}), []string{"cache", "registry.example", "outside"}},
		{"cache at the metadata address", with(map[string]any{"cache": "169.254.169.254/latest/meta-data:x"}), []string{"cache", "outside"}},
		{"cache by digest", with(map[string]any{"cache": "127.0.0.1:5000/victim/app@sha256:" + strings.Repeat("a", 64)}), []string{"cache", "digest"}},
		{"BUILDKIT_SYNTAX build arg", with(map[string]any{"build_args": map[string]string{"BUILDKIT_SYNTAX": "evil.example/frontend"}}), []string{"build_args", "BUILDKIT_SYNTAX", "reserved"}},
		{"BUILDKIT_CACHE_MOUNT_NS build arg", with(map[string]any{"build_args": map[string]string{"BUILDKIT_CACHE_MOUNT_NS": "slipway/victim/app"}}), []string{"BUILDKIT_CACHE_MOUNT_NS", "reserved"}},
		{"lowercase buildkit_ build arg", with(map[string]any{"build_args": map[string]string{"buildkit_inline_cache": "1"}}), []string{"buildkit_inline_cache", "reserved"}},
		{"too many build args", with(map[string]any{"build_args": manyArgs(65, 1)}), []string{"build_args", "65 arguments", "64"}},
		{"build arg name too long", with(map[string]any{"build_args": map[string]string{strings.Repeat("N", 129): "v"}}), []string{"build_args", "129 bytes", "128"}},
		{"build arg value too long", with(map[string]any{"build_args": map[string]string{"BIG": strings.Repeat("v", 4097)}}), []string{"build_args", `"BIG"`, "4097 bytes"}},
		{"build args too large together", with(map[string]any{"build_args": manyArgs(10, 4000)}), []string{"build_args", "in all", "32768"}},
		{"seventeen tags", with(map[string]any{"tag_template": strings.Repeat("{short_commit},", 16) + "latest"}), []string{"tag_template", "17 tags", "16"}},
		{"malformed branch pattern", with(map[string]any{"triggers": map[string]any{"branches": []string{"release/["}}}), []string{"triggers.branches"}},
		{"empty branch", with(map[string]any{"triggers": map[string]any{"branches": []string{""}}}), []string{"triggers.branches"}},
		{"unknown field", with(map[string]any{"dockerfile": "Dockerfile"}), []string{`unknown field "dockerfile"`}},
		{"unknown nested field", with(map[string]any{"source": map[string]any{"provider": "github", "owner": "o", "repository": "r", "url": "x"}}), []string{`unknown field "url"`}},
		{"wrong type", with(map[string]any{"build_args": []string{"A=1"}}), []string{"build_args"}},
		{"not JSON", "{source:", []string{"bad JSON"}},
		{"empty body", "", []string{"empty body"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, method := range []string{"POST", "PUT"} {
				path := tm.rules()
				if method == "PUT" {
					path = tm.rule(h.createRule(t, tm, githubRule()).ID)
				}
				r := h.do(t, method, path, h.writer, tc.body)
				if r.code != 400 {
					t.Fatalf("%s: got %s, want 400", method, r)
				}
				msg := r.errorMessage(t)
				for _, w := range tc.want {
					if !strings.Contains(msg, w) {
						t.Errorf("%s: message %q does not mention %q", method, msg, w)
					}
				}
			}
		})
	}

	t.Run("body over 1 MiB", func(t *testing.T) {
		big := with(map[string]any{"build_args": map[string]string{"BIG": strings.Repeat("x", maxAPIBody)}})
		r := h.do(t, "POST", tm.rules(), h.writer, big)
		expect(t, r, 413, "oversized rule")
		r.errorMessage(t)
	})
	t.Run("missing repository", func(t *testing.T) {
		r := h.do(t, "POST", "/api/v1/namespaces/"+tm.ns+"/repositories/nope/build-rules", h.writer, githubRule())
		expect(t, r, 404, "rule in a missing repository")
		r.errorMessage(t)
	})
	t.Run("valid variants", func(t *testing.T) {
		for _, body := range []map[string]any{
			with(map[string]any{"source": map[string]any{"provider": " GitHub ", "owner": "octo", "repository": "hello"}}),
			with(map[string]any{"source": map[string]any{"provider": "gitlab", "owner": "group/sub", "repository": "hello"}}),
			with(map[string]any{"triggers": map[string]any{"tags": true}, "tag_template": "{tag}, latest"}),
			with(map[string]any{"triggers": map[string]any{}, "tag_template": "{ref}-{time}"}),
			with(map[string]any{"dockerfile_path": "./build/../Dockerfile", "context_path": "src", "timeout": "90m"}),
			with(map[string]any{"cache": "off"}),
			with(map[string]any{"cache": "127.0.0.1:5000/" + tm.ns + "/app:main"}),
			with(map[string]any{"cache": "127.0.0.1:5000/" + tm.ns + "/app:buildcache", "timeout": "3h"}),
			with(map[string]any{"build_args": manyArgs(64, 400), "tag_template": strings.Repeat("{short_commit},", 15) + "latest"}),
			{"source": map[string]any{"provider": "github", "owner": "octo", "repository": "hello"}},
		} {
			c := h.createRule(t, tm, body)
			src := c.View["source"].(map[string]any)
			if p := src["provider"]; p != "github" && p != "gitlab" {
				t.Errorf("provider stored as %q, want it normalized", p)
			}
		}
	})
}

// manyArgs is n build args whose values are size bytes long.
func manyArgs(n, size int) map[string]string {
	out := map[string]string{}
	for i := range n {
		out[fmt.Sprintf("ARG_%d", i)] = strings.Repeat("v", size)
	}
	return out
}

var hex64 = regexp.MustCompile(`^[0-9a-f]{64}$`)

func TestRuleCRUD(t *testing.T) {
	t.Parallel()
	h := mockStack(t)
	tm := h.newTeam(t, "crud")
	c := h.createRule(t, tm, githubRule())

	// The creation answer: the rule, where its hook is, and the secret, once.
	v := c.View
	for _, f := range []string{"id", "namespace", "repository", "source", "triggers", "tag_template", "dockerfile_path",
		"context_path", "build_args", "sanitize_ref", "created_at", "updated_at", "webhook"} {
		if _, ok := v[f]; !ok {
			t.Errorf("created rule lacks %q: %v", f, v)
		}
	}
	if v["namespace"] != tm.ns || v["repository"] != "app" || v["tag_template"] != "{ref}-{short_commit}" ||
		v["dockerfile_path"] != "build/Dockerfile" {
		t.Errorf("created rule %v does not hold what was sent", v)
	}
	if want := h.cfg.GatewayURL + "/webhooks/github/" + c.ID; c.Webhook != want {
		t.Errorf("webhook url %q, want %q", c.Webhook, want)
	}
	if !hex64.MatchString(c.Secret) {
		t.Errorf("webhook secret %q is not 64 hex digits", c.Secret)
	}

	noSecret := func(t *testing.T, rule map[string]any) {
		t.Helper()
		wh, ok := rule["webhook"].(map[string]any)
		if !ok || wh["url"] != c.Webhook {
			t.Errorf("rule shows webhook %v, want url %s", rule["webhook"], c.Webhook)
		}
		if _, ok := wh["secret"]; ok {
			t.Errorf("rule shows its webhook secret: %v", wh)
		}
	}

	// Read it back, alone and in the list.
	r := h.do(t, "GET", tm.rule(c.ID), h.reader, nil)
	expect(t, r, 200, "getting rule")
	var got map[string]any
	r.decode(t, &got)
	noSecret(t, got)
	for k, want := range v {
		// Warnings are the save's answer, not the rule's.
		if k == "webhook" || k == "warnings" {
			continue
		}
		if g, _ := json.Marshal(got[k]); string(g) != mustJSON(want) {
			t.Errorf("GET shows %s = %s, creation answered %s", k, g, mustJSON(want))
		}
	}
	r = h.do(t, "GET", tm.rules(), h.reader, nil)
	expect(t, r, 200, "listing rules")
	var list struct {
		Rules []map[string]any `json:"build_rules"`
	}
	r.decode(t, &list)
	if len(list.Rules) != 1 || list.Rules[0]["id"] != c.ID {
		t.Fatalf("list shows %v, want the one rule", list.Rules)
	}
	noSecret(t, list.Rules[0])

	// Replace it. The id, creation time and secret stay.
	changed := with(map[string]any{
		"triggers":     map[string]any{"branches": []string{"main", "develop"}, "tags": false},
		"tag_template": "{branch}", "build_args": map[string]string{"A": "1"}, "sanitize_ref": true, "timeout": "30m",
	})
	time.Sleep(2 * time.Millisecond)
	r = h.do(t, "PUT", tm.rule(c.ID), h.writer, changed)
	expect(t, r, 200, "updating rule")
	var upd map[string]any
	r.decode(t, &upd)
	noSecret(t, upd)
	if upd["id"] != c.ID || upd["created_at"] != v["created_at"] || upd["updated_at"] == v["updated_at"] {
		t.Errorf("update answered id %v created %v updated %v; want id %s, the same creation time, a new update time",
			upd["id"], upd["created_at"], upd["updated_at"], c.ID)
	}
	r = h.do(t, "GET", tm.rule(c.ID), h.reader, nil)
	expect(t, r, 200, "getting updated rule")
	r.decode(t, &got)
	for k, want := range map[string]string{"tag_template": `"{branch}"`, "build_args": `{"A":"1"}`, "sanitize_ref": "true",
		"timeout": `"30m"`, "triggers": `{"branches":["main","develop"],"tag_patterns":[],"tags":false}`} {
		if g := mustJSON(got[k]); g != want {
			t.Errorf("after the update %s = %s, want %s", k, g, want)
		}
	}

	// A hook signed with the secret of the creation still verifies.
	body := fixture(t, "github/push_branch.json", nil)
	r = h.deliverGitHub(t, c.ID, "push", body, sign(c.Secret, body), "")
	expect(t, r, 202, "webhook after the update")
	if ids := buildIDs(t, r); len(ids) != 1 {
		t.Errorf("webhook after the update started %v, want one build", ids)
	}

	// Delete it: gone for the API and for its hook.
	expect(t, h.do(t, "DELETE", tm.rule(c.ID), h.reader, nil), 403, "deleting as reader")
	expect(t, h.do(t, "DELETE", tm.rule(c.ID), h.writer, nil), 204, "deleting rule")
	expect(t, h.do(t, "GET", tm.rule(c.ID), h.reader, nil), 404, "getting deleted rule")
	expect(t, h.do(t, "PUT", tm.rule(c.ID), h.writer, githubRule()), 404, "updating deleted rule")
	expect(t, h.do(t, "DELETE", tm.rule(c.ID), h.writer, nil), 404, "deleting deleted rule")
	expect(t, h.deliverGitHub(t, c.ID, "push", body, sign(c.Secret, body), ""), 404, "webhook of deleted rule")
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}
