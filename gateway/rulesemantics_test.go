package gateway

import (
	"context"
	"fmt"
	"strings"
	"testing"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/converter"

	"github.com/slipway-dev/slipway/build"
	"github.com/slipway-dev/slipway/internal/testing/providertest"
)

func TestRuleSemanticsValidation(t *testing.T) {
	tm := h.newTeam(t, "sem")
	trg := func(v map[string]any) map[string]any { return map[string]any{"triggers": v} }
	withAll := func(changes ...map[string]any) map[string]any {
		r := githubRule()
		for _, c := range changes {
			for k, v := range c {
				r[k] = v
			}
		}
		return r
	}
	for _, tc := range []struct {
		name string
		body map[string]any
		want []string
	}{
		{"bad regular expression", withAll(trg(map[string]any{"branches": []string{"main", "/^release-(\\d+$/"}})),
			[]string{"triggers.branches", `"/^release-(\\d+$/"`, "RE2"}},
		{"bad tag pattern", withAll(trg(map[string]any{"tags": true, "tag_patterns": []string{"v["}})),
			[]string{"triggers.tag_patterns", `"v["`}},
		{"literal branch no tag can hold", withAll(trg(map[string]any{"branches": []string{"main", "feature/x"}}), map[string]any{"tag_template": "{branch}"}),
			[]string{"triggers.branches", `"feature/x"`, "can never build", "sanitize_ref"}},
		{"literal tag pattern no tag can hold", withAll(trg(map[string]any{"tag_patterns": []string{"release/1"}}), map[string]any{"tag_template": "{tag}"}),
			[]string{"triggers.tag_patterns", `"release/1"`, "sanitize_ref"}},
		{"capture of a missing group", withAll(trg(map[string]any{"branches": []string{"/^release-(\\d+)$/"}}), map[string]any{"tag_template": "rel-{2}"}),
			[]string{"triggers.branches", `"/^release-(\\d+)$/"`, "{2}"}},
		{"capture an exact entry cannot give", withAll(trg(map[string]any{"branches": []string{"main", "/^release-(\\d+)$/"}}), map[string]any{"tag_template": "rel-{1}"}),
			[]string{"triggers.branches", `"main"`, "{1}"}},
		{"capture with every tag", withAll(trg(map[string]any{"tags": true}), map[string]any{"tag_template": "{version}"}),
			[]string{"tag_template", "{version}", "tag_patterns"}},
		{"capture on a manual rule", withAll(trg(map[string]any{}), map[string]any{"tag_template": "{1}"}),
			[]string{"tag_template", "{1}"}},
		{"unknown tag_latest", withAll(map[string]any{"tag_latest": "main"}), []string{"tag_latest", "default_branch"}},
		{"unknown run_policy", withAll(map[string]any{"run_policy": "queue"}), []string{"run_policy", "serial"}},
		{"short reconcile_every", withAll(map[string]any{"reconcile_every": "30s"}), []string{"reconcile_every", "1m"}},
		{"reconcile_every no duration", withAll(map[string]any{"reconcile_every": "hourly"}), []string{"reconcile_every"}},
		{"bad path glob", withAll(trg(map[string]any{"branches": []string{"main"}, "paths": map[string]any{"include": []string{"src/["}}})),
			[]string{"triggers.paths.include", `"src/["`}},
		{"absolute path glob", withAll(trg(map[string]any{"branches": []string{"main"}, "paths": map[string]any{"ignore": []string{"/docs"}}})),
			[]string{"triggers.paths.ignore", "absolute"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := h.do(t, "POST", tm.rules(), h.writer, tc.body)
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

	for _, tc := range []struct {
		name     string
		body     map[string]any
		warnings []string // substrings, one warning each; none when empty
	}{
		{"slash branch without the ref in the tag", withAll(trg(map[string]any{"branches": []string{"feature/x"}}), map[string]any{"tag_template": "{short_commit}"}), nil},
		{"slash branch sanitized", withAll(trg(map[string]any{"branches": []string{"feature/x"}}), map[string]any{"tag_template": "{branch}", "sanitize_ref": true}), nil},
		{"the README's example warns of release/*", githubRule(), []string{`triggers.branches entry "release/*" may match a branch`, "triggers.tags builds every tag"}},
		{"the README's example, fixed", withAll(map[string]any{"sanitize_ref": true}), nil},
		{"anchored regexp with a safe capture", withAll(trg(map[string]any{"branches": []string{"/^release-(\\d+)$/"}}), map[string]any{"tag_template": "rel-{1}-{short_commit}"}), nil},
		{"named capture that may hold a slash", withAll(trg(map[string]any{"branches": []string{"/^team/(?P<topic>.+)$/"}}), map[string]any{"tag_template": "{topic}"}),
			[]string{"capture {topic}"}},
		{"version tags", withAll(trg(map[string]any{"tag_patterns": []string{"/^v(?P<version>\\d+\\.\\d+\\.\\d+)$/"}}), map[string]any{"tag_template": "{version}", "semver": true}), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := h.do(t, "POST", tm.rules(), h.writer, tc.body)
			expect(t, r, 201, "creating rule")
			var v struct {
				Warnings    []string `json:"warnings"`
				SkipMarkers bool     `json:"skip_markers"`
				RunPolicy   string   `json:"run_policy"`
			}
			r.decode(t, &v)
			if len(v.Warnings) != len(tc.warnings) {
				t.Fatalf("warnings %q, want %d", v.Warnings, len(tc.warnings))
			}
			for i, w := range tc.warnings {
				if !strings.Contains(v.Warnings[i], w) || !strings.Contains(v.Warnings[i], "sanitize_ref") {
					t.Errorf("warning %q does not mention %q and the fix", v.Warnings[i], w)
				}
			}
			if !v.SkipMarkers || v.RunPolicy != "parallel" {
				t.Errorf("skip_markers %v, run_policy %q; want the defaults true, parallel", v.SkipMarkers, v.RunPolicy)
			}
		})
	}

	t.Run("new fields read back", func(t *testing.T) {
		body := withAll(trg(map[string]any{"branches": []string{"main"}, "tag_patterns": []string{"v*"},
			"paths": map[string]any{"include": []string{"src/**"}, "ignore": []string{"**/*.md"}}}),
			map[string]any{"tag_latest": "default_branch", "semver": true, "skip_markers": false, "run_policy": "latest_only", "reconcile_every": "5m"})
		created := h.createRule(t, tm, body)
		r := h.do(t, "GET", tm.rule(created.ID), h.reader, nil)
		expect(t, r, 200, "reading rule")
		for _, want := range []string{`"tag_patterns":["v*"]`, `"paths":{"include":["src/**"],"ignore":["**/*.md"]}`, `"tag_latest":"default_branch"`,
			`"semver":true`, `"skip_markers":false`, `"run_policy":"latest_only"`, `"reconcile_every":"5m"`} {
			if !strings.Contains(r.String(), want) {
				t.Errorf("rule %s does not hold %s", r, want)
			}
		}
	})
}

func TestPreviewRule(t *testing.T) {
	tm := h.newTeam(t, "preview")
	path := tm.rules() + "/preview"
	body := githubRule()
	body["triggers"] = map[string]any{"branches": []string{"main", "/^release-(?P<n>\\d+)$/", "feature/**"}, "tag_patterns": []string{"v*"}}
	body["tag_template"] = "{ref}"
	body["semver"] = true
	body["tag_latest"] = "default_branch"
	body["refs"] = map[string]any{"branches": []string{"main", "release-3", "feature/a/b", "develop"}, "tags": []string{"v1.2.3", "nightly"}, "default_branch": "main"}

	t.Run("refs given", func(t *testing.T) {
		r := h.do(t, "POST", path, h.writer, body)
		expect(t, r, 200, "preview")
		var v struct {
			Refs []struct {
				Type, Name, Entry, Reason, Error string
				Matches                          bool
				Tags                             []string
			} `json:"refs"`
			Warnings []string `json:"warnings"`
		}
		r.decode(t, &v)
		got := map[string]string{}
		for _, ref := range v.Refs {
			s := strings.Join(ref.Tags, ",")
			if !ref.Matches {
				s = "no match"
			}
			if ref.Error != "" {
				s = "error: " + ref.Error
			}
			got[ref.Type+" "+ref.Name] = s
		}
		want := map[string]string{
			"branch main":        "main,latest",
			"branch release-3":   "release-3",
			"branch feature/a/b": "error: ",
			"branch develop":     "no match",
			"tag v1.2.3":         "v1.2.3,1.2.3,1.2,1",
			"tag nightly":        "no match",
		}
		for k, w := range want {
			if !strings.HasPrefix(got[k], w) {
				t.Errorf("%s: %q, want %q", k, got[k], w)
			}
		}
		if !strings.Contains(got["branch feature/a/b"], "holds '/'") {
			t.Errorf("feature/a/b: %q, want the character named", got["branch feature/a/b"])
		}
		if len(v.Warnings) == 0 || !strings.Contains(strings.Join(v.Warnings, "\n"), `"feature/**"`) {
			t.Errorf("warnings %q, want one about feature/**", v.Warnings)
		}
	})
	t.Run("a bad rule is a 400", func(t *testing.T) {
		bad := githubRule()
		bad["triggers"] = map[string]any{"branches": []string{"/(/"}}
		bad["refs"] = map[string]any{"branches": []string{"main"}}
		r := h.do(t, "POST", path, h.writer, bad)
		expect(t, r, 400, "preview of a bad rule")
		if msg := r.errorMessage(t); !strings.Contains(msg, "triggers.branches") {
			t.Errorf("message %q does not name the field", msg)
		}
	})
	t.Run("neither refs nor account", func(t *testing.T) {
		r := h.do(t, "POST", path, h.writer, githubRule())
		expect(t, r, 400, "preview without refs")
		r.errorMessage(t)
	})
	t.Run("needs the write role", func(t *testing.T) {
		expect(t, h.do(t, "POST", path, h.reader, body), 403, "preview as a reader")
	})
}

func TestWebhookRuleSemantics(t *testing.T) {
	tm := h.newTeam(t, "whsem")
	body := githubRule()
	body["triggers"] = map[string]any{"branches": []string{"main", "/^release-(\\d+)$/"}, "tags": true,
		"paths": map[string]any{"ignore": []string{"docs/**", "**/*.md"}}}
	body["tag_template"] = "{short_commit}"
	rule := h.createRule(t, tm, body)
	deliver := func(t *testing.T, event string, b []byte, delivery string) response {
		t.Helper()
		return h.deliverGitHub(t, rule.ID, event, b, sign(rule.Secret, b), delivery)
	}
	reason := func(t *testing.T, r response) string {
		t.Helper()
		var v struct {
			Reason string `json:"reason"`
		}
		r.decode(t, &v)
		return v.Reason
	}
	// files sets the payload's commits to one commit changing files.
	files := func(paths ...string) func(map[string]any) {
		return func(m map[string]any) {
			m["commits"] = []any{map[string]any{"id": randomCommit(), "message": "x", "added": []any{}, "removed": []any{}, "modified": paths}}
		}
	}
	push := func(ref string, edits ...func(map[string]any)) []byte {
		return fixture(t, "github/push_branch.json", func(m map[string]any) {
			setCommit(randomCommit())(m)
			m["ref"] = ref
			for _, e := range edits {
				e(m)
			}
		})
	}

	t.Run("skip marker", func(t *testing.T) {
		r := deliver(t, "push", push("refs/heads/main", func(m map[string]any) {
			m["head_commit"].(map[string]any)["message"] = "Fix typo\n\n[skip ci]"
		}), randomHex(16))
		noBuild(t, r, "push saying [skip ci]")
		if why := reason(t, r); !strings.Contains(why, `"[skip ci]"`) {
			t.Errorf("reason %q does not name the marker", why)
		}
	})
	t.Run("all changes ignored", func(t *testing.T) {
		r := deliver(t, "push", push("refs/heads/main", files("docs/a.txt", "README.md")), randomHex(16))
		noBuild(t, r, "push changing docs only")
		if why := reason(t, r); !strings.Contains(why, `triggers.paths.ignore ["**/*.md", "docs/**"]`) {
			t.Errorf("reason %q does not name the ignore entries", why)
		}
	})
	t.Run("a change not ignored builds", func(t *testing.T) {
		oneBuild(t, deliver(t, "push", push("refs/heads/main", files("docs/a.txt", "main.go")), randomHex(16)), "push changing code")
	})
	t.Run("forced push is decided after the clone", func(t *testing.T) {
		r := deliver(t, "push", push("refs/heads/main", files("docs/a.txt"), func(m map[string]any) { m["forced"] = true }), randomHex(16))
		id := oneBuild(t, r, "forced push")
		if why := reason(t, r); !strings.Contains(why, "decided after the clone") {
			t.Errorf("reason %q", why)
		}
		in := h.workflowInput(t, id)
		if in.Paths == nil || len(in.Paths.Ignore) != 2 || in.Before == "" {
			t.Errorf("input paths %+v before %q, want the rule's filter and the push's before", in.Paths, in.Before)
		}
	})
	t.Run("captures reach the input", func(t *testing.T) {
		id := oneBuild(t, deliver(t, "push", push("refs/heads/release-7", files("main.go")), randomHex(16)), "push to release-7")
		if in := h.workflowInput(t, id); in.Captures["1"] != "7" || in.Paths != nil {
			t.Errorf("captures %v, paths %+v; want 1=7 and no paths left to decide", in.Captures, in.Paths)
		}
	})
	t.Run("re-pushed tag builds again", func(t *testing.T) {
		tag := "v" + randomHex(3)
		commit := randomCommit()
		tagPush := func() []byte {
			return fixture(t, "github/push_tag.json", func(m map[string]any) {
				m["ref"] = "refs/tags/" + tag
				setCommit(commit)(m)
			})
		}
		first := oneBuild(t, deliver(t, "push", tagPush(), randomHex(16)), "push of a tag")
		if again := oneBuild(t, deliver(t, "push", tagPush(), randomHex(16)), "redelivered push of a tag"); again != first {
			t.Fatalf("a redelivered tag push started %s after %s", again, first)
		}
		noBuild(t, deliver(t, "create", fixture(t, "github/create_tag.json", func(m map[string]any) { m["ref"] = tag }), randomHex(16)), "create of a tag")
		deletion := fixture(t, "github/push_tag_deleted.json", func(m map[string]any) { m["ref"] = "refs/tags/" + tag })
		noBuild(t, deliver(t, "push", deletion, "deletion-1"), "deletion of a tag")
		second := oneBuild(t, deliver(t, "push", tagPush(), randomHex(16)), "tag pushed again at the same commit")
		if second == first {
			t.Fatalf("the tag pushed again after its deletion answered with the old build %s", first)
		}
		// The same deletion redelivered resets nothing: the tag's push after it is one build.
		noBuild(t, deliver(t, "push", deletion, "deletion-1"), "redelivered deletion")
		if again := oneBuild(t, deliver(t, "push", tagPush(), randomHex(16)), "push after a redelivered deletion"); again != second {
			t.Errorf("push after a redelivered deletion started %s, want %s", again, second)
		}
		commit = randomCommit()
		if moved := oneBuild(t, deliver(t, "push", tagPush(), randomHex(16)), "tag moved"); moved == second {
			t.Errorf("a tag moved to another commit answered with the old build")
		}
		h.expectBuilds(t, ruleQuery(rule.ID)+fmt.Sprintf(" AND GitRef = '%s'", tag), 3)
	})
}

func TestWebhookTagLatest(t *testing.T) {
	tm := h.newTeam(t, "latest")
	gh := githubRule()
	gh["tag_latest"], gh["semver"] = "default_branch", true
	ghRule := h.createRule(t, tm, gh)
	gl := h.createRule(t, tm, map[string]any{
		"source":   map[string]any{"provider": "gitlab", "owner": "mike", "repository": "diaspora"},
		"triggers": map[string]any{"branches": []string{"master", "main"}}, "tag_template": "{short_commit}", "tag_latest": "default_branch",
	})
	for _, tc := range []struct {
		name   string
		id     func() string
		latest bool
		semver bool
	}{
		{"github default branch", func() string {
			b := fixture(t, "github/push_branch.json", setCommit(randomCommit()))
			return oneBuild(t, h.deliverGitHub(t, ghRule.ID, "push", b, sign(ghRule.Secret, b), randomHex(16)), "push to main")
		}, true, true},
		{"github other branch", func() string {
			b := fixture(t, "github/push_branch.json", func(m map[string]any) { setCommit(randomCommit())(m); m["ref"] = "refs/heads/release/1" })
			return oneBuild(t, h.deliverGitHub(t, ghRule.ID, "push", b, sign(ghRule.Secret, b), randomHex(16)), "push to release/1")
		}, false, true},
		{"gitlab default branch", func() string {
			b := fixture(t, "gitlab/push.json", func(m map[string]any) { m["checkout_sha"], m["after"] = randomCommit(), randomCommit() })
			return oneBuild(t, h.deliverGitLab(t, gl.ID, "Push Hook", b, gl.Secret), "gitlab push to master")
		}, true, false},
		{"gitlab default branch elsewhere", func() string {
			b := fixture(t, "gitlab/push.json", func(m map[string]any) {
				m["checkout_sha"], m["after"] = randomCommit(), randomCommit()
				m["project"].(map[string]any)["default_branch"] = "main"
			})
			return oneBuild(t, h.deliverGitLab(t, gl.ID, "Push Hook", b, gl.Secret), "gitlab push to master")
		}, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := h.workflowInput(t, tc.id())
			if in.Latest != tc.latest || in.Semver != tc.semver {
				t.Errorf("latest %v semver %v, want %v %v", in.Latest, in.Semver, tc.latest, tc.semver)
			}
		})
	}
}

// workflowInput reads the input build id was started with.
func (hs *harness) workflowInput(t testing.TB, id string) build.Input {
	t.Helper()
	it := hs.temporal.GetWorkflowHistory(context.Background(), id, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	ev, err := it.Next()
	if err != nil {
		t.Fatalf("reading the history of %s: %v", id, err)
	}
	var in build.Input
	p := ev.GetWorkflowExecutionStartedEventAttributes().GetInput().GetPayloads()
	if len(p) != 1 {
		t.Fatalf("%s started with %d inputs", id, len(p))
	}
	if err := converter.GetDefaultDataConverter().FromPayload(p[0], &in); err != nil {
		t.Fatal(err)
	}
	return in
}

// TestPreviewThroughAccount lists the refs through the rule's account and reads the default
// branch there, for tag_latest.
func TestPreviewThroughAccount(t *testing.T) {
	t.Parallel()
	h := mockStack(t)
	x := newAccountsAPI(t, h)
	const token = "ghp_previewTOKEN0000000000000000"
	x.tokens = []string{token}
	x.github.AddUser("octo", token)
	x.github.AddRepo(providertest.Repo{Owner: "octo", Name: "hello", Private: true, DefaultBranch: "trunk",
		Branches: []providertest.Ref{{Name: "trunk", Commit: providertest.SHA("t")}, {Name: "release-2", Commit: providertest.SHA("r")}, {Name: "wip", Commit: providertest.SHA("w")}},
		Tags:     []providertest.Ref{{Name: "v2.1.0", Commit: providertest.SHA("v")}},
		Admins:   []string{"octo"}})
	tm := h.newTeam(t, "pacct")
	var acct struct{ ID string }
	if code := x.call(t, "POST", "/api/v1/namespaces/"+tm.ns+"/accounts", h.writer, map[string]string{"provider": "github", "token": token}, &acct); code != 201 {
		t.Fatalf("connect: %d", code)
	}
	body := map[string]any{
		"source":       map[string]any{"provider": "github", "owner": "octo", "repository": "hello"},
		"account_id":   acct.ID,
		"triggers":     map[string]any{"branches": []string{"trunk", "/^release-(\\d+)$/"}, "tags": true},
		"tag_template": "{short_commit}", "tag_latest": "default_branch", "semver": true,
	}
	var v struct {
		DefaultBranch string `json:"default_branch"`
		Refs          []struct {
			Name    string   `json:"name"`
			Commit  string   `json:"commit"`
			Matches bool     `json:"matches"`
			Tags    []string `json:"tags"`
		} `json:"refs"`
	}
	if code := x.call(t, "POST", tm.rules()+"/preview", h.writer, body, &v); code != 200 {
		t.Fatalf("preview: %d %+v", code, v)
	}
	got := map[string]string{}
	for _, r := range v.Refs {
		got[r.Name] = fmt.Sprint(r.Matches, r.Tags)
	}
	short := func(s string) string { return providertest.SHA(s)[:7] }
	want := map[string]string{
		"trunk":     fmt.Sprint(true, []string{short("t"), "latest"}),
		"release-2": fmt.Sprint(true, []string{short("r")}),
		"wip":       fmt.Sprint(false, []string{}),
		"v2.1.0":    fmt.Sprint(true, []string{short("v"), "2.1.0", "2.1", "2"}),
	}
	if v.DefaultBranch != "trunk" || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("preview: default branch %q, refs %v; want trunk, %v", v.DefaultBranch, got, want)
	}
}
