// Package gitserver serves Git repositories over the smart HTTP protocol with git
// http-backend, and builds fixture repositories, so tests clone over the real protocol.
package gitserver

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

// Server is a smart-HTTP Git server over the bare repositories in Root, laid out as
// Root/OWNER/REPO.git like github.com.
type Server struct {
	Root string
	URL  string
	srv  *httptest.Server

	mu sync.Mutex
	// seen records every request, so a test can tell which credentials reached this host.
	seen []Request
	// redirects maps a repository's path prefix ("/owner/name.git") to where it moved.
	redirects map[string]string
}

// Request is one request a Server received.
type Request struct {
	Method string
	Path   string
	// Authorization is the request's Authorization header, empty when it had none.
	Authorization string
}

// Requests returns the requests the server has received so far, oldest first.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.seen)
}

// Redirect makes every request for repository owner/name answer 302 to the same path under
// target (a base URL such as another Server's URL), as a Git host does for a moved repository.
func (s *Server) Redirect(owner, name, target string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.redirects["/"+owner+"/"+name+".git"] = strings.TrimSuffix(target, "/")
}

// serve records the request, then redirects it or hands it to h.
func (s *Server) serve(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.seen = append(s.seen, Request{Method: r.Method, Path: r.URL.Path, Authorization: r.Header.Get("Authorization")})
		var target string
		for prefix, to := range s.redirects {
			if r.URL.Path == prefix || strings.HasPrefix(r.URL.Path, prefix+"/") {
				target = to + r.URL.RequestURI()
			}
		}
		s.mu.Unlock()
		if target != "" {
			http.Redirect(w, r, target, http.StatusFound)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// backendPath finds git http-backend, which ships with git.
func backendPath() (string, error) {
	out, err := exec.Command("git", "--exec-path").Output()
	if err != nil {
		return "", fmt.Errorf("finding git exec path: %w", err)
	}
	p := filepath.Join(strings.TrimSpace(string(out)), "git-http-backend")
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("git-http-backend: %w", err)
	}
	return p, nil
}

// Handler serves the bare repositories under root. When user is not empty, every request
// must carry basic auth with that user and password.
func Handler(root, user, password string) (http.Handler, error) {
	backend, err := backendPath()
	if err != nil {
		return nil, err
	}
	h := &cgi.Handler{
		Path: backend,
		Root: "/",
		Env: []string{
			"GIT_PROJECT_ROOT=" + root,
			"GIT_HTTP_EXPORT_ALL=1",
			"GIT_CONFIG_NOSYSTEM=1",
			"GIT_CONFIG_GLOBAL=/dev/null",
		},
	}
	if user == "" {
		return h, nil
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		if !ok || u != user || p != password {
			w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
			http.Error(w, "authentication required", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	}), nil
}

// Start serves a new empty root on a loopback port until the test ends.
func Start(tb testing.TB) *Server {
	tb.Helper()
	return StartAuth(tb, "", "")
}

// StartAuth is Start with every request required to carry basic auth as user and password,
// like a private repository on a Git host.
func StartAuth(tb testing.TB, user, password string) *Server {
	tb.Helper()
	root := tb.TempDir()
	h, err := Handler(root, user, password)
	if err != nil {
		tb.Fatal(err)
	}
	s := &Server{Root: root, redirects: map[string]string{}}
	s.srv = httptest.NewServer(s.serve(h))
	tb.Cleanup(s.srv.Close)
	s.URL = s.srv.URL
	return s
}

// Repo is a working repository whose commits are pushed to a bare one the server serves.
type Repo struct {
	tb   testing.TB
	Dir  string
	Bare string
	// CloneURL is the repository's smart-HTTP URL.
	CloneURL string
}

// NewRepo creates OWNER/NAME on the server, with an empty history.
func (s *Server) NewRepo(tb testing.TB, owner, name string) *Repo {
	tb.Helper()
	bare := filepath.Join(s.Root, owner, name+".git")
	r := &Repo{tb: tb, Dir: tb.TempDir(), Bare: bare, CloneURL: s.URL + "/" + owner + "/" + name + ".git"}
	if err := os.MkdirAll(bare, 0o755); err != nil {
		tb.Fatal(err)
	}
	r.git(bare, "init", "-q", "--bare", "--initial-branch=main")
	r.git(r.Dir, "init", "-q", "--initial-branch=main")
	r.git(r.Dir, "remote", "add", "origin", bare)
	return r
}

// Commit writes files (path to content; a content starting with "symlink:" makes a symlink
// to the rest) on branch, commits and pushes, and returns the commit id.
func (r *Repo) Commit(branch string, files map[string]string) string {
	r.tb.Helper()
	if out := r.gitOut(r.Dir, "branch", "--list", branch); out == "" && r.gitOut(r.Dir, "rev-parse", "--verify", "-q", "HEAD") != "" {
		r.git(r.Dir, "checkout", "-q", "-b", branch)
	} else if out == "" {
		r.git(r.Dir, "checkout", "-q", "--orphan", branch)
	} else {
		r.git(r.Dir, "checkout", "-q", branch)
	}
	for p, content := range files {
		full := filepath.Join(r.Dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			r.tb.Fatal(err)
		}
		os.Remove(full)
		if target, ok := strings.CutPrefix(content, "symlink:"); ok {
			if err := os.Symlink(target, full); err != nil {
				r.tb.Fatal(err)
			}
			continue
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			r.tb.Fatal(err)
		}
	}
	r.git(r.Dir, "add", "-A")
	r.git(r.Dir, "-c", "user.name=Slipway Test", "-c", "user.email=test@slipway.invalid", "commit", "-q", "--allow-empty", "-m", "commit on "+branch)
	r.git(r.Dir, "push", "-q", "origin", "HEAD:refs/heads/"+branch)
	return r.gitOut(r.Dir, "rev-parse", "HEAD")
}

// Tag tags the head of branch and pushes the tag; annotated tags point at a tag object.
func (r *Repo) Tag(branch, tag string, annotated bool) {
	r.tb.Helper()
	args := []string{"-c", "user.name=Slipway Test", "-c", "user.email=test@slipway.invalid", "tag"}
	if annotated {
		args = append(args, "-a", "-m", "release "+tag)
	}
	r.git(r.Dir, append(args, tag, branch)...)
	r.git(r.Dir, "push", "-q", "origin", "refs/tags/"+tag)
}

// PlantEntry pushes to branch a commit that git itself would never make: its tree holds a
// Dockerfile and a folder named dir (such as ".." or ".GIT") with file in it. Hostile-input
// tests use it; git refuses to check such a tree out.
func (r *Repo) PlantEntry(branch, dir, file, content string) string {
	r.tb.Helper()
	blob := r.gitIn(r.Dir, content, "hash-object", "-w", "--stdin")
	df := r.gitIn(r.Dir, "FROM busybox\n", "hash-object", "-w", "--stdin")
	inner := r.gitIn(r.Dir, fmt.Sprintf("100755 blob %s\t%s\n", blob, file), "mktree")
	top := r.gitIn(r.Dir, fmt.Sprintf("040000 tree %s\t%s\n100644 blob %s\tDockerfile\n", inner, dir, df), "mktree")
	commit := r.gitIn(r.Dir, "", "-c", "user.name=Slipway Test", "-c", "user.email=test@slipway.invalid", "commit-tree", "-m", "plant "+dir, top)
	r.git(r.Dir, "push", "-q", "origin", commit+":refs/heads/"+branch)
	return commit
}

// gitIn runs git with stdin and returns its trimmed output.
func (r *Repo) gitIn(dir, stdin string, args ...string) string {
	r.tb.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null")
	cmd.Stdin = strings.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		r.tb.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return strings.TrimSpace(string(out))
}

func (r *Repo) git(dir string, args ...string) {
	r.tb.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		r.tb.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out.String())
	}
}

func (r *Repo) gitOut(dir string, args ...string) string {
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null")
	out, _ := cmd.Output()
	return strings.TrimSpace(string(out))
}
