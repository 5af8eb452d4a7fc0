package activities

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/slipway-dev/slipway/gitcache"
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
