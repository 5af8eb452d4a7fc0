package build

import (
	"path/filepath"
	"strings"
	"testing"
)

func FuzzCheckPath(f *testing.F) {
	for _, s := range []string{"Dockerfile", "../x", "/abs", "a/../../b", ".git/config", "a\x00b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		c, err := CleanPath(p, "dockerfile_path")
		if err != nil {
			return
		}
		if filepath.IsAbs(c) || c == ".." || strings.HasPrefix(c, "../") {
			t.Fatalf("%q accepted as %q, which leaves the repository", p, c)
		}
	})
}
