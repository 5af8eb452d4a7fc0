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

	"github.com/slipway-dev/slipway/registryauth"
)

// busyboxBinary is Debian's statically linked busybox (package busybox-static).
const busyboxBinary = "/bin/busybox"

// seedBusybox pushes a busybox image made from this machine's busybox-static
// to registry/library/busybox, since no base image can be pulled from the
// internet here. The image is reproducible (fixed times, sorted entries), so a
// tag that already holds it is left alone and a warm start pushes nothing.
func seedBusybox(ctx context.Context, registry string, key *registryauth.Key) error {
	img, err := busyboxImage(ctx)
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
			if err := remote.Write(tag, img, opts...); err != nil {
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
	bin, err := os.ReadFile(busyboxBinary)
	if err != nil {
		return nil, fmt.Errorf("reading %s (Debian package busybox-static; run scripts/tools.sh): %w", busyboxBinary, err)
	}
	st, err := os.Stat(busyboxBinary)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", busyboxBinary, err)
	}
	// The binary's own time keeps the image reproducible for one package
	// version and changes it when the package does.
	mtime := st.ModTime().UTC().Truncate(time.Second)

	out, err := exec.CommandContext(ctx, busyboxBinary, "--list").Output()
	if err != nil {
		return nil, fmt.Errorf("listing busybox applets: %w", err)
	}
	applets := strings.Fields(string(out))
	if !slices.Contains(applets, "sh") {
		applets = append(applets, "sh")
	}
	slices.Sort(applets)

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
			CreatedBy: "slipway devstack: " + busyboxBinary + " from Debian busybox-static",
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
	cf.Architecture = runtime.GOARCH
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
