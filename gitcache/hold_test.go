package gitcache

import (
	"context"
	"testing"
)

// A hold keeps the slot (and the entry, against eviction) out of every other build's reach
// after its build released it, and gives both back when let go.
func TestHold(t *testing.T) {
	ctx := context.Background()
	c := newCache(t, 1)
	w := owner(t)
	l, err := c.Acquire(ctx, w, "ns", "http://git/a.git")
	if err != nil {
		t.Fatal(err)
	}
	slot := l.Slot
	fill(t, slot, 1000)
	if err := l.RecordSize(); err != nil {
		t.Fatal(err)
	}
	release, ok, err := c.Hold(w)
	if err != nil || !ok {
		t.Fatalf("Hold = %v, %v", ok, err)
	}
	c.Release(w)
	next, err := c.Acquire(ctx, owner(t), "ns", "http://git/a.git")
	if err != nil {
		t.Fatal(err)
	}
	if next.Slot == slot {
		t.Fatalf("a held slot %s was leased again", slot)
	}
	if gone, err := c.Evict(); err != nil || len(gone) != 0 {
		t.Fatalf("Evict of a held entry = %v, %v", gone, err)
	}
	release()
	release() // twice is harmless
	after, err := c.Acquire(ctx, owner(t), "ns", "http://git/a.git")
	if err != nil {
		t.Fatal(err)
	}
	if after.Slot != slot {
		t.Fatalf("after the hold ended, the slot leased is %s, want %s", after.Slot, slot)
	}
	if _, ok, err := c.Hold(owner(t)); ok || err != nil {
		t.Fatalf("Hold of an owner without a lease = %v, %v", ok, err)
	}
}
