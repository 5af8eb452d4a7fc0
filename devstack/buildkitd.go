package devstack

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"

	bkclient "github.com/moby/buildkit/client"
)

// buildkitdNetwork is how buildkitd networks RUN steps: "cni" with the build network's
// configuration, or "host".
type buildkitdNetwork struct {
	mode, confPath, pluginDir string
}

// toml is the [worker.oci] lines that set it.
func (n buildkitdNetwork) toml() string {
	if n.mode != "cni" {
		return "  # Build isolation is off: RUN steps share the host's network.\n  networkMode = \"host\"\n"
	}
	// A small pool: each namespace costs a veth and an address, and builds start from it.
	return fmt.Sprintf("  # RUN steps run on the stack's build bridge behind its egress filter.\n"+
		"  networkMode = \"cni\"\n  cniConfigPath = %q\n  cniBinaryPath = %q\n  cniPoolSize = 4\n", n.confPath, n.pluginDir)
}

// buildkitdConfig writes buildkitd.toml under home, sets BuildkitAddr and
// returns buildkitd's arguments.
//
// The OCI worker runs RUN steps with Debian's runc. The snapshotter is "auto":
// buildkitd mounts a test overlay under its root and uses overlayfs when that
// works (it does as root on the ext4 roots of these machines), else
// fuse-overlayfs or native. A home on a filesystem that cannot be an overlay
// upper dir (overlayfs itself, as in a container's root, or NFS) so still
// builds, more slowly; StartBuildkitd warns when that happens. docker.io is
// mirrored to the local registry so an unchanged `FROM busybox` builds
// offline, and the local registry is plain HTTP.
func (s *Stack) buildkitdConfig(network buildkitdNetwork) ([]string, error) {
	sock, err := socketPath(s.home, "buildkitd.sock")
	if err != nil {
		return nil, err
	}
	if filepath.Dir(sock) != s.home {
		s.logger.Info("home path too long for a unix socket; buildkitd listens under the temp folder", "socket", sock)
	}
	s.BuildkitAddr = "unix://" + sock
	root := filepath.Join(s.home, "buildkit")
	_, registryPort, _ := net.SplitHostPort(s.Registry)

	conf := fmt.Sprintf(`# Written by devstack at every start; edits are lost.
root = %[1]q
# Neither network.host nor security.insecure is ever granted to a build.
insecure-entitlements = []

[grpc]
  address = [%[2]q]

[worker.oci]
  enabled = true
  snapshotter = "auto"
%[5]s%[7]s  gc = true
  # RUN steps run in cgroups with the per-build limits (devstack/cgroup.go).
  defaultCgroupParent = %[6]q

[worker.containerd]
  enabled = false

[registry."docker.io"]
  mirrors = [%[3]q]

[registry.%[3]q]
  http = true
  insecure = true

[registry.%[4]q]
  http = true
  insecure = true
`, root, s.BuildkitAddr, s.Registry, "localhost:"+registryPort, network.toml(), s.defaultCgroup, s.emulation.workerPlatformsTOML())
	path := filepath.Join(s.home, "buildkitd.toml")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		return nil, fmt.Errorf("writing buildkitd config: %w", err)
	}
	return []string{"--config", path, "--root", root, "--addr", s.BuildkitAddr}, nil
}

// StartBuildkitd starts buildkitd (after KillBuildkitd) with the same root and
// socket, and waits until it lists a worker.
func (s *Stack) StartBuildkitd(ctx context.Context) error {
	p, err := s.launch(&s.buildkitd, "buildkitd", s.buildkitdBin, s.buildkitdArgs)
	if err != nil {
		return err
	}
	var workers []*bkclient.WorkerInfo
	if err := waitReady(ctx, p, buildkitdReadyTimeout, func(ctx context.Context) (err error) {
		workers, err = buildkitdWorkers(ctx, s.BuildkitAddr)
		return err
	}); err != nil {
		return fmt.Errorf("starting buildkitd: %w", err)
	}
	snapshotter := workers[0].Labels["org.mobyproject.buildkit.worker.snapshotter"]
	if snapshotter != "overlayfs" {
		s.logger.Warn("buildkitd could not use overlayfs under its root; builds work but copy more",
			"snapshotter", snapshotter, "root", filepath.Join(s.home, "buildkit"), "log", p.LogPath())
	}
	s.logger.Info("buildkitd ready", "address", s.BuildkitAddr, "snapshotter", snapshotter)
	return nil
}

// KillBuildkitd kills buildkitd and its build containers with SIGKILL, as a
// crash would, and waits until they are gone.
func (s *Stack) KillBuildkitd() error {
	return s.halt(&s.buildkitd, "buildkitd", 0)
}

// EmptyBuildkitdRoot removes the root of a killed buildkitd (KillBuildkitd), its whole local
// cache, so that the next StartBuildkitd starts as on a fresh node. A killed buildkitd may leave
// its containers' mounts under the root: they are detached first.
func (s *Stack) EmptyBuildkitdRoot() error {
	root := filepath.Join(s.home, "buildkit")
	if err := unmountUnder(root); err != nil {
		return err
	}
	if err := os.RemoveAll(root); err != nil {
		return fmt.Errorf("emptying buildkitd's root: %w", err)
	}
	if err := os.Mkdir(root, 0o755); err != nil {
		return fmt.Errorf("creating buildkitd's root: %w", err)
	}
	return nil
}

// buildkitdWorkers lists buildkitd's workers; it fails until there is one.
func buildkitdWorkers(ctx context.Context, addr string) ([]*bkclient.WorkerInfo, error) {
	c, err := bkclient.New(ctx, addr)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	workers, err := c.ListWorkers(ctx)
	if err != nil {
		return nil, err
	}
	if len(workers) == 0 {
		return nil, errors.New("buildkitd has no worker")
	}
	return workers, nil
}

// unmountUnder detaches every mount below dir, deepest first.
func unmountUnder(dir string) error {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return fmt.Errorf("listing mounts: %w", err)
	}
	defer f.Close()
	var points []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		if p := unescapeMountPoint(fields[4]); strings.HasPrefix(p, dir+"/") {
			points = append(points, p)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("listing mounts: %w", err)
	}
	sort.Slice(points, func(i, j int) bool { return len(points[i]) > len(points[j]) })
	var errs []error
	for _, p := range points {
		if err := syscall.Unmount(p, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) {
			errs = append(errs, fmt.Errorf("unmounting %s: %w", p, err))
		}
	}
	return errors.Join(errs...)
}

// unescapeMountPoint undoes the octal escapes (\040 for a space) of /proc/self/mountinfo.
func unescapeMountPoint(s string) string {
	if !strings.Contains(s, "\\") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
