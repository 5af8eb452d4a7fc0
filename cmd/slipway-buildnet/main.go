// Command slipway-buildnet sets up the build network in buildkitd's network namespace (a
// bridge, the CNI configuration buildkitd reads and the nftables egress filter) and then
// becomes buildkitd. It is the entrypoint of the compose stack's buildkitd image: buildkitd
// never starts without the filter in front of its RUN steps.
//
//	slipway-buildnet [-bridge NAME] [-subnet CIDR] [-cni-config FILE] -- buildkitd ARGS...
//
// SLIPWAY_BUILD_EGRESS_ALLOW is the allow-list (see docs/security.md).
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"

	"github.com/slipway-dev/slipway/buildnet"
)

func main() {
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(logger); err != nil {
		logger.Error("setting up the build network; buildkitd is not started", "error", err)
		os.Exit(1)
	}
}

func run(logger *slog.Logger) error {
	bridge := flag.String("bridge", "slwbuild0", "name of the build bridge")
	subnet := flag.String("subnet", "10.213.0.0/24", "IPv4 subnet of the build bridge")
	confPath := flag.String("cni-config", "/etc/buildkit/slipway-build.conflist", "where to write the CNI configuration buildkitd's cniConfigPath names")
	ipamDir := flag.String("ipam-dir", "/var/lib/buildkit/slipway-ipam", "where the host-local IPAM plugin keeps its leases")
	flag.Parse()
	if flag.NArg() == 0 {
		return fmt.Errorf("no command after the flags: want -- buildkitd ARGS")
	}
	allow, err := buildnet.ParseAllow(os.Getenv(buildnet.EnvEgressAllow))
	if err != nil {
		return err
	}
	prefix, err := netip.ParsePrefix(*subnet)
	if err != nil {
		return fmt.Errorf("-subnet: %w", err)
	}
	c := buildnet.Config{Bridge: *bridge, Subnet: prefix.Masked(), Allow: allow, IPAMDir: *ipamDir}
	if _, err := buildnet.FindCNIPlugins(); err != nil {
		return err
	}
	if err := buildnet.Setup(context.Background(), c); err != nil {
		return err
	}
	conf, err := c.CNIConfList()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(*confPath), 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", filepath.Dir(*confPath), err)
	}
	if err := os.WriteFile(*confPath, conf, 0o644); err != nil {
		return fmt.Errorf("writing the CNI configuration: %w", err)
	}
	logger.Info("build network ready", "bridge", c.Bridge, "subnet", c.Subnet, "allow", allow)
	bin, err := exec.LookPath(flag.Arg(0))
	if err != nil {
		return err
	}
	return syscall.Exec(bin, flag.Args(), os.Environ())
}
