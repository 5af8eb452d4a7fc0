package devstack

import (
	"bytes"
	"debug/elf"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/containerd/platforms"
)

// emulatedPlatform is a foreign platform the stack can build: buildkitd runs its RUN steps
// under QEMU user emulation, and the seeded busybox has an image for it.
type emulatedPlatform struct {
	// platform is its name, "linux/arm64".
	platform string
	// goarch names the busybox-GOARCH file scripts/tools.sh extracts and the image's
	// architecture.
	goarch string
	// qemu is QEMU's name of the architecture: Debian's emulator is /usr/bin/qemu-QEMU-static
	// and BuildKit looks for buildkit-qemu-QEMU on its PATH.
	qemu string
}

// emulatedPlatforms are the foreign platforms the stack sets up. Only those with a base image
// in the local registry are listed: a build of another platform could not resolve
// `FROM busybox`, and would fail in the middle rather than at once.
func emulatedPlatforms() []emulatedPlatform {
	return []emulatedPlatform{{platform: "linux/arm64", goarch: "arm64", qemu: "aarch64"}}
}

// emulation is what the stack set up for foreign platforms.
type emulation struct {
	// dir holds the buildkit-qemu-* helpers; it is first on buildkitd's PATH.
	dir string
	// platforms are the emulated platforms buildkitd's worker lists beside its own.
	platforms []string
	// busybox maps a GOARCH to the static busybox seeded for it, beside the native one.
	busybox map[string]string
}

// qemuBinDir is where Debian's qemu-user-static installs its emulators.
const qemuBinDir = "/usr/bin"

// setupEmulation provides BuildKit's emulator helpers for emulatedPlatforms under
// home/emulators and finds the foreign busybox binaries in toolsDir.
//
// BuildKit runs a RUN step of a platform the host cannot run with the static binary
// buildkit-qemu-ARCH from its PATH, bind-mounted into the step's container: no binfmt_misc
// registration is needed, which would change the whole host's kernel (and is often not even
// mounted in a container). The helper is a copy, not a symlink, since BuildKit copies the file
// it finds into each step's mount, and must be static, since it runs inside the container's
// root. A platform without Debian's emulator is left out with a warning: buildkitd then does
// not list it and builds of it fail at once.
func setupEmulation(logger *slog.Logger, home, toolsDir string) (emulation, error) {
	e := emulation{dir: filepath.Join(home, "emulators"), busybox: map[string]string{}}
	if err := os.MkdirAll(e.dir, 0o755); err != nil {
		return emulation{}, fmt.Errorf("creating the emulators folder: %w", err)
	}
	native := nativePlatform()
	for _, p := range emulatedPlatforms() {
		if p.platform == native {
			continue
		}
		src := filepath.Join(qemuBinDir, "qemu-"+p.qemu+"-static")
		if err := installEmulator(src, filepath.Join(e.dir, "buildkit-qemu-"+p.qemu)); err != nil {
			logger.Warn("no emulator: builds of the platform fail at once (install Debian's qemu-user-static: scripts/tools.sh)",
				"platform", p.platform, "error", err)
			continue
		}
		e.platforms = append(e.platforms, p.platform)
		bb := filepath.Join(toolsDir, "busybox-"+p.goarch)
		if st, err := os.Stat(bb); err != nil || st.IsDir() {
			logger.Warn("no busybox for the platform: FROM busybox will not build for it (run scripts/tools.sh)",
				"platform", p.platform, "missing", bb)
			continue
		}
		e.busybox[p.goarch] = bb
	}
	return e, nil
}

// installEmulator copies the static emulator src to dst unless dst already holds it.
func installEmulator(src, dst string) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	f, err := elf.NewFile(bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("reading %s: %w", src, err)
	}
	defer f.Close()
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			return fmt.Errorf("%s is dynamically linked; BuildKit runs its emulator inside the build's container, which needs a static one", src)
		}
	}
	if old, err := os.ReadFile(dst); err == nil && bytes.Equal(old, data) {
		return nil
	}
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".emulator-")
	if err != nil {
		return fmt.Errorf("installing %s: %w", dst, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := io.Copy(tmp, bytes.NewReader(data)); err != nil {
		tmp.Close()
		return fmt.Errorf("installing %s: %w", dst, err)
	}
	if err := tmp.Chmod(0o755); err != nil {
		tmp.Close()
		return fmt.Errorf("installing %s: %w", dst, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("installing %s: %w", dst, err)
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return fmt.Errorf("installing %s: %w", dst, err)
	}
	return nil
}

// workerPlatformsTOML is the [worker.oci] line listing the worker's platforms: the host's own
// first (the platform of a build that names none) and the emulated ones, or nothing without
// emulation. BuildKit does not list platforms it only emulates through its helpers, and
// Slipway's builds ask buildkitd which platforms it can build.
func (e emulation) workerPlatformsTOML() string {
	if len(e.platforms) == 0 {
		return ""
	}
	list := []string{nativePlatform()}
	for _, p := range e.platforms {
		if !slices.Contains(list, p) {
			list = append(list, p)
		}
	}
	quoted := make([]string, len(list))
	for i, p := range list {
		quoted[i] = fmt.Sprintf("%q", p)
	}
	return "  # The host's platforms and those emulated by the buildkit-qemu-* helpers on its PATH.\n" +
		"  platforms = [" + strings.Join(quoted, ", ") + "]\n"
}

// withPathFirst is env with dir first on its PATH.
func withPathFirst(env []string, dir string) []string {
	out := make([]string, 0, len(env)+1)
	found := false
	for _, kv := range env {
		if path, ok := strings.CutPrefix(kv, "PATH="); ok {
			kv = "PATH=" + dir + string(filepath.ListSeparator) + path
			found = true
		}
		out = append(out, kv)
	}
	if !found {
		out = append(out, "PATH="+dir)
	}
	return out
}

// nativePlatform is the host's own platform, "linux/amd64".
func nativePlatform() string {
	return platforms.Format(platforms.Normalize(platforms.DefaultSpec()))
}
