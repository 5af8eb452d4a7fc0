package activities

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/slipway-dev/slipway/build"
	"github.com/slipway-dev/slipway/gitcache"
	"github.com/slipway-dev/slipway/internal/testing/gitserver"
	"github.com/slipway-dev/slipway/logstore"
)

// cloneModes are the two ways a worker clones: afresh into each workspace, and through the
// host's git cache. The clone tests run in both.
var cloneModes = []struct {
	name    string
	sources func(t *testing.T) *gitcache.Cache
}{
	{"fresh", func(*testing.T) *gitcache.Cache { return nil }},
	{"cached", newTestCache},
}

func newTestCache(t *testing.T) *gitcache.Cache {
	t.Helper()
	c, err := gitcache.New(t.TempDir(), 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// exactTree fails the test unless dir is a checkout of commit with nothing more and nothing
// less than the commit's tree: no file changed, none missing, none untracked or ignored.
func exactTree(t *testing.T, dir, commit string) {
	t.Helper()
	head := gitOut(t, dir, "rev-parse", "HEAD")
	if head != commit {
		t.Fatalf("checkout is at %s, want %s", head, commit)
	}
	if st := gitOut(t, dir, "status", "--porcelain", "--ignored", "--untracked-files=all"); st != "" {
		t.Fatalf("checkout differs from %s:\n%s", commit, st)
	}
}

func gitOut(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(cmd.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s in %s: %v\n%s", strings.Join(args, " "), dir, err, out)
	}
	return strings.TrimSpace(string(out))
}

// cacheRig is a git server, a repository on it, and a worker's activities with a git cache.
type cacheRig struct {
	t    *testing.T
	srv  *gitserver.Server
	repo *gitserver.Repo
	act  *Activities
	src  build.Source
	main build.Ref
}

func newCacheRig(t *testing.T) *cacheRig {
	t.Helper()
	srv := gitserver.Start(t)
	repo := srv.NewRepo(t, "octo", "cached")
	logs, err := logstore.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	act := &Activities{
		WorkspaceRoot: t.TempDir(), Logs: logs, LogURLBase: "http://gw/api/v1/builds",
		CloneBaseURLs: map[string]string{"github": srv.URL}, Sources: newTestCache(t),
	}
	return &cacheRig{t: t, srv: srv, repo: repo, act: act,
		src: build.Source{Provider: "github", Owner: "octo", Repository: "cached"}, main: build.Ref{Type: build.RefBranch, Name: "main"}}
}

// clone runs the Clone activity for ns into workspace ws and returns its result or error.
func (r *cacheRig) clone(ns, ws string, commit string) (CloneResult, error) {
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestActivityEnvironment()
	env.RegisterActivity(r.act)
	val, err := env.ExecuteActivity(r.act.Clone, CloneInput{Workspace: ws, Namespace: ns, Source: r.src, Ref: r.main, Commit: commit})
	if err != nil {
		return CloneResult{}, err
	}
	var res CloneResult
	err = val.Get(&res)
	return res, err
}

// mustClone clones and checks the checkout is exactly want's tree.
func (r *cacheRig) mustClone(ns, ws, want string) string {
	r.t.Helper()
	res, err := r.clone(ns, ws, "")
	if err != nil {
		r.t.Fatalf("clone into %s: %v", ws, err)
	}
	if res.Commit != want {
		r.t.Fatalf("clone into %s: commit %s, want %s", ws, res.Commit, want)
	}
	exactTree(r.t, r.checkout(ws), want)
	return r.checkout(ws)
}

func (r *cacheRig) checkout(ws string) string {
	return filepath.Join(r.act.WorkspaceRoot, ws, checkoutDir)
}

// cleanup ends a build as the workflow does, giving its slot back.
func (r *cacheRig) cleanup(ws string) {
	r.t.Helper()
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestActivityEnvironment()
	env.RegisterActivity(r.act)
	if _, err := env.ExecuteActivity(r.act.Cleanup, CleanupInput{Workspace: ws}); err != nil {
		r.t.Fatal(err)
	}
}

// fetches counts the pack requests (git-upload-pack POSTs) the server has answered.
func (r *cacheRig) fetches() int {
	n := 0
	for _, q := range r.srv.Requests() {
		if q.Method == "POST" && strings.HasSuffix(q.Path, "/git-upload-pack") {
			n++
		}
	}
	return n
}

// forcePush replaces the branch's history: its head becomes a new commit on top of base.
func (r *cacheRig) forcePush(branch, base string, files map[string]string) string {
	r.t.Helper()
	for _, args := range [][]string{{"checkout", "-q", branch}, {"reset", "-q", "--hard", base}} {
		gitOut(r.t, r.repo.Dir, args...)
	}
	for p, c := range files {
		if err := os.WriteFile(filepath.Join(r.repo.Dir, p), []byte(c), 0o644); err != nil {
			r.t.Fatal(err)
		}
	}
	gitOut(r.t, r.repo.Dir, "add", "-A")
	gitOut(r.t, r.repo.Dir, "-c", "user.name=T", "-c", "user.email=t@slipway.invalid", "commit", "-q", "-m", "rewritten")
	gitOut(r.t, r.repo.Dir, "push", "-q", "-f", "origin", "HEAD:refs/heads/"+branch)
	return gitOut(r.t, r.repo.Dir, "rev-parse", "HEAD")
}

func realPath(t *testing.T, p string) string {
	t.Helper()
	r, err := filepath.EvalSymlinks(p)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestCloneCachedReusesSlot(t *testing.T) {
	r := newCacheRig(t)
	c1 := r.repo.Commit("main", map[string]string{"Dockerfile": "FROM busybox\n", "keep.txt": "same\n", "change.txt": "one\n"})
	dir := r.mustClone("team", "b1", c1)
	slot := realPath(t, dir)
	keep, err := os.Stat(filepath.Join(slot, "keep.txt"))
	if err != nil {
		t.Fatal(err)
	}
	// What a build may leave (or an earlier tree held) is gone from the next checkout.
	if err := os.WriteFile(filepath.Join(slot, "leftover.txt"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(slot, "node_modules", "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	r.cleanup("b1")
	time.Sleep(10 * time.Millisecond) // so a rewritten file would get another time
	c2 := r.repo.Commit("main", map[string]string{"change.txt": "two\n"})
	dir = r.mustClone("team", "b2", c2)
	if got := realPath(t, dir); got != slot {
		t.Fatalf("second build checked out into %s, want the freed slot %s", got, slot)
	}
	after, err := os.Stat(filepath.Join(slot, "keep.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if !after.ModTime().Equal(keep.ModTime()) {
		t.Fatalf("unchanged file rewritten: mtime %s, was %s", after.ModTime(), keep.ModTime())
	}
	if b, _ := os.ReadFile(filepath.Join(slot, "change.txt")); string(b) != "two\n" {
		t.Fatalf("changed file holds %q", b)
	}
	// Building an older commit of the ref moves the slot back: still exactly its tree.
	r.cleanup("b2")
	res, err := r.clone("team", "b3", c1)
	if err != nil || res.Commit != c1 {
		t.Fatalf("clone of %s: %v, %v", c1, res.Commit, err)
	}
	exactTree(t, r.checkout("b3"), c1)
}

func TestCloneCachedConcurrent(t *testing.T) {
	r := newCacheRig(t)
	head := r.repo.Commit("main", map[string]string{"Dockerfile": "FROM busybox\n", "a.txt": "a\n"})
	const builds = 3
	var wg sync.WaitGroup
	errs := make([]error, builds)
	for i := range builds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := r.clone("team", fmt.Sprintf("c%d", i), "")
			if err == nil && res.Commit != head {
				err = fmt.Errorf("commit %s, want %s", res.Commit, head)
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	slots := map[string]bool{}
	for i, err := range errs {
		if err != nil {
			t.Fatalf("build %d: %v", i, err)
		}
		dir := r.checkout(fmt.Sprintf("c%d", i))
		exactTree(t, dir, head)
		slots[realPath(t, dir)] = true
	}
	if len(slots) != builds {
		t.Fatalf("%d builds at once shared slots: %v", builds, slots)
	}
	entries, err := r.act.Sources.Entries()
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Fatalf("%d cache entries for one source, want 1", len(entries))
	}
}

func TestCloneCachedForcePush(t *testing.T) {
	r := newCacheRig(t)
	base := r.repo.Commit("main", map[string]string{"Dockerfile": "FROM busybox\n", "a.txt": "a\n"})
	old := r.repo.Commit("main", map[string]string{"old.txt": "old\n"})
	r.mustClone("team", "f1", old)
	r.cleanup("f1")
	rewritten := r.forcePush("main", base, map[string]string{"new.txt": "new\n"})
	dir := r.mustClone("team", "f2", rewritten)
	if _, err := os.Lstat(filepath.Join(dir, "old.txt")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("file of the old head still in the checkout: %v", err)
	}
	r.cleanup("f2")
	// The mirror still holds the old head, but it is not on the ref any more.
	_, err := r.clone("team", "f3", old)
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) || appErr.Type() != build.ErrTypeCommitNotOnRef {
		t.Fatalf("clone of the old head = %v, want %s", err, build.ErrTypeCommitNotOnRef)
	}
}

func TestCloneCachedEviction(t *testing.T) {
	r := newCacheRig(t)
	head := r.repo.Commit("main", map[string]string{"Dockerfile": "FROM busybox\n", "big.txt": strings.Repeat("x", 64<<10)})
	r.mustClone("other", "e0", head) // an idle entry of another namespace, evictable
	r.cleanup("e0")
	dir := r.mustClone("team", "e1", head)
	// Over budget while e1 holds its entry: only the idle one goes.
	r.act.Sources.MaxBytes = 1
	gone, err := r.act.Sources.Evict()
	if err != nil {
		t.Fatal(err)
	}
	if len(gone) != 1 || gone[0] != gitcache.Key("other", r.srv.URL+"/octo/cached.git") {
		t.Fatalf("evicted %v, want only the idle entry", gone)
	}
	// The build goes on: its checkout and the objects it borrows are all there.
	exactTree(t, dir, head)
	gitOut(t, dir, "cat-file", "-e", head+"^{tree}")
	r.cleanup("e1")
	if gone, err = r.act.Sources.Evict(); err != nil || len(gone) != 1 {
		t.Fatalf("evicted %v, %v once released, want the entry", gone, err)
	}
	// The next build finds nothing and clones again.
	before := r.fetches()
	r.mustClone("team", "e2", head)
	if r.fetches() == before {
		t.Fatal("the build after eviction fetched nothing")
	}
}

func TestCloneCachedCorruptMirror(t *testing.T) {
	tests := []struct {
		name string
		// files is how many files the first commit has: past 100 objects a fetch keeps a
		// pack, below it git writes loose objects.
		files   int
		corrupt func(t *testing.T, mirror string)
	}{
		{"a loose blob emptied", 20, func(t *testing.T, mirror string) {
			blob := gitOut(t, mirror, "rev-parse", mirrorRef(build.Ref{Type: build.RefBranch, Name: "main"})+":f/0.txt")
			p := filepath.Join(mirror, "objects", blob[:2], blob[2:])
			if err := os.Chmod(p, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(p, 0); err != nil {
				t.Fatal(err)
			}
		}},
		// Git itself passes over a pack it cannot read and objects it does not have, and
		// fetches again what the commit needs: the build must still be exact.
		{"packs truncated", 120, func(t *testing.T, mirror string) {
			packs, _ := filepath.Glob(filepath.Join(mirror, "objects", "pack", "*.pack"))
			if len(packs) == 0 {
				t.Fatal("mirror has no packs")
			}
			for _, p := range packs {
				if err := os.Truncate(p, 20); err != nil {
					t.Fatal(err)
				}
			}
		}},
		{"objects gone", 120, func(t *testing.T, mirror string) {
			if err := os.RemoveAll(filepath.Join(mirror, "objects")); err != nil {
				t.Fatal(err)
			}
			if err := os.MkdirAll(filepath.Join(mirror, "objects", "pack"), 0o755); err != nil {
				t.Fatal(err)
			}
		}},
		{"interrupted fetch left a missing object", 120, func(t *testing.T, mirror string) {
			packs, _ := filepath.Glob(filepath.Join(mirror, "objects", "pack", "*"))
			for _, p := range packs {
				if err := os.Remove(p); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.WriteFile(filepath.Join(mirror, fetchingMarker), nil, 0o600); err != nil {
				t.Fatal(err)
			}
		}},
		{"HEAD garbage", 120, func(t *testing.T, mirror string) {
			if err := os.WriteFile(filepath.Join(mirror, "HEAD"), []byte("garbage\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newCacheRig(t)
			files := map[string]string{"Dockerfile": "FROM busybox\n"}
			for i := range tt.files {
				files[fmt.Sprintf("f/%d.txt", i)] = fmt.Sprint(i)
			}
			c1 := r.repo.Commit("main", files)
			r.mustClone("team", "k1", c1)
			c2 := r.repo.Commit("main", map[string]string{"f/1.txt": "changed\n"})
			tt.corrupt(t, filepath.Join(r.act.Sources.Dir, "entries", gitcache.Key("team", r.repo.CloneURL), "mirror.git"))
			// k1 still holds its slot: k2 checks out into an empty one and needs every object.
			r.mustClone("team", "k2", c2)
			r.cleanup("k1")
			r.cleanup("k2")
			// Rebuilt once and sound: the next build fetches into it as usual.
			c3 := r.repo.Commit("main", map[string]string{"f/2.txt": "changed\n"})
			r.mustClone("team", "k3", c3)
		})
	}
}

func TestCloneCachedNamespacesApart(t *testing.T) {
	r := newCacheRig(t)
	head := r.repo.Commit("main", map[string]string{"Dockerfile": "FROM busybox\n"})
	a := realPath(t, r.mustClone("team-a", "n1", head))
	before := r.fetches()
	b := realPath(t, r.mustClone("team-b", "n2", head))
	if r.fetches() == before {
		t.Fatal("the second namespace's build fetched nothing: it used the first's mirror")
	}
	alt := func(dir string) string {
		b, err := os.ReadFile(filepath.Join(dir, ".git", "objects", "info", "alternates"))
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(b))
	}
	if alt(a) == alt(b) || filepath.Dir(filepath.Dir(a)) == filepath.Dir(filepath.Dir(b)) {
		t.Fatalf("namespaces share a mirror or slots: %s (%s), %s (%s)", a, alt(a), b, alt(b))
	}
	entries, err := r.act.Sources.Entries()
	if err != nil || len(entries) != 2 {
		t.Fatalf("entries %v, %v; want one per namespace", entries, err)
	}
}

func TestContextRootSharedKey(t *testing.T) {
	r := newCacheRig(t)
	head := r.repo.Commit("main", map[string]string{"Dockerfile": "FROM busybox\n"})
	r.mustClone("team", "s1", head)
	r.mustClone("team", "s2", head)
	key := func(ws string) (string, string) {
		root, k, err := r.act.contextRoot(r.checkout(ws))
		if err != nil {
			t.Fatal(err)
		}
		return root, k
	}
	root1, k1 := key("s1")
	root2, k2 := key("s2")
	if k1 == "" || k2 == "" || k1 == k2 || root1 == root2 {
		t.Fatalf("slots %s and %s got keys %q and %q, want two stable ones", root1, root2, k1, k2)
	}
	r.cleanup("s1")
	r.mustClone("team", "s3", head)
	if root3, k3 := key("s3"); root3 != root1 || k3 != k1 {
		t.Fatalf("the freed slot came back as %s with key %q, want %s with %q", root3, k3, root1, k1)
	}
	// A workspace's own checkout (a worker without the cache) gets no key.
	plain := filepath.Join(t.TempDir(), "src")
	if err := os.MkdirAll(plain, 0o755); err != nil {
		t.Fatal(err)
	}
	if root, k, err := r.act.contextRoot(plain); err != nil || k != "" || root != plain {
		t.Fatalf("plain checkout: %s %q %v", root, k, err)
	}
	// A link out of the cache is refused.
	evil := filepath.Join(t.TempDir(), "src")
	if err := os.Symlink(t.TempDir(), evil); err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.act.contextRoot(evil); err == nil {
		t.Fatal("a checkout linking out of the git cache was accepted")
	}
}

// TestCloneCachedSymlinkTurnedFolder checks out, into one slot, a commit where a path is a
// symlink to a folder outside the checkout and then one where the same path is a folder with
// a file: the file must land in the checkout, never through the old symlink.
func TestCloneCachedSymlinkTurnedFolder(t *testing.T) {
	r := newCacheRig(t)
	outside := t.TempDir()
	c1 := r.repo.Commit("main", map[string]string{"Dockerfile": "FROM busybox\n", "d": "symlink:" + outside})
	dir := r.mustClone("team", "y1", c1)
	slot := realPath(t, dir)
	r.cleanup("y1")
	gitOut(t, r.repo.Dir, "rm", "-q", "d")
	if err := os.MkdirAll(filepath.Join(r.repo.Dir, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(r.repo.Dir, "d", "planted"), []byte("x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	gitOut(t, r.repo.Dir, "add", "-A")
	gitOut(t, r.repo.Dir, "-c", "user.name=T", "-c", "user.email=t@slipway.invalid", "commit", "-q", "-m", "folder")
	gitOut(t, r.repo.Dir, "push", "-q", "origin", "HEAD:refs/heads/main")
	c2 := gitOut(t, r.repo.Dir, "rev-parse", "HEAD")
	if got := realPath(t, r.mustClone("team", "y2", c2)); got != slot {
		t.Fatalf("second checkout in %s, want the same slot %s", got, slot)
	}
	if _, err := os.Lstat(filepath.Join(outside, "planted")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the checkout wrote through the old symlink: %v", err)
	}
	if fi, err := os.Lstat(filepath.Join(slot, "d")); err != nil || !fi.IsDir() {
		t.Fatalf("d is not a folder in the checkout: %v", err)
	}
}

// TestCloneCachedOtherHost is a build retried on another host: its cache has no mirror of the
// source, so the clone fetches the commit whole and the checkout is exact.
func TestCloneCachedOtherHost(t *testing.T) {
	r := newCacheRig(t)
	head := r.repo.Commit("main", map[string]string{"Dockerfile": "FROM busybox\n", "a.txt": "a\n"})
	r.mustClone("team", "h1", head)
	other := *r
	act := *r.act
	act.WorkspaceRoot, act.Sources = t.TempDir(), newTestCache(t)
	other.act = &act
	before := r.fetches()
	other.mustClone("team", "h1", head)
	if r.fetches() == before {
		t.Fatal("the other host fetched nothing")
	}
}
