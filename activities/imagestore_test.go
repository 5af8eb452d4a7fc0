package activities

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/errdefs"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	digest "github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// putBlob writes data into the store as BuildKit would and returns its descriptor.
func putBlob(t *testing.T, s *ImageStore, mediaType string, data []byte) ocispec.Descriptor {
	t.Helper()
	sum := sha256.Sum256(data)
	d := ocispec.Descriptor{MediaType: mediaType, Digest: digest.Digest("sha256:" + hex.EncodeToString(sum[:])), Size: int64(len(data))}
	p, err := s.blobPath(d)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return d
}

// storedImage puts a one-layer image into the store and returns its manifest's descriptor
// and the descriptors of its config and layer.
func storedImage(t *testing.T, s *ImageStore, layerText string) (manifest, config, layer ocispec.Descriptor) {
	t.Helper()
	layer = putBlob(t, s, ocispec.MediaTypeImageLayer, []byte(layerText))
	cfg, _ := json.Marshal(ocispec.Image{
		Platform: ocispec.Platform{OS: "linux", Architecture: "amd64"},
		RootFS:   ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{layer.Digest}},
	})
	config = putBlob(t, s, ocispec.MediaTypeImageConfig, cfg)
	m, _ := json.Marshal(ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    config,
		Layers:    []ocispec.Descriptor{layer},
	})
	manifest = putBlob(t, s, ocispec.MediaTypeImageManifest, m)
	return manifest, config, layer
}

func TestImageStoreLayoutReadsAsAnOCILayout(t *testing.T) {
	s := &ImageStore{Dir: t.TempDir()}
	manifest, _, layer := storedImage(t, s, "layer one")
	out := filepath.Join(t.TempDir(), imageDir)
	if err := s.layout(out, manifest); err != nil {
		t.Fatal(err)
	}
	idx, err := layout.ImageIndexFromPath(out)
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != 1 || im.Manifests[0].Digest.String() != manifest.Digest.String() {
		t.Fatalf("index names %v, want %s", im.Manifests, manifest.Digest)
	}
	img, err := idx.Image(im.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("layers = %v, %v", layers, err)
	}
	if d, _ := layers[0].Digest(); d.String() != layer.Digest.String() {
		t.Fatalf("layer %s, want %s", d, layer.Digest)
	}
	// Removing the workspace's layout leaves the shared blobs alone.
	if err := os.RemoveAll(out); err != nil {
		t.Fatal(err)
	}
	if p, _ := s.blobPath(layer); !exists(p) {
		t.Fatal("removing the layout removed a blob of the store")
	}
}

func TestImageStorePrune(t *testing.T) {
	now := time.Now()
	tests := []struct {
		name       string
		usedAgo    time.Duration // when the old image was last touched
		sinceLast  time.Duration // since the last prune
		wantKept   bool
		wantPruned int
	}{
		{name: "used within the TTL is kept", usedAgo: 30 * time.Minute, sinceLast: time.Hour, wantKept: true},
		{name: "unused past the TTL is removed", usedAgo: 2 * time.Hour, sinceLast: time.Hour, wantKept: false, wantPruned: 3},
		{name: "no prune twice within a minute", usedAgo: 2 * time.Hour, sinceLast: 10 * time.Second, wantKept: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &ImageStore{Dir: t.TempDir(), TTL: time.Hour, lastPrune: now.Add(-tt.sinceLast)}
			old, oldConfig, oldLayer := storedImage(t, s, "old layer")
			if err := s.touch(old, now.Add(-tt.usedAgo)); err != nil {
				t.Fatal(err)
			}
			fresh, _, freshLayer := storedImage(t, s, "fresh layer")
			if err := s.touch(fresh, now); err != nil {
				t.Fatal(err)
			}
			n, err := s.pruneIfDue(now)
			if err != nil {
				t.Fatal(err)
			}
			if n != tt.wantPruned {
				t.Fatalf("pruned %d blobs, want %d", n, tt.wantPruned)
			}
			for _, d := range []ocispec.Descriptor{old, oldConfig, oldLayer} {
				if p, _ := s.blobPath(d); exists(p) != tt.wantKept {
					t.Fatalf("blob %s kept = %t, want %t", d.Digest, exists(p), tt.wantKept)
				}
			}
			for _, d := range []ocispec.Descriptor{fresh, freshLayer} {
				if p, _ := s.blobPath(d); !exists(p) {
					t.Fatalf("fresh blob %s was removed", d.Digest)
				}
			}
		})
	}
}

func TestImageStoreTouchNeedsEveryBlob(t *testing.T) {
	s := &ImageStore{Dir: t.TempDir()}
	manifest, _, layer := storedImage(t, s, "layer")
	p, _ := s.blobPath(layer)
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	if err := s.touch(manifest, time.Now()); err == nil {
		t.Fatal("touch succeeded with a layer missing from the store")
	}
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// Concurrent builds of one worker export the same layers at once; through the one store
// instance they wait for each other's write of a blob instead of breaking it.
func TestImageStoreConcurrentWritesOfOneBlob(t *testing.T) {
	s := &ImageStore{Dir: t.TempDir()}
	data := bytes.Repeat([]byte("layer"), 1<<18)
	sum := sha256.Sum256(data)
	desc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: digest.Digest("sha256:" + hex.EncodeToString(sum[:])), Size: int64(len(data))}
	const writers = 8
	errs := make(chan error, writers)
	for range writers {
		go func() {
			cs, err := s.open()
			if err != nil {
				errs <- err
				return
			}
			errs <- content.WriteBlob(context.Background(), cs, "layer-"+desc.Digest.String(), bytes.NewReader(data), desc)
		}()
	}
	for range writers {
		if err := <-errs; err != nil && !errdefs.IsAlreadyExists(err) {
			t.Fatalf("concurrent write: %v", err)
		}
	}
	p, _ := s.blobPath(desc)
	got, err := os.ReadFile(p)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("blob after concurrent writes: %d bytes, %v", len(got), err)
	}
}

// A prune never waits for an export under way: it skips its turn and tries at the next build.
func TestImageStorePruneSkipsWhileExporting(t *testing.T) {
	now := time.Now()
	s := &ImageStore{Dir: t.TempDir(), TTL: time.Hour}
	old, _, _ := storedImage(t, s, "old layer")
	if err := s.touch(old, now.Add(-2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	s.mu.RLock() // an export between its solve and touching its blobs
	n, err := s.pruneIfDue(now)
	s.mu.RUnlock()
	if err != nil || n != 0 {
		t.Fatalf("prune during an export removed %d blobs (%v), want 0", n, err)
	}
	if n, err := s.pruneIfDue(now); err != nil || n != 3 {
		t.Fatalf("prune after the export removed %d blobs (%v), want 3", n, err)
	}
}

// Export prunes before the export, not during it, touches what the export wrote and leaves a
// layout naming it; a failed export leaves no layout.
func TestImageStoreExport(t *testing.T) {
	now := time.Now()
	s := &ImageStore{Dir: t.TempDir(), TTL: time.Hour}
	old, _, _ := storedImage(t, s, "old layer")
	if err := s.touch(old, now.Add(-2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), imageDir)
	var built ocispec.Descriptor
	err := s.Export(context.Background(), out, func(cs content.Store) (ocispec.Descriptor, error) {
		if cs == nil {
			t.Fatal("export got no content store")
		}
		if p, _ := s.blobPath(old); exists(p) {
			t.Error("the old image's blobs outlived the prune before the export")
		}
		if n, err := s.pruneIfDue(now.Add(time.Hour)); n != 0 || err != nil {
			t.Errorf("a prune during the export removed %d blobs (%v)", n, err)
		}
		m, _, _ := storedImage(t, s, "new layer")
		built = m
		return m, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	idx, err := layout.ImageIndexFromPath(out)
	if err != nil {
		t.Fatal(err)
	}
	if im, err := idx.IndexManifest(); err != nil || len(im.Manifests) != 1 || im.Manifests[0].Digest.String() != built.Digest.String() {
		t.Fatalf("layout names %v (%v), want %s", im, err, built.Digest)
	}
	p, _ := s.blobPath(built)
	if info, err := os.Stat(p); err != nil || now.Sub(info.ModTime()) > time.Minute {
		t.Fatalf("the built manifest was not touched: %v %v", info, err)
	}

	failed := filepath.Join(t.TempDir(), imageDir)
	errSolve := errors.New("solve failed")
	if err := s.Export(context.Background(), failed, func(content.Store) (ocispec.Descriptor, error) {
		return ocispec.Descriptor{}, errSolve
	}); !errors.Is(err, errSolve) {
		t.Fatalf("Export = %v, want the export's error", err)
	}
	if exists(failed) {
		t.Fatal("a failed export left a layout")
	}
}
