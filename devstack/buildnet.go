package devstack

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/slipway-dev/slipway/buildnet"
)

// buildSubnets is where build networks' /24 subnets are picked: a range of the private 10/8
// that is rarely routed on a host; a /24 that a route of the host overlaps is skipped.
var buildSubnets = netip.MustParsePrefix("10.213.0.0/16")

// setupBuildNetwork creates the stack's build network (a bridge of its own with the egress
// filter) and writes the CNI configuration buildkitd reads. It returns the configuration's
// path and the folder of the CNI plugins.
func (s *Stack) setupBuildNetwork(ctx context.Context, allow []buildnet.Allow) (confPath, pluginDir string, err error) {
	pluginDir, err = buildnet.FindCNIPlugins()
	if err != nil {
		return "", "", err
	}
	unlock, err := buildnet.Lock()
	if err != nil {
		return "", "", err
	}
	defer unlock()
	if err := buildnet.SweepStale(ctx, buildnet.BridgeName(s.home)); err != nil {
		s.logger.Warn("removing build networks of stacks that died", "error", err)
	}
	c := buildnet.Config{
		Bridge:  buildnet.BridgeName(s.home),
		Allow:   allow,
		IPAMDir: filepath.Join(s.home, "cni", "ipam"),
	}
	if c.Subnet, err = buildnet.PickSubnet(c.Bridge, buildSubnets); err != nil {
		return "", "", err
	}
	if err := buildnet.Setup(ctx, c); err != nil {
		return "", "", err
	}
	if err := buildnet.Claim(c); err != nil {
		return "", "", err
	}
	s.buildNet = &c
	s.BuildBridge, s.BuildGateway = c.Bridge, c.Gateway()
	conf, err := c.CNIConfList()
	if err != nil {
		return "", "", err
	}
	confPath = filepath.Join(s.home, "cni", "build.conflist")
	if err := os.MkdirAll(filepath.Dir(confPath), 0o755); err != nil {
		return "", "", fmt.Errorf("creating CNI config folder: %w", err)
	}
	if err := os.WriteFile(confPath, conf, 0o644); err != nil {
		return "", "", fmt.Errorf("writing CNI config: %w", err)
	}
	s.logger.Info("build network ready", "bridge", c.Bridge, "subnet", c.Subnet, "allow", allow)
	return confPath, pluginDir, nil
}

// AllowBuildEgress replaces the build network's allow-list; the filter changes in one
// transaction, and builds running meanwhile keep their connections.
func (s *Stack) AllowBuildEgress(ctx context.Context, allow []buildnet.Allow) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.buildNet == nil {
		return fmt.Errorf("the stack runs builds on the host network: it has no build network")
	}
	c := *s.buildNet
	c.Allow = allow
	if err := buildnet.Setup(ctx, c); err != nil {
		return err
	}
	s.buildNet = &c
	return nil
}

// teardownBuildNetwork removes the bridge and its filter.
func (s *Stack) teardownBuildNetwork() error {
	if s.buildNet == nil {
		return nil
	}
	err := buildnet.Teardown(context.Background(), *s.buildNet)
	if err == nil {
		buildnet.Release(*s.buildNet)
	}
	s.buildNet = nil
	return err
}
