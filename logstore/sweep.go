package logstore

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// RunLog is one run's log file in the store.
type RunLog struct {
	// RunID is the Temporal run the log belongs to (the file's name without .log: run IDs
	// are plain, never hashed).
	RunID   string
	Path    string
	ModTime time.Time
}

// RunLogs lists every run's log file, for a sweeper that removes those whose run Temporal
// no longer has.
func (s *Store) RunLogs() ([]RunLog, error) {
	builds, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("reading log folder: %w", err)
	}
	var out []RunLog
	for _, b := range builds {
		if !b.IsDir() {
			continue
		}
		runs, err := os.ReadDir(filepath.Join(s.dir, b.Name()))
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			return nil, fmt.Errorf("reading log folder %s: %w", b.Name(), err)
		}
		for _, r := range runs {
			id, ok := strings.CutSuffix(r.Name(), ".log")
			if !ok || r.IsDir() {
				continue
			}
			info, err := r.Info()
			if err != nil {
				continue // removed meanwhile
			}
			out = append(out, RunLog{RunID: id, Path: filepath.Join(s.dir, b.Name(), r.Name()), ModTime: info.ModTime()})
		}
	}
	return out, nil
}

// Remove deletes a run's log, and its build's folder once it holds no other run's.
func (s *Store) Remove(l RunLog) error {
	if filepath.Dir(filepath.Dir(l.Path)) != filepath.Clean(s.dir) {
		return fmt.Errorf("log %s is not in the store", l.Path)
	}
	if err := os.Remove(l.Path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("removing log %s: %w", l.Path, err)
	}
	// Fails while the folder holds another run's log: that one goes with its own run.
	_ = os.Remove(filepath.Dir(l.Path))
	return nil
}
