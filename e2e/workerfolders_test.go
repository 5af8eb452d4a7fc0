package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/build"
	"github.com/slipway-dev/slipway/internal/testing/gitserver"
)

// TestWorkersInPIDNamespacesKeepTheirFolders runs two workers on one SLIPWAY_HOME, each in a
// PID namespace of its own (unshare --pid --fork), so both are PID 1 as in containers sharing
// a volume. A build holds its RUN step on one of them; the other is stopped. The stopped one
// removes its own folders only: the build's workspace stays and the build finishes.
func TestWorkersInPIDNamespacesKeepTheirFolders(t *testing.T) {
	prefix := []string{"unshare", "--pid", "--fork", "--kill-child"}
	workers := map[string]*worker{}
	for range 2 {
		w := startWorkerUnder(t, prefix)
		t.Cleanup(func() { stopGroup(t, w) })
		if pid := innerPID(t, w); pid != 1 {
			t.Fatalf("the worker is pid %d in its namespace, want 1", pid)
		}
		workers[w.id(t)] = w
	}
	if len(workers) != 2 {
		t.Fatalf("two workers, one id: %v", workers)
	}
	for id := range workers {
		for _, root := range []string{"workspaces", "images"} {
			if _, err := os.Stat(filepath.Join(env.home, root, "worker-"+id)); err != nil {
				t.Fatalf("worker %s has no folder: %v", id, err)
			}
		}
	}

	owner := "e2e-pidns"
	repo := (&gitserver.Server{Root: env.gitRoot, URL: env.gitURL}).NewRepo(t, owner, "hello")
	head := repo.Commit("main", map[string]string{"Dockerfile": "FROM busybox\nRUN sleep 8 && echo slept > /slept\n"})
	in := baseInput(owner)
	id := "e2e-pidns-" + head[:7] + "-" + time.Now().Format("150405.000")
	run := startBuild(t, id, in)

	// The build's workspace shows which worker holds it.
	var holder, workspace string
	for deadline := time.Now().Add(time.Minute); holder == ""; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no workspace of the build appeared; log:\n%s", readLogQuiet(id, run.GetRunID()))
		}
		for wid := range workers {
			found, _ := filepath.Glob(filepath.Join(env.home, "workspaces", "worker-"+wid, "*", "src", "Dockerfile"))
			if len(found) > 0 {
				holder, workspace = wid, filepath.Dir(filepath.Dir(found[0]))
			}
		}
	}
	var other string
	for wid := range workers {
		if wid != holder {
			other = wid
		}
	}
	stopGroup(t, workers[other])
	t.Logf("stopped worker %s while worker %s holds %s", other, holder, filepath.Base(workspace))

	for _, root := range []string{"workspaces", "images"} {
		for _, p := range []string{"worker-" + other, "worker-" + other + ".lock"} {
			if _, err := os.Stat(filepath.Join(env.home, root, p)); !os.IsNotExist(err) {
				t.Errorf("the stopped worker left %s/%s: %v", root, p, err)
			}
		}
	}
	if _, err := os.Stat(filepath.Join(workspace, "src", "Dockerfile")); err != nil {
		t.Fatalf("the live build's workspace is gone after the other worker stopped: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var res build.Result
	if err := run.Get(ctx, &res); err != nil {
		t.Fatalf("build: %v\nlog:\n%s", err, readLogQuiet(id, run.GetRunID()))
	}
	if res.Commit != head {
		t.Fatalf("built %s, want %s", res.Commit, head)
	}
	if p := pull(t, in.Image+":main"); p.files["slept"] != "slept\n" {
		t.Fatalf("/slept = %q", p.files["slept"])
	}
	for _, root := range []string{"workspaces", "images"} {
		if _, err := os.Stat(filepath.Join(env.home, root, "worker-"+holder)); err != nil {
			t.Errorf("the holder's %s folder: %v", root, err)
		}
	}
}

// stopGroup ends a worker started under unshare with SIGTERM to its process group: unshare
// itself does not pass SIGTERM on, and the worker (PID 1 of its namespace) handles it.
func stopGroup(t *testing.T, w *worker) {
	t.Helper()
	if err := w.Stop(40 * time.Second); err != nil {
		t.Error(err)
	}
}

// innerPID is the pid the worker under unshare has in its own PID namespace, from the NSpid
// line of its status (the last field is the innermost namespace's).
func innerPID(t *testing.T, w *worker) int {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		pid := strconv.Itoa(w.Pid())
		children, _ := os.ReadFile(filepath.Join("/proc", pid, "task", pid, "children"))
		child := strings.TrimSpace(string(children))
		if child == "" {
			continue
		}
		status, err := os.ReadFile(filepath.Join("/proc", child, "status"))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(status), "\n") {
			if rest, ok := strings.CutPrefix(line, "NSpid:"); ok {
				f := strings.Fields(rest)
				inner, err := strconv.Atoi(f[len(f)-1])
				if err != nil {
					t.Fatalf("NSpid of the worker: %q", rest)
				}
				return inner
			}
		}
	}
	t.Fatal("the worker under unshare did not start")
	return 0
}
