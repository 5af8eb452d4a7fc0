package main

import "testing"

func TestPushCounts(t *testing.T) {
	tests := []struct {
		name           string
		log            string
		requests, sent int64
		ok             bool
	}{
		{name: "counted", log: "==> tag r/app:v1 (image pushed by the build)\n==> pushed 127.0.0.1:5000/bench/slipway@sha256:ab in 12ms (3 registry requests, 1432 bytes sent)\n",
			requests: 3, sent: 1432, ok: true},
		{name: "worker without counts", log: "==> pushed 127.0.0.1:5000/bench/slipway@sha256:ab in 12ms\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, s, ok := pushCounts(tt.log)
			if r != tt.requests || s != tt.sent || ok != tt.ok {
				t.Fatalf("pushCounts = %d, %d, %v; want %d, %d, %v", r, s, ok, tt.requests, tt.sent, tt.ok)
			}
		})
	}
	if got := medianCount([]int64{9, 1, 5}); got != "5" {
		t.Fatalf("median of 9, 1, 5 = %s", got)
	}
}
