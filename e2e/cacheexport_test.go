package e2e

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/devstack"
	"github.com/slipway-dev/slipway/internal/testing/gitserver"
)

// TestDeferredCacheExportServesAnEmptyBuildkitd builds a two-stage Dockerfile on a git cache
// slot, whose registry cache is written after the build by a second, all-cached solve: the
// cache must reach IMAGE:buildcache soon after, and hold the intermediate stage (mode=max).
// buildctl prune then empties buildkitd's cache, and a commit that changes only the final
// stage builds again: the first stage's RUN must come from the registry (same stamp).
func TestDeferredCacheExportServesAnEmptyBuildkitd(t *testing.T) {
	w := startWorker(t, "SLIPWAY_DEFERRED_CACHE_EXPORT=on")
	t.Cleanup(w.stop)
	owner := "e2e-cache-deferred"
	repo := (&gitserver.Server{Root: env.gitRoot, URL: env.gitURL}).NewRepo(t, owner, "hello")
	dockerfile := "FROM busybox AS stamp\nRUN date +%s%N > /stamp && sleep 1\n" +
		"FROM busybox\nCOPY --from=stamp /stamp /stamp\nCOPY note.txt /note.txt\n"
	repo.Commit("main", map[string]string{"Dockerfile": dockerfile, "note.txt": "first\n"})
	in := baseInput(owner)
	firstLog := buildTagged(t, in, "first")
	if !strings.Contains(firstLog, "(written after the build)") {
		t.Fatalf("the build exported its cache in its solve, not after it:\n%s", firstLog)
	}
	waitTag(t, in.Image, "buildcache", time.Minute)
	waitWorkerLog(t, w, "registry cache exported", time.Minute)

	prune := exec.Command(filepath.Join(env.tools, "buildctl"), "--addr", env.stack.BuildkitAddr, "prune", "--all")
	if out, err := prune.CombinedOutput(); err != nil {
		t.Fatalf("buildctl prune: %v\n%s", err, out)
	}
	repo.Commit("main", map[string]string{"note.txt": "second\n"})
	secondLog := buildTagged(t, in, "second")
	if !strings.Contains(secondLog, "importing cache manifest from "+in.Image+":buildcache") {
		t.Fatalf("the second build did not import the registry cache:\n%s", secondLog)
	}
	first, second := pull(t, in.Image+":first"), pull(t, in.Image+":second")
	if second.files["note.txt"] != "second\n" {
		t.Fatalf("the second image's note.txt is %q", second.files["note.txt"])
	}
	// The first stage is no layer of the image: only mode=max exports it, and only a cache
	// export that walked the cached solve's intermediate records can serve it here.
	if first.files["stamp"] == "" || first.files["stamp"] != second.files["stamp"] {
		t.Fatalf("the first stage's RUN ran again: stamp %q then %q\nsecond log:\n%s", first.files["stamp"], second.files["stamp"], secondLog)
	}
}

// TestDeferredCacheExportNeverHoldsTheBuild puts a proxy between the worker (and buildkitd)
// and the registry that holds back, or fails, the write of the cache's manifest
// (PUT .../manifests/buildcache) and nothing else. The build must finish while the export is
// held, the held export must end in the registry once let go, a failed one must leave the
// build green with the failure in the worker's log, and a worker stopped mid-export must
// cancel it and stop promptly.
func TestDeferredCacheExportNeverHoldsTheBuild(t *testing.T) {
	owner := "e2e-cache-held"
	repo := (&gitserver.Server{Root: env.gitRoot, URL: env.gitURL}).NewRepo(t, owner, "hello")
	tests := []struct {
		name string
		// fail answers the held request with a 500 instead of passing it on.
		fail bool
		// stop stops the worker while the request is held.
		stop bool
	}{
		{name: "held, then let go"},
		{name: "failing", fail: true},
		{name: "worker stopped mid-export", stop: true},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := startHoldingProxy(t, env.stack.Registry, "/manifests/buildcache")
			w := startWorker(t, "SLIPWAY_DEFERRED_CACHE_EXPORT=on", "SLIPWAY_REGISTRY_TOKEN_HOSTS="+env.stack.Registry+","+p.host)
			defer w.stop()
			repo.Commit("main", map[string]string{
				// A stage of its own per case: an unchanged cache manifest is not written again.
				"Dockerfile": fmt.Sprintf("FROM busybox AS stamp\nRUN date +%%s%%N > /stamp && echo %d\nFROM busybox\nCOPY --from=stamp /stamp /stamp\n", i),
			})
			in := baseInput(owner)
			in.Image = p.host + "/demo/" + owner
			in.TagTemplate = fmt.Sprintf("held-%d", i)
			id := fmt.Sprintf("%s-%d-%d", owner, i, time.Now().UnixNano())
			run := startBuild(t, id, in)
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			if err := run.Get(ctx, nil); err != nil {
				t.Fatalf("build: %v\nlog:\n%s", err, readLogQuiet(id, run.GetRunID()))
			}
			done := time.Now()
			// The build finished; the export must have reached the held request (it may still
			// be on its way there when the build ends).
			select {
			case <-p.arrived:
			case <-time.After(time.Minute):
				t.Fatalf("no cache export reached the registry; worker log %s", w.LogPath())
			}
			if p.firstArrival().After(done) {
				t.Logf("the export reached the registry %s after the build ended", p.firstArrival().Sub(done))
			}
			switch {
			case tt.stop:
				stopped := time.Now()
				if err := w.Stop(40 * time.Second); err != nil {
					t.Logf("worker stop: %v", err)
				}
				if took := time.Since(stopped); took > 20*time.Second {
					t.Errorf("the worker took %s to stop with an export held", took)
				}
				if !strings.Contains(readFile(t, w.LogPath()), "registry cache export stopped with the worker") {
					t.Errorf("the worker's log does not show the export canceled: %s", w.LogPath())
				}
				p.release(false)
			case tt.fail:
				p.release(true)
				waitWorkerLog(t, w, "registry cache export failed", time.Minute)
			default:
				p.release(false)
				waitTag(t, env.stack.Registry+"/demo/"+owner, "buildcache", time.Minute)
				waitWorkerLog(t, w, "registry cache exported", time.Minute)
			}
			if pulled := pull(t, env.stack.Registry+"/demo/"+owner+":"+in.TagTemplate); pulled.files["stamp"] == "" {
				t.Fatalf("the build's image holds no /stamp")
			}
		})
	}
}

// holdingProxy passes requests to a registry, holding those whose path ends with suffix until
// release.
type holdingProxy struct {
	host    string
	arrived chan struct{}
	mu      sync.Mutex
	first   time.Time
	let     chan bool
	once    sync.Once
}

// startHoldingProxy listens on loopback in front of registry.
func startHoldingProxy(t *testing.T, registry, suffix string) *holdingProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &holdingProxy{host: ln.Addr().String(), arrived: make(chan struct{}), let: make(chan bool, 1)}
	target, _ := url.Parse("http://" + registry)
	rp := httputil.NewSingleHostReverseProxy(target)
	var arrivedOnce sync.Once
	srv := &http.Server{Handler: http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut && strings.HasSuffix(r.URL.Path, suffix) {
			p.mu.Lock()
			if p.first.IsZero() {
				p.first = time.Now()
			}
			p.mu.Unlock()
			arrivedOnce.Do(func() { close(p.arrived) })
			fail, ok := <-p.let
			if ok {
				// Every later request finds the same answer.
				p.let <- fail
			}
			if fail {
				http.Error(rw, "held by the test", http.StatusInternalServerError)
				return
			}
		}
		rp.ServeHTTP(rw, r)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() {
		p.release(false)
		srv.Close()
	})
	return p
}

// release lets every held request go on (or fail).
func (p *holdingProxy) release(fail bool) {
	p.once.Do(func() { p.let <- fail })
}

func (p *holdingProxy) firstArrival() time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.first
}

// waitTag waits until repo has tag.
func waitTag(t *testing.T, repo, tag string, timeout time.Duration) {
	t.Helper()
	err := devstack.Poll(t.Context(), 200*time.Millisecond, timeout, func() (bool, error) {
		return slices.Contains(listTagsOrNone(t, repo), tag), nil
	})
	if err != nil {
		t.Fatalf("%s:%s did not appear: %v (tags %v)", repo, tag, err, listTagsOrNone(t, repo))
	}
}

// waitWorkerLog waits until the worker's log holds text.
func waitWorkerLog(t *testing.T, w *worker, text string, timeout time.Duration) {
	t.Helper()
	err := devstack.Poll(t.Context(), 200*time.Millisecond, timeout, func() (bool, error) {
		return strings.Contains(readFile(t, w.LogPath()), text), nil
	})
	if err != nil {
		t.Fatalf("%q not in the worker's log %s: %v", text, w.LogPath(), err)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
