package activities

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestResolvePaths(t *testing.T) {
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "Dockerfile"), []byte("FROM busybox\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	files := map[string]string{
		"Dockerfile":            "FROM busybox\n",
		"build/Dockerfile":      "FROM busybox\n",
		"docs/dockerfile":       "FROM busybox\n",
		"app/main.txt":          "hi\n",
		"link/Dockerfile":       "symlink:../build/Dockerfile",
		"escape/Dockerfile":     "symlink:" + filepath.Join(outside, "Dockerfile"),
		"escapedir":             "symlink:" + outside,
		"build/Dockerfile.prod": "FROM busybox\n",
	}
	for p, c := range files {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if target, ok := strings.CutPrefix(c, "symlink:"); ok {
			if err := os.Symlink(target, full); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(root, ".git"), 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, dockerfile, context string
		wantDF, wantCtx           string
		wantErr                   string
	}{
		{"default at root", "", "", "Dockerfile", ".", ""},
		{"nested", "build/Dockerfile", "", "build/Dockerfile", ".", ""},
		{"other name", "build/Dockerfile.prod", "build", "build/Dockerfile.prod", "build", ""},
		{"cleaned", "./build/../build/Dockerfile", "./app/", "build/Dockerfile", "app", ""},
		{"symlink inside is followed", "link/Dockerfile", "", "build/Dockerfile", ".", ""},
		{"absolute", "/etc/passwd", "", "", "", `dockerfile_path "/etc/passwd" is absolute`},
		{"dotdot escape", "../../etc/passwd", "", "", "", `dockerfile_path "../../etc/passwd" leaves the repository`},
		{"symlink escape", "escape/Dockerfile", "", "", "", `dockerfile_path "escape/Dockerfile" is a symlink that leads out`},
		{"symlinked dir escape", "escapedir/Dockerfile", "", "", "", "leads out"},
		{"context escape", "", "..", "", "", `context_path ".." leaves the repository`},
		{"context symlink escape", "", "escapedir", "", "", `context_path "escapedir" is a symlink that leads out`},
		{"missing", "nope/Dockerfile", "", "", "", `dockerfile_path "nope/Dockerfile": no such file`},
		{"case-sensitive with hint", "docs/Dockerfile", "", "", "", `found "docs/dockerfile": names are case-sensitive`},
		{"a folder is no Dockerfile", "build", "", "", "", "not a regular file"},
		{"context is a file", "", "Dockerfile", "", "", "is not a folder"},
		{"into .git", ".git/config", "", "", "", "points into .git"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ResolvePaths(root, tt.dockerfile, tt.context)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.DockerfilePath != tt.wantDF || got.ContextPath != tt.wantCtx {
				t.Fatalf("got %+v, want dockerfile %q context %q", got, tt.wantDF, tt.wantCtx)
			}
		})
	}
}

func FuzzCheckPath(f *testing.F) {
	for _, s := range []string{"Dockerfile", "../x", "/abs", "a/../../b", ".git/config", "a\x00b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		c, err := cleanRelative(p, "dockerfile_path")
		if err != nil {
			return
		}
		if filepath.IsAbs(c) || c == ".." || strings.HasPrefix(c, "../") {
			t.Fatalf("%q accepted as %q, which leaves the repository", p, c)
		}
	})
}
