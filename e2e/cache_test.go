package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/build"
	"github.com/slipway-dev/slipway/devstack"
	"github.com/slipway-dev/slipway/internal/testing/gitserver"
)

// TestRegistryCacheSurvivesAnEmptyBuildkitd builds once, empties buildkitd's own cache, and
// builds the same commit again: the RUN step must come from the registry cache (the layer is
// the very same, timestamp and all), as it would on a fresh buildkitd or another host.
func TestRegistryCacheSurvivesAnEmptyBuildkitd(t *testing.T) {
	w := startWorker(t)
	t.Cleanup(w.stop)
	owner := "e2e-cache"
	repo := (&gitserver.Server{Root: env.gitRoot, URL: env.gitURL}).NewRepo(t, owner, "hello")
	repo.Commit("main", map[string]string{"Dockerfile": "FROM busybox\nRUN date +%s%N > /stamp && sleep 1\n"})
	in := baseInput(owner)
	firstLog := buildTagged(t, in, "first")
	// The export may run after the build (on a git cache slot): soon after, then.
	if err := devstack.Poll(t.Context(), 200*time.Millisecond, time.Minute, func() (bool, error) {
		return slices.Contains(listTagsOrNone(t, in.Image), "buildcache"), nil
	}); err != nil {
		t.Fatalf("no cache exported to %s:buildcache; log:\n%s", in.Image, firstLog)
	}
	prune := exec.Command(filepath.Join(env.tools, "buildctl"), "--addr", env.stack.BuildkitAddr, "prune", "--all")
	if out, err := prune.CombinedOutput(); err != nil {
		t.Fatalf("buildctl prune: %v\n%s", err, out)
	}
	secondLog := buildTagged(t, in, "second")
	if !strings.Contains(secondLog, "importing cache manifest from "+in.Image+":buildcache") {
		t.Fatalf("the second build did not import the registry cache:\n%s", secondLog)
	}
	first, second := pull(t, in.Image+":first"), pull(t, in.Image+":second")
	// The stamp is the time the RUN ran: equal stamps mean the second build reused the layer
	// from the registry instead of running the step.
	if first.files["stamp"] == "" || first.files["stamp"] != second.files["stamp"] {
		t.Fatalf("the RUN ran again: stamp %q then %q", first.files["stamp"], second.files["stamp"])
	}
}

// buildTagged builds in with tag as its tag template, waits for it to succeed and returns its
// build log.
func buildTagged(t *testing.T, in build.Input, tag string) string {
	t.Helper()
	in.TagTemplate = tag
	id := fmt.Sprintf("%s-%s-%d", in.Repository, tag, time.Now().UnixNano())
	run := startBuild(t, id, in)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := run.Get(ctx, nil); err != nil {
		t.Fatalf("build %s: %v\n%s", tag, err, readLogQuiet(id, run.GetRunID()))
	}
	return readLogQuiet(id, run.GetRunID())
}

// TestRebuildWritesNoStoredLayerAgain builds the same commit twice on one worker: the second
// export finds every layer in the worker's image store and writes none of them again (each
// blob file is the very same file, same inode), and the second image is whole in the registry.
func TestRebuildWritesNoStoredLayerAgain(t *testing.T) {
	w := startWorker(t)
	t.Cleanup(w.stop)
	owner := "e2e-image-store"
	repo := (&gitserver.Server{Root: env.gitRoot, URL: env.gitURL}).NewRepo(t, owner, "hello")
	repo.Commit("main", map[string]string{"Dockerfile": "FROM busybox\nRUN head -c 4194304 /dev/urandom > /blob\n"})
	in := baseInput(owner)
	store := filepath.Join(env.home, "images", "worker-"+w.id(t), "blobs", "sha256")
	inodes := func() map[string]uint64 {
		entries, err := os.ReadDir(store)
		if err != nil {
			t.Fatalf("reading the worker's image store: %v", err)
		}
		got := map[string]uint64{}
		for _, e := range entries {
			info, err := e.Info()
			if err != nil {
				t.Fatal(err)
			}
			got[e.Name()] = info.Sys().(*syscall.Stat_t).Ino
		}
		return got
	}
	buildTagged(t, in, "first")
	before := inodes()
	var big string
	for name := range before {
		if info, err := os.Stat(filepath.Join(store, name)); err == nil && info.Size() >= 4<<20 {
			big = name
		}
	}
	if big == "" {
		t.Fatalf("no layer of 4 MiB or more in the image store %s: %v", store, before)
	}
	buildTagged(t, in, "second")
	after := inodes()
	for name, ino := range before {
		if after[name] != ino {
			t.Errorf("blob %s was written again (inode %d, then %d)", name, ino, after[name])
		}
	}
	p := pull(t, in.Image+":second")
	if len(p.files) == 0 {
		t.Fatal("the second image is empty")
	}
	if _, ok := p.files["blob"]; !ok {
		t.Fatalf("the second image lacks /blob: %v", p.files)
	}
}
