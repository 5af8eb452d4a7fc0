package buildnet

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
)

// CNIPluginDirs are where Debian's containernetworking-plugins, Alpine's cni-plugins and the
// upstream releases put the bridge and host-local plugins.
func CNIPluginDirs() []string { return []string{"/usr/lib/cni", "/usr/libexec/cni", "/opt/cni/bin"} }

// FindCNIPlugins returns the first folder that holds the bridge, host-local and loopback
// plugins BuildKit's CNI networking runs.
func FindCNIPlugins() (string, error) {
	for _, dir := range CNIPluginDirs() {
		ok := true
		for _, p := range []string{"bridge", "host-local", "loopback"} {
			if _, err := os.Stat(dir + "/" + p); err != nil {
				ok = false
				break
			}
		}
		if ok {
			return dir, nil
		}
	}
	return "", fmt.Errorf("no CNI bridge, host-local and loopback plugins in %s (Debian: apt-get install containernetworking-plugins)",
		strings.Join(CNIPluginDirs(), " or "))
}

// Setup creates the bridge with its address (or keeps the one there), installs the nftables
// filter for it and turns on IPv4 forwarding, which the builds' route to the internet needs.
// It is idempotent: calling it again with another allow-list replaces the filter atomically.
func Setup(ctx context.Context, c Config) error {
	if err := c.Validate(); err != nil {
		return err
	}
	// Debian's nftables and iproute2 packages have them.
	for _, t := range []string{"nft", "ip"} {
		if _, err := exec.LookPath(t); err != nil {
			return fmt.Errorf("build network needs %q (Debian: apt-get install nftables iproute2): %w", t, err)
		}
	}
	if _, err := net.InterfaceByName(c.Bridge); err != nil {
		if err := run(ctx, nil, "ip", "link", "add", "name", c.Bridge, "type", "bridge"); err != nil {
			return fmt.Errorf("creating bridge %s: %w", c.Bridge, err)
		}
	}
	addr := netip.PrefixFrom(c.Gateway(), c.Subnet.Bits()).String()
	if err := run(ctx, nil, "ip", "addr", "replace", addr, "dev", c.Bridge); err != nil {
		return fmt.Errorf("addressing bridge %s: %w", c.Bridge, err)
	}
	if err := run(ctx, nil, "ip", "link", "set", c.Bridge, "up"); err != nil {
		return fmt.Errorf("bringing bridge %s up: %w", c.Bridge, err)
	}
	if err := run(ctx, strings.NewReader(c.Ruleset()), "nft", "-f", "-"); err != nil {
		return fmt.Errorf("installing the build network's nftables filter: %w", err)
	}
	if err := os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1"), 0o644); err != nil {
		return fmt.Errorf("turning on IPv4 forwarding for the build network: %w", err)
	}
	return nil
}

// Teardown removes the filter and the bridge; what is already gone is no error.
func Teardown(ctx context.Context, c Config) error {
	var errs []error
	for _, fam := range []string{"inet", "bridge"} {
		if err := run(ctx, nil, "nft", "delete", "table", fam, c.Table()); err != nil && !strings.Contains(err.Error(), "No such file") {
			errs = append(errs, fmt.Errorf("removing nftables table %s %s: %w", fam, c.Table(), err))
		}
	}
	if _, err := net.InterfaceByName(c.Bridge); err == nil {
		if err := run(ctx, nil, "ip", "link", "del", c.Bridge); err != nil {
			errs = append(errs, fmt.Errorf("removing bridge %s: %w", c.Bridge, err))
		}
	}
	return errors.Join(errs...)
}

// Check says what is missing of the build network of bridge on this host: the bridge, or
// the nftables filter with its drop rules. A worker that shares a host with its buildkitd
// runs it before each build.
func Check(ctx context.Context, bridge string) error {
	c := Config{Bridge: bridge}
	if _, err := net.InterfaceByName(bridge); err != nil {
		return fmt.Errorf("the build bridge %s is missing: %w", bridge, err)
	}
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, "nft", "list", "table", "inet", c.Table())
	cmd.Stdout = &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("the build network's nftables table inet %s is missing (nft list table: %w)", c.Table(), err)
	}
	for _, want := range []string{`"build to host"`, `"build to denied range"`, "masquerade"} {
		if !strings.Contains(out.String(), want) {
			return fmt.Errorf("the build network's nftables table inet %s lacks its %s rule", c.Table(), want)
		}
	}
	return nil
}

// BridgeName is the bridge of the build network of the stack whose home is home: "slw" and
// eight hex digits of the path's hash, so two stacks on one host never share one.
func BridgeName(home string) string {
	return "slw" + hex.EncodeToString(hashOf(home))[:8]
}

// PickSubnet returns a /24 inside base (a /16) that no route of this host overlaps, starting
// from one chosen by the bridge name; routes through bridge itself (left by an earlier run)
// do not count.
func PickSubnet(bridge string, base netip.Prefix) (netip.Prefix, error) {
	if !base.Addr().Is4() || base.Bits() > 23 {
		return netip.Prefix{}, fmt.Errorf("subnet base %s must be an IPv4 prefix of /23 or larger", base)
	}
	routes, err := ipv4Routes(bridge)
	if err != nil {
		return netip.Prefix{}, err
	}
	n := 1 << (24 - base.Bits())
	start := int(binary.BigEndian.Uint32(hashOf(bridge)) % uint32(n))
	b := base.Masked().Addr().As4()
	baseInt := binary.BigEndian.Uint32(b[:])
	for i := 0; i < n; i++ {
		k := (start + i) % n
		var a [4]byte
		binary.BigEndian.PutUint32(a[:], baseInt+uint32(k)<<8)
		cand := netip.PrefixFrom(netip.AddrFrom4(a), 24)
		taken := false
		for _, r := range routes {
			if r.Overlaps(cand) {
				taken = true
				break
			}
		}
		if !taken {
			return cand, nil
		}
	}
	return netip.Prefix{}, fmt.Errorf("every /24 of %s overlaps a route of this host", base)
}

// ipv4Routes lists the destinations of this host's IPv4 routes other than the default route
// and those through skip.
func ipv4Routes(skip string) ([]netip.Prefix, error) {
	f, err := os.Open("/proc/net/route")
	if err != nil {
		return nil, fmt.Errorf("reading routes: %w", err)
	}
	defer f.Close()
	var out []netip.Prefix
	sc := bufio.NewScanner(f)
	sc.Scan() // header
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) < 8 || fs[0] == skip {
			continue
		}
		dst, err1 := strconv.ParseUint(fs[1], 16, 32)
		mask, err2 := strconv.ParseUint(fs[7], 16, 32)
		if err1 != nil || err2 != nil || mask == 0 {
			continue
		}
		var d [4]byte
		binary.LittleEndian.PutUint32(d[:], uint32(dst))
		var m [4]byte
		binary.LittleEndian.PutUint32(m[:], uint32(mask))
		bits, _ := net.IPMask(m[:]).Size()
		out = append(out, netip.PrefixFrom(netip.AddrFrom4(d), bits).Masked())
	}
	return out, sc.Err()
}

// Lock serializes the choice of subnets between stacks starting at once on one host; the
// returned function releases it.
func Lock() (func(), error) {
	f, err := os.OpenFile("/run/slipway-buildnet.lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		f, err = os.OpenFile(os.TempDir()+"/slipway-buildnet.lock", os.O_CREATE|os.O_RDWR, 0o600)
	}
	if err != nil {
		return nil, fmt.Errorf("opening the build network lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("taking the build network lock: %w", err)
	}
	return func() { f.Close() }, nil
}

func run(ctx context.Context, stdin *strings.Reader, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	if stdin != nil {
		cmd.Stdin = stdin
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

func hashOf(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}
