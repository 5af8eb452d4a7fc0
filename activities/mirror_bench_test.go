package activities

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"go.temporal.io/sdk/testsuite"

	"github.com/slipway-dev/slipway/build"
	"github.com/slipway-dev/slipway/gitcache"
	"github.com/slipway-dev/slipway/internal/testing/gitserver"
	"github.com/slipway-dev/slipway/logstore"
)

// countingServer serves Git repositories under root over smart HTTP and counts the bytes of
// its answers, which is what a clone costs the network.
type countingServer struct {
	*httptest.Server
	sent atomic.Int64
}

type countingWriter struct {
	http.ResponseWriter
	n *atomic.Int64
}

func (w countingWriter) Write(b []byte) (int, error) {
	n, err := w.ResponseWriter.Write(b)
	w.n.Add(int64(n))
	return n, err
}

func startCountingServer(b *testing.B, root string) *countingServer {
	h, err := gitserver.Handler(root, "", "")
	if err != nil {
		b.Fatal(err)
	}
	s := &countingServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(countingWriter{w, &s.sent}, r)
	}))
	b.Cleanup(s.Close)
	return s
}

// longHistory writes a repository of files files of size bytes each (random, so nothing
// compresses) and commits more commits on main, each rewriting two files, with fast-import.
func longHistory(b *testing.B, bare string, files, size, commits int) {
	var in bytes.Buffer
	blob := func() []byte {
		p := make([]byte, size)
		_, _ = rand.Read(p)
		return p
	}
	commit := func(n int, paths []int) {
		fmt.Fprintf(&in, "commit refs/heads/main\ncommitter T <t@slipway.invalid> %d +0000\ndata 4\nc%03d\n", 1700000000+n, n%1000)
		if n == 0 {
			fmt.Fprintf(&in, "M 100644 inline Dockerfile\ndata 13\nFROM busybox\n")
		}
		for _, p := range paths {
			data := blob()
			fmt.Fprintf(&in, "M 100644 inline f/%04d.bin\ndata %d\n", p, len(data))
			in.Write(data)
			in.WriteString("\n")
		}
	}
	all := make([]int, files)
	for i := range all {
		all[i] = i
	}
	commit(0, all)
	for n := 1; n < commits; n++ {
		commit(n, []int{(n * 7) % files, (n * 13) % files})
	}
	run := func(stdin *bytes.Buffer, args ...string) {
		cmd := exec.Command("git", args...)
		cmd.Dir = bare
		cmd.Env = append(cmd.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null")
		if stdin != nil {
			cmd.Stdin = stdin
		}
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	if err := os.MkdirAll(bare, 0o755); err != nil {
		b.Fatal(err)
	}
	run(nil, "init", "-q", "--bare", "--initial-branch=main")
	run(&in, "fast-import", "--quiet")
	run(nil, "repack", "-a", "-d", "-q")
}

// BenchmarkCloneTransfer measures what a build's clone fetches from the Git server, fresh
// (as every build did before the git cache) and through the cache, on a repository with a long
// history: the first build, a build of the same commit, and one after a one-file change. It
// reports bytes, not times, since times on a shared machine say little.
//
//	go test ./activities -run '^$' -bench CloneTransfer -benchtime 1x
func BenchmarkCloneTransfer(b *testing.B) {
	root := b.TempDir()
	bare := filepath.Join(root, "octo", "big.git")
	longHistory(b, bare, 300, 16<<10, 1000)
	srv := startCountingServer(b, root)
	logs, err := logstore.New(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	src := build.Source{Provider: "github", CloneURL: srv.URL + "/octo/big.git"}
	main := build.Ref{Type: build.RefBranch, Name: "main"}
	work := b.TempDir()
	push := func() {
		// One more commit on main, changing one file, straight into the served repository.
		cmd := exec.Command("sh", "-c", `set -e
c=$(git rev-parse main)
git read-tree main
b=$(head -c 16384 /dev/urandom | git hash-object -w --stdin)
git update-index --add --cacheinfo 100644,$b,f/0001.bin
n=$(git commit-tree $(git write-tree) -p $c -m one)
git update-ref refs/heads/main $n
rm -f index`)
		cmd.Dir = bare
		cmd.Env = append(cmd.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null",
			"GIT_AUTHOR_NAME=T", "GIT_AUTHOR_EMAIL=t@slipway.invalid", "GIT_COMMITTER_NAME=T", "GIT_COMMITTER_EMAIL=t@slipway.invalid")
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("pushing a change: %v\n%s", err, out)
		}
	}
	var suite testsuite.WorkflowTestSuite
	for b.Loop() {
		for _, mode := range cloneModes {
			act := &Activities{WorkspaceRoot: work, Logs: logs, LogURLBase: "http://gw", Sources: nil}
			if mode.name == "cached" {
				act.Sources = newBenchCache(b)
			}
			for i, step := range []string{"first", "unchanged", "one file changed"} {
				if step == "one file changed" {
					push()
				}
				ws := fmt.Sprintf("%s-%d-%d", mode.name, i, time.Now().UnixNano())
				env := suite.NewTestActivityEnvironment()
				env.RegisterActivity(act)
				before := srv.sent.Load()
				start := time.Now()
				if _, err := env.ExecuteActivity(act.Clone, CloneInput{Workspace: ws, Namespace: "team", Source: src, Ref: main}); err != nil {
					b.Fatal(err)
				}
				took := time.Since(start)
				b.Logf("%-6s %-16s fetched %9d bytes in %s", mode.name, step, srv.sent.Load()-before, took.Round(time.Millisecond))
				if _, err := env.ExecuteActivity(act.Cleanup, CleanupInput{Workspace: ws}); err != nil {
					b.Fatal(err)
				}
			}
		}
		// What a full (not shallow) mirror would fetch the first time.
		before := srv.sent.Load()
		cmd := exec.Command("git", "clone", "-q", "--bare", srv.URL+"/octo/big.git", filepath.Join(b.TempDir(), "full.git"))
		cmd.Env = append(cmd.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null")
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("full clone: %v\n%s", err, out)
		}
		b.Logf("full mirror first fetch: %d bytes", srv.sent.Load()-before)
	}
}

func newBenchCache(b *testing.B) *gitcache.Cache {
	c, err := gitcache.New(b.TempDir(), 1<<40)
	if err != nil {
		b.Fatal(err)
	}
	return c
}
