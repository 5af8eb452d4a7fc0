package worker

import (
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// TestSweepRemovesOnlyUnlockedFolders lays out the folders a shared SLIPWAY_HOME can hold and
// sweeps them: this worker's own and a live peer's (whose lock another process holds, as a
// worker in another container or PID namespace would) stay; a dead worker's, an older
// pid-named one without a lock, and a lock left alone go.
func TestSweepRemovesOnlyUnlockedFolders(t *testing.T) {
	root := t.TempDir()
	own, err := claimFolder(root, "own")
	if err != nil {
		t.Fatal(err)
	}
	defer own.release()
	// The live peer is another process holding its lock with flock(1).
	peerDir := filepath.Join(root, "worker-peer")
	if err := os.MkdirAll(filepath.Join(peerDir, "build-1"), 0o755); err != nil {
		t.Fatal(err)
	}
	peer := exec.Command("flock", "--exclusive", peerDir+".lock", "sleep", "30")
	if err := peer.Start(); err != nil {
		t.Fatalf("flock(1) from util-linux: %v", err)
	}
	t.Cleanup(func() { peer.Process.Kill(); peer.Wait() })
	for deadline := time.Now().Add(5 * time.Second); ; {
		f, locked, err := tryLock(peerDir + ".lock")
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
		if !locked {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the peer never took its lock")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// A dead worker: folder and lock file, no holder.
	dead, err := claimFolder(root, "dead")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dead.Dir, "left"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	dead.lock.Close() // as the kernel does when the process dies
	for _, p := range []string{"worker-1/build-2", "not-a-worker"} {
		if err := os.MkdirAll(filepath.Join(root, p), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "worker-stray.lock"), nil, 0o644); err != nil {
		t.Fatal(err)
	}

	if err := sweepWorkspaces(root, "own", slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path string
		kept bool
	}{
		{"worker-own", true},
		{"worker-own.lock", true},
		{"worker-peer/build-1", true},
		{"worker-peer.lock", true},
		{"worker-dead", false},
		{"worker-dead.lock", false},
		{"worker-1", false},
		{"worker-stray.lock", false},
		{"not-a-worker", true},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			_, err := os.Stat(filepath.Join(root, tt.path))
			if kept := err == nil; kept != tt.kept {
				t.Fatalf("kept = %v, want %v (%v)", kept, tt.kept, err)
			}
		})
	}
	// Releasing removes the worker's own folder and lock, nothing else.
	if err := own.release(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"worker-own", "worker-own.lock"} {
		if _, err := os.Stat(filepath.Join(root, p)); !os.IsNotExist(err) {
			t.Fatalf("%s after release: %v", p, err)
		}
	}
	if _, err := os.Stat(filepath.Join(root, "worker-peer", "build-1")); err != nil {
		t.Fatalf("the peer's folder after our release: %v", err)
	}
}

func TestClaimFolderRefusesAHeldLock(t *testing.T) {
	root := t.TempDir()
	first, err := claimFolder(root, "same")
	if err != nil {
		t.Fatal(err)
	}
	defer first.release()
	if _, err := claimFolder(root, "same"); err == nil {
		t.Fatal("a second claim of a held folder succeeded")
	}
}
