package cgroup

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseBytes(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want int64
		bad  bool
	}{
		{"2g", 2 << 30, false}, {"512m", 512 << 20, false}, {"64K", 64 << 10, false}, {"1gb", 1 << 30, false},
		{"1073741824", 1 << 30, false}, {"0", 0, false},
		{"", 0, true}, {"lots", 0, true}, {"-1g", 0, true}, {"1.5g", 0, true}, {"99999999999999g", 0, true},
	} {
		got, err := ParseBytes(tt.in)
		if (err != nil) != tt.bad || got != tt.want {
			t.Errorf("ParseBytes(%q) = %d, %v; want %d, error %v", tt.in, got, err, tt.want, tt.bad)
		}
	}
}

// read is the trimmed content of a file under dir.
func read(t *testing.T, dir, file string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func TestParentWritesLimits(t *testing.T) {
	limits := Limits{MemoryBytes: 256 << 20, Pids: 64, CPUs: 0.5}
	t.Run("v2", func(t *testing.T) {
		root := t.TempDir()
		if err := os.WriteFile(filepath.Join(root, "cgroup.controllers"), []byte("cpuset cpu io memory pids\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Join(root, "slipway-t"), 0o755); err != nil {
			t.Fatal(err)
		}
		// A real cgroupfs fills these in; the fake one needs them to exist.
		os.WriteFile(filepath.Join(root, "slipway-t", "cgroup.controllers"), []byte("cpu memory pids"), 0o644)
		p := &Parent{Root: root, Path: "slipway-t", Limits: limits}
		if err := p.Create(); err != nil {
			t.Fatal(err)
		}
		rel, err := p.Child("build-ws1")
		if err != nil {
			t.Fatal(err)
		}
		if rel != "slipway-t/build-ws1" {
			t.Errorf("child path %q", rel)
		}
		dir := filepath.Join(root, rel)
		for file, want := range map[string]string{"memory.max": "268435456", "memory.swap.max": "0", "pids.max": "64", "cpu.max": "50000 100000"} {
			if got := read(t, dir, file); got != want {
				t.Errorf("%s = %q, want %q", file, got, want)
			}
		}
	})
	t.Run("v1", func(t *testing.T) {
		root := t.TempDir()
		for _, c := range v1Controllers {
			if err := os.MkdirAll(filepath.Join(root, c), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		p := &Parent{Root: root, Path: "slipway-t", Limits: limits}
		if err := p.Create(); err != nil {
			t.Fatal(err)
		}
		if _, err := p.Child("build-ws1"); err != nil {
			t.Fatal(err)
		}
		for _, f := range []struct{ ctrl, file, want string }{
			{"memory", "memory.limit_in_bytes", "268435456"}, {"memory", "memory.memsw.limit_in_bytes", "268435456"},
			{"pids", "pids.max", "64"}, {"cpu", "cpu.cfs_quota_us", "50000"}, {"cpu", "cpu.cfs_period_us", "100000"},
		} {
			if got := read(t, filepath.Join(root, f.ctrl, "slipway-t", "build-ws1"), f.file); got != f.want {
				t.Errorf("%s/%s = %q, want %q", f.ctrl, f.file, got, f.want)
			}
		}
	})
	t.Run("bad names", func(t *testing.T) {
		p := &Parent{Root: t.TempDir(), Path: "slipway-t"}
		for _, name := range []string{"", "..", "a/b"} {
			if _, err := p.Child(name); err == nil {
				t.Errorf("child %q was made", name)
			}
		}
		if err := (&Parent{Root: t.TempDir(), Path: "../etc"}).Create(); err == nil {
			t.Error("a parent outside the cgroup root was made")
		}
	})
}
