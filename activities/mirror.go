package activities

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

	"go.temporal.io/sdk/temporal"

	"github.com/slipway-dev/slipway/build"
	"github.com/slipway-dev/slipway/gitcache"
)

// fetchingMarker is written into a mirror before a fetch and removed after it: a mirror that
// still holds it was left by a fetch that never finished, and is checked before it is trusted.
const fetchingMarker = "slipway-fetching"

// cloned is what a clone found: the commit checked out and, when asked, the files changed.
type cloned struct {
	commit string
	// changed and base are set when the input had Paths (see changedFiles).
	changed []string
	base    string
}

// corruptAnswer is how git says a repository's objects or refs are damaged, as opposed to a
// remote, network or input problem: a mirror answering so is fetched again from nothing.
var corruptAnswer = regexp.MustCompile(`(?i)corrupt|bad object|missing (blob|tree|commit|object)|` +
	`unable to read|did not send all necessary objects|not a git repository|inflate|bad packed object|` +
	`packfile .* cannot be accessed|index file .* is too small|broken link|is empty|invalid object|` +
	`unable to parse|fatal: bad tree|loose object .* is corrupt|non-monotonic index|` +
	`could not parse|unable to unpack|fsck`)

// errCorrupt marks a mirror or slot failure that fetching the mirror again can mend.
var errCorrupt = errors.New("git cache damaged")

// cloneFromMirror fetches the ref into the source's mirror on this host, incrementally, and
// checks the commit out into a slot leased for this build; the workspace's checkout folder
// becomes a link to the slot. A mirror found damaged is dropped and fetched again once.
func (a *Activities) cloneFromMirror(ctx context.Context, log io.Writer, ws, remote string, in CloneInput, auth []string) (cloned, error) {
	lease, err := a.Sources.Acquire(ctx, ws, in.Namespace, remote)
	if err != nil {
		return cloned{}, fmt.Errorf("leasing the git cache: %w", err)
	}
	var out cloned
	for attempt := 0; ; attempt++ {
		out, err = a.fillFromMirror(ctx, log, lease, remote, in, auth)
		if err == nil || attempt > 0 || !errors.Is(err, errCorrupt) || ctx.Err() != nil {
			break
		}
		fmt.Fprintf(log, "==> the cached repository is damaged (%v): fetching it again\n", err)
		if err := a.resetEntry(ctx, lease); err != nil {
			return cloned{}, err
		}
	}
	if err != nil {
		// The slot may hold half a checkout: the next build there starts from nothing.
		_ = lease.ResetSlot()
		if errors.Is(err, errCorrupt) {
			return cloned{}, fmt.Errorf("cloning from the git cache: %w", err)
		}
		return cloned{}, err
	}
	if err := os.Symlink(lease.Slot, filepath.Join(ws, checkoutDir)); err != nil {
		return cloned{}, fmt.Errorf("linking the checkout: %w", err)
	}
	if err := lease.RecordSize(); err != nil {
		fmt.Fprintf(log, "==> warning: %v\n", err)
	}
	if gone, err := a.Sources.Evict(); err != nil {
		fmt.Fprintf(log, "==> warning: trimming the git cache: %v\n", err)
	} else if len(gone) > 0 {
		fmt.Fprintf(log, "==> git cache over %d bytes: dropped %d least recently used sources\n", a.Sources.MaxBytes, len(gone))
	}
	return out, nil
}

// resetEntry drops the lease's mirror and slot under the fetch lock.
func (a *Activities) resetEntry(ctx context.Context, lease *gitcache.Lease) error {
	unlock, err := lease.LockFetch(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	if err := lease.ResetMirror(); err != nil {
		return err
	}
	return lease.ResetSlot()
}

// fillFromMirror brings the mirror up to the ref under the fetch lock, resolves the commit
// (and the changed files), then checks it out into the slot with the lock released: the
// lease keeps the mirror from eviction, and objects are only ever added to it.
func (a *Activities) fillFromMirror(ctx context.Context, log io.Writer, lease *gitcache.Lease, remote string, in CloneInput, auth []string) (cloned, error) {
	unlock, err := lease.LockFetch(ctx)
	if err != nil {
		return cloned{}, err
	}
	out, shallow, err := a.fetchIntoMirror(ctx, log, lease.Mirror, remote, in, auth)
	unlock()
	if err != nil {
		return cloned{}, err
	}
	if err := checkoutSlot(ctx, log, lease.Slot, lease.Mirror, shallow, out.commit); err != nil {
		return cloned{}, err
	}
	return out, nil
}

// fetchIntoMirror runs the clone's fetches in the mirror (made when missing, checked when a
// fetch into it was interrupted) and returns the mirror's shallow list as it left it. The
// caller holds the fetch lock.
func (a *Activities) fetchIntoMirror(ctx context.Context, log io.Writer, mirror, remote string, in CloneInput, auth []string) (cloned, []byte, error) {
	m := gitRunner{dir: mirror, log: log, env: auth}
	marker := filepath.Join(mirror, fetchingMarker)
	if _, err := os.Stat(filepath.Join(mirror, "HEAD")); err != nil {
		if err := os.RemoveAll(mirror); err != nil {
			return cloned{}, nil, fmt.Errorf("clearing the mirror: %w", err)
		}
		if err := os.MkdirAll(mirror, 0o700); err != nil {
			return cloned{}, nil, fmt.Errorf("creating the mirror: %w", err)
		}
		if err := m.run(ctx, "init", "-q", "--bare", "--template="); err != nil {
			return cloned{}, nil, err
		}
		fmt.Fprintln(log, "==> new cached repository on this worker")
	} else if _, err := os.Stat(marker); err == nil {
		// A fetch was interrupted (the worker was killed): objects are written before the
		// refs that name them, but check the refs' objects all hold before trusting them.
		if err := m.run(ctx, "fsck", "--connectivity-only", "--no-dangling", "--no-progress"); err != nil {
			return cloned{}, nil, fmt.Errorf("%w: %v", errCorrupt, err)
		}
	}
	if err := os.WriteFile(marker, nil, 0o600); err != nil {
		return cloned{}, nil, fmt.Errorf("marking the mirror: %w", err)
	}
	local := mirrorRef(in.Ref)
	refspec := "+" + in.Ref.FullName() + ":" + local
	commit, err := m.resolveCommit(ctx, remote, in, auth != nil, refspec, local)
	if err != nil {
		return cloned{}, nil, corruptOr(err)
	}
	out := cloned{commit: commit}
	if in.Paths != nil {
		if out.changed, out.base, err = m.changedFiles(ctx, remote, refspec, commit, in.Before); err != nil {
			return cloned{}, nil, corruptOr(err)
		}
	}
	shallow, err := os.ReadFile(filepath.Join(mirror, "shallow"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return cloned{}, nil, fmt.Errorf("reading the mirror's shallow list: %w", err)
	}
	if err := os.Remove(marker); err != nil {
		return cloned{}, nil, fmt.Errorf("unmarking the mirror: %w", err)
	}
	return out, shallow, nil
}

// corruptOr marks err as errCorrupt when git's answer says the repository is damaged; a
// non-retryable answer (a missing ref, a commit not on the ref) is never one.
func corruptOr(err error) error {
	if err == nil || nonRetryable(err) || !corruptAnswer.MatchString(err.Error()) {
		return err
	}
	return fmt.Errorf("%w: %v", errCorrupt, err)
}

// mirrorRef is where the mirror keeps a ref: one ref of its own per ref built, so fetches of
// different refs never overwrite each other and each one's objects stay reachable. The name is
// hashed so that branch "a" and branch "a/b" never clash as files.
func mirrorRef(ref build.Ref) string {
	sum := sha256.Sum256([]byte(ref.FullName()))
	return "refs/slipway/refs/" + hex.EncodeToString(sum[:20])
}

// checkoutSlot makes slot a repository that borrows the mirror's objects and checks commit
// out into it. The slot's index is kept from its last build, so git rewrites only the files
// that differ and the others keep their modification times, which is what lets BuildKit send
// only what changed; everything else in .git is made anew, and files the commit does not hold
// are removed, so the folder is exactly the commit's tree.
func checkoutSlot(ctx context.Context, log io.Writer, slot, mirror string, shallow []byte, commit string) error {
	gitDir := filepath.Join(slot, ".git")
	kept := slot + ".index"
	if err := os.Rename(filepath.Join(gitDir, "index"), kept); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("keeping the checkout's index: %w", err)
	}
	if err := os.RemoveAll(gitDir); err != nil {
		return fmt.Errorf("clearing the checkout's repository: %w", err)
	}
	g := gitRunner{dir: slot, log: log}
	if err := g.run(ctx, "init", "-q", "--template="); err != nil {
		return err
	}
	info := filepath.Join(gitDir, "objects", "info")
	if err := os.MkdirAll(info, 0o700); err != nil {
		return fmt.Errorf("creating the checkout's repository: %w", err)
	}
	if err := os.WriteFile(filepath.Join(info, "alternates"), []byte(filepath.Join(mirror, "objects")+"\n"), 0o600); err != nil {
		return fmt.Errorf("linking the checkout to the mirror: %w", err)
	}
	// The mirror's history is cut where its fetches stopped; the checkout must know where,
	// or walking history (the push's ancestry check) would meet commits that are not there.
	if len(shallow) > 0 {
		if err := os.WriteFile(filepath.Join(gitDir, "shallow"), shallow, 0o600); err != nil {
			return fmt.Errorf("writing the checkout's shallow list: %w", err)
		}
	}
	if err := os.Rename(kept, filepath.Join(gitDir, "index")); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("restoring the checkout's index: %w", err)
	}
	if err := g.run(ctx, "checkout", "-q", "-f", "--detach", commit); err != nil {
		if err := classifyCheckout(err); nonRetryable(err) {
			return err
		}
		return corruptOr(err)
	}
	if err := g.run(ctx, "clean", "-q", "-ffdx"); err != nil {
		return corruptOr(err)
	}
	return nil
}

// nonRetryable reports whether err is an application error no retry mends.
func nonRetryable(err error) bool {
	var appErr *temporal.ApplicationError
	return errors.As(err, &appErr) && appErr.NonRetryable()
}
