package buildnet

import (
	"context"
	"encoding/json"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
)

func TestParseAllow(t *testing.T) {
	tests := []struct {
		in      string
		want    []string
		wantErr string
	}{
		{in: "", want: nil},
		{in: "10.0.0.5/32:3128", want: []string{"10.0.0.5/32:3128"}},
		{in: "10.0.0.5", want: []string{"10.0.0.5/32"}},
		{in: "10.0.0.5:53, 192.168.10.0/24", want: []string{"10.0.0.5/32:53", "192.168.10.0/24"}},
		{in: "[fd00::1/128]:443 fd00::/64", want: []string{"[fd00::1/128]:443", "fd00::/64"}},
		{in: "10.0.0.5/24", wantErr: "host bits set"},
		{in: "0.0.0.0/0", wantErr: "allows every address"},
		{in: "10.0.0.5:0", wantErr: "port"},
		{in: "10.0.0.5:70000", wantErr: "port"},
		{in: "proxy.example:3128", wantErr: "not an address"},
		{in: "[fd00::1/128", wantErr: "missing ]"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseAllow(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want one with %q", err, tt.wantErr)
				}
				if !strings.Contains(err.Error(), EnvEgressAllow) {
					t.Errorf("error %q does not name %s", err, EnvEgressAllow)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var s []string
			for _, a := range got {
				s = append(s, a.String())
			}
			if strings.Join(s, ",") != strings.Join(tt.want, ",") {
				t.Fatalf("got %v, want %v", s, tt.want)
			}
		})
	}
}

func testConfig(t *testing.T) Config {
	t.Helper()
	allow, err := ParseAllow("10.213.9.1/32:8888,192.168.50.0/24")
	if err != nil {
		t.Fatal(err)
	}
	return Config{Bridge: "slwunit", Subnet: netip.MustParsePrefix("10.213.9.0/24"), Allow: allow, IPAMDir: "/tmp/ipam"}
}

func TestRuleset(t *testing.T) {
	c := testConfig(t)
	rs := c.Ruleset()
	for _, want := range []string{
		`iifname "slwunit" counter drop comment "build to host"`,
		"ip daddr 10.213.9.1/32 meta l4proto { tcp, udp } th dport 8888 accept",
		"ip daddr 192.168.50.0/24 accept",
		"169.254.0.0/16", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "127.0.0.0/8", "fe80::/10", "fc00::/7",
		`ip saddr 10.213.9.0/24 oifname != "slwunit" masquerade`,
		"ip saddr 10.213.9.0/24 ip daddr 10.213.9.0/24 counter drop",
	} {
		if !strings.Contains(rs, want) {
			t.Errorf("ruleset lacks %q:\n%s", want, rs)
		}
	}
	// The allow-list comes before the drops of both chains that see a build's traffic.
	for _, chain := range []string{"chain input", "chain forward"} {
		body := rs[strings.Index(rs, chain):]
		if strings.Index(body, "jump allowed") > strings.Index(body, "drop") {
			t.Errorf("%s drops before it looks at the allow-list", chain)
		}
	}
	if c.Ruleset() != rs {
		t.Error("the same config gave two rulesets")
	}
	// The kernel's own check, when this machine has nft and the right to ask.
	if _, err := exec.LookPath("nft"); err != nil || os.Geteuid() != 0 {
		return
	}
	cmd := exec.Command("nft", "-c", "-f", "-")
	cmd.Stdin = strings.NewReader(rs)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nft -c refuses the ruleset: %v\n%s", err, out)
	}
}

func TestCNIConfList(t *testing.T) {
	b, err := testConfig(t).CNIConfList()
	if err != nil {
		t.Fatal(err)
	}
	var conf struct {
		Plugins []struct {
			Type      string `json:"type"`
			Bridge    string `json:"bridge"`
			IPMasq    bool   `json:"ipMasq"`
			IsGateway bool   `json:"isGateway"`
			IPAM      struct {
				Ranges [][]struct{ Subnet, Gateway string } `json:"ranges"`
			} `json:"ipam"`
		} `json:"plugins"`
	}
	if err := json.Unmarshal(b, &conf); err != nil {
		t.Fatal(err)
	}
	p := conf.Plugins[0]
	if p.Type != "bridge" || p.Bridge != "slwunit" || p.IPMasq || !p.IsGateway {
		t.Fatalf("bridge plugin = %+v", p)
	}
	if r := p.IPAM.Ranges[0][0]; r.Subnet != "10.213.9.0/24" || r.Gateway != "10.213.9.1" {
		t.Fatalf("range = %+v", r)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		c    Config
		ok   bool
	}{
		{"good", Config{Bridge: "slw0", Subnet: netip.MustParsePrefix("10.213.1.0/24")}, true},
		{"long name", Config{Bridge: "slw0123456789abcd", Subnet: netip.MustParsePrefix("10.213.1.0/24")}, false},
		{"bad name", Config{Bridge: "slw;rm", Subnet: netip.MustParsePrefix("10.213.1.0/24")}, false},
		{"ipv6", Config{Bridge: "slw0", Subnet: netip.MustParsePrefix("fd00::/64")}, false},
		{"too small", Config{Bridge: "slw0", Subnet: netip.MustParsePrefix("10.213.1.0/30")}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.c.Validate(); (err == nil) != tt.ok {
				t.Fatalf("Validate() = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

func TestBridgeNameAndSubnet(t *testing.T) {
	a, b := BridgeName("/tmp/a"), BridgeName("/tmp/b")
	if a == b || len(a) > 15 || BridgeName("/tmp/a") != a {
		t.Fatalf("bridge names %q and %q", a, b)
	}
	base := netip.MustParsePrefix("10.213.0.0/16")
	p, err := PickSubnet(a, base)
	if err != nil {
		t.Fatal(err)
	}
	if p.Bits() != 24 || !base.Contains(p.Addr()) {
		t.Fatalf("picked %s", p)
	}
	routes, err := ipv4Routes("")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range routes {
		if r.Overlaps(p) {
			t.Fatalf("picked %s, which route %s overlaps", p, r)
		}
	}
}

// TestSetupAndSweep sets a network up on this host, as a stack does, and has it swept once
// the process that claimed it is gone.
func TestSetupAndSweep(t *testing.T) {
	ctx := t.Context()
	c := Config{Bridge: BridgeName(t.TempDir()), IPAMDir: t.TempDir()}
	unlock, err := Lock()
	if err != nil {
		t.Fatal(err)
	}
	if c.Subnet, err = PickSubnet(c.Bridge, netip.MustParsePrefix("10.213.0.0/16")); err != nil {
		unlock()
		t.Fatal(err)
	}
	err = Setup(ctx, c)
	unlock()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { Teardown(context.Background(), c); Release(c) })
	if err := Check(ctx, c.Bridge); err != nil {
		t.Fatalf("Check after Setup: %v", err)
	}
	// Setting up again with another allow-list replaces the filter.
	c.Allow = []Allow{{Prefix: netip.PrefixFrom(c.Gateway(), 32), Port: 8888}}
	if err := Setup(ctx, c); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("nft", "list", "table", "inet", c.Table()).Output()
	if err != nil || !strings.Contains(string(out), "dport 8888 accept") {
		t.Fatalf("the filter lacks the new allow-list entry (%v):\n%s", err, out)
	}

	// A claim by a process that has exited.
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	if err := Claim(c); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(claim{PID: dead.Process.Pid, Bridge: c.Bridge, Subnet: c.Subnet.String()})
	if err := os.WriteFile(ClaimsDir+"/"+c.Bridge+".json", b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := SweepStale(ctx, ""); err != nil {
		t.Fatal(err)
	}
	if err := Check(ctx, c.Bridge); err == nil {
		t.Fatal("the network of a dead process is still there after the sweep")
	}
}
