package activities

import (
	"bytes"
	"context"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/containerd/containerd/v2/core/content"
	contentlocal "github.com/containerd/containerd/v2/plugins/content/local"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	bkclient "github.com/moby/buildkit/client"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// lossyRegistry is an in-memory registry that records its requests and, once lose is set,
// acts as a registry that lost every blob but kept the manifests: blobs are unknown and a
// manifest write is refused with MANIFEST_BLOB_UNKNOWN until blobs are uploaded again.
type lossyRegistry struct {
	url string

	mu       sync.Mutex
	reqs     []string
	lost     bool
	reloaded bool
}

func startLossyRegistry(t *testing.T) *lossyRegistry {
	t.Helper()
	r := &lossyRegistry{}
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.reqs = append(r.reqs, req.Method+" "+req.URL.Path)
		if req.Method == http.MethodPost && strings.Contains(req.URL.Path, "/blobs/uploads") {
			r.reloaded = true
		}
		lost := r.lost && !r.reloaded
		r.mu.Unlock()
		switch {
		case lost && strings.Contains(req.URL.Path, "/blobs/sha256:"):
			w.WriteHeader(http.StatusNotFound)
			return
		case lost && req.Method == http.MethodPut && strings.Contains(req.URL.Path, "/manifests/"):
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, `{"errors":[{"code":"MANIFEST_BLOB_UNKNOWN","message":"blob unknown to registry"}]}`)
			return
		}
		reg.ServeHTTP(w, req)
	}))
	t.Cleanup(srv.Close)
	r.url = strings.TrimPrefix(srv.URL, "http://")
	return r
}

// count counts the requests seen whose "METHOD PATH" starts with method and contains part,
// since the last forget.
func (r *lossyRegistry) count(method, part string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, q := range r.reqs {
		if strings.HasPrefix(q, method+" ") && strings.Contains(q, part) {
			n++
		}
	}
	return n
}

// forget drops the requests seen so far and sets whether the registry has lost its blobs.
func (r *lossyRegistry) forget(lost bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reqs, r.lost, r.reloaded = nil, lost, false
}

// A build that pushed its image by digest leaves the Push step only the tags to write: no blob
// is looked at or sent. When the registry no longer holds the image, or lost its blobs, the
// Push step uploads it from the workspace as before, and the tags end on the built digest.
func TestPushAfterStreamedPush(t *testing.T) {
	tests := []struct {
		name string
		in   PushInput
		// pushed: the build's streamed push reached the registry; lost: the registry lost the
		// blobs afterwards.
		pushed, lost bool
		wantUploads  bool
		// wantManifestPuts is the number of manifest writes once the blobs are there.
		wantManifestPuts int
	}{
		{name: "tags only", in: PushInput{Tags: []string{"v1", "latest"}}, pushed: true, wantManifestPuts: 2},
		{name: "mutable tag: nothing to write by digest", in: PushInput{Tags: []string{"v2", "main"}, Mutable: []string{"main"},
			Commit: strings.Repeat("b", 40)}, pushed: true, wantManifestPuts: 2},
		{name: "registry lost the image", in: PushInput{Tags: []string{"v3", "latest"}}, wantUploads: true, wantManifestPuts: 2},
		{name: "registry lost the image, mutable tag", in: PushInput{Tags: []string{"v4", "main"}, Mutable: []string{"main"},
			Commit: strings.Repeat("c", 40)}, wantUploads: true, wantManifestPuts: 3},
		{name: "registry lost the blobs, kept the manifest", in: PushInput{Tags: []string{"v5"}}, pushed: true, lost: true,
			wantUploads: true, wantManifestPuts: 1},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := startLossyRegistry(t)
			act, push := pushEnv(t)
			in := tt.in
			in.Image = reg.url + "/demo/app"
			in.Workspace = "s" + string(rune('0'+i))
			digest := builtWorkspace(t, act.WorkspaceRoot, in.Workspace)
			if tt.pushed {
				streamPush(t, filepath.Join(act.WorkspaceRoot, in.Workspace, imageDir), in.Image)
			}
			reg.forget(tt.lost)
			res, err := push(in)
			if err != nil {
				t.Fatal(err)
			}
			if res.Digest != digest.String() || strings.Join(res.Tags, ",") != strings.Join(in.Tags, ",") {
				t.Fatalf("result = %+v, want digest %s and tags %v", res, digest, in.Tags)
			}
			uploads := reg.count("POST", "/blobs/uploads")
			if (uploads > 0) != tt.wantUploads {
				t.Errorf("%d blob uploads, want uploads: %v", uploads, tt.wantUploads)
			}
			if !tt.wantUploads {
				if n := reg.count("HEAD", "/blobs/") + reg.count("GET", "/blobs/"); n != 0 {
					t.Errorf("%d blob requests, want none: the build pushed them", n)
				}
			}
			// A refused write of a registry that lost the blobs comes on top.
			puts := reg.count("PUT", "/manifests/")
			if tt.lost {
				puts--
			}
			if puts != tt.wantManifestPuts {
				t.Errorf("%d manifest writes, want %d", puts, tt.wantManifestPuts)
			}
			for _, tag := range in.Tags {
				if got, err := tagDigest(t, in.Image+":"+tag); err != nil || got != digest {
					t.Errorf("%s names %s (%v), want %s", tag, got, err, digest)
				}
			}
		})
	}
}

// streamPush pushes the image of the layout at dir to image by digest, as BuildKit's
// push-by-digest exporter does during the build.
func streamPush(t *testing.T, dir, image string) {
	t.Helper()
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	img, err := idx.Image(im.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.NewDigest(image + "@" + im.Manifests[0].Digest.String())
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
}

func TestStreamedPushFailed(t *testing.T) {
	const image = "127.0.0.1:5000/demo/app"
	tests := []struct {
		name string
		err  string
		want bool
	}{
		{name: "push refused", err: "failed to push 127.0.0.1:5000/demo/app:latest: unexpected status: 401 Unauthorized", want: true},
		{name: "registry down", err: "rpc error: code = Unknown desc = failed to push 127.0.0.1:5000/demo/app:latest: dial tcp 127.0.0.1:5000: connect: connection refused", want: true},
		{name: "another image", err: "failed to push 127.0.0.1:5000/demo/other:latest: denied"},
		{name: "failing step", err: `process "/bin/sh -c exit 1" did not complete successfully: exit code: 1`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := streamedPushFailed(errString(tt.err), image); got != tt.want {
				t.Fatalf("streamedPushFailed(%q) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
	if streamedPushFailed(nil, image) {
		t.Fatal("no error is a failed push")
	}
}

type errString string

func (e errString) Error() string { return string(e) }

// After a solve that failed in its push, the image is found in the worker's store by the
// manifest digest the OCI exporter reported, and by nothing else: a digest another vertex
// reported (the frontend's, or the push's own) does not name the build's image.
func TestExportedManifest(t *testing.T) {
	ctx := context.Background()
	cs, err := contentlocal.NewStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	put := func(b []byte) digest.Digest {
		d := digest.FromBytes(b)
		if err := content.WriteBlob(ctx, cs, d.String(), bytes.NewReader(b), ocispec.Descriptor{Digest: d, Size: int64(len(b))}); err != nil {
			t.Fatal(err)
		}
		return d
	}
	manifest := put([]byte(`{"schemaVersion":2,"mediaType":"` + ocispec.MediaTypeImageManifest + `"}`))
	other := put([]byte(`{"schemaVersion":2,"mediaType":"` + ocispec.MediaTypeImageManifest + `","annotations":{"x":"y"}}`))
	notManifest := put([]byte(`{"architecture":"amd64"}`))
	const oci, push, step = digest.Digest("sha256:01"), digest.Digest("sha256:02"), digest.Digest("sha256:03")
	status := func(v digest.Digest, id string) *bkclient.SolveStatus {
		return &bkclient.SolveStatus{Statuses: []*bkclient.VertexStatus{{ID: id, Vertex: v}}}
	}
	vertexes := &bkclient.SolveStatus{Vertexes: []*bkclient.Vertex{{Digest: oci, Name: ociExporterVertex},
		{Digest: push, Name: "exporting to image"}, {Digest: step, Name: "[2/2] RUN echo exporting to oci image format"}}}
	tests := []struct {
		name     string
		statuses []*bkclient.SolveStatus
		want     digest.Digest // "" when none is found
	}{
		{name: "reported by the OCI exporter", statuses: []*bkclient.SolveStatus{vertexes, status(oci, "exporting manifest "+manifest.String())}, want: manifest},
		{name: "status before its vertex", statuses: []*bkclient.SolveStatus{status(oci, "exporting manifest "+manifest.String()), vertexes}, want: manifest},
		{name: "reported by another vertex only", statuses: []*bkclient.SolveStatus{vertexes, status(push, "exporting manifest "+other.String()),
			status(step, "exporting manifest "+other.String())}},
		{name: "not in the store", statuses: []*bkclient.SolveStatus{vertexes, status(oci, "exporting manifest "+digest.FromString("gone").String())}},
		{name: "not a manifest", statuses: []*bkclient.SolveStatus{vertexes, status(oci, "exporting manifest "+notManifest.String())}},
		{name: "nothing reported", statuses: []*bkclient.SolveStatus{vertexes}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var e exportedManifest
			for _, st := range tt.statuses {
				e.watch(st)
			}
			desc, err := e.descriptor(ctx, cs)
			if tt.want == "" {
				if err == nil {
					t.Fatalf("found %s, want none", desc.Digest)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if desc.Digest != tt.want || desc.MediaType != ocispec.MediaTypeImageManifest || desc.Size == 0 {
				t.Fatalf("descriptor = %+v, want %s", desc, tt.want)
			}
			resp, err := exportResponse(desc)
			if err != nil {
				t.Fatal(err)
			}
			if got, err := exportedImage(resp.ExporterResponse); err != nil || got.Digest != desc.Digest {
				t.Fatalf("the answer names %v (%v), want %s", got.Digest, err, desc.Digest)
			}
		})
	}
}

func TestStreamTo(t *testing.T) {
	const image = "127.0.0.1:5000/demo/app"
	tests := []struct {
		name     string
		off      bool
		deferred bool
		in       BuildInput
		want     string
	}{
		{name: "no registry cache", in: BuildInput{Image: image}, want: image},
		{name: "cache in the image's repository: its export sends the layers", in: BuildInput{Image: image, CacheRef: image + ":buildcache"}},
		{name: "cache in the image's repository, exported after the solve", deferred: true, in: BuildInput{Image: image, CacheRef: image + ":buildcache"}, want: image},
		{name: "cache in a repository below", in: BuildInput{Image: image, CacheRef: image + "/cache:main"}, want: image},
		{name: "streamed pushes off", off: true, in: BuildInput{Image: image}},
		{name: "no image", in: BuildInput{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := &Activities{NoStreamedPush: tt.off}
			if got := a.streamTo(tt.in, tt.deferred); got != tt.want {
				t.Fatalf("streamTo = %q, want %q", got, tt.want)
			}
		})
	}
}
