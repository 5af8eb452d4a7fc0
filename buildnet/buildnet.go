// Package buildnet is the network that BuildKit's RUN steps run in: a Linux bridge of their
// own, joined through BuildKit's CNI networking (the bridge and host-local plugins), and an
// nftables filter on the bridge's egress. A RUN step reaches the public internet (through
// masquerade) and an operator's allow-list, and nothing else: not loopback, not any address of
// the host (the bridge's own gateway address included), not link-local (cloud metadata), not
// private or reserved ranges, and not the other builds on the same bridge.
//
// The filter lives in one nftables table per bridge, so setting it up again replaces it in one
// transaction and tearing it down removes exactly what was set up.
package buildnet

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"
)

// EnvEgressAllow names the operator allow-list: comma-separated CIDRs, each with an optional
// port ("10.0.0.5/32:3128", "[fd00::1/128]:443", "192.168.10.0/24").
const EnvEgressAllow = "SLIPWAY_BUILD_EGRESS_ALLOW"

// Denied lists the destinations a build never reaches unless the allow-list names them:
// loopback, link-local (169.254.169.254, the cloud metadata address, included), the private
// and shared ranges, and the reserved ones no public service lives in.
var Denied = struct{ V4, V6 []string }{
	V4: []string{
		"0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
		"172.16.0.0/12", "192.0.0.0/24", "192.168.0.0/16", "198.18.0.0/15",
		"224.0.0.0/4", "240.0.0.0/4",
	},
	V6: []string{"::1/128", "::ffff:0:0/96", "64:ff9b:1::/48", "fc00::/7", "fe80::/10", "ff00::/8"},
}

// Allow is one allow-list entry: a destination prefix, and a TCP and UDP port when Port is
// not zero.
type Allow struct {
	Prefix netip.Prefix
	Port   uint16
}

// String spells the entry as ParseAllow reads it.
func (a Allow) String() string {
	if a.Port == 0 {
		return a.Prefix.String()
	}
	if a.Prefix.Addr().Is6() {
		return "[" + a.Prefix.String() + "]:" + strconv.Itoa(int(a.Port))
	}
	return a.Prefix.String() + ":" + strconv.Itoa(int(a.Port))
}

// ParseAllow reads an allow-list: entries separated by commas or spaces, each a CIDR (a bare
// address counts as a single-address prefix) with an optional ":PORT"; IPv6 entries with a
// port put the prefix in brackets.
func ParseAllow(s string) ([]Allow, error) {
	var out []Allow
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\t' }) {
		a, err := parseAllowEntry(f)
		if err != nil {
			return nil, fmt.Errorf("%s entry %q: %w", EnvEgressAllow, f, err)
		}
		out = append(out, a)
	}
	return out, nil
}

func parseAllowEntry(f string) (Allow, error) {
	host, port := f, ""
	switch {
	case strings.HasPrefix(f, "["):
		end := strings.Index(f, "]")
		if end < 0 {
			return Allow{}, fmt.Errorf("missing ]")
		}
		host, port = f[1:end], strings.TrimPrefix(f[end+1:], ":")
		if rest := f[end+1:]; rest != "" && !strings.HasPrefix(rest, ":") {
			return Allow{}, fmt.Errorf("want [PREFIX]:PORT")
		}
	case strings.Count(f, ":") == 1:
		host, port, _ = strings.Cut(f, ":")
	}
	var a Allow
	var err error
	if strings.Contains(host, "/") {
		a.Prefix, err = netip.ParsePrefix(host)
	} else {
		var addr netip.Addr
		addr, err = netip.ParseAddr(host)
		a.Prefix = netip.PrefixFrom(addr, addr.BitLen())
	}
	if err != nil {
		return Allow{}, fmt.Errorf("not an address or CIDR: %w", err)
	}
	if a.Prefix.Addr().Zone() != "" {
		return Allow{}, fmt.Errorf("zoned addresses are not allowed")
	}
	if a.Prefix.Masked() != a.Prefix {
		return Allow{}, fmt.Errorf("host bits set; did you mean %s?", a.Prefix.Masked())
	}
	if a.Prefix.Bits() == 0 {
		return Allow{}, fmt.Errorf("allows every address; leave the public internet to the default and name private ranges one by one")
	}
	if port != "" {
		n, err := strconv.ParseUint(port, 10, 16)
		if err != nil || n == 0 {
			return Allow{}, fmt.Errorf("port %q is not a number from 1 to 65535", port)
		}
		a.Port = uint16(n)
	}
	return a, nil
}

// Config is one build network.
type Config struct {
	// Bridge is the Linux bridge's name (at most 15 bytes). The nftables tables are named
	// after it.
	Bridge string
	// Subnet is the bridge's IPv4 subnet; its first address is the bridge's own (the builds'
	// gateway).
	Subnet netip.Prefix
	// Allow is the operator allow-list.
	Allow []Allow
	// IPAMDir is where the host-local IPAM plugin keeps its leases.
	IPAMDir string
}

// Gateway is the bridge's own address, the builds' default route.
func (c Config) Gateway() netip.Addr {
	return c.Subnet.Masked().Addr().Next()
}

// Table is the name of the nftables tables (families inet and bridge) that hold the filter.
func (c Config) Table() string {
	return "slipway_" + c.Bridge
}

// Validate says what is wrong with c, if anything.
func (c Config) Validate() error {
	if c.Bridge == "" || len(c.Bridge) > 15 {
		return fmt.Errorf("bridge name %q must have 1 to 15 bytes", c.Bridge)
	}
	for _, r := range c.Bridge {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return fmt.Errorf("bridge name %q: only a-z, 0-9, - and _", c.Bridge)
		}
	}
	if !c.Subnet.IsValid() || !c.Subnet.Addr().Is4() || c.Subnet.Bits() > 29 {
		return fmt.Errorf("subnet %s must be an IPv4 prefix of /29 or larger", c.Subnet)
	}
	return nil
}

// CNIConfList is the CNI network list BuildKit's OCI worker reads (cniConfigPath, a file
// whose name ends in .conflist): the bridge plugin with host-local addresses. It masquerades
// nothing and installs no firewall itself (both would need iptables); the nftables ruleset
// does both.
func (c Config) CNIConfList() ([]byte, error) {
	type rng struct {
		Subnet  string `json:"subnet"`
		Gateway string `json:"gateway"`
	}
	type route struct {
		Dst string `json:"dst"`
	}
	type ipam struct {
		Type    string  `json:"type"`
		Ranges  [][]rng `json:"ranges"`
		Routes  []route `json:"routes"`
		DataDir string  `json:"dataDir,omitempty"`
	}
	type plugin struct {
		Type        string `json:"type"`
		Bridge      string `json:"bridge"`
		IsGateway   bool   `json:"isGateway"`
		IPMasq      bool   `json:"ipMasq"`
		HairpinMode bool   `json:"hairpinMode"`
		IPAM        ipam   `json:"ipam"`
	}
	conf := struct {
		CNIVersion string   `json:"cniVersion"`
		Name       string   `json:"name"`
		Plugins    []plugin `json:"plugins"`
	}{
		CNIVersion: "1.0.0",
		Name:       c.Table(),
		Plugins: []plugin{{
			Type: "bridge", Bridge: c.Bridge, IsGateway: true,
			IPAM: ipam{
				Type:    "host-local",
				Ranges:  [][]rng{{{Subnet: c.Subnet.Masked().String(), Gateway: c.Gateway().String()}}},
				Routes:  []route{{Dst: "0.0.0.0/0"}},
				DataDir: c.IPAMDir,
			},
		}},
	}
	return json.MarshalIndent(conf, "", "  ")
}

// Ruleset is the nftables script that installs the filter, replacing an earlier one of the
// same bridge in the same transaction:
//   - inet table, input hook: whatever a build sends to the host itself (any of its
//     addresses, arriving on the bridge) is dropped unless allow-listed;
//   - inet table, forward hook: what a build sends elsewhere is dropped when it is bound for
//     a denied range, unless allow-listed; the rest (the public internet) passes;
//   - inet table, postrouting: the builds' subnet is masqueraded when it leaves the bridge;
//   - bridge table: frames between two builds on the bridge are dropped.
func (c Config) Ruleset() string {
	t := c.Table()
	var b strings.Builder
	// "add" then "delete" makes the delete succeed on a first run; the whole file is one
	// transaction, so the filter is never half there.
	fmt.Fprintf(&b, "add table inet %s\ndelete table inet %s\n", t, t)
	fmt.Fprintf(&b, "add table bridge %s\ndelete table bridge %s\n", t, t)
	fmt.Fprintf(&b, "table inet %s {\n", t)
	b.WriteString("\tchain allowed {\n")
	for _, a := range sortedAllow(c.Allow) {
		fam := "ip"
		if a.Prefix.Addr().Is6() {
			fam = "ip6"
		}
		if a.Port == 0 {
			fmt.Fprintf(&b, "\t\t%s daddr %s accept\n", fam, a.Prefix)
			continue
		}
		fmt.Fprintf(&b, "\t\t%s daddr %s meta l4proto { tcp, udp } th dport %d accept\n", fam, a.Prefix, a.Port)
	}
	b.WriteString("\t}\n")
	fmt.Fprintf(&b, "\tchain input {\n\t\ttype filter hook input priority filter - 10; policy accept;\n")
	fmt.Fprintf(&b, "\t\tiifname %q jump allowed\n", c.Bridge)
	fmt.Fprintf(&b, "\t\tiifname %q counter drop comment \"build to host\"\n\t}\n", c.Bridge)
	fmt.Fprintf(&b, "\tchain forward {\n\t\ttype filter hook forward priority filter - 10; policy accept;\n")
	fmt.Fprintf(&b, "\t\tiifname %q jump allowed\n", c.Bridge)
	fmt.Fprintf(&b, "\t\tiifname %q oifname %q counter drop comment \"build to build\"\n", c.Bridge, c.Bridge)
	fmt.Fprintf(&b, "\t\tiifname %q ip daddr { %s } counter drop comment \"build to denied range\"\n", c.Bridge, strings.Join(Denied.V4, ", "))
	fmt.Fprintf(&b, "\t\tiifname %q ip6 daddr { %s } counter drop comment \"build to denied range\"\n", c.Bridge, strings.Join(Denied.V6, ", "))
	b.WriteString("\t}\n")
	fmt.Fprintf(&b, "\tchain postrouting {\n\t\ttype nat hook postrouting priority srcnat; policy accept;\n")
	fmt.Fprintf(&b, "\t\tip saddr %s oifname != %q masquerade\n\t}\n}\n", c.Subnet.Masked(), c.Bridge)
	fmt.Fprintf(&b, "table bridge %s {\n\tchain forward {\n\t\ttype filter hook forward priority filter - 10; policy accept;\n", t)
	// Frames between two ports of the bridge; the bridge's own address is not forwarded, so
	// this leaves what the input chain decides alone.
	fmt.Fprintf(&b, "\t\tip saddr %s ip daddr %s counter drop comment \"build to build\"\n\t}\n}\n", c.Subnet.Masked(), c.Subnet.Masked())
	return b.String()
}

// sortedAllow orders the allow-list so a ruleset is the same text for the same list.
func sortedAllow(in []Allow) []Allow {
	out := append([]Allow(nil), in...)
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}
