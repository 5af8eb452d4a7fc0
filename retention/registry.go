package retention

import (
	"context"
	"fmt"
	"sort"
	"sync"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"golang.org/x/sync/errgroup"

	"github.com/slipway-dev/slipway/registryclean"
)

// ListTags reads every tag of repo with its digest and the created time its image config
// records (for an index, that of its first image). The created time is the build's: BuildKit
// writes the build's time there and the push copies the config as built, so it is the age of
// the image, the same for every tag on it, and needs no build record (those go with Temporal's
// retention, long before the images). An image whose config cannot be read gets a zero time,
// which Select keeps. A repository the registry does not know has no tags.
func ListTags(ctx context.Context, repo name.Repository, opts ...remote.Option) ([]Tag, error) {
	opts = append([]remote.Option{remote.WithContext(ctx)}, opts...)
	names, err := remote.List(repo, opts...)
	if registryclean.IsNotFound(err) {
		return []Tag{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listing the tags of %s: %w", repo, err)
	}
	sort.Strings(names)
	// Resolve every tag, then read each distinct image's config once, a few at a time.
	descs := make([]*remote.Descriptor, len(names))
	// The descriptors keep the context of their Get for the config reads below: ctx, not the
	// group's, which ends with Wait.
	var g errgroup.Group
	g.SetLimit(listConcurrency)
	for i, n := range names {
		g.Go(func() error {
			desc, err := remote.Get(repo.Tag(n), opts...)
			if registryclean.IsNotFound(err) {
				return nil // deleted meanwhile
			}
			if err != nil {
				return fmt.Errorf("reading %s:%s: %w", repo, n, err)
			}
			descs[i] = desc
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	byDigest := map[string]*remote.Descriptor{}
	for _, d := range descs {
		if d != nil {
			byDigest[d.Digest.String()] = d
		}
	}
	var mu sync.Mutex
	created := map[string]v1.Time{}
	g = errgroup.Group{}
	g.SetLimit(listConcurrency)
	for d, desc := range byDigest {
		g.Go(func() error {
			c := createdOf(desc)
			mu.Lock()
			created[d] = c
			mu.Unlock()
			return nil
		})
	}
	_ = g.Wait()
	tags := make([]Tag, 0, len(names))
	for i, n := range names {
		if descs[i] == nil {
			continue
		}
		d := descs[i].Digest.String()
		tags = append(tags, Tag{Name: n, Digest: d, Created: created[d].Time.UTC()})
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return tags, nil
}

// listConcurrency bounds the registry requests ListTags has in flight.
const listConcurrency = 8

// createdOf is the created time of desc's image, or of an index's first image.
func createdOf(desc *remote.Descriptor) v1.Time {
	var img v1.Image
	var err error
	if desc.MediaType.IsIndex() {
		idx, ierr := desc.ImageIndex()
		if ierr != nil {
			return v1.Time{}
		}
		im, merr := idx.IndexManifest()
		if merr != nil || len(im.Manifests) == 0 || !im.Manifests[0].MediaType.IsImage() {
			return v1.Time{}
		}
		img, err = idx.Image(im.Manifests[0].Digest)
	} else if desc.MediaType.IsImage() {
		img, err = desc.Image()
	} else {
		return v1.Time{}
	}
	if err != nil {
		return v1.Time{}
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return v1.Time{}
	}
	return cf.Created
}

// Deleted is what Apply removed.
type Deleted struct {
	// Tags are the tags removed, Manifests the digests deleted.
	Tags      []string `json:"tags"`
	Manifests []string `json:"manifests"`
	// Skipped are planned tags left in place because the repository changed since the plan
	// (the tag moved, or a tag the plan keeps now points at the same manifest), with why.
	Skipped []Decision `json:"skipped"`
}

// Apply deletes plan's tags from repo. Distribution registries (the local one is Debian's
// docker-registry, distribution 2.8) delete manifests by digest only, and deleting a manifest
// untags every tag on it; newer ones (OCI distribution 1.1) also untag by name. So Apply
// first reads the repository again and deletes a manifest only when every tag now on it is
// one the plan deletes (a tag pushed or moved since the plan keeps its manifest); it untags
// by name where the registry supports it, then deletes each such manifest by digest.
func Apply(ctx context.Context, repo name.Repository, plan Plan, opts ...remote.Option) (Deleted, error) {
	opts = append([]remote.Option{remote.WithContext(ctx)}, opts...)
	out := Deleted{Tags: []string{}, Manifests: []string{}, Skipped: []Decision{}}
	if len(plan.Delete) == 0 {
		return out, nil
	}
	names, err := remote.List(repo, opts...)
	if registryclean.IsNotFound(err) {
		return out, nil
	}
	if err != nil {
		return out, fmt.Errorf("listing the tags of %s: %w", repo, err)
	}
	planned := map[string]string{}
	for _, d := range plan.Delete {
		planned[d.Name] = d.Digest
	}
	// now: the digest every tag points at as the deletion starts.
	now := map[string]string{}
	for _, n := range names {
		desc, err := remote.Head(repo.Tag(n), opts...)
		if registryclean.IsNotFound(err) {
			continue
		}
		if err != nil {
			return out, fmt.Errorf("resolving %s:%s: %w", repo, n, err)
		}
		now[n] = desc.Digest.String()
	}
	blocked := map[string]string{} // digest -> a tag not planned for deletion that is on it
	for n, d := range now {
		if planned[n] != d {
			blocked[d] = n
		}
	}
	var digests []string
	seen := map[string]bool{}
	for _, d := range plan.Delete {
		cur, present := now[d.Name]
		switch {
		case !present:
			out.Skipped = append(out.Skipped, Decision{Tag: d.Tag, Reason: "gone already"})
			continue
		case cur != d.Digest:
			out.Skipped = append(out.Skipped, Decision{Tag: d.Tag, Reason: "moved to " + cur + " since the plan"})
			continue
		case blocked[d.Digest] != "":
			out.Skipped = append(out.Skipped, Decision{Tag: d.Tag, Reason: fmt.Sprintf("tag %q is now on the same image", blocked[d.Digest])})
			continue
		}
		if err := remote.Delete(repo.Tag(d.Name), opts...); err != nil && !registryclean.IsRefused(err) {
			return out, fmt.Errorf("deleting tag %s:%s: %w", repo, d.Name, err)
		}
		out.Tags = append(out.Tags, d.Name)
		if !seen[d.Digest] {
			seen[d.Digest] = true
			digests = append(digests, d.Digest)
		}
	}
	sort.Strings(digests)
	for _, d := range digests {
		if err := remote.Delete(repo.Digest(d), opts...); err != nil && !registryclean.IsNotFound(err) {
			return out, fmt.Errorf("deleting manifest %s of %s: %w", d, repo, err)
		}
		out.Manifests = append(out.Manifests, d)
	}
	sort.Strings(out.Tags)
	return out, nil
}
