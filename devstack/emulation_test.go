package devstack

import (
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestInstallEmulator(t *testing.T) {
	dir := t.TempDir()
	qemu := filepath.Join(qemuBinDir, "qemu-aarch64-static")
	if _, err := os.Stat(qemu); err != nil {
		t.Fatalf("%s missing (Debian's qemu-user-static; run scripts/tools.sh): %v", qemu, err)
	}
	for _, tt := range []struct {
		name, src string
		// refused is what the error says; empty means installed.
		refused string
	}{
		{"debian's static emulator", qemu, ""},
		{"a dynamic binary", "/usr/bin/env", "dynamically linked"},
		{"no binary", filepath.Join(dir, "missing"), "no such file"},
		{"no elf", "/etc/passwd", "reading"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dst := filepath.Join(dir, "buildkit-qemu-"+strings.ReplaceAll(tt.name, " ", "-"))
			err := installEmulator(tt.src, dst)
			if tt.refused != "" {
				if err == nil || !strings.Contains(err.Error(), tt.refused) {
					t.Fatalf("installEmulator(%s) = %v, want an error saying %q", tt.src, err, tt.refused)
				}
				if _, err := os.Stat(dst); err == nil {
					t.Fatalf("a refused emulator was installed at %s", dst)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			st, err := os.Lstat(dst)
			if err != nil || !st.Mode().IsRegular() || st.Mode().Perm() != 0o755 {
				t.Fatalf("installed %s: %v, %v; want a regular file, mode 0755 (BuildKit copies it into each step)", dst, st, err)
			}
			// A second start finds it in place.
			if err := installEmulator(tt.src, dst); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestSetupEmulation(t *testing.T) {
	if nativePlatform() != "linux/amd64" {
		t.Skipf("the stack emulates linux/arm64 on linux/amd64 hosts; this one is %s", nativePlatform())
	}
	home, tools := t.TempDir(), t.TempDir()
	e, err := setupEmulation(slog.New(slog.DiscardHandler), home, tools)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(e.platforms, []string{"linux/arm64"}) {
		t.Fatalf("emulated platforms %q, want [linux/arm64]", e.platforms)
	}
	if _, err := os.Stat(filepath.Join(e.dir, "buildkit-qemu-aarch64")); err != nil {
		t.Fatalf("no helper where buildkitd looks for it: %v", err)
	}
	if len(e.busybox) != 0 {
		t.Fatalf("busybox %v found in an empty tools dir", e.busybox)
	}
	toml := e.workerPlatformsTOML()
	if !strings.Contains(toml, `platforms = ["linux/amd64", "linux/arm64"]`) {
		t.Fatalf("worker platforms line %q", toml)
	}
	if got := (emulation{}).workerPlatformsTOML(); got != "" {
		t.Fatalf("without emulation the worker's platforms are buildkitd's default, got %q", got)
	}
	if err := os.WriteFile(filepath.Join(tools, "busybox-arm64"), []byte("x"), 0o755); err != nil {
		t.Fatal(err)
	}
	if e, err = setupEmulation(slog.New(slog.DiscardHandler), home, tools); err != nil || e.busybox["arm64"] == "" {
		t.Fatalf("busybox-arm64 in the tools dir not found: %v, %v", e.busybox, err)
	}
}

func TestWithPathFirst(t *testing.T) {
	for _, tt := range []struct {
		name string
		env  []string
		want []string
	}{
		{"prepended", []string{"A=1", "PATH=/usr/bin:/bin"}, []string{"A=1", "PATH=/e:/usr/bin:/bin"}},
		{"no PATH", []string{"A=1"}, []string{"A=1", "PATH=/e"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := withPathFirst(tt.env, "/e"); !slices.Equal(got, tt.want) {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}
