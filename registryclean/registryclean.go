// Package registryclean removes an image repository's images from a registry through the
// registry's API (OCI distribution), for when Slipway deletes the repository they belong to.
//
// Registries delete manifests by digest only, and a manifest's deletion untags every tag that
// pointed at it; blobs go at the registry's next garbage collection. The registry must allow
// deletes (distribution: storage.delete.enabled).
package registryclean

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// Result says what DeleteRepository removed.
type Result struct {
	// Tags are the tags the repository had.
	Tags []string `json:"tags"`
	// Manifests are the digests of the manifests deleted (several tags may share one).
	Manifests []string `json:"manifests"`
}

// DeleteRepository deletes every tagged manifest of repo, authenticating with kc (a keychain
// that resolves the registry's credentials; authn.NewMultiKeychain() for none). A repository
// the registry does not know is already empty: no error. Extra options (a transport, say) are
// passed to every call.
func DeleteRepository(ctx context.Context, repo name.Repository, kc authn.Keychain, opts ...remote.Option) (Result, error) {
	opts = append([]remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(kc)}, opts...)
	tags, err := remote.List(repo, opts...)
	if IsNotFound(err) {
		return Result{Tags: []string{}, Manifests: []string{}}, nil
	}
	if err != nil {
		return Result{}, fmt.Errorf("listing the tags of %s: %w", repo, err)
	}
	sort.Strings(tags)
	res := Result{Tags: tags, Manifests: []string{}}
	seen := map[string]bool{}
	for _, tag := range tags {
		desc, err := remote.Head(repo.Tag(tag), opts...)
		if IsNotFound(err) {
			continue // untagged meanwhile
		}
		if err != nil {
			return res, fmt.Errorf("resolving %s:%s: %w", repo, tag, err)
		}
		// Registries that delete tags (OCI distribution 1.1, go-containerregistry's) untag
		// here; those that do not (distribution 2) refuse, and untag with the manifest below.
		if err := remote.Delete(repo.Tag(tag), opts...); err != nil && !IsRefused(err) {
			return res, fmt.Errorf("deleting tag %s:%s: %w", repo, tag, err)
		}
		if d := desc.Digest.String(); !seen[d] {
			seen[d] = true
			res.Manifests = append(res.Manifests, d)
		}
	}
	for _, d := range res.Manifests {
		if err := remote.Delete(repo.Digest(d), opts...); err != nil && !IsNotFound(err) {
			return res, fmt.Errorf("deleting manifest %s of %s: %w", d, repo, err)
		}
	}
	left, err := remote.List(repo, opts...)
	if err != nil && !IsNotFound(err) {
		return res, fmt.Errorf("listing the tags of %s after deleting: %w", repo, err)
	}
	if len(left) > 0 {
		return res, fmt.Errorf("%s still has tags %v after its manifests were deleted (pushed meanwhile?)", repo, left)
	}
	return res, nil
}

// isRefused reports a registry that does not delete by tag (400, 404, 405), or a tag gone.
func IsRefused(err error) bool {
	var terr *transport.Error
	if !errors.As(err, &terr) {
		return false
	}
	switch terr.StatusCode {
	case http.StatusBadRequest, http.StatusNotFound, http.StatusMethodNotAllowed:
		return true
	}
	return false
}

// isNotFound reports a registry's 404 (NAME_UNKNOWN, MANIFEST_UNKNOWN and the like).
func IsNotFound(err error) bool {
	var terr *transport.Error
	return err != nil && errors.As(err, &terr) && terr.StatusCode == http.StatusNotFound
}
