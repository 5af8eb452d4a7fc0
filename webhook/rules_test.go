package webhook

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/slipway-dev/slipway/build"
)

// edited returns fixture name with edit applied to its decoded JSON.
func edited(t *testing.T, name string, edit func(m map[string]any)) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(fixture(t, name), &m); err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(m)
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func parsedGitHubPush(t *testing.T, name string, edit func(m map[string]any)) Event {
	t.Helper()
	ev, err := ParseGitHub("push", edited(t, name, edit))
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

func parsedGitLabPush(t *testing.T, hook, name string, edit func(m map[string]any)) Event {
	t.Helper()
	ev, err := ParseGitLab(hook, edited(t, name, edit))
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

// commits makes n GitHub commit objects each changing one file.
func manyCommits(n int) []any {
	var out []any
	for i := 0; i < n; i++ {
		out = append(out, map[string]any{"id": fmt.Sprintf("%040x", i+1), "message": "c", "added": []any{}, "modified": []any{fmt.Sprintf("f%d", i)}, "removed": []any{}})
	}
	return out
}

func TestPushDetails(t *testing.T) {
	tests := []struct {
		name       string
		ev         Event
		files      string
		complete   bool
		incomplete string
		message    string
		defaultBr  string
	}{
		{"github push", parsedGitHubPush(t, "github/push_branch.json", nil), "build/Dockerfile,main.go", true, "", "Say hi", "main"},
		{"github forced push", parsedGitHubPush(t, "github/push_branch.json", func(m map[string]any) { m["forced"] = true }), "build/Dockerfile,main.go", false, "forced", "Say hi", "main"},
		{"github push of 20 commits", parsedGitHubPush(t, "github/push_branch.json", func(m map[string]any) { m["commits"] = manyCommits(20) }), "", false, "lists 20 commits", "Say hi", "main"},
		{"github new branch", parsedGitHubPush(t, "github/push_branch.json", func(m map[string]any) { m["before"] = strings.Repeat("0", 40) }), "", false, "created the ref", "Say hi", "main"},
		{"github commit listing no files", parsedGitHubPush(t, "github/push_branch.json", func(m map[string]any) {
			c := m["commits"].([]any)[1].(map[string]any)
			c["modified"] = []any{}
		}), "", false, "lists no files", "Say hi", "main"},
		{"github tag", parsedGitHubPush(t, "github/push_tag.json", nil), "", false, "created the ref", "Say hi", "main"},
		{"gitlab push with a cut list", parsedGitLabPush(t, "Push Hook", "gitlab/push.json", nil), "CHANGELOG,app/controller/application.rb", false, "lists 2 commits", "fixed readme", "master"},
		{"gitlab push listing every commit", parsedGitLabPush(t, "Push Hook", "gitlab/push.json", func(m map[string]any) { m["total_commits_count"] = 2 }),
			"CHANGELOG,app/controller/application.rb", true, "", "fixed readme", "master"},
		{"gitlab head is the checkout_sha commit", parsedGitLabPush(t, "Push Hook", "gitlab/push.json", func(m map[string]any) {
			m["checkout_sha"] = "b6568db1bc1dcd7f8b4d5a946b0b91f9dacd7327"
		}), "CHANGELOG,app/controller/application.rb", false, "", "Update Catalan translation", "master"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := tt.ev
			if tt.files != "" && strings.Join(ev.Files, ",") != tt.files {
				t.Errorf("Files = %q, want %s", ev.Files, tt.files)
			}
			if ev.FilesComplete != tt.complete || !strings.Contains(ev.Incomplete, tt.incomplete) {
				t.Errorf("FilesComplete = %v (%q), want %v (%q)", ev.FilesComplete, ev.Incomplete, tt.complete, tt.incomplete)
			}
			if !strings.HasPrefix(ev.Message, tt.message) || ev.DefaultBranch != tt.defaultBr {
				t.Errorf("Message %q, DefaultBranch %q; want %q, %q", ev.Message, ev.DefaultBranch, tt.message, tt.defaultBr)
			}
		})
	}
}

func TestRuleMatch(t *testing.T) {
	gh := build.Source{Provider: "github", Owner: "octo", Repository: "hello"}
	gl := build.Source{Provider: "gitlab", Owner: "mike", Repository: "diaspora"}
	ghBranch := func(ref string, edit func(m map[string]any)) Event {
		return parsedGitHubPush(t, "github/push_branch.json", func(m map[string]any) {
			m["ref"] = "refs/heads/" + ref
			if edit != nil {
				edit(m)
			}
		})
	}
	ghTag := func(ref string) Event {
		return parsedGitHubPush(t, "github/push_tag.json", func(m map[string]any) { m["ref"] = "refs/tags/" + ref })
	}
	message := func(msg string) func(m map[string]any) {
		return func(m map[string]any) { m["head_commit"].(map[string]any)["message"] = msg }
	}
	tests := []struct {
		name       string
		rule       Rule
		ev         Event
		build      bool
		reason     string
		captures   string
		computes   bool
		wantEntry  string
		skipReason bool
	}{
		{"regexp branch with a capture", Rule{Source: gh, Triggers: build.Triggers{Branches: []string{"main", `/^release-(\d+)$/`}}},
			ghBranch("release-12", nil), true, `matches "/^release-(\\d+)$/"`, "1=12", false, `/^release-(\d+)$/`, false},
		{"named capture", Rule{Source: gh, Triggers: build.Triggers{Branches: []string{`/^release\/(?P<version>[0-9.]+)$/`}}},
			ghBranch("release/2.1", nil), true, "", "1=2.1,version=2.1", false, "", false},
		{"regexp not matching", Rule{Source: gh, Triggers: build.Triggers{Branches: []string{`/^release-(\d+)$/`}}},
			ghBranch("release-x", nil), false, "not in the rule's branches", "", false, "", false},
		{"double-star glob", Rule{Source: gh, Triggers: build.Triggers{Branches: []string{"feature/**"}}},
			ghBranch("feature/a/b", nil), true, "", "", false, "feature/**", false},
		{"first entry wins", Rule{Source: gh, Triggers: build.Triggers{Branches: []string{"release/*", `/^release\/(.*)$/`}}},
			ghBranch("release/1", nil), true, "", "", false, "release/*", false},
		{"all tags", Rule{Source: gh, Triggers: build.Triggers{Tags: true}}, ghTag("v1.2.0"), true, "tag v1.2.0", "", false, "", false},
		{"tag pattern matching", Rule{Source: gh, Triggers: build.Triggers{Tags: true, TagPatterns: []string{`/^v(\d+)\.(\d+)\.(\d+)$/`}}},
			ghTag("v1.2.0"), true, "", "1=1,2=2,3=0", false, "", false},
		{"tag pattern not matching", Rule{Source: gh, Triggers: build.Triggers{Tags: true, TagPatterns: []string{"v*"}}},
			ghTag("nightly"), false, "matches none of the rule's tag_patterns", "", false, "", false},
		{"tag patterns alone build tags", Rule{Source: gh, Triggers: build.Triggers{TagPatterns: []string{"v*"}}},
			ghTag("v2"), true, "", "", false, "v*", false},
		{"gitlab tag pattern", Rule{Source: build.Source{Provider: "gitlab", Owner: "jsmith", Repository: "example"}, Triggers: build.Triggers{TagPatterns: []string{"v*"}}},
			parsedGitLabPush(t, "Tag Push Hook", "gitlab/tag_push.json", nil), true, "", "", false, "", false},
		{"skip marker", Rule{Source: gh, Triggers: build.Triggers{Branches: []string{"main"}}, SkipMarkers: true},
			ghBranch("main", message("Fix typo [skip ci]")), false, `holds "[skip ci]"`, "", false, "", true},
		{"skip marker, other spelling", Rule{Source: gh, Triggers: build.Triggers{Branches: []string{"main"}}, SkipMarkers: true},
			ghBranch("main", message("Docs\n\n[CI SKIP]")), false, `"[ci skip]"`, "", false, "", true},
		{"skip markers off", Rule{Source: gh, Triggers: build.Triggers{Branches: []string{"main"}}},
			ghBranch("main", message("Fix typo [skip ci]")), true, "", "", false, "", false},
		{"skip marker on a tag builds", Rule{Source: gh, Triggers: build.Triggers{Tags: true}, SkipMarkers: true},
			parsedGitHubPush(t, "github/push_tag.json", message("chore(release): 1.2.0 [skip ci]")), true, "", "", false, "", false},
		{"gitlab skip marker in the checkout_sha commit", Rule{Source: gl, Triggers: build.Triggers{Branches: []string{"master"}}, SkipMarkers: true},
			parsedGitLabPush(t, "Push Hook", "gitlab/push.json", func(m map[string]any) {
				m["commits"].([]any)[1].(map[string]any)["message"] = "fixed readme [skip build]"
			}), false, `"[skip build]"`, "", false, "", true},
		{"gitlab marker in an older commit builds", Rule{Source: gl, Triggers: build.Triggers{Branches: []string{"master"}}, SkipMarkers: true},
			parsedGitLabPush(t, "Push Hook", "gitlab/push.json", func(m map[string]any) {
				m["commits"].([]any)[0].(map[string]any)["message"] = "wip [no ci]"
			}), true, "", "", false, "", false},
		{"paths: all ignored", Rule{Source: gh, Triggers: build.Triggers{Branches: []string{"main"}, Paths: &build.PathFilter{Ignore: []string{"build/", "*.go"}}}},
			ghBranch("main", nil), false, `ignored by triggers.paths.ignore ["*.go", "build/"]`, "", false, "", false},
		{"paths: none included", Rule{Source: gh, Triggers: build.Triggers{Branches: []string{"main"}, Paths: &build.PathFilter{Include: []string{"docs/**"}}}},
			ghBranch("main", nil), false, `no changed file matches triggers.paths.include ["docs/**"]`, "", false, "", false},
		{"paths: included", Rule{Source: gh, Triggers: build.Triggers{Branches: []string{"main"}, Paths: &build.PathFilter{Include: []string{"build/**"}}}},
			ghBranch("main", nil), true, `build/Dockerfile matches triggers.paths.include "build/**"`, "", false, "", false},
		{"paths: forced push decided after the clone", Rule{Source: gh, Triggers: build.Triggers{Branches: []string{"main"}, Paths: &build.PathFilter{Include: []string{"docs/**"}}}},
			ghBranch("main", func(m map[string]any) { m["forced"] = true }), true, "decided after the clone, since the push was forced", "", true, "", false},
		{"paths: 20 commits decided after the clone", Rule{Source: gh, Triggers: build.Triggers{Branches: []string{"main"}, Paths: &build.PathFilter{Include: []string{"docs/**"}}}},
			ghBranch("main", func(m map[string]any) { m["commits"] = manyCommits(20) }), true, "lists 20 commits", "", true, "", false},
		{"paths: gitlab cut list decided after the clone", Rule{Source: gl, Triggers: build.Triggers{Branches: []string{"master"}, Paths: &build.PathFilter{Include: []string{"docs/**"}}}},
			parsedGitLabPush(t, "Push Hook", "gitlab/push.json", nil), true, "decided after the clone", "", true, "", false},
		{"paths: gitlab complete list ignored", Rule{Source: gl, Triggers: build.Triggers{Branches: []string{"master"}, Paths: &build.PathFilter{Ignore: []string{"CHANGELOG", "app/**"}}}},
			parsedGitLabPush(t, "Push Hook", "gitlab/push.json", func(m map[string]any) { m["total_commits_count"] = 2 }), false, "all 2 changed files are ignored", "", false, "", false},
		{"paths do not filter tags", Rule{Source: gh, Triggers: build.Triggers{Tags: true, Paths: &build.PathFilter{Include: []string{"docs/**"}}}},
			ghTag("v1"), true, "", "", false, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := tt.rule.Match(tt.ev)
			if d.Build != tt.build || !strings.Contains(d.Reason, tt.reason) || d.ComputePaths != tt.computes {
				t.Fatalf("Match = %+v, want build %v, reason with %q, compute paths %v", d, tt.build, tt.reason, tt.computes)
			}
			var caps []string
			for _, k := range []string{"1", "2", "3", "version"} {
				if v, ok := d.Captures[k]; ok {
					caps = append(caps, k+"="+v)
				}
			}
			if strings.Join(caps, ",") != tt.captures {
				t.Errorf("captures %v, want %s", d.Captures, tt.captures)
			}
			if tt.wantEntry != "" && d.Entry != tt.wantEntry {
				t.Errorf("entry %q, want %q", d.Entry, tt.wantEntry)
			}
		})
	}
}
