package gitcache

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func newCache(t *testing.T, max int64) *Cache {
	t.Helper()
	c, err := New(t.TempDir(), max)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// owner makes a workspace folder that leases are held for.
func owner(t *testing.T) string {
	t.Helper()
	d := filepath.Join(t.TempDir(), "ws")
	if err := os.MkdirAll(d, 0o700); err != nil {
		t.Fatal(err)
	}
	return d
}

func fill(t *testing.T, dir string, n int) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "blob"), make([]byte, n), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestAcquire(t *testing.T) {
	ctx := context.Background()
	c := newCache(t, 1<<30)
	w1, w2 := owner(t), owner(t)
	l1, err := c.Acquire(ctx, w1, "ns", "http://git/a.git")
	if err != nil {
		t.Fatal(err)
	}
	again, err := c.Acquire(ctx, w1, "ns", "http://git/a.git")
	if err != nil || again != l1 {
		t.Fatalf("a retried acquire got %v, %v; want the lease held", again, err)
	}
	l2, err := c.Acquire(ctx, w2, "ns", "http://git/a.git")
	if err != nil {
		t.Fatal(err)
	}
	if l1.Mirror != l2.Mirror || l1.Slot == l2.Slot {
		t.Fatalf("two builds of one source: mirrors %s %s, slots %s %s; want one mirror, two slots", l1.Mirror, l2.Mirror, l1.Slot, l2.Slot)
	}
	other, err := c.Acquire(ctx, owner(t), "ns2", "http://git/a.git")
	if err != nil {
		t.Fatal(err)
	}
	if other.Mirror == l1.Mirror {
		t.Fatal("two namespaces share a mirror")
	}
	slot1 := l1.Slot
	c.Release(w1)
	l3, err := c.Acquire(ctx, owner(t), "ns", "http://git/a.git")
	if err != nil || l3.Slot != slot1 {
		t.Fatalf("after release got slot %s, %v; want the freed %s", l3.Slot, err, slot1)
	}
	// A lease whose workspace is gone (its cleanup never ran) lets its slot go.
	if err := os.RemoveAll(w2); err != nil {
		t.Fatal(err)
	}
	l4, err := c.Acquire(ctx, owner(t), "ns", "http://git/a.git")
	if err != nil || l4.Slot != l2.Slot {
		t.Fatalf("got slot %s, %v; want the stale lease's %s", l4.Slot, err, l2.Slot)
	}
}

func TestEvict(t *testing.T) {
	ctx := context.Background()
	c := newCache(t, 2500)
	var leases []*Lease
	var owners []string
	for i, remote := range []string{"http://git/old.git", "http://git/held.git", "http://git/mid.git", "http://git/new.git"} {
		w := owner(t)
		l, err := c.Acquire(ctx, w, "ns", remote)
		if err != nil {
			t.Fatal(err)
		}
		fill(t, l.Mirror, 1000)
		// Used in this order, one second apart as file times go.
		used := time.Now().Add(time.Duration(i-10) * time.Second)
		if err := os.Chtimes(filepath.Dir(l.Mirror), used, used); err != nil {
			t.Fatal(err)
		}
		leases, owners = append(leases, l), append(owners, w)
	}
	for i, w := range owners {
		if i != 1 {
			c.Release(w)
		}
	}
	gone, err := c.Evict()
	if err != nil {
		t.Fatal(err)
	}
	// 4000 bytes over a 2500 budget: "old" is least recently used; "held" is older than
	// "mid" but held, so "mid" goes in its place.
	want := []string{leases[0].Key, leases[2].Key}
	if len(gone) != 2 || gone[0] != want[0] || gone[1] != want[1] {
		t.Fatalf("evicted %v, want %v", gone, want)
	}
	if _, err := os.Stat(leases[1].Mirror); err != nil {
		t.Fatalf("the held mirror was removed: %v", err)
	}
	c.MaxBytes = 0
	c.Release(owners[1])
	if gone, err = c.Evict(); err != nil || len(gone) != 2 {
		t.Fatalf("evicted %v, %v; want the two left", gone, err)
	}
}

func TestLockFetch(t *testing.T) {
	ctx := context.Background()
	c := newCache(t, 1<<30)
	l1, err := c.Acquire(ctx, owner(t), "ns", "http://git/a.git")
	if err != nil {
		t.Fatal(err)
	}
	l2, err := c.Acquire(ctx, owner(t), "ns", "http://git/a.git")
	if err != nil {
		t.Fatal(err)
	}
	unlock, err := l1.LockFetch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Another process on the host: a second open of the lock file, as flock sees it.
	if f, ok, err := tryLock(c.lockPath(l1.Key+".fetch"), lockEx); err != nil || ok {
		if f != nil {
			f.Close()
		}
		t.Fatalf("fetch lock taken twice (ok %v, err %v)", ok, err)
	}
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if _, err := l2.LockFetch(short); err == nil {
		t.Fatal("a second build took the fetch lock while the first held it")
	}
	unlock()
	unlock2, err := l2.LockFetch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	unlock2()
}

func TestRecordSize(t *testing.T) {
	c := newCache(t, 1<<30)
	l, err := c.Acquire(context.Background(), owner(t), "ns", "http://git/a.git")
	if err != nil {
		t.Fatal(err)
	}
	fill(t, l.Mirror, 1000)
	fill(t, l.Slot, 500)
	if err := l.RecordSize(); err != nil {
		t.Fatal(err)
	}
	// Grown since: Entries reads the recorded size, not the folder, until the next record.
	fill(t, filepath.Join(l.Slot, "more"), 4000)
	entries, err := c.Entries()
	if err != nil || len(entries) != 1 || entries[0].Bytes != 1500 {
		t.Fatalf("entries %+v, %v; want one of 1500 bytes", entries, err)
	}
	if err := l.RecordSize(); err != nil {
		t.Fatal(err)
	}
	if entries, _ = c.Entries(); entries[0].Bytes < 5500 {
		t.Fatalf("recorded %d bytes, want at least 5500", entries[0].Bytes)
	}
}
