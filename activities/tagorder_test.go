package activities

import (
	"strings"
	"testing"
)

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
