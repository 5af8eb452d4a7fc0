package activities

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/slipway-dev/slipway/build"
)

// moveTags writes each mutable tag whose move MoveTag allows and returns the ones it held.
// It runs under the image repository's tag lock, so between reading a tag's current commit
// and writing it no other push of this host, or of a worker sharing SLIPWAY_HOME, writes it.
func (a *Activities) moveTags(ctx context.Context, log io.Writer, ws string, in PushInput, digest v1.Hash,
	artifact remote.Taggable, tags []name.Tag, opts []remote.Option) ([]build.HeldTag, error) {
	unlock, err := a.lockTags(ctx, in.Image)
	if err != nil {
		return nil, err
	}
	defer unlock()
	var held []build.HeldTag
	for _, t := range tags {
		o, err := currentRevision(t, digest, in.Commit, opts)
		if err != nil {
			return nil, err
		}
		if o.Exists && o.Current != "" && o.Current != o.Build {
			if err := a.ancestry(ctx, log, ws, in, &o); err != nil {
				return nil, err
			}
		}
		move, reason := MoveTag(o)
		if !move {
			fmt.Fprintf(log, "==> tag %s held back: %s\n", t, reason)
			held = append(held, build.HeldTag{Tag: t.TagStr(), Reason: reason})
			continue
		}
		fmt.Fprintf(log, "==> tag %s (%s)\n", t, reason)
		if err := remote.Tag(t, artifact, opts...); err != nil {
			return nil, fmt.Errorf("tagging %s: %w", t, err)
		}
	}
	return held, nil
}

// currentRevision reads which commit tag t's image records. An image the registry does not
// hold under t, or that records no valid commit, says so in the TagOrder.
func currentRevision(t name.Tag, digest v1.Hash, commit string, opts []remote.Option) (TagOrder, error) {
	o := TagOrder{Build: commit}
	desc, err := remote.Get(t, opts...)
	var terr *transport.Error
	if errors.As(err, &terr) && terr.StatusCode == http.StatusNotFound {
		return o, nil
	}
	if err != nil {
		return o, fmt.Errorf("reading tag %s: %w", t, err)
	}
	o.Exists = true
	if desc.Digest == digest {
		o.Current = commit
		return o, nil
	}
	var img v1.Image
	if desc.MediaType.IsIndex() {
		idx, err := desc.ImageIndex()
		if err != nil {
			return o, fmt.Errorf("reading tag %s: %w", t, err)
		}
		im, err := idx.IndexManifest()
		if err != nil {
			return o, fmt.Errorf("reading tag %s: %w", t, err)
		}
		for _, m := range im.Manifests {
			// Attestation manifests (platform unknown/unknown) carry no image config.
			if m.MediaType.IsImage() && (m.Platform == nil || m.Platform.OS != "unknown") {
				if img, err = idx.Image(m.Digest); err != nil {
					return o, fmt.Errorf("reading tag %s: %w", t, err)
				}
				break
			}
		}
	} else if desc.MediaType.IsImage() {
		if img, err = desc.Image(); err != nil {
			return o, fmt.Errorf("reading tag %s: %w", t, err)
		}
	}
	if img == nil {
		return o, nil
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return o, fmt.Errorf("reading the config of tag %s: %w", t, err)
	}
	// Only a full commit id is taken: it becomes an argument of git, and anything else was
	// not written by a build of Slipway.
	if rev := cf.Config.Labels[RevisionLabel]; build.ValidCommit(rev) {
		o.Current = rev
	}
	return o, nil
}

// ancestry fills o's ancestry from the build's checkout, fetching the ref as it is now,
// deeper each time, until one commit is found to descend from the other or the history (or
// maxDeepen) ends. A shallow history only ever hides ancestry, never invents it, so a "yes"
// is final and a "no" is final once the history is whole or as deep as allowed.
func (a *Activities) ancestry(ctx context.Context, log io.Writer, ws string, in PushInput, o *TagOrder) error {
	if _, err := a.checkout(in.Workspace); err != nil {
		return err
	}
	if err := in.Ref.Check(); err != nil {
		return build.ApplicationError(err)
	}
	remoteURL, err := a.cloneURL(in.Source)
	if err != nil {
		return err
	}
	auth, err := a.gitAuth(ctx, in.Namespace, in.Source, remoteURL)
	if err != nil {
		return err
	}
	g := gitRunner{dir: filepath.Join(ws, checkoutDir), log: log, env: auth}
	local := "refs/slipway/now"
	refspec := "+" + in.Ref.FullName() + ":" + local
	fmt.Fprintf(log, "==> comparing %s with %s on %s\n", o.Build, o.Current, in.Ref.FullName())
	for depth := 64; ; depth *= 4 {
		if depth > maxDeepen {
			depth = maxDeepen
		}
		refGone := false
		if err := g.run(ctx, "fetch", "--depth="+fmt.Sprint(depth), "--no-tags", "--no-recurse-submodules", remoteURL, refspec); err != nil {
			if !strings.Contains(err.Error(), "couldn't find remote ref") {
				return fmt.Errorf("fetching %s to compare commits: %w", in.Ref.FullName(), err)
			}
			// The ref was deleted: what the checkout holds is all there is to compare.
			refGone = true
		}
		o.CurrentIsAncestor = g.isAncestor(ctx, o.Current, o.Build)
		o.BuildIsAncestor = g.isAncestor(ctx, o.Build, o.Current)
		o.CurrentOnRef = !refGone && g.isAncestor(ctx, o.Current, local)
		if o.CurrentIsAncestor || o.BuildIsAncestor || refGone {
			return nil
		}
		shallow, err := g.output(ctx, "rev-parse", "--is-shallow-repository")
		if err != nil {
			return err
		}
		if shallow != "true" || depth == maxDeepen {
			return nil
		}
	}
}

// isAncestor reports whether git can show that commit a is an ancestor of b; a commit the
// checkout does not hold counts as no.
func (g gitRunner) isAncestor(ctx context.Context, a, b string) bool {
	return g.command(ctx, "merge-base", "--is-ancestor", a, b).Run() == nil
}

// lockTags takes the tag lock of an image repository: an exclusive flock on a file named for
// the repository under TagLockDir. Separate opens of one file exclude each other, so it
// serializes the pushes of one worker as well as those of every worker sharing the folder.
func (a *Activities) lockTags(ctx context.Context, image string) (unlock func(), err error) {
	dir := a.TagLockDir
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "slipway-tag-locks")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating tag lock folder: %w", err)
	}
	sum := sha256.Sum256([]byte(image))
	f, err := os.OpenFile(filepath.Join(dir, hex.EncodeToString(sum[:16])+".lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening tag lock: %w", err)
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("taking tag lock: %w", err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
