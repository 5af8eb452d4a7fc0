package activities

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/containerd/containerd/v2/core/content"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	bkclient "github.com/moby/buildkit/client"
	"github.com/moby/buildkit/exporter/containerimage/exptypes"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
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

// streamTo is the repository a build's solve pushes its image to (see streamedPush), or ""
// for none: when streamed pushes are off, or when the build exports its registry cache into
// the image's own repository in the solve. That export (mode=max) already sends every layer
// of the image there in the solve, beside the streamed push: the two would upload each new
// layer twice at once, and the Push step finds the layers the cache export sent. A cache
// export deferred until after the solve (deferredCache, see CacheExports) finds the layers
// the streamed push sent instead, and uploads only the intermediate stages'.
func (a *Activities) streamTo(in BuildInput, deferredCache bool) string {
	if a.NoStreamedPush || in.Image == "" {
		return ""
	}
	if in.CacheRef != "" && !deferredCache {
		cache, cerr := name.ParseReference(in.CacheRef)
		image, ierr := name.NewRepository(in.Image)
		if cerr != nil || ierr != nil || cache.Context().Name() == image.Name() {
			return ""
		}
	}
	return in.Image
}

// streamedPushFailed tells whether a solve failed in the streamed push to image, and only
// there: the build itself succeeded, and the Push step can upload what the worker keeps.
// BuildKit names the reference it failed to push (image with a tag added); a build step's
// error never starts with it, and if a hostile one contains it the cost is one more solve.
func streamedPushFailed(err error, image string) bool {
	return err != nil && image != "" && strings.Contains(err.Error(), "failed to push "+image)
}

// solveStreamed runs a solve whose exports are the worker's copy (into cs) and the streamed
// push to image. BuildKit pushes only once every export has written its copy, so a solve that
// failed in the push alone has written the worker's: the image is taken from there, named by
// the manifest digest the OCI exporter reported in the solve's progress, and the Push step
// uploads it. Solving again would resolve the base images in a registry that may be the one
// down. When the digest is unknown, the solve runs again without the push all the same.
func (a *Activities) solveStreamed(ctx context.Context, opt bkclient.SolveOpt, log io.Writer, image string, cs content.Store) (*bkclient.SolveResponse, error) {
	var seen exportedManifest
	start := time.Now()
	resp, err := a.solveOnce(ctx, opt, log, seen.watch)
	if err == nil {
		return resp, nil
	}
	if !streamedPushFailed(err, image) {
		return nil, a.solveFailed(ctx, err, log, start)
	}
	desc, derr := seen.descriptor(ctx, cs)
	if derr == nil {
		fmt.Fprintf(log, "==> the build's push to the registry failed (%v); the Push step uploads the image from the worker's copy\n", err)
		return exportResponse(desc)
	}
	fmt.Fprintf(log, "==> the build's push to the registry failed (%v), and the worker's copy is not known (%v): building again without the push\n", err, derr)
	opt.Exports = opt.Exports[:1]
	return a.solve(ctx, opt, log)
}

// ociExporterVertex is the name BuildKit gives the OCI exporter's vertex.
const ociExporterVertex = "exporting to oci image format"

// exportedManifest follows a solve's progress for the manifest digest the OCI exporter wrote.
// Vertex names come from BuildKit and the frontend; the frontend's carry a stage prefix
// ("[internal]", "[2/3]"), so none can pass for the exporter's.
type exportedManifest struct {
	names map[digest.Digest]string
	// manifest and list are, per vertex, the digests of the manifest and of the manifest list
	// it reported writing.
	manifest, list map[digest.Digest]string
}

// watch reads one status of the solve.
func (e *exportedManifest) watch(st *bkclient.SolveStatus) {
	if e.names == nil {
		e.names, e.manifest, e.list = map[digest.Digest]string{}, map[digest.Digest]string{}, map[digest.Digest]string{}
	}
	for _, v := range st.Vertexes {
		e.names[v.Digest] = v.Name
	}
	for _, s := range st.Statuses {
		if d, ok := strings.CutPrefix(s.ID, "exporting manifest list "); ok {
			e.list[s.Vertex] = d
		} else if d, ok := strings.CutPrefix(s.ID, "exporting manifest "); ok {
			e.manifest[s.Vertex] = d
		}
	}
}

// descriptor is the descriptor of the image the OCI exporter wrote into cs: its manifest
// list when it wrote one, else its manifest.
func (e *exportedManifest) descriptor(ctx context.Context, cs content.Store) (ocispec.Descriptor, error) {
	var found string
	for v, name := range e.names {
		if name != ociExporterVertex {
			continue
		}
		if found = e.list[v]; found == "" {
			found = e.manifest[v]
		}
	}
	d, err := digest.Parse(found)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("the solve reported no manifest written by %q", ociExporterVertex)
	}
	info, err := cs.Info(ctx, d)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("reading manifest %s in the image store: %w", d, err)
	}
	blob, err := content.ReadBlob(ctx, cs, ocispec.Descriptor{Digest: d, Size: info.Size})
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("reading manifest %s in the image store: %w", d, err)
	}
	var m struct {
		MediaType string `json:"mediaType"`
	}
	if err := json.Unmarshal(blob, &m); err != nil || (m.MediaType != ocispec.MediaTypeImageManifest && m.MediaType != ocispec.MediaTypeImageIndex) {
		return ocispec.Descriptor{}, fmt.Errorf("manifest %s in the image store is no OCI manifest or index (%q, %v)", d, m.MediaType, err)
	}
	return ocispec.Descriptor{MediaType: m.MediaType, Digest: d, Size: info.Size}, nil
}

// exportResponse is the answer of a solve that exported desc, as BuildKit gives it.
func exportResponse(desc ocispec.Descriptor) (*bkclient.SolveResponse, error) {
	raw, err := json.Marshal(desc)
	if err != nil {
		return nil, fmt.Errorf("encoding the exported image's descriptor: %w", err)
	}
	return &bkclient.SolveResponse{ExporterResponse: map[string]string{
		exptypes.ExporterImageDigestKey:     desc.Digest.String(),
		exptypes.ExporterImageDescriptorKey: base64.StdEncoding.EncodeToString(raw),
	}}, nil
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
