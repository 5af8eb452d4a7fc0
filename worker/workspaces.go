package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// workspaceRoot gives this worker process a folder of its own under root, named after its pid,
// so several workers on one host never touch each other's builds.
func workspaceRoot(root string) string {
	return filepath.Join(root, "worker-"+strconv.Itoa(os.Getpid()))
}

// sweepWorkspaces removes the folders (workspaces, image stores) of workers on this host that
// are gone: a worker killed mid-build cannot clean up after itself, and its builds have
// started over elsewhere.
func sweepWorkspaces(root string, logger *slog.Logger) error {
	entries, err := os.ReadDir(root)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading workspaces: %w", err)
	}
	for _, e := range entries {
		pidText, ok := strings.CutPrefix(e.Name(), "worker-")
		pid, err := strconv.Atoi(pidText)
		if !ok || err != nil || pid == os.Getpid() || alive(pid) {
			continue
		}
		if err := os.RemoveAll(filepath.Join(root, e.Name())); err != nil {
			return fmt.Errorf("removing workspaces of worker %d: %w", pid, err)
		}
		logger.Info("removed workspaces of a worker that is gone", "pid", pid)
	}
	return nil
}

// sweepInterval is how often a running worker sweeps the folders of workers that are gone.
const sweepInterval = 30 * time.Second

// sweepPeriodically runs sweepWorkspaces on each root every interval until stop is closed;
// errors are logged, not fatal: the next sweep tries again.
func sweepPeriodically(roots []string, interval time.Duration, logger *slog.Logger, stop <-chan struct{}) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
			for _, root := range roots {
				if err := sweepWorkspaces(root, logger); err != nil {
					logger.Warn("sweeping workspaces", "error", err)
				}
			}
		}
	}
}

func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
