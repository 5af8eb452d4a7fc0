package activities

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.temporal.io/sdk/temporal"
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
		"gitlink":               "symlink:.git",
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
		{"context through a symlink into .git", "", "gitlink", "", "", `context_path "gitlink" is a symlink that points into .git`},
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

// FuzzResolvePaths resolves arbitrary Dockerfile and context paths against a fixed checkout
// with symlinks that stay inside, lead out, loop and lead into .git: whatever it accepts lies
// inside the checkout, outside .git, and is a regular file and a folder; whatever it refuses
// is a non-retryable error, since no retry mends a path.
func FuzzResolvePaths(f *testing.F) {
	outside := f.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "Dockerfile"), []byte("FROM busybox\n"), 0o644); err != nil {
		f.Fatal(err)
	}
	root := f.TempDir()
	for p, c := range map[string]string{
		"Dockerfile":        "FROM busybox\n",
		"build/Dockerfile":  "FROM busybox\n",
		"app/main.txt":      "hi\n",
		".git/config":       "[core]\n",
		".git/HEAD":         "ref: refs/heads/main\n",
		"link/Dockerfile":   "symlink:../build/Dockerfile",
		"linkdir":           "symlink:build",
		"up":                "symlink:..",
		"abs":               "symlink:" + outside,
		"escape/Dockerfile": "symlink:" + filepath.Join(outside, "Dockerfile"),
		"loop/a":            "symlink:b",
		"loop/b":            "symlink:a",
		"dotgit":            "symlink:.git",
		"gitconfig":         "symlink:.git/config",
		"self":              "symlink:.",
	} {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			f.Fatal(err)
		}
		if target, ok := strings.CutPrefix(c, "symlink:"); ok {
			if err := os.Symlink(target, full); err != nil {
				f.Fatal(err)
			}
			continue
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			f.Fatal(err)
		}
	}
	realRoot, err := filepath.EvalSymlinks(root)
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range [][2]string{
		{"", ""}, {"build/Dockerfile", "app"}, {"link/Dockerfile", "linkdir"}, {"up/Dockerfile", ""},
		{"abs/Dockerfile", "abs"}, {"escape/Dockerfile", "."}, {"loop/a", "loop"}, {"dotgit/config", "dotgit"},
		{"gitconfig", ""}, {"self/self/Dockerfile", "self/app"}, {"./build/../Dockerfile", "app/.."},
	} {
		f.Add(s[0], s[1])
	}
	inside := func(t *testing.T, field, rel string, wantDir bool) {
		t.Helper()
		if rel != filepath.Clean(rel) || filepath.IsAbs(rel) || rel == ".." || strings.HasPrefix(rel, "../") {
			t.Fatalf("%s resolved to %q, which is not clean and relative inside the checkout", field, rel)
		}
		if rel == ".git" || strings.HasPrefix(rel, ".git/") {
			t.Fatalf("%s resolved to %q, inside .git", field, rel)
		}
		real, err := filepath.EvalSymlinks(filepath.Join(root, rel))
		if err != nil {
			t.Fatalf("%s resolved to %q, which does not resolve: %v", field, rel, err)
		}
		if r, err := filepath.Rel(realRoot, real); err != nil || r == ".." || strings.HasPrefix(r, "../") {
			t.Fatalf("%s resolved to %q, which leads to %s outside the checkout", field, rel, real)
		}
		fi, err := os.Stat(real)
		if err != nil || fi.IsDir() != wantDir || (!wantDir && !fi.Mode().IsRegular()) {
			t.Fatalf("%s resolved to %q: %v %v", field, rel, fi, err)
		}
	}
	f.Fuzz(func(t *testing.T, dockerfile, contextPath string) {
		res, err := ResolvePaths(root, dockerfile, contextPath)
		if err != nil {
			var appErr *temporal.ApplicationError
			if !errors.As(err, &appErr) || !appErr.NonRetryable() {
				t.Fatalf("ResolvePaths(%q, %q) = %v, want a non-retryable error", dockerfile, contextPath, err)
			}
			return
		}
		inside(t, "dockerfile_path", res.DockerfilePath, false)
		inside(t, "context_path", res.ContextPath, true)
	})
}
