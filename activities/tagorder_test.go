package activities

import (
	"strings"
	"testing"
	"time"
)

func TestMutableTemplate(t *testing.T) {
	tests := []struct {
		template string
		mutable  bool
	}{
		{"", true}, // the default, {ref}
		{"{ref}", true},
		{"{branch}", true},
		{"{tag}", true},
		{"latest", true},
		{" latest ", true},
		{"v1", true},
		{"{branch}-stable", true},
		{"{commit}", false},
		{"{short_commit}", false},
		{"{time}", false},
		{"{branch}-{short_commit}", false},
		{"{ref}-{time}", false},
		{"sha-{commit}", false},
	}
	for _, tt := range tests {
		t.Run(tt.template, func(t *testing.T) {
			if got := MutableTemplate(tt.template); got != tt.mutable {
				t.Errorf("MutableTemplate(%q) = %v, want %v", tt.template, got, tt.mutable)
			}
		})
	}
}

func TestRenderTagsMarksMutable(t *testing.T) {
	res, err := RenderTags(RenderTagInput{
		TagTemplate: "{branch}, {short_commit}, latest, {branch}-{time}, {ref}",
		Ref:         Ref{RefBranch, "main"}, Commit: "0123456789abcdef0123456789abcdef01234567",
		Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(res.Tags, ","), "main,0123456,latest,main-20260102030405"; got != want {
		t.Errorf("tags %s, want %s", got, want)
	}
	if got, want := strings.Join(res.Mutable, ","), "main,latest"; got != want {
		t.Errorf("mutable %s, want %s", got, want)
	}
}

func TestMoveTag(t *testing.T) {
	const old, cur, build = "1111111111111111111111111111111111111111", "2222222222222222222222222222222222222222", "3333333333333333333333333333333333333333"
	tests := []struct {
		name   string
		o      TagOrder
		move   bool
		reason string
	}{
		{"new tag", TagOrder{Build: build}, true, "new tag"},
		{"no revision recorded", TagOrder{Exists: true, Build: build}, true, "records no revision"},
		{"same commit", TagOrder{Exists: true, Current: build, Build: build}, true, "same commit"},
		{"build is newer", TagOrder{Exists: true, Current: cur, Build: build, CurrentIsAncestor: true, CurrentOnRef: true}, true, "newer than " + cur},
		{"build is older", TagOrder{Exists: true, Current: cur, Build: old, BuildIsAncestor: true, CurrentOnRef: true}, false, "which is newer than " + old},
		{"older even when the tag's commit left the ref", TagOrder{Exists: true, Current: cur, Build: old, BuildIsAncestor: true}, false, "newer than"},
		{"unrelated, the tag's commit is on the ref", TagOrder{Exists: true, Current: cur, Build: build, CurrentOnRef: true}, false, "not an ancestor"},
		{"unrelated, the ref was force-pushed", TagOrder{Exists: true, Current: cur, Build: build}, true, "no longer on the ref"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			move, reason := MoveTag(tt.o)
			if move != tt.move || !strings.Contains(reason, tt.reason) {
				t.Errorf("MoveTag = %v %q, want %v with %q", move, reason, tt.move, tt.reason)
			}
		})
	}
}
