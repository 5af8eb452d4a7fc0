package activities

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/slipway-dev/slipway/build"
	"github.com/slipway-dev/slipway/registryauth"
)

// pushTokenTTL bounds the token a push writes with; the push step's own timeout is 15 minutes.
const pushTokenTTL = 20 * time.Minute

// PushInput names the image repository and the tags to write the built image to.
type PushInput struct {
	Workspace string   `json:"workspace"`
	Image     string   `json:"image"`
	Tags      []string `json:"tags"`
	// RemoveWorkspace removes the workspace once every tag is written, sparing the build a
	// separate Cleanup step (a round trip to the server) when it succeeds.
	RemoveWorkspace bool `json:"remove_workspace,omitempty"`
	// Mutable lists the tags (among Tags) that follow a ref. Each is moved only when Commit
	// is not older than the commit its current image records (see MoveTag); the ancestry is
	// read from the checkout, fetching more of Ref from Source as needed. An empty Commit
	// (a build scheduled before this check) pushes every tag as it is.
	Mutable   []string     `json:"mutable,omitempty"`
	Commit    string       `json:"commit,omitempty"`
	Namespace string       `json:"namespace,omitempty"`
	Source    build.Source `json:"source,omitempty"`
	Ref       build.Ref    `json:"ref,omitempty"`
}

// PushResult is the pushed manifest's digest.
type PushResult struct {
	Digest string `json:"digest"`
	// Tags are the tags written; Held the mutable tags left where they were, with the reason.
	// A result of a push before this check carries neither: every tag was written.
	Tags []string        `json:"tags,omitempty"`
	Held []build.HeldTag `json:"held,omitempty"`
	// WorkspaceRemoved is set when RemoveWorkspace was asked and done; otherwise the
	// workflow's Cleanup still removes it.
	WorkspaceRemoved bool `json:"workspace_removed,omitempty"`
}

// Push writes the image the build step left in the workspace to every tag. It only reads the
// workspace, so a retry after a registry outage pushes again without building again; blobs
// the registry already holds are not sent twice, and an image the build already pushed gets
// only its tags.
func (a *Activities) Push(ctx context.Context, in PushInput) (PushResult, error) {
	ws, err := a.workspace(in.Workspace)
	if err != nil {
		return PushResult{}, err
	}
	repo, err := build.ParseImage(in.Image)
	if err != nil {
		return PushResult{}, err
	}
	tags, err := imageTags(repo, in.Tags)
	if err != nil {
		return PushResult{}, err
	}
	img, err := loadBuiltImage(ws, in.Workspace)
	if err != nil {
		return PushResult{}, err
	}
	log, err := a.openLog(ctx)
	if err != nil {
		return PushResult{}, err
	}
	defer log.Close()
	stop := heartbeatEvery(ctx, 5*time.Second)
	defer stop()
	auth, err := a.pushAuth(ctx, repo)
	if err != nil {
		return PushResult{}, err
	}
	var sent pushCounter
	start := time.Now()
	res, err := a.pushTags(ctx, log, ws, in, tags, img, []remote.Option{auth, remote.WithTransport(sent.transport(remote.DefaultTransport))})
	if err != nil {
		return PushResult{}, err
	}
	fmt.Fprintf(log, "==> pushed %s@%s in %s (%s)\n", repo, img.digest, time.Since(start).Round(time.Millisecond), &sent)
	if in.RemoveWorkspace {
		// A retry of this step after the removal finds no image and starts the build over
		// elsewhere; that needs the completion to be lost after the push, and pushes the same
		// image again.
		if err := os.RemoveAll(ws); err != nil {
			activity.GetLogger(ctx).Warn("removing workspace after the push; Cleanup will try again", "workspace", in.Workspace, "error", err)
		} else {
			res.WorkspaceRemoved = true
		}
	}
	return res, nil
}

// imageTags checks each tag and names it in repo; there must be at least one.
func imageTags(repo name.Repository, in []string) ([]name.Tag, error) {
	if len(in) == 0 {
		return nil, invalidTag("no tag to push")
	}
	tags := make([]name.Tag, 0, len(in))
	for _, t := range in {
		if !build.ValidTag(t) {
			return nil, invalidTag(fmt.Sprintf("%q is not a valid image tag", t))
		}
		tags = append(tags, repo.Tag(t))
	}
	return tags, nil
}

// builtImage is the image, or index, that a build left in its workspace.
type builtImage struct {
	artifact remote.Taggable
	digest   v1.Hash
}

// loadBuiltImage reads the one image of the OCI layout in workspace ws (whose key is key).
func loadBuiltImage(ws, key string) (builtImage, error) {
	idx, err := layout.ImageIndexFromPath(filepath.Join(ws, imageDir))
	if err != nil {
		// No image where this session's build put one: not this host's build.
		return builtImage{}, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("workspace %s holds no built image on this host: %v", key, err), build.ErrTypeWorkspaceLost, nil)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return builtImage{}, fmt.Errorf("reading image index: %w", err)
	}
	if len(im.Manifests) != 1 {
		return builtImage{}, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("built image layout holds %d manifests, want 1", len(im.Manifests)), build.ErrTypeBuildFailed, nil)
	}
	desc := im.Manifests[0]
	var artifact remote.Taggable
	if desc.MediaType.IsIndex() {
		artifact, err = idx.ImageIndex(desc.Digest)
	} else {
		artifact, err = idx.Image(desc.Digest)
	}
	if err != nil {
		return builtImage{}, fmt.Errorf("reading built image %s: %w", desc.Digest, err)
	}
	return builtImage{artifact: artifact, digest: desc.Digest}, nil
}

// pushAuth is how the push authenticates to repo's registry: with a token for repo alone on
// the local registry, so the push can write nowhere else, and from the keychain elsewhere.
func (a *Activities) pushAuth(ctx context.Context, repo name.Repository) (remote.Option, error) {
	if !a.localRegistry(repo.RegistryStr()) {
		return remote.WithAuthFromKeychain(a.Keychain), nil
	}
	ra, err := registryauth.RepositoryAuth(a.RegistryKey, "build "+activityWorkflowID(ctx),
		[]registryauth.Access{{Type: "repository", Name: repo.RepositoryStr(), Actions: []string{registryauth.Pull, registryauth.Push}}}, pushTokenTTL)
	if err != nil {
		return nil, err
	}
	return remote.WithAuth(ra), nil
}

// pushTags uploads the image (or finds it pushed by the build, see sendImage), then writes its
// tags: the immutable ones as they are, the mutable ones (when the input names a commit) under
// the repository's tag lock, each only if MoveTag allows.
func (a *Activities) pushTags(ctx context.Context, log io.Writer, ws string, in PushInput, tags []name.Tag,
	img builtImage, opts []remote.Option) (PushResult, error) {
	mutable := map[string]bool{}
	if in.Commit != "" {
		for _, t := range in.Mutable {
			mutable[t] = true
		}
	}
	// The image goes up by digest first; tags are then only manifest writes, and the mutable
	// ones are written under the repository's tag lock.
	first := name.Reference(tags[0])
	if len(mutable) > 0 {
		first = tags[0].Repository.Digest(img.digest.String())
	}
	if err := sendImage(ctx, log, first, img, opts); err != nil {
		fmt.Fprintf(log, "==> push failed: %v\n", err)
		return PushResult{}, fmt.Errorf("pushing %s: %w", first, err)
	}
	res := PushResult{Digest: img.digest.String()}
	tagOpts := append([]remote.Option{remote.WithContext(ctx)}, opts...)
	var later []name.Tag
	for i, t := range tags {
		if mutable[t.TagStr()] {
			later = append(later, t)
			continue
		}
		if i > 0 || len(mutable) > 0 {
			fmt.Fprintf(log, "==> tag %s\n", t)
			if err := remote.Tag(t, img.artifact, tagOpts...); err != nil {
				return PushResult{}, fmt.Errorf("tagging %s: %w", t, err)
			}
		}
	}
	if len(later) > 0 {
		var err error
		if res.Held, err = a.moveTags(ctx, log, ws, in, img.digest, img.artifact, later, tagOpts); err != nil {
			return PushResult{}, err
		}
	}
	res.Tags = writtenTags(tags, res.Held)
	return res, nil
}

// uploadImage writes artifact to ref, retrying a failed request a few times and heartbeating
// with its progress so a slow upload is not taken for a dead worker.
func uploadImage(ctx context.Context, ref name.Reference, artifact remote.Taggable, with []remote.Option) error {
	updates := make(chan v1.Update, 16)
	go func() {
		last := time.Time{}
		for u := range updates {
			if time.Since(last) > time.Second {
				activity.RecordHeartbeat(ctx, u.Complete)
				last = time.Now()
			}
		}
	}()
	opts := append([]remote.Option{
		remote.WithContext(ctx),
		remote.WithProgress(updates),
		remote.WithRetryBackoff(remote.Backoff{Duration: 500 * time.Millisecond, Factor: 2, Jitter: 0.1, Steps: 4}),
	}, with...)
	switch v := artifact.(type) {
	case v1.ImageIndex:
		return remote.WriteIndex(ref, v, opts...)
	case v1.Image:
		return remote.Write(ref, v, opts...)
	}
	close(updates)
	return fmt.Errorf("%T is neither an image nor an index", artifact)
}

// writtenTags are the tags of tags not held back.
func writtenTags(tags []name.Tag, held []build.HeldTag) []string {
	heldTag := map[string]bool{}
	for _, h := range held {
		heldTag[h.Tag] = true
	}
	var out []string
	for _, t := range tags {
		if !heldTag[t.TagStr()] {
			out = append(out, t.TagStr())
		}
	}
	return out
}
