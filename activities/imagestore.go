package activities

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/containerd/containerd/v2/core/content"
	contentlocal "github.com/containerd/containerd/v2/plugins/content/local"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"go.temporal.io/sdk/activity"
)

// ImageStore is an OCI content store that the builds of one worker share. BuildKit's OCI
// exporter skips every blob the store already holds, so a rebuild whose layers did not
// change writes only its new manifest and config instead of the whole image again; each
// build's workspace gets an OCI layout whose blobs folder links to the store. Blobs no build
// has used for TTL are removed before a build starts.
type ImageStore struct {
	// Dir holds the store: Dir/blobs/sha256/..., and Dir/ingest while BuildKit writes.
	Dir string
	// TTL is how long a blob no build used is kept; 0 means DefaultImageStoreTTL.
	TTL time.Duration

	// mu is held shared by exports (from the solve until their blobs are touched) and alone
	// by a prune, so a prune never removes a blob an export just found present.
	mu sync.RWMutex
	// pruneMu guards lastPrune.
	pruneMu   sync.Mutex
	lastPrune time.Time

	// once opens cs: one content store for every build of the worker, since the store's
	// locks on blobs being written live in the instance, and two instances writing the same
	// layer at once (concurrent builds sharing a base) break each other's ingest.
	once  sync.Once
	cs    content.Store
	csErr error
}

// DefaultImageStoreTTL is how long an unused blob stays in a worker's image store.
const DefaultImageStoreTTL = 6 * time.Hour

// pruneEvery bounds how often a prune walks the store.
const pruneEvery = time.Minute

// ttl is the store's TTL or the default.
func (s *ImageStore) ttl() time.Duration {
	if s.TTL > 0 {
		return s.TTL
	}
	return DefaultImageStoreTTL
}

// Export runs export, which writes an image into the store (BuildKit's session writes to the
// content store it is given) and returns the image's descriptor, then marks the image's blobs
// as used and writes an OCI layout at out naming it, its blobs folder a link to the store's.
// Blobs no build used for TTL are pruned first when a prune is due; a failed prune is only
// logged, on ctx's activity logger. No prune runs from the start of export until the layout is
// written, so none removes a blob export found present.
func (s *ImageStore) Export(ctx context.Context, out string, export func(content.Store) (ocispec.Descriptor, error)) error {
	if _, err := s.pruneIfDue(time.Now()); err != nil && activity.IsActivity(ctx) {
		activity.GetLogger(ctx).Warn("pruning the image store", "error", err)
	}
	cs, err := s.open()
	if err != nil {
		return err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	desc, err := export(cs)
	if err != nil {
		return err
	}
	if err := s.touch(desc, time.Now()); err != nil {
		return err
	}
	return s.layout(out, desc)
}

// open returns the store as BuildKit's session writes to it, the same instance each time.
func (s *ImageStore) open() (content.Store, error) {
	s.once.Do(func() {
		s.cs, s.csErr = contentlocal.NewStore(s.Dir)
		if s.csErr != nil {
			s.csErr = fmt.Errorf("opening image store %s: %w", s.Dir, s.csErr)
		}
	})
	return s.cs, s.csErr
}

// blobPath is where the store keeps a blob.
func (s *ImageStore) blobPath(d ocispec.Descriptor) (string, error) {
	if err := d.Digest.Validate(); err != nil {
		return "", fmt.Errorf("image store: descriptor digest %q: %w", d.Digest, err)
	}
	return filepath.Join(s.Dir, "blobs", d.Digest.Algorithm().String(), d.Digest.Encoded()), nil
}

// layout writes an OCI image layout at out naming desc, its blobs folder a link to the
// store's, so Push reads it as it reads any layout.
func (s *ImageStore) layout(out string, desc ocispec.Descriptor) error {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return fmt.Errorf("creating image layout: %w", err)
	}
	if err := os.Symlink(filepath.Join(s.Dir, "blobs"), filepath.Join(out, "blobs")); err != nil {
		return fmt.Errorf("linking image layout to the image store: %w", err)
	}
	layoutFile, err := json.Marshal(ocispec.ImageLayout{Version: ocispec.ImageLayoutVersion})
	if err != nil {
		return fmt.Errorf("writing image layout: %w", err)
	}
	index, err := json.Marshal(ocispec.Index{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageIndex,
		Manifests: []ocispec.Descriptor{desc},
	})
	if err != nil {
		return fmt.Errorf("writing image layout index: %w", err)
	}
	for name, data := range map[string][]byte{ocispec.ImageLayoutFile: layoutFile, ocispec.ImageIndexFile: index} {
		if err := os.WriteFile(filepath.Join(out, name), data, 0o644); err != nil {
			return fmt.Errorf("writing image layout %s: %w", name, err)
		}
	}
	return nil
}

// touch marks every blob reachable from desc as just used, so no prune removes it before
// the push reads it.
func (s *ImageStore) touch(desc ocispec.Descriptor, now time.Time) error {
	p, err := s.blobPath(desc)
	if err != nil {
		return err
	}
	if err := os.Chtimes(p, now, now); err != nil {
		return fmt.Errorf("image store: %w", err)
	}
	if !isManifestOrIndex(desc.MediaType) {
		return nil
	}
	data, err := os.ReadFile(p)
	if err != nil {
		return fmt.Errorf("image store: %w", err)
	}
	// One shape reads OCI and Docker manifests and indexes alike.
	var m struct {
		Config    *ocispec.Descriptor  `json:"config"`
		Layers    []ocispec.Descriptor `json:"layers"`
		Manifests []ocispec.Descriptor `json:"manifests"`
	}
	if err := json.Unmarshal(data, &m); err != nil {
		return fmt.Errorf("image store: reading %s: %w", desc.Digest, err)
	}
	children := append(m.Layers, m.Manifests...)
	if m.Config != nil {
		children = append(children, *m.Config)
	}
	for _, c := range children {
		if err := s.touch(c, now); err != nil {
			return err
		}
	}
	return nil
}

func isManifestOrIndex(mediaType string) bool {
	switch mediaType {
	case ocispec.MediaTypeImageManifest, ocispec.MediaTypeImageIndex,
		"application/vnd.docker.distribution.manifest.v2+json",
		"application/vnd.docker.distribution.manifest.list.v2+json":
		return true
	}
	return false
}

// pruneIfDue removes the blobs no build used for TTL, at most once a minute, and only while
// no export is under way (an export holds mu from its solve until its blobs are touched, for
// as long as a build takes; waiting for it would hold up every build that starts meanwhile).
func (s *ImageStore) pruneIfDue(now time.Time) (removed int, err error) {
	s.pruneMu.Lock()
	due := now.Sub(s.lastPrune) >= pruneEvery
	s.pruneMu.Unlock()
	if !due || !s.mu.TryLock() {
		return 0, nil
	}
	defer s.mu.Unlock()
	s.pruneMu.Lock()
	s.lastPrune = now
	s.pruneMu.Unlock()
	cutoff := now.Add(-s.ttl())
	err = filepath.WalkDir(filepath.Join(s.Dir, "blobs"), func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if d.IsDir() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return nil // removed meanwhile
		}
		if info.ModTime().Before(cutoff) {
			if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			removed++
		}
		return nil
	})
	if err != nil {
		return removed, fmt.Errorf("pruning image store %s: %w", s.Dir, err)
	}
	return removed, nil
}
