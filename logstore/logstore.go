// Package logstore keeps build logs outside Temporal history: one append-only text file per
// build run, written by the worker and read (or followed live) by the gateway.
package logstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"time"
)

// ErrNotFound is returned when a build run has no log yet.
var ErrNotFound = errors.New("log not found")

// ErrIdle is what Follow returns when the log got no new bytes for its idle time.
var ErrIdle = errors.New("no new log output")

// Store is a folder of build logs, laid out as DIR/<build id>/<run id>.log.
type Store struct {
	dir string
}

// New returns a store rooted at dir, creating it if needed. Logs are private to the service's
// user (folders 0700, files 0600): readers get them through the gateway, which checks roles.
func New(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating log folder: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, fmt.Errorf("making log folder private: %w", err)
	}
	return &Store{dir: dir}, nil
}

var plainName = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,150}$`)

// fileName keeps readable IDs readable and hashes the rest, so no ID can name a path outside
// the store.
func fileName(id string) string {
	if plainName.MatchString(id) {
		return id
	}
	sum := sha256.Sum256([]byte(id))
	return "h-" + hex.EncodeToString(sum[:16])
}

// Path is the file holding the log of one run of a build.
func (s *Store) Path(buildID, runID string) string {
	return filepath.Join(s.dir, fileName(buildID), fileName(runID)+".log")
}

// Append opens the log of a run for appending, creating it. A run that starts over on another
// worker keeps appending to the same log, so nothing written before the retry is lost.
func (s *Store) Append(buildID, runID string) (io.WriteCloser, error) {
	p := s.Path(buildID, runID)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return nil, fmt.Errorf("creating log folder of %s: %w", buildID, err)
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening log of %s: %w", buildID, err)
	}
	return f, nil
}

// Open returns the log of a run as written so far.
func (s *Store) Open(buildID, runID string) (io.ReadCloser, error) {
	f, err := os.Open(s.Path(buildID, runID))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("log of %s: %w", buildID, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("opening log of %s: %w", buildID, err)
	}
	return f, nil
}

// Follow copies the log of a run to w as it grows, flushing after each chunk, until done
// reports that the run has ended; then it copies what is left and returns. A log that does not
// exist yet is waited for. When no new byte came for idle (0: no limit), it returns ErrIdle:
// a stream is not held open for a build that sleeps or waits in a queue for hours.
func (s *Store) Follow(ctx context.Context, buildID, runID string, w io.Writer, done func(context.Context) (bool, error), idle time.Duration) error {
	const poll = 200 * time.Millisecond
	lastByte := time.Now()
	var f *os.File
	defer func() {
		if f != nil {
			f.Close()
		}
	}()
	flush := func() {
		if fl, ok := w.(interface{ Flush() }); ok {
			fl.Flush()
		}
	}
	for {
		ended, err := done(ctx)
		if err != nil {
			return fmt.Errorf("checking whether %s ended: %w", buildID, err)
		}
		if f == nil {
			f, err = os.Open(s.Path(buildID, runID))
			if err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("opening log of %s: %w", buildID, err)
			}
		}
		if f != nil {
			n, err := io.Copy(w, f)
			if err != nil {
				return fmt.Errorf("copying log of %s: %w", buildID, err)
			}
			if n > 0 {
				flush()
				lastByte = time.Now()
			}
		}
		// The run had ended before this copy began, so the copy saw every byte.
		if ended {
			return nil
		}
		if idle > 0 && time.Since(lastByte) >= idle {
			return fmt.Errorf("%w for %s in %s", ErrIdle, idle, buildID)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(poll):
		}
	}
}
