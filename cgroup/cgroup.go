// Package cgroup makes the cgroups that bound the memory, processes and CPU of BuildKit's RUN
// steps. buildkitd runs each RUN step's container in a cgroup below the solve's cgroup parent
// (PARENT/buildkit/ID); limits written on PARENT hold for everything below it, so a RUN step
// that forks without end or eats memory is stopped by the kernel and other builds go on.
// Slipway makes one such parent per image repository (see activities.Build for why not one
// per build).
//
// Both cgroup layouts are handled: the unified one (v2, /sys/fs/cgroup/cgroup.controllers) and
// the legacy one (v1, one hierarchy per controller under /sys/fs/cgroup/NAME), which is what
// runc uses on a host whose /sys/fs/cgroup is a tmpfs of v1 hierarchies.
package cgroup

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// DefaultRoot is where the cgroup filesystem is mounted.
const DefaultRoot = "/sys/fs/cgroup"

// Limits bound one cgroup. Zero fields are not limited.
type Limits struct {
	// MemoryBytes bounds memory (no swap beyond it); past it the kernel's OOM killer stops a
	// process of the cgroup.
	MemoryBytes int64
	// Pids bounds the processes and threads; fork fails past it.
	Pids int64
	// CPUs bounds CPU time, in CPUs (1.5 is one and a half cores).
	CPUs float64
}

// String is the limits as the README and logs spell them.
func (l Limits) String() string {
	return fmt.Sprintf("memory=%s pids=%d cpus=%g", formatBytes(l.MemoryBytes), l.Pids, l.CPUs)
}

// Env variables that set Limits, and their defaults.
const (
	EnvMemory = "SLIPWAY_BUILD_MEMORY"
	EnvPids   = "SLIPWAY_BUILD_PIDS"
	EnvCPUs   = "SLIPWAY_BUILD_CPUS"

	DefaultMemory = "2g"
	DefaultPids   = "1024"
	DefaultCPUs   = "1"
)

// LimitsFromEnv reads the limits of one build's RUN steps: SLIPWAY_BUILD_MEMORY (bytes, or with
// k, m, g), SLIPWAY_BUILD_PIDS and SLIPWAY_BUILD_CPUS; "0" leaves one unbounded.
func LimitsFromEnv(getenv func(string) string) (Limits, error) {
	get := func(k, def string) string {
		if v := strings.TrimSpace(getenv(k)); v != "" {
			return v
		}
		return def
	}
	var l Limits
	var err error
	if l.MemoryBytes, err = ParseBytes(get(EnvMemory, DefaultMemory)); err != nil {
		return Limits{}, fmt.Errorf("%s: %w", EnvMemory, err)
	}
	if l.MemoryBytes != 0 && l.MemoryBytes < 16<<20 {
		return Limits{}, fmt.Errorf("%s %q is below 16m, too little for any RUN step", EnvMemory, getenv(EnvMemory))
	}
	if l.Pids, err = strconv.ParseInt(get(EnvPids, DefaultPids), 10, 64); err != nil || l.Pids < 0 || l.Pids == 1 {
		return Limits{}, fmt.Errorf("%s %q is not a number of processes (0 for no limit)", EnvPids, getenv(EnvPids))
	}
	if l.CPUs, err = strconv.ParseFloat(get(EnvCPUs, DefaultCPUs), 64); err != nil || l.CPUs < 0 || (l.CPUs > 0 && l.CPUs < 0.01) {
		return Limits{}, fmt.Errorf("%s %q is not a number of CPUs such as 1.5 (0 for no limit)", EnvCPUs, getenv(EnvCPUs))
	}
	return l, nil
}

// ParseBytes reads a size: a number of bytes, or one with a suffix k, m or g (powers of 1024).
func ParseBytes(s string) (int64, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	t = strings.TrimSuffix(t, "b")
	mult := int64(1)
	switch {
	case strings.HasSuffix(t, "k"):
		mult, t = 1<<10, strings.TrimSuffix(t, "k")
	case strings.HasSuffix(t, "m"):
		mult, t = 1<<20, strings.TrimSuffix(t, "m")
	case strings.HasSuffix(t, "g"):
		mult, t = 1<<30, strings.TrimSuffix(t, "g")
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("%q is not a size such as 2g, 512m or 1073741824", s)
	}
	return n * mult, nil
}

func formatBytes(n int64) string {
	switch {
	case n == 0:
		return "unbounded"
	case n%(1<<30) == 0:
		return fmt.Sprintf("%dg", n>>30)
	case n%(1<<20) == 0:
		return fmt.Sprintf("%dm", n>>20)
	}
	return strconv.FormatInt(n, 10)
}

// v1Controllers are the legacy hierarchies a Parent writes into.
var v1Controllers = []string{"memory", "pids", "cpu"}

// Parent is a cgroup, Path below the cgroup filesystem at Root, that holds the cgroups of
// builds; each child it makes gets Limits.
type Parent struct {
	// Root is the cgroup filesystem; empty means DefaultRoot.
	Root string
	// Path is the parent's path below Root, such as "slipway-3f2a"; BuildKit takes the same
	// path as its cgroup parent.
	Path   string
	Limits Limits
}

func (p *Parent) root() string {
	if p.Root == "" {
		return DefaultRoot
	}
	return p.Root
}

// unified reports whether the cgroup filesystem is v2's.
func (p *Parent) unified() bool {
	_, err := os.Stat(filepath.Join(p.root(), "cgroup.controllers"))
	return err == nil
}

// dirs are the folders of cgroup rel: one in v2, one per controller in v1.
func (p *Parent) dirs(rel string) []string {
	if p.unified() {
		return []string{filepath.Join(p.root(), rel)}
	}
	out := make([]string, 0, len(v1Controllers))
	for _, c := range v1Controllers {
		out = append(out, filepath.Join(p.root(), c, rel))
	}
	return out
}

// Create makes the parent cgroup (and, in v2, hands the memory, pids and cpu controllers down
// to it), without limits of its own.
func (p *Parent) Create() error {
	if p.Path == "" || filepath.IsAbs(p.Path) || strings.Contains(p.Path, "..") {
		return fmt.Errorf("cgroup path %q is not a relative path", p.Path)
	}
	if p.unified() {
		if err := enableControllers(p.root()); err != nil {
			return err
		}
	} else {
		for _, c := range v1Controllers {
			if _, err := os.Stat(filepath.Join(p.root(), c)); err != nil {
				return fmt.Errorf("cgroup v1 controller %s is not mounted under %s: %w", c, p.root(), err)
			}
		}
	}
	for _, d := range p.dirs(p.Path) {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("creating cgroup %s: %w", d, err)
		}
	}
	if p.unified() {
		return enableControllers(filepath.Join(p.root(), p.Path))
	}
	return nil
}

// enableControllers hands memory, pids and cpu down to the children of the v2 cgroup dir.
func enableControllers(dir string) error {
	avail, err := os.ReadFile(filepath.Join(dir, "cgroup.controllers"))
	if err != nil {
		return fmt.Errorf("reading controllers of %s: %w", dir, err)
	}
	have := strings.Fields(string(avail))
	for _, c := range []string{"memory", "pids", "cpu"} {
		if !contains(have, c) {
			return fmt.Errorf("cgroup controller %s is not available in %s (it has %q)", c, dir, strings.TrimSpace(string(avail)))
		}
		if err := os.WriteFile(filepath.Join(dir, "cgroup.subtree_control"), []byte("+"+c), 0o644); err != nil {
			return fmt.Errorf("enabling cgroup controller %s in %s: %w", c, dir, err)
		}
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// Child makes the cgroup Path/name with the parent's Limits and returns its path below Root,
// which is what BuildKit takes as a solve's cgroup-parent.
func (p *Parent) Child(name string) (string, error) {
	if name == "" || strings.ContainsAny(name, "/\x00") || name == "." || name == ".." {
		return "", fmt.Errorf("cgroup name %q is not a plain name", name)
	}
	rel := filepath.Join(p.Path, name)
	for _, d := range p.dirs(rel) {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return "", fmt.Errorf("creating cgroup %s: %w", d, err)
		}
	}
	if err := p.limit(rel); err != nil {
		_ = p.Remove(name)
		return "", err
	}
	return rel, nil
}

// limit writes p.Limits on cgroup rel.
func (p *Parent) limit(rel string) error {
	l := p.Limits
	type setting struct{ dir, file, value string }
	var sets []setting
	// Zero is written too, as "no limit": a cgroup kept from an earlier build may hold one.
	n := func(v int64, unlimited string) string {
		if v <= 0 {
			return unlimited
		}
		return strconv.FormatInt(v, 10)
	}
	quota := int64(l.CPUs * 100000)
	if p.unified() {
		d := filepath.Join(p.root(), rel)
		swap := "0"
		if l.MemoryBytes <= 0 {
			swap = "max"
		}
		sets = append(sets, setting{d, "memory.max", n(l.MemoryBytes, "max")}, setting{d, "memory.swap.max", swap},
			setting{d, "pids.max", n(l.Pids, "max")}, setting{d, "cpu.max", n(quota, "max") + " 100000"})
	} else {
		mem, pids, cpu := filepath.Join(p.root(), "memory", rel), filepath.Join(p.root(), "pids", rel), filepath.Join(p.root(), "cpu", rel)
		// memsw (memory and swap) may never be below the memory limit: lifted first, set last.
		sets = append(sets, setting{mem, "memory.memsw.limit_in_bytes", "-1"},
			setting{mem, "memory.limit_in_bytes", n(l.MemoryBytes, "-1")},
			setting{mem, "memory.memsw.limit_in_bytes", n(l.MemoryBytes, "-1")}, setting{pids, "pids.max", n(l.Pids, "max")},
			setting{cpu, "cpu.cfs_period_us", "100000"}, setting{cpu, "cpu.cfs_quota_us", n(quota, "-1")})
	}
	for _, s := range sets {
		err := os.WriteFile(filepath.Join(s.dir, s.file), []byte(s.value), 0o644)
		// Swap accounting is off on many kernels; without swap there is nothing to bound.
		if errors.Is(err, fs.ErrNotExist) && (s.file == "memory.swap.max" || s.file == "memory.memsw.limit_in_bytes") {
			continue
		}
		if err != nil {
			return fmt.Errorf("setting %s of cgroup %s to %s: %w", s.file, rel, s.value, err)
		}
	}
	return nil
}

// Remove removes the child cgroup name and what BuildKit left below it; empty name removes
// the parent. A cgroup that still holds a process stays, with an error.
func (p *Parent) Remove(name string) error {
	rel := p.Path
	if name != "" {
		rel = filepath.Join(p.Path, name)
	}
	var errs []error
	for _, d := range p.dirs(rel) {
		var all []string
		_ = filepath.WalkDir(d, func(path string, e fs.DirEntry, err error) error {
			if err == nil && e.IsDir() {
				all = append(all, path)
			}
			return nil
		})
		sort.Slice(all, func(i, j int) bool { return len(all[i]) > len(all[j]) })
		for _, dir := range all {
			if err := os.Remove(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, fmt.Errorf("removing cgroup %s: %w", dir, err))
			}
		}
	}
	return errors.Join(errs...)
}
