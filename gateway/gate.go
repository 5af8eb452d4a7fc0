package main

import "sync"

// bodyGate bounds the webhook bodies read at once, by count and by bytes. Deliveries are
// unauthenticated until their body is hashed, and anyone who knows a rule id (it is in every
// commit status link) can send them, so what they may hold in memory together is fixed:
// at most max bodies and maxBytes bytes, each weighed by what it may carry before it is read.
type bodyGate struct {
	mu       sync.Mutex
	n, max   int
	bytes    int64
	maxBytes int64
}

func newBodyGate(max int, maxBytes int64) *bodyGate {
	return &bodyGate{max: max, maxBytes: maxBytes}
}

// tryAcquire takes a place for a body of up to size bytes without waiting; ok is false when
// the gate is full. release gives the place back and may be called once.
func (g *bodyGate) tryAcquire(size int64) (release func(), ok bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.n >= g.max || g.bytes+size > g.maxBytes {
		return nil, false
	}
	g.n++
	g.bytes += size
	var once sync.Once
	return func() {
		once.Do(func() {
			g.mu.Lock()
			g.n--
			g.bytes -= size
			g.mu.Unlock()
		})
	}, true
}
