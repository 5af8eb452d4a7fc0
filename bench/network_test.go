package main

import (
	"net/netip"
	"testing"
	"time"
)

func TestCheckNetwork(t *testing.T) {
	gw := netip.MustParseAddr("10.213.7.1")
	bridgeOut := "#6 0.101 1: lo    inet 127.0.0.1/8 scope host lo\n#6 0.101 2: eth0    inet 10.213.7.5/24 brd 10.213.7.255 scope global eth0\n"
	hostOut := "#6 0.090 1: lo    inet 127.0.0.1/8 scope host lo\n#6 0.090 4: eth0    inet 192.0.2.2/24 scope global eth0\n" +
		"#6 0.090 9: slw-b1    inet 10.213.7.1/24 scope global slw-b1\n"
	for _, tc := range []struct {
		name, out, side string
		ok              bool
	}{
		{"bridge on bridge", bridgeOut, sideBridge, true},
		{"host on host", hostOut, sideHost, true},
		{"bridge side ran on host", hostOut, sideBridge, false},
		{"host side ran on bridge", bridgeOut, sideHost, false},
		{"no addresses", "#6 DONE 0.1s\n", sideBridge, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := checkNetwork(tc.out, tc.side, gw); (err == nil) != tc.ok {
				t.Fatalf("checkNetwork(%s) = %v, want ok %v", tc.side, err, tc.ok)
			}
		})
	}
}

func TestRunVertices(t *testing.T) {
	out := `#5 [1/3] FROM docker.io/library/busybox:latest
#5 DONE 0.0s
#6 [2/3] RUN ip -4 -o addr > /step1 && cat /step1
#6 0.101 1: lo    inet 127.0.0.1/8 scope host lo
#6 DONE 0.2s
#7 [3/3] RUN echo "step 2 $NONCE" > /step2
#7 CACHED
#8 [3/3] RUN echo "step 3 $NONCE" > /step3
#8 DONE 0.3s
`
	sum, ran, cached := runVertices(out)
	if sum != 500*time.Millisecond || ran != 2 || cached != 1 {
		t.Fatalf("runVertices = %s, %d ran, %d cached; want 500ms, 2 ran, 1 cached", sum, ran, cached)
	}
}
