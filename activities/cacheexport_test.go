package activities

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// syncBuffer is a log sink safe for the exports' goroutines.
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

// waitIdle waits until every export started has ended, without canceling any.
func (e *CacheExports) waitIdle() { e.wg.Wait() }

func TestCacheExports(t *testing.T) {
	t.Run("start returns at once, the export runs and lets go", func(t *testing.T) {
		var log syncBuffer
		e := NewCacheExports(1, time.Minute, slog.New(slog.NewTextHandler(&log, nil)))
		hold := make(chan struct{})
		released := make(chan struct{})
		begun := time.Now()
		e.start(&cacheExport{ref: "r:buildcache", run: func(ctx context.Context) error { <-hold; return nil },
			release: func() { close(released) }})
		if d := time.Since(begun); d > time.Second {
			t.Fatalf("start took %s", d)
		}
		close(hold)
		<-released
		e.Close()
		if !strings.Contains(log.String(), "registry cache exported") {
			t.Fatalf("log: %s", log.String())
		}
	})
	t.Run("a failure is logged masked, never returned", func(t *testing.T) {
		var log syncBuffer
		e := NewCacheExports(1, time.Minute, slog.New(slog.NewTextHandler(&log, nil)))
		var released atomic.Bool
		e.start(&cacheExport{ref: "r:buildcache", run: func(ctx context.Context) error { return errors.New("push refused: hunter2") },
			release: func() { released.Store(true) }, mask: func(s string) string { return strings.ReplaceAll(s, "hunter2", "***") }})
		e.waitIdle()
		e.Close()
		if !released.Load() || !strings.Contains(log.String(), "registry cache export failed") || strings.Contains(log.String(), "hunter2") {
			t.Fatalf("released %v, log: %s", released.Load(), log.String())
		}
	})
	t.Run("one per reference, the newest waiting replaces an older", func(t *testing.T) {
		e := NewCacheExports(4, time.Minute, slog.New(slog.DiscardHandler))
		hold := make(chan struct{})
		var ran []string
		var mu sync.Mutex
		var running, most atomic.Int32
		mk := func(name string) (*cacheExport, *atomic.Bool) {
			var rel atomic.Bool
			return &cacheExport{ref: "r:buildcache", build: name, run: func(ctx context.Context) error {
				if n := running.Add(1); n > most.Load() {
					most.Store(n)
				}
				defer running.Add(-1)
				mu.Lock()
				ran = append(ran, name)
				mu.Unlock()
				if name == "a" {
					<-hold
				}
				return nil
			}, release: func() { rel.Store(true) }}, &rel
		}
		a, _ := mk("a")
		b, relB := mk("b")
		c, relC := mk("c")
		e.start(a)
		time.Sleep(50 * time.Millisecond)
		e.start(b)
		e.start(c)
		if !relB.Load() {
			t.Fatal("the superseded export kept its slot")
		}
		close(hold)
		e.waitIdle()
		e.Close()
		mu.Lock()
		defer mu.Unlock()
		if strings.Join(ran, ",") != "a,c" || most.Load() != 1 || !relC.Load() {
			t.Fatalf("ran %v, at most %d at once, c released %v", ran, most.Load(), relC.Load())
		}
	})
	t.Run("Close cancels a running export", func(t *testing.T) {
		var log syncBuffer
		e := NewCacheExports(1, time.Hour, slog.New(slog.NewTextHandler(&log, nil)))
		started := make(chan struct{})
		e.start(&cacheExport{ref: "r:buildcache", run: func(ctx context.Context) error { close(started); <-ctx.Done(); return ctx.Err() },
			release: func() {}})
		<-started
		done := make(chan struct{})
		go func() { e.Close(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("Close did not cancel the export")
		}
		if !strings.Contains(log.String(), "stopped with the worker") {
			t.Fatalf("log: %s", log.String())
		}
		var released atomic.Bool
		e.start(&cacheExport{ref: "r:buildcache", run: func(ctx context.Context) error { t.Error("ran after Close"); return nil },
			release: func() { released.Store(true) }})
		if !released.Load() {
			t.Fatal("an export started after Close kept its slot")
		}
	})
	t.Run("timeout", func(t *testing.T) {
		e := NewCacheExports(1, 50*time.Millisecond, slog.New(slog.DiscardHandler))
		var err atomic.Value
		e.start(&cacheExport{ref: "r", run: func(ctx context.Context) error { <-ctx.Done(); err.Store(ctx.Err()); return ctx.Err() }, release: func() {}})
		e.waitIdle()
		e.Close()
		if err.Load() != context.DeadlineExceeded {
			t.Fatalf("ended with %v, want the deadline", err.Load())
		}
	})
}
