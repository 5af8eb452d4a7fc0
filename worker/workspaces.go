package worker

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// newWorkerID returns a random id for this worker process, kept for its life. Its folders are
// named after it: a pid would not do, since every containerised worker is PID 1 and workers
// of several hosts or containers may share one SLIPWAY_HOME volume.
func newWorkerID() (string, error) {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("making a worker id: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// folderPrefix starts the name of every worker's folder (worker-ID) and lock (worker-ID.lock).
const folderPrefix = "worker-"

// ownFolder is a folder of this worker (workspaces, image store) with the lock that says it is
// in use: an exclusive flock on ROOT/worker-ID.lock, held for the life of the process. The
// kernel lets it go when the process ends however it ends, so a sweep can tell a live worker's
// folder (locked) from a dead one's, across PID namespaces and containers on one host.
type ownFolder struct {
	Dir  string
	lock *os.File
}

// claimFolder takes the lock of ROOT/worker-ID and then makes the folder. The lock comes first
// so the folder never exists unlocked while its worker lives, and no sweep removes it.
func claimFolder(root, id string) (*ownFolder, error) {
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, fmt.Errorf("creating %s: %w", root, err)
	}
	dir := filepath.Join(root, folderPrefix+id)
	var f *os.File
	// A sweep may hold the new lock for a moment (it saw the file before the lock was
	// taken) and then remove the file: the lock counts only on the file still at the path.
	for attempt := 0; ; attempt++ {
		lf, locked, err := tryLock(dir + ".lock")
		if err != nil {
			return nil, err
		}
		if locked && sameFile(lf, dir+".lock") {
			f = lf
			break
		}
		lf.Close()
		if attempt == 100 {
			return nil, fmt.Errorf("cannot take the lock of %s: another live process holds it", dir)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		f.Close()
		return nil, fmt.Errorf("creating %s: %w", dir, err)
	}
	return &ownFolder{Dir: dir, lock: f}, nil
}

// release removes the folder and its lock file, then lets the lock go.
func (o *ownFolder) release() error {
	err := os.RemoveAll(o.Dir)
	if rerr := os.Remove(o.lock.Name()); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
		err = errors.Join(err, rerr)
	}
	return errors.Join(err, o.lock.Close())
}

// tryLock opens (creating) the lock file at path and tries to take its exclusive flock without
// waiting. locked is false when a live process holds it.
func tryLock(path string) (f *os.File, locked bool, err error) {
	f, err = os.OpenFile(path, os.O_RDWR|os.O_CREATE|syscall.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, false, fmt.Errorf("opening lock %s: %w", path, err)
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	switch {
	case err == nil:
		return f, true, nil
	case errors.Is(err, syscall.EWOULDBLOCK):
		return f, false, nil
	}
	f.Close()
	return nil, false, fmt.Errorf("locking %s: %w", path, err)
}

// sameFile says whether f is still the file at path: a lock on a file that was unlinked
// meanwhile guards nothing.
func sameFile(f *os.File, path string) bool {
	a, err := f.Stat()
	if err != nil {
		return false
	}
	b, err := os.Stat(path)
	return err == nil && os.SameFile(a, b)
}

// sweepWorkspaces removes the folders (workspaces, image stores) under root of workers that are
// gone: those whose lock no live process holds. A worker killed mid-build cannot clean up
// after itself, and its builds have started over elsewhere. The folder of worker self is never
// touched, and neither is any folder whose lock is held, by a process of any PID namespace.
// Folders of older workers, named after a pid and without a lock, count as gone.
func sweepWorkspaces(root, self string, logger *slog.Logger) error {
	entries, err := os.ReadDir(root)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading workspaces: %w", err)
	}
	seen := map[string]bool{}
	for _, e := range entries {
		id, ok := strings.CutPrefix(e.Name(), folderPrefix)
		id = strings.TrimSuffix(id, ".lock")
		if !ok || id == "" || id == self || seen[id] {
			continue
		}
		seen[id] = true
		removed, err := sweepOne(root, id)
		if err != nil {
			return err
		}
		if removed {
			logger.Info("removed the folder of a worker that is gone", "folder", filepath.Join(root, folderPrefix+id))
		}
	}
	return nil
}

// sweepOne removes ROOT/worker-ID and its lock file when it can take the lock, holding it
// while it removes them.
func sweepOne(root, id string) (removed bool, err error) {
	dir := filepath.Join(root, folderPrefix+id)
	f, locked, err := tryLock(dir + ".lock")
	if err != nil {
		return false, err
	}
	defer f.Close()
	if !locked || !sameFile(f, f.Name()) {
		return false, nil
	}
	if err := os.RemoveAll(dir); err != nil {
		return false, fmt.Errorf("removing the folder of worker %s: %w", id, err)
	}
	if err := os.Remove(f.Name()); err != nil && !errors.Is(err, os.ErrNotExist) {
		return false, fmt.Errorf("removing the lock of worker %s: %w", id, err)
	}
	return true, nil
}

// sweepInterval is how often a running worker sweeps the folders of workers that are gone.
const sweepInterval = 30 * time.Second

// sweepPeriodically runs sweepWorkspaces on each root every interval until stop is closed;
// errors are logged, not fatal: the next sweep tries again.
func sweepPeriodically(roots []string, self string, interval time.Duration, logger *slog.Logger, stop <-chan struct{}) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
			for _, root := range roots {
				if err := sweepWorkspaces(root, self, logger); err != nil {
					logger.Warn("sweeping workspaces", "error", err)
				}
			}
		}
	}
}
