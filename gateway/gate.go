package gateway

import (
	"context"
	"sync"
	"time"
)

// bodyWait is how long a delivery waits for a place among the bodies read at once before it
// is answered 503: a burst of genuine deliveries (small, read in microseconds) gets through,
// while a flood of large bodies is turned away without being read.
const bodyWait = time.Second

// bodyGate bounds the webhook bodies read at once, by count and by bytes. Deliveries are
// unauthenticated until their body is hashed, and anyone who knows a rule id (it is in every
// commit status link) can send them, so what they may hold in memory together is fixed:
// at most max bodies and maxBytes bytes, each weighed by what it may carry before it is read.
type bodyGate struct {
	mu       sync.Mutex
	n, max   int
	bytes    int64
	maxBytes int64
	// freed is closed, and replaced, whenever a place is given back.
	freed chan struct{}
}

func newBodyGate(max int, maxBytes int64) *bodyGate {
	return &bodyGate{max: max, maxBytes: maxBytes, freed: make(chan struct{})}
}

// acquire takes a place for a body of up to size bytes, waiting at most wait for one; ok is
// false when none came free in time. release gives the place back and may be called once.
func (g *bodyGate) acquire(ctx context.Context, size int64, wait time.Duration) (release func(), ok bool) {
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		g.mu.Lock()
		if g.n < g.max && g.bytes+size <= g.maxBytes {
			g.n++
			g.bytes += size
			g.mu.Unlock()
			var once sync.Once
			return func() { once.Do(func() { g.release(size) }) }, true
		}
		freed := g.freed
		g.mu.Unlock()
		select {
		case <-freed:
		case <-timer.C:
			return nil, false
		case <-ctx.Done():
			return nil, false
		}
	}
}

func (g *bodyGate) release(size int64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.n--
	g.bytes -= size
	close(g.freed)
	g.freed = make(chan struct{})
}
