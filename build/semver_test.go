package build

import (
	"slices"
	"testing"
)

func TestSemverTags(t *testing.T) {
	for _, c := range []struct {
		tag  string
		want []string
	}{
		{"v1.2.3", []string{"1.2.3", "1.2", "1"}},
		{"1.2.3", []string{"1.2.3", "1.2", "1"}},
		{"v0.10.0", []string{"0.10.0", "0.10", "0"}},
		{"v1.2.3-rc.1", []string{"1.2.3-rc.1"}},
		{"v1.2.3+linux.amd64", []string{"1.2.3", "1.2", "1"}},
		{"v1.2.3-beta+exp.sha.5114f85", []string{"1.2.3-beta"}},
		{"v1.2", nil},
		{"v01.2.3", nil},
		{"release-1.2.3", nil},
		{"1.2.3.4", nil},
		{"V1.2.3", nil},
		{"", nil},
	} {
		t.Run(c.tag, func(t *testing.T) {
			if got := SemverTags(c.tag); !slices.Equal(got, c.want) {
				t.Errorf("SemverTags(%q) = %q, want %q", c.tag, got, c.want)
			}
		})
	}
}
