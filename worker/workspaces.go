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
)

// workspaceRoot gives this worker process a folder of its own under root, named after its pid,
// so several workers on one host never touch each other's builds.
func workspaceRoot(root string) string {
	return filepath.Join(root, "worker-"+strconv.Itoa(os.Getpid()))
}

// sweepWorkspaces removes the folders of workers on this host that are gone: a worker killed
// mid-build cannot clean up after itself, and its builds have started over elsewhere.
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

func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
