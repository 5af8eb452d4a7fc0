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

// New serves the bare repositories under root on a loopback port until Close; when user is
// not empty, every request must carry basic auth with that user and password. It needs no
// testing.TB, so a benchmark or a tool serves fixtures with it too.
func New(root, user, password string) (*Server, error) {
	h, err := Handler(root, user, password)
	if err != nil {
		return nil, err
	}
	s := &Server{Root: root, redirects: map[string]string{}}
	s.srv = httptest.NewServer(s.serve(h))
	s.URL = s.srv.URL
	return s, nil
}

// Close stops serving and waits for the requests in flight.
func (s *Server) Close() {
	if s.srv != nil {
		s.srv.Close()
	}
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
	s, err := New(tb.TempDir(), user, password)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(s.Close)
	return s
}

// Repository is a working repository in Dir whose commits are pushed to the bare one the
// server serves. Its methods return errors; Repo wraps it for tests.
type Repository struct {
	Dir  string
	Bare string
	// CloneURL is the repository's smart-HTTP URL.
	CloneURL string
}

// CreateRepository creates OWNER/NAME on the server, with an empty history, and its working
// repository in dir (an empty or missing folder).
func (s *Server) CreateRepository(owner, name, dir string) (*Repository, error) {
	bare := filepath.Join(s.Root, owner, name+".git")
	r := &Repository{Dir: dir, Bare: bare, CloneURL: s.URL + "/" + owner + "/" + name + ".git"}
	for _, d := range []string{bare, dir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("creating repository %s/%s: %w", owner, name, err)
		}
	}
	for _, step := range [][]string{
		{bare, "init", "-q", "--bare", "--initial-branch=main"},
		{dir, "init", "-q", "--initial-branch=main"},
		{dir, "remote", "add", "origin", bare},
	} {
		if _, err := git(step[0], "", step[1:]...); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// Commit writes files (path to content; a content starting with "symlink:" makes a symlink
// to the rest) on branch, commits and pushes, and returns the commit id.
func (r *Repository) Commit(branch string, files map[string]string) (string, error) {
	listed, _ := git(r.Dir, "", "branch", "--list", branch)
	head, _ := git(r.Dir, "", "rev-parse", "--verify", "-q", "HEAD")
	checkout := []string{"checkout", "-q", branch}
	switch {
	case listed == "" && head != "":
		checkout = []string{"checkout", "-q", "-b", branch}
	case listed == "":
		checkout = []string{"checkout", "-q", "--orphan", branch}
	}
	if _, err := git(r.Dir, "", checkout...); err != nil {
		return "", err
	}
	for p, content := range files {
		full := filepath.Join(r.Dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return "", err
		}
		os.Remove(full)
		if target, ok := strings.CutPrefix(content, "symlink:"); ok {
			if err := os.Symlink(target, full); err != nil {
				return "", err
			}
			continue
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			return "", err
		}
	}
	for _, args := range [][]string{
		{"add", "-A"},
		{"-c", "user.name=Slipway Test", "-c", "user.email=test@slipway.invalid", "commit", "-q", "--allow-empty", "-m", "commit on " + branch},
		{"push", "-q", "origin", "HEAD:refs/heads/" + branch},
	} {
		if _, err := git(r.Dir, "", args...); err != nil {
			return "", err
		}
	}
	return git(r.Dir, "", "rev-parse", "HEAD")
}

// Tag tags the head of branch and pushes the tag; annotated tags point at a tag object.
func (r *Repository) Tag(branch, tag string, annotated bool) error {
	args := []string{"-c", "user.name=Slipway Test", "-c", "user.email=test@slipway.invalid", "tag"}
	if annotated {
		args = append(args, "-a", "-m", "release "+tag)
	}
	if _, err := git(r.Dir, "", append(args, tag, branch)...); err != nil {
		return err
	}
	_, err := git(r.Dir, "", "push", "-q", "origin", "refs/tags/"+tag)
	return err
}

// PlantEntry pushes to branch a commit that git itself would never make: its tree holds a
// Dockerfile and a folder named dir (such as ".." or ".GIT") with file in it. Hostile-input
// tests use it; git refuses to check such a tree out.
func (r *Repository) PlantEntry(branch, dir, file, content string) (string, error) {
	var err error
	obj := func(stdin string, args ...string) string {
		if err != nil {
			return ""
		}
		var out string
		out, err = git(r.Dir, stdin, args...)
		return out
	}
	blob := obj(content, "hash-object", "-w", "--stdin")
	df := obj("FROM busybox\n", "hash-object", "-w", "--stdin")
	inner := obj(fmt.Sprintf("100755 blob %s\t%s\n", blob, file), "mktree")
	top := obj(fmt.Sprintf("040000 tree %s\t%s\n100644 blob %s\tDockerfile\n", inner, dir, df), "mktree")
	commit := obj("", "-c", "user.name=Slipway Test", "-c", "user.email=test@slipway.invalid", "commit-tree", "-m", "plant "+dir, top)
	obj("", "push", "-q", "origin", commit+":refs/heads/"+branch)
	return commit, err
}

// git runs git in dir with stdin, isolated from the machine's and the user's git config, and
// returns its trimmed output.
func git(dir, stdin string, args ...string) (string, error) {
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null")
	cmd.Stdin = strings.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("git %s: %w\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return strings.TrimSpace(string(out)), nil
}

// Repo is a Repository for a test: its methods end the test when git fails.
type Repo struct {
	*Repository
	tb testing.TB
}

// NewRepo creates OWNER/NAME on the server, with an empty history.
func (s *Server) NewRepo(tb testing.TB, owner, name string) *Repo {
	tb.Helper()
	r, err := s.CreateRepository(owner, name, tb.TempDir())
	if err != nil {
		tb.Fatal(err)
	}
	return &Repo{Repository: r, tb: tb}
}

// Commit is Repository.Commit, failing the test on error.
func (r *Repo) Commit(branch string, files map[string]string) string {
	r.tb.Helper()
	id, err := r.Repository.Commit(branch, files)
	if err != nil {
		r.tb.Fatal(err)
	}
	return id
}

// Tag is Repository.Tag, failing the test on error.
func (r *Repo) Tag(branch, tag string, annotated bool) {
	r.tb.Helper()
	if err := r.Repository.Tag(branch, tag, annotated); err != nil {
		r.tb.Fatal(err)
	}
}

// PlantEntry is Repository.PlantEntry, failing the test on error.
func (r *Repo) PlantEntry(branch, dir, file, content string) string {
	r.tb.Helper()
	id, err := r.Repository.PlantEntry(branch, dir, file, content)
	if err != nil {
		r.tb.Fatal(err)
	}
	return id
}
