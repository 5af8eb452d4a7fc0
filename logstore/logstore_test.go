package logstore

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestPathStaysInside(t *testing.T) {
	dir := t.TempDir()
	s, err := New(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"build-r-1-branch-main-abc", "../../etc/passwd", "a/b", "", ".hidden", strings.Repeat("x", 300)} {
		p := s.Path(id, "run/../../x")
		rel, err := filepath.Rel(dir, p)
		if err != nil || strings.HasPrefix(rel, "..") || strings.Count(rel, string(filepath.Separator)) != 1 {
			t.Errorf("Path(%q) = %s, outside %s or nested", id, p, dir)
		}
	}
	if s.Path("a/b", "r") == s.Path("a_b", "r") {
		t.Error("different ids share a log file")
	}
}

func TestAppendAndOpen(t *testing.T) {
	s, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Open("b", "r"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("open of a missing log: %v", err)
	}
	for _, line := range []string{"first\n", "second\n"} {
		w, err := s.Append("b", "r")
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(w, line)
		w.Close()
	}
	r, err := s.Open("b", "r")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	b, _ := io.ReadAll(r)
	if string(b) != "first\nsecond\n" {
		t.Fatalf("log = %q", b)
	}
}

// syncBuffer is a bytes.Buffer safe for one writer and one reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestFollowStreamsUntilDone(t *testing.T) {
	s, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var ended atomic.Bool
	var out syncBuffer
	errc := make(chan error, 1)
	go func() {
		errc <- s.Follow(context.Background(), "b", "r", &out, func(context.Context) (bool, error) { return ended.Load(), nil }, 0)
	}()
	// The log does not exist yet: Follow waits for it.
	time.Sleep(300 * time.Millisecond)
	w, err := s.Append("b", "r")
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, "step one\n")
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(out.String(), "step one") {
		if time.Now().After(deadline) {
			t.Fatal("a line written while following never arrived")
		}
		time.Sleep(20 * time.Millisecond)
	}
	io.WriteString(w, "last line\n")
	w.Close()
	ended.Store(true)
	select {
	case err := <-errc:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Follow did not end when the build did")
	}
	if out.String() != "step one\nlast line\n" {
		t.Fatalf("followed %q", out.String())
	}
}

func TestFollowStopsWithContext(t *testing.T) {
	s, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	err = s.Follow(ctx, "b", "r", io.Discard, func(context.Context) (bool, error) { return false, nil }, 0)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
}

// TestPrivateModes: logs are readable by the service's user only, also in a folder that
// existed with looser modes before.
func TestPrivateModes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "logs")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	s, err := New(dir)
	if err != nil {
		t.Fatal(err)
	}
	w, err := s.Append("b", "r")
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	for path, want := range map[string]os.FileMode{
		dir:                            0o700,
		filepath.Dir(s.Path("b", "r")): 0o700,
		s.Path("b", "r"):               0o600,
	} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s has mode %o, want %o", path, got, want)
		}
	}
}

// TestFollowIdle: a log with no new bytes for the idle time ends the stream with ErrIdle;
// one that keeps growing does not.
func TestFollowIdle(t *testing.T) {
	s, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	w, err := s.Append("b", "r")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	stop := make(chan struct{})
	go func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
				io.WriteString(w, "tick\n")
			}
		}
	}()
	start := time.Now()
	errc := make(chan error, 1)
	go func() {
		errc <- s.Follow(context.Background(), "b", "r", io.Discard, func(context.Context) (bool, error) { return false, nil }, 500*time.Millisecond)
	}()
	time.Sleep(1500 * time.Millisecond)
	select {
	case err := <-errc:
		t.Fatalf("a growing log ended after %s: %v", time.Since(start), err)
	default:
	}
	close(stop)
	quiet := time.Now()
	select {
	case err := <-errc:
		if !errors.Is(err, ErrIdle) {
			t.Fatalf("Follow = %v, want ErrIdle", err)
		}
		if d := time.Since(quiet); d < 300*time.Millisecond || d > 2*time.Second {
			t.Errorf("ended %s after the last byte, want about 500ms", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("an idle log did not end")
	}
}
