package devstack

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/slipway-dev/slipway/registryauth"
)

// busyboxBinary is Debian's statically linked busybox (package busybox-static).
const busyboxBinary = "/bin/busybox"

// seedBusybox pushes a busybox image made from this machine's busybox-static
// to registry/library/busybox, since no base image can be pulled from the
// internet here. With foreign static busybox binaries (GOARCH to path, from
// setupEmulation) it pushes an image index with an image for each architecture,
// so `FROM busybox` builds for emulated platforms too. The image is reproducible
// (fixed times, sorted entries), so a tag that already holds it is left alone
// and a warm start pushes nothing.
func seedBusybox(ctx context.Context, registry string, key *registryauth.Key, foreign map[string]string) error {
	img, err := busyboxArtifact(ctx, foreign)
	if err != nil {
		return err
	}
	want, err := img.Digest()
	if err != nil {
		return fmt.Errorf("computing busybox image digest: %w", err)
	}
	// The operator's token: library/* is pushed by nobody else.
	opts := []remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(registryauth.OperatorKeychain(key, registry))}
	pushed := false
	// With the docker.io mirror in buildkitd.toml, `FROM busybox` resolves to
	// library/busybox:latest.
	for _, t := range []string{"latest", "stable"} {
		tag, err := name.NewTag(registry+"/library/busybox:"+t, name.Insecure)
		if err != nil {
			return fmt.Errorf("parsing busybox tag: %w", err)
		}
		if desc, err := remote.Head(tag, opts...); err == nil && desc.Digest == want {
			continue
		}
		if !pushed {
			if err := writeArtifact(tag, img, opts...); err != nil {
				return fmt.Errorf("pushing %s: %w", tag, err)
			}
			pushed = true
			continue
		}
		if err := remote.Tag(tag, img, opts...); err != nil {
			return fmt.Errorf("tagging %s: %w", tag, err)
		}
	}
	return nil
}

// busyboxImage builds a one-layer image: bin/busybox, a bin/APPLET symlink
// for every applet (sh among them) and the few files a shell expects, with a
// config that sets the platform (BuildKit refuses a config without an
// architecture), PATH and `sh` as the command.
func busyboxImage(ctx context.Context) (v1.Image, error) {
	applets, err := busyboxApplets(ctx)
	if err != nil {
		return nil, err
	}
	return busyboxImageOf(busyboxBinary, runtime.GOARCH, applets)
}

// busyboxApplets are the applets of this machine's busybox, sh among them, sorted. A foreign
// busybox-static of the same Debian release has the same ones, and cannot run here.
func busyboxApplets(ctx context.Context) ([]string, error) {
	out, err := exec.CommandContext(ctx, busyboxBinary, "--list").Output()
	if err != nil {
		return nil, fmt.Errorf("listing busybox applets: %w", err)
	}
	applets := strings.Fields(string(out))
	if !slices.Contains(applets, "sh") {
		applets = append(applets, "sh")
	}
	slices.Sort(applets)
	return applets, nil
}

// busyboxImageOf is busyboxImage of the static busybox at path, for linux/goarch.
func busyboxImageOf(path, goarch string, applets []string) (v1.Image, error) {
	bin, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading %s (Debian package busybox-static; run scripts/tools.sh): %w", path, err)
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	// The binary's own time keeps the image reproducible for one package
	// version and changes it when the package does.
	mtime := st.ModTime().UTC().Truncate(time.Second)

	layerTar, err := busyboxLayerTar(bin, applets, mtime)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	})
	if err != nil {
		return nil, fmt.Errorf("making busybox layer: %w", err)
	}
	created := v1.Time{Time: mtime}
	img, err := mutate.Append(empty.Image, mutate.Addendum{
		Layer: layer,
		History: v1.History{
			Created:   created,
			CreatedBy: "slipway devstack: /bin/busybox from Debian busybox-static:" + goarch,
		},
	})
	if err != nil {
		return nil, fmt.Errorf("appending busybox layer: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("reading busybox config: %w", err)
	}
	cf = cf.DeepCopy()
	cf.OS = "linux"
	cf.Architecture = goarch
	cf.Created = created
	cf.Config.Cmd = []string{"sh"}
	cf.Config.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, fmt.Errorf("setting busybox config: %w", err)
	}
	return img, nil
}

func busyboxLayerTar(bin []byte, applets []string, mtime time.Time) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	hdr := func(h *tar.Header) *tar.Header {
		h.ModTime = mtime
		h.Uname, h.Gname = "root", "root"
		return h
	}
	files := []struct {
		h    *tar.Header
		body []byte
	}{
		{h: &tar.Header{Typeflag: tar.TypeDir, Name: "bin/", Mode: 0o755}},
		{h: &tar.Header{Typeflag: tar.TypeReg, Name: "bin/busybox", Mode: 0o755}, body: bin},
		{h: &tar.Header{Typeflag: tar.TypeDir, Name: "etc/", Mode: 0o755}},
		{h: &tar.Header{Typeflag: tar.TypeReg, Name: "etc/group", Mode: 0o644}, body: []byte("root:x:0:\nnogroup:x:65534:\n")},
		{h: &tar.Header{Typeflag: tar.TypeReg, Name: "etc/passwd", Mode: 0o644}, body: []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n")},
		{h: &tar.Header{Typeflag: tar.TypeDir, Name: "home/", Mode: 0o755}},
		{h: &tar.Header{Typeflag: tar.TypeDir, Name: "root/", Mode: 0o700}},
		{h: &tar.Header{Typeflag: tar.TypeDir, Name: "tmp/", Mode: 0o1777}},
		{h: &tar.Header{Typeflag: tar.TypeDir, Name: "usr/", Mode: 0o755}},
		{h: &tar.Header{Typeflag: tar.TypeDir, Name: "usr/bin/", Mode: 0o755}},
		// For `#!/usr/bin/env sh` scripts.
		{h: &tar.Header{Typeflag: tar.TypeSymlink, Name: "usr/bin/env", Linkname: "/bin/env"}},
		{h: &tar.Header{Typeflag: tar.TypeDir, Name: "var/", Mode: 0o755}},
	}
	for _, f := range files {
		h := hdr(f.h)
		if h.Typeflag == tar.TypeSymlink {
			h.Mode = 0o777
		}
		h.Size = int64(len(f.body))
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("writing busybox layer: %w", err)
		}
		if _, err := tw.Write(f.body); err != nil {
			return nil, fmt.Errorf("writing busybox layer: %w", err)
		}
		if f.h.Name == "bin/busybox" {
			for _, a := range applets {
				if a == "busybox" || strings.ContainsRune(a, '/') {
					continue
				}
				link := hdr(&tar.Header{Typeflag: tar.TypeSymlink, Name: "bin/" + a, Linkname: "busybox", Mode: 0o777})
				if err := tw.WriteHeader(link); err != nil {
					return nil, fmt.Errorf("writing busybox layer: %w", err)
				}
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("writing busybox layer: %w", err)
	}
	return buf.Bytes(), nil
}

// busyboxArtifact is the busybox image of this machine, or with foreign binaries an index of
// it and an image for each of them, in GOARCH order after the native one.
func busyboxArtifact(ctx context.Context, foreign map[string]string) (artifact, error) {
	native, err := busyboxImage(ctx)
	if err != nil {
		return nil, err
	}
	if len(foreign) == 0 {
		return native, nil
	}
	applets, err := busyboxApplets(ctx)
	if err != nil {
		return nil, err
	}
	adds := []mutate.IndexAddendum{{Add: native, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: runtime.GOARCH}}}}
	arches := make([]string, 0, len(foreign))
	for goarch := range foreign {
		arches = append(arches, goarch)
	}
	slices.Sort(arches)
	for _, goarch := range arches {
		img, err := busyboxImageOf(foreign[goarch], goarch, applets)
		if err != nil {
			return nil, err
		}
		adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: goarch}}})
	}
	// The images are Docker schema 2, so the index is a Docker manifest list.
	return mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.DockerManifestList), adds...), nil
}

// artifact is an image or an index.
type artifact interface {
	remote.Taggable
	Digest() (v1.Hash, error)
}

// writeArtifact writes an image or an index to ref.
func writeArtifact(ref name.Reference, t artifact, opts ...remote.Option) error {
	switch a := t.(type) {
	case v1.ImageIndex:
		return remote.WriteIndex(ref, a, opts...)
	case v1.Image:
		return remote.Write(ref, a, opts...)
	}
	return fmt.Errorf("%T is neither an image nor an index", t)
}
