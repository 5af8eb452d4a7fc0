package activities

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	bkclient "github.com/moby/buildkit/client"
)

// streamedPush is the exporter that has BuildKit push the image to repository image, by
// digest only, in the solve that builds it: its layers go to the registry straight from
// BuildKit's content store, beside the worker's own copy and the registry cache export,
// instead of after the build from the worker's copy. The Push step then writes only the tags
// (manifests), or uploads from the worker's copy when the registry no longer holds the image.
//
// The exporter's settings are those under which it writes the same manifest as the OCI
// exporter (OCI media types); were the two ever to differ, the Push step would find the
// worker's digest missing and upload it, slower but correct. store=false keeps the image out
// of buildkitd's own image list, where it would pin every build's blobs.
func streamedPush(image string) bkclient.ExportEntry {
	return bkclient.ExportEntry{Type: bkclient.ExporterImage, Attrs: map[string]string{
		"name":           image,
		"push":           "true",
		"push-by-digest": "true",
		"oci-mediatypes": "true",
		"store":          "false",
	}}
}

// streamedPushFailed tells whether a solve failed in the streamed push to image, and only
// there: the build itself succeeded, and the Push step can upload what the worker keeps.
// BuildKit names the reference it failed to push (image with a tag added); a build step's
// error never starts with it, and if a hostile one contains it the cost is one more solve.
func streamedPushFailed(err error, image string) bool {
	return err != nil && image != "" && strings.Contains(err.Error(), "failed to push "+image)
}

// sendImage puts the built image in the registry under ref: when the registry already holds
// it (the build pushed it by digest), only its manifest is written under ref, none when ref is
// the digest itself; otherwise, or when the registry answers that it lost the image's blobs,
// the image is uploaded from the worker's layout as uploadImage does.
func sendImage(ctx context.Context, log io.Writer, ref name.Reference, img builtImage, opts []remote.Option) error {
	byDigest := ref.Context().Digest(img.digest.String())
	held, err := registryHolds(ctx, byDigest, opts)
	switch {
	case err != nil:
		fmt.Fprintf(log, "==> looking for %s in the registry: %v; uploading it\n", byDigest, err)
	case held:
		if _, isDigest := ref.(name.Digest); isDigest {
			fmt.Fprintf(log, "==> %s is in the registry (pushed by the build)\n", byDigest)
			return nil
		}
		fmt.Fprintf(log, "==> tag %s (image pushed by the build)\n", ref)
		err := remote.Put(ref, img.artifact, append([]remote.Option{remote.WithContext(ctx)}, opts...)...)
		if err == nil || !blobsLost(err) {
			return err
		}
		fmt.Fprintf(log, "==> the registry lost the image's layers (%v); uploading them\n", err)
	}
	fmt.Fprintf(log, "==> push %s\n", ref)
	return uploadImage(ctx, ref, img.artifact, opts)
}

// registryHolds tells whether the registry holds the manifest ref names.
func registryHolds(ctx context.Context, ref name.Digest, opts []remote.Option) (bool, error) {
	desc, err := remote.Head(ref, append([]remote.Option{remote.WithContext(ctx)}, opts...)...)
	var terr *transport.Error
	if errors.As(err, &terr) && terr.StatusCode == http.StatusNotFound {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return desc.Digest.String() == ref.DigestStr(), nil
}

// blobsLost tells whether a manifest write was refused because the registry does not hold
// blobs the manifest names.
func blobsLost(err error) bool {
	var terr *transport.Error
	if !errors.As(err, &terr) {
		return false
	}
	for _, d := range terr.Errors {
		if d.Code == transport.ManifestBlobUnknownErrorCode || d.Code == transport.BlobUnknownErrorCode {
			return true
		}
	}
	return false
}

// pushCounter counts the requests a push sends to the registry and the bytes of their
// bodies, for the build log: what the Push step cost the network.
type pushCounter struct {
	requests, sent atomic.Int64
}

// transport counts every request through base.
func (c *pushCounter) transport(base http.RoundTripper) http.RoundTripper {
	return countingTransport{base: base, c: c}
}

// String is the build log's account of the push.
func (c *pushCounter) String() string {
	return fmt.Sprintf("%d registry requests, %d bytes sent", c.requests.Load(), c.sent.Load())
}

type countingTransport struct {
	base http.RoundTripper
	c    *pushCounter
}

func (t countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	t.c.requests.Add(1)
	if req.Body != nil && req.Body != http.NoBody {
		// RoundTrip must not change the caller's request: a shallow copy carries the
		// counting body.
		r := req.Clone(req.Context())
		r.Body = countingBody{ReadCloser: req.Body, n: &t.c.sent}
		req = r
	}
	return t.base.RoundTrip(req)
}

// countingBody adds the bytes read from a request body to n.
type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (b countingBody) Read(p []byte) (int, error) {
	k, err := b.ReadCloser.Read(p)
	b.n.Add(int64(k))
	return k, err
}
