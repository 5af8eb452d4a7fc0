// Package gitcache keeps, on one host, a bare Git mirror per (namespace, remote) and a few
// stable checkout folders ("slots") beside each, so that a build fetches only the objects its
// commit adds and BuildKit receives only the files that changed since the slot's last build.
//
// The package holds the folders and their locks; running git is its caller's business. Every
// lock is an flock on a file under Dir/locks, which is never removed, so locks taken by two
// worker processes sharing Dir exclude each other, and the kernel lets them go when a process
// dies however it dies. A mirror is never shared across namespaces: the objects a private
// repository's token fetched for one namespace must not serve another namespace's build.
package gitcache

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// lockEx is an exclusive flock.
const lockEx = syscall.LOCK_EX

// maxSlots bounds the checkout folders of one source: more concurrent builds of one source
// than this on one host is a misconfiguration, not a reason to fill the disk.
const maxSlots = 64

// pollEvery is how often a blocked lock is tried again while its context lasts.
const pollEvery = 20 * time.Millisecond

// Cache is the Git cache of the workers sharing Dir on one host, bounded by MaxBytes.
type Cache struct {
	// Dir holds entries/KEY/{mirror.git,slots/N}, locks/ and trash/.
	Dir string
	// MaxBytes is the size above which Evict removes the least recently used entries that no
	// build holds.
	MaxBytes int64

	mu sync.Mutex
	// fetching serializes the fetches of one entry within this process before its flock
	// does across processes, so waiting goroutines do not each hold an OS thread in flock.
	fetching map[string]*sync.Mutex
	// leases are this process's leases by owner (the build's workspace).
	leases map[string]*Lease
}

// New prepares the cache folder and empties its trash (entries a killed eviction left).
func New(dir string, maxBytes int64) (*Cache, error) {
	for _, d := range []string{"entries", "locks", "trash"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			return nil, fmt.Errorf("creating git cache: %w", err)
		}
	}
	c := &Cache{Dir: dir, MaxBytes: maxBytes, fetching: map[string]*sync.Mutex{}, leases: map[string]*Lease{}}
	trash, _ := os.ReadDir(filepath.Join(dir, "trash"))
	for _, t := range trash {
		_ = os.RemoveAll(filepath.Join(dir, "trash", t.Name()))
	}
	return c, nil
}

// Key names the entry of a remote for a namespace. The namespace is part of it so that no
// build ever reads objects fetched with another namespace's credentials.
func Key(namespace, remote string) string {
	sum := sha256.Sum256([]byte(namespace + "\x00" + remote))
	return hex.EncodeToString(sum[:16])
}

// Lease is one build's hold on an entry: the mirror stays (no eviction) and the slot is the
// build's alone until Release.
type Lease struct {
	c     *Cache
	owner string
	// Key is the entry's name; Mirror its bare repository; Slot the build's checkout folder.
	Key, Mirror, Slot string
	use, slot         *os.File
}

// Acquire leases the entry of (namespace, remote) for owner, a build's workspace folder: a
// shared hold on the entry and the first free slot. A second Acquire by the same owner (a
// retried clone) returns the lease it holds.
func (c *Cache) Acquire(ctx context.Context, owner, namespace, remote string) (*Lease, error) {
	key := Key(namespace, remote)
	c.mu.Lock()
	c.dropStaleLocked()
	if l, ok := c.leases[owner]; ok {
		if l.Key == key {
			c.mu.Unlock()
			return l, nil
		}
		l.closeLocked()
	}
	c.mu.Unlock()

	use, err := c.lock(ctx, c.lockPath(key+".use"), syscall.LOCK_SH)
	if err != nil {
		return nil, err
	}
	entry := filepath.Join(c.Dir, "entries", key)
	l := &Lease{c: c, owner: owner, Key: key, Mirror: filepath.Join(entry, "mirror.git"), use: use}
	for n := 0; n < maxSlots; n++ {
		f, ok, err := tryLock(c.lockPath(fmt.Sprintf("%s.slot-%d", key, n)), lockEx)
		if err != nil {
			use.Close()
			return nil, err
		}
		if ok {
			l.slot, l.Slot = f, filepath.Join(entry, "slots", fmt.Sprint(n))
			break
		}
	}
	if l.slot == nil {
		use.Close()
		return nil, fmt.Errorf("all %d checkout folders of this source are in use", maxSlots)
	}
	if err := os.MkdirAll(l.Slot, 0o700); err != nil {
		l.close()
		return nil, fmt.Errorf("creating checkout folder: %w", err)
	}
	now := time.Now()
	if err := os.Chtimes(entry, now, now); err != nil {
		l.close()
		return nil, fmt.Errorf("marking git cache entry used: %w", err)
	}
	c.mu.Lock()
	c.leases[owner] = l
	c.mu.Unlock()
	return l, nil
}

// Release lets go of owner's lease, if it holds one.
func (c *Cache) Release(owner string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if l, ok := c.leases[owner]; ok {
		l.closeLocked()
	}
}

// dropStaleLocked releases the leases whose workspace is gone: a build whose cleanup never
// ran (its workflow was terminated) must not hold its slot and mirror until the worker stops.
func (c *Cache) dropStaleLocked() {
	for owner, l := range c.leases {
		if _, err := os.Lstat(owner); errors.Is(err, fs.ErrNotExist) {
			l.closeLocked()
		}
	}
}

func (l *Lease) close() {
	l.c.mu.Lock()
	defer l.c.mu.Unlock()
	l.closeLocked()
}

func (l *Lease) closeLocked() {
	if l.slot != nil {
		l.slot.Close()
		l.slot = nil
	}
	if l.use != nil {
		l.use.Close()
		l.use = nil
	}
	if l.c.leases[l.owner] == l {
		delete(l.c.leases, l.owner)
	}
}

// LockFetch takes the entry's fetch lock, which serializes every write to the mirror (its
// objects, refs and shallow list) across the builds and worker processes of the host.
func (l *Lease) LockFetch(ctx context.Context) (unlock func(), err error) {
	l.c.mu.Lock()
	m, ok := l.c.fetching[l.Key]
	if !ok {
		m = &sync.Mutex{}
		l.c.fetching[l.Key] = m
	}
	l.c.mu.Unlock()
	locked := make(chan struct{})
	go func() { m.Lock(); close(locked) }()
	select {
	case <-locked:
	case <-ctx.Done():
		go func() { <-locked; m.Unlock() }()
		return nil, ctx.Err()
	}
	f, err := l.c.lock(ctx, l.c.lockPath(l.Key+".fetch"), lockEx)
	if err != nil {
		m.Unlock()
		return nil, err
	}
	return func() { f.Close(); m.Unlock() }, nil
}

// ResetMirror removes the mirror, for a fresh clone after it was found corrupt. The caller
// holds the fetch lock.
func (l *Lease) ResetMirror() error {
	return l.c.discard(l.Mirror)
}

// ResetSlot empties the lease's slot, so the next checkout writes every file again.
func (l *Lease) ResetSlot() error {
	if err := l.c.discard(l.Slot); err != nil {
		return err
	}
	return os.MkdirAll(l.Slot, 0o700)
}

// discard moves dir into the trash, out of every build's way at once, then removes it.
func (c *Cache) discard(dir string) error {
	var b [8]byte
	_, _ = rand.Read(b[:])
	t := filepath.Join(c.Dir, "trash", hex.EncodeToString(b[:]))
	if err := os.Rename(dir, t); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("discarding %s: %w", dir, err)
	}
	if err := os.RemoveAll(t); err != nil {
		return fmt.Errorf("removing %s: %w", dir, err)
	}
	return nil
}

// Entry is one cached source as Evict sees it.
type Entry struct {
	Key      string
	Bytes    int64
	LastUsed time.Time
}

// Entries lists the cache's entries, least recently used first.
func (c *Cache) Entries() ([]Entry, error) {
	des, err := os.ReadDir(filepath.Join(c.Dir, "entries"))
	if err != nil {
		return nil, fmt.Errorf("listing git cache: %w", err)
	}
	var out []Entry
	for _, de := range des {
		if !de.IsDir() {
			continue
		}
		fi, err := de.Info()
		if err != nil {
			continue // evicted meanwhile
		}
		out = append(out, Entry{Key: de.Name(), Bytes: entryBytes(filepath.Join(c.Dir, "entries", de.Name())), LastUsed: fi.ModTime()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].LastUsed.Before(out[j].LastUsed) })
	return out, nil
}

// Evict removes whole entries, least recently used first, until the cache fits in MaxBytes;
// an entry a build holds (through a Lease, in any process) is skipped, never removed. It
// returns the keys it removed.
func (c *Cache) Evict() ([]string, error) {
	entries, err := c.Entries()
	if err != nil {
		return nil, err
	}
	var total int64
	for _, e := range entries {
		total += e.Bytes
	}
	var gone []string
	for _, e := range entries {
		if total <= c.MaxBytes {
			break
		}
		f, ok, err := tryLock(c.lockPath(e.Key+".use"), lockEx)
		if err != nil {
			return gone, err
		}
		if !ok {
			continue // in use
		}
		err = c.discard(filepath.Join(c.Dir, "entries", e.Key))
		f.Close()
		if err != nil {
			return gone, err
		}
		total -= e.Bytes
		gone = append(gone, e.Key)
	}
	return gone, nil
}

// sizeFile is where an entry's size was recorded after its last clone, so that sizing the
// cache reads one file per entry instead of walking every checkout.
const sizeFile = "size"

// RecordSize measures the lease's entry (its mirror and every slot) and records the size for
// Evict. The caller calls it after its clone, when the entry has what that clone added.
func (l *Lease) RecordSize() error {
	entry := filepath.Dir(l.Mirror)
	n := duBytes(entry)
	if err := os.WriteFile(filepath.Join(entry, sizeFile), []byte(strconv.FormatInt(n, 10)), 0o600); err != nil {
		return fmt.Errorf("recording git cache entry size: %w", err)
	}
	return nil
}

// entryBytes is an entry's recorded size, or its measured one when none was recorded.
func entryBytes(entry string) int64 {
	if b, err := os.ReadFile(filepath.Join(entry, sizeFile)); err == nil {
		if n, err := strconv.ParseInt(string(b), 10, 64); err == nil && n >= 0 {
			return n
		}
	}
	return duBytes(entry)
}

// duBytes is the size of the regular files under dir.
func duBytes(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

func (c *Cache) lockPath(name string) string { return filepath.Join(c.Dir, "locks", name) }

// lock takes an flock of kind how on path, trying again until ctx ends.
func (c *Cache) lock(ctx context.Context, path string, how int) (*os.File, error) {
	for {
		f, ok, err := tryLock(path, how)
		if err != nil {
			return nil, err
		}
		if ok {
			return f, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(pollEvery):
		}
	}
}

// tryLock opens path and takes an flock of kind how without waiting; ok is false (and no file
// is returned) when another open of the file holds a conflicting lock.
func tryLock(path string, how int) (f *os.File, ok bool, err error) {
	f, err = os.OpenFile(path, os.O_RDWR|os.O_CREATE|syscall.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, false, fmt.Errorf("opening lock %s: %w", path, err)
	}
	for {
		err = syscall.Flock(int(f.Fd()), how|syscall.LOCK_NB)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	switch {
	case err == nil:
		return f, true, nil
	case errors.Is(err, syscall.EWOULDBLOCK):
		f.Close()
		return nil, false, nil
	}
	f.Close()
	return nil, false, fmt.Errorf("locking %s: %w", path, err)
}

// Hold keeps owner's slot and entry held after owner's Release, until the returned function
// is called: for work that still reads the slot once its build has ended (a registry cache
// export), so that no next build checks another commit out into it and no eviction removes
// it meanwhile. The hold shares the lease's flocks (duplicated descriptors), which the kernel
// keeps until every copy is closed, in this process as for others. ok is false when owner
// holds no lease.
func (c *Cache) Hold(owner string) (release func(), ok bool, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	l, found := c.leases[owner]
	if !found || l.slot == nil || l.use == nil {
		return nil, false, nil
	}
	slot, err := dupFile(l.slot)
	if err != nil {
		return nil, false, fmt.Errorf("holding checkout folder: %w", err)
	}
	use, err := dupFile(l.use)
	if err != nil {
		slot.Close()
		return nil, false, fmt.Errorf("holding git cache entry: %w", err)
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			slot.Close()
			use.Close()
		})
	}, true, nil
}

// dupFile is a second descriptor of f's open file, and so of its flock.
func dupFile(f *os.File) (*os.File, error) {
	fd, err := syscall.Dup(int(f.Fd()))
	if err != nil {
		return nil, err
	}
	syscall.CloseOnExec(fd)
	return os.NewFile(uintptr(fd), f.Name()), nil
}
