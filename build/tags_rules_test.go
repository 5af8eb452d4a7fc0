package build

import (
	"strings"
	"testing"
	"time"
)

// TestRenderTagsRuleSemantics covers the seed's ref rule (a ref no tag can hold fails only
// when the template puts it in the tag), captures, latest and the version tags.
func TestRenderTagsRuleSemantics(t *testing.T) {
	commit := "0123456789abcdef0123456789abcdef01234567"
	at := time.Date(2026, 11, 27, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name    string
		in      RenderTagInput
		want    []string
		mutable []string
		wantErr string
	}{
		{"slash in a branch is fine with short_commit", RenderTagInput{TagTemplate: "{short_commit}", Ref: Ref{RefBranch, "feature/x"}}, []string{"0123456"}, nil, ""},
		{"slash in a branch is fine with time", RenderTagInput{TagTemplate: "{time}", Ref: Ref{RefBranch, "feature/x"}}, []string{"20261127030405"}, nil, ""},
		{"slash in a branch is fine with latest", RenderTagInput{TagTemplate: "latest", Ref: Ref{RefBranch, "feature/x"}}, []string{"latest"}, []string{"latest"}, ""},
		{"slash in a branch is fine with {tag}", RenderTagInput{TagTemplate: "b{tag}", Ref: Ref{RefBranch, "feature/x"}}, []string{"b"}, []string{"b"}, ""},
		{"slash in a branch fails with {ref}", RenderTagInput{TagTemplate: "{ref}-{short_commit}", Ref: Ref{RefBranch, "release/1"}}, nil, nil, "holds '/'"},
		{"slash in a tag fails with {tag}", RenderTagInput{TagTemplate: "{tag}", Ref: Ref{RefTag, "a/b"}}, nil, nil, "holds '/'"},
		{"capture by number", RenderTagInput{TagTemplate: "rel-{1}", Ref: Ref{RefBranch, "release-12"}, Captures: map[string]string{"1": "12"}}, []string{"rel-12"}, []string{"rel-12"}, ""},
		{"capture by name", RenderTagInput{TagTemplate: "{version}-{short_commit}", Ref: Ref{RefBranch, "release/2.1"}, Captures: map[string]string{"1": "2.1", "version": "2.1"}}, []string{"2.1-0123456"}, nil, ""},
		{"capture holding a slash fails", RenderTagInput{TagTemplate: "{1}", Ref: Ref{RefBranch, "team/a/b"}, Captures: map[string]string{"1": "a/b"}}, nil, nil, "capture {1}"},
		{"capture holding a slash sanitized", RenderTagInput{TagTemplate: "{1}", Ref: Ref{RefBranch, "team/a/b"}, Captures: map[string]string{"1": "a/b"}, SanitizeRef: true}, []string{"a-b"}, []string{"a-b"}, ""},
		{"capture not captured", RenderTagInput{TagTemplate: "{2}", Ref: Ref{RefBranch, "main"}, Captures: map[string]string{"1": "x"}}, nil, nil, "unknown placeholder {2}"},
		{"latest added", RenderTagInput{TagTemplate: "{short_commit}", Ref: Ref{RefBranch, "main"}, Latest: true}, []string{"0123456", "latest"}, []string{"latest"}, ""},
		{"latest not repeated", RenderTagInput{TagTemplate: "latest", Ref: Ref{RefBranch, "main"}, Latest: true}, []string{"latest"}, []string{"latest"}, ""},
		{"semver of a version tag", RenderTagInput{TagTemplate: "{tag}", Ref: Ref{RefTag, "v1.2.3"}, Semver: true}, []string{"v1.2.3", "1.2.3", "1.2", "1"}, []string{"v1.2.3", "1.2.3", "1.2", "1"}, ""},
		{"semver of a pre-release", RenderTagInput{TagTemplate: "{short_commit}", Ref: Ref{RefTag, "v2.0.0-rc.1"}, Semver: true}, []string{"0123456", "2.0.0-rc.1"}, []string{"2.0.0-rc.1"}, ""},
		{"semver ignores a branch", RenderTagInput{TagTemplate: "{short_commit}", Ref: Ref{RefBranch, "1.2.3"}, Semver: true}, []string{"0123456"}, nil, ""},
		{"semver ignores a tag that is no version", RenderTagInput{TagTemplate: "{short_commit}", Ref: Ref{RefTag, "nightly"}, Semver: true}, []string{"0123456"}, nil, ""},
		{"too many with the extras", RenderTagInput{TagTemplate: strings.Repeat("a,", 13) + "a", Ref: Ref{RefTag, "v1.2.3"}, Semver: true}, nil, nil, "at most 16"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.in.Commit, tt.in.Time = commit, at
			got, err := RenderTags(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(got.Tags, ",") != strings.Join(tt.want, ",") || strings.Join(got.Mutable, ",") != strings.Join(tt.mutable, ",") {
				t.Fatalf("tags = %q (mutable %q), want %q (mutable %q)", got.Tags, got.Mutable, tt.want, tt.mutable)
			}
		})
	}
}

func TestTemplateCapturesAndCheck(t *testing.T) {
	if got := strings.Join(TemplateCaptures("{1}-{ref},{name}-{1},{short_commit}"), ","); got != "1,name" {
		t.Fatalf("TemplateCaptures = %q", got)
	}
	if err := CheckTemplateCaptures("{1}-{version}", []string{"1", "version"}); err != nil {
		t.Fatal(err)
	}
	if err := CheckTemplateCaptures("{2}", []string{"1"}); err == nil || !strings.Contains(err.Error(), "{2}") {
		t.Fatalf("CheckTemplateCaptures of a missing group = %v", err)
	}
}

func TestPathFilterSelects(t *testing.T) {
	tests := []struct {
		name   string
		filter *PathFilter
		files  []string
		want   bool
		reason string
	}{
		{"no filter", nil, []string{"a"}, true, ""},
		{"all ignored", &PathFilter{Ignore: []string{"docs/", "**/*.md"}}, []string{"docs/a.txt", "README.md", "x/y.md"}, false, `ignored by triggers.paths.ignore ["**/*.md", "docs/"]`},
		{"one not ignored", &PathFilter{Ignore: []string{"**/*.md"}}, []string{"README.md", "main.go"}, true, ""},
		{"included", &PathFilter{Include: []string{"src/**"}}, []string{"README.md", "src/a/b.go"}, true, `src/a/b.go matches triggers.paths.include "src/**"`},
		{"none included", &PathFilter{Include: []string{"src/**"}}, []string{"README.md"}, false, `no changed file matches triggers.paths.include ["src/**"]`},
		{"included but ignored", &PathFilter{Include: []string{"src/**"}, Ignore: []string{"src/**/*_test.go"}}, []string{"src/a_test.go", "README.md"}, false, `others ignored by ["src/**/*_test.go"]`},
		{"star stays in a segment", &PathFilter{Include: []string{"*.go"}}, []string{"cmd/main.go"}, false, "no changed file"},
		{"empty push without include", &PathFilter{Ignore: []string{"docs/"}}, nil, true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, reason := tt.filter.Selects(tt.files)
			if got != tt.want || !strings.Contains(reason, tt.reason) {
				t.Fatalf("Selects = %v, %q; want %v, %q", got, reason, tt.want, tt.reason)
			}
		})
	}
	if err := (&PathFilter{Include: []string{"src/["}}).Check(); err == nil || !strings.Contains(err.Error(), `"src/["`) {
		t.Fatalf("Check of a bad glob = %v", err)
	}
}
