package main

import (
	"maps"
	"testing"
	"time"
)

// TestVertexGroups checks the grouping of BuildKit's plain progress: steps, the base image,
// the cache and the export, and the DONE that a CACHED step gets later when its layers are
// pulled for the export (seen on a fresh buildkitd with only the registry cache).
func TestVertexGroups(t *testing.T) {
	s := 100 * time.Millisecond
	tests := []struct {
		name string
		log  string
		want map[string]time.Duration
	}{
		{"cold", `#1 [internal] load build definition from Dockerfile
#1 DONE 0.1s
#2 [internal] load metadata for docker.io/library/busybox:latest
#2 DONE 0.1s
#4 importing cache manifest from 127.0.0.1:5000/bench/x:buildcache
#4 ERROR: not found
#5 [1/5] FROM docker.io/library/busybox:latest@sha256:82f8
#6 [internal] load build context
#6 DONE 0.1s
#5 DONE 0.4s
#8 [3/5] RUN dd if=/dev/urandom of=/blob bs=1M count=64
#8 DONE 2.1s
#10 [stage-1 5/5] COPY app/ /app
#10 DONE 0.1s
#11 exporting to oci image format
#11 exporting layers 4.3s done
#11 DONE 5.6s
#12 exporting cache to registry
#12 DONE 1.0s
`, map[string]time.Duration{groupContext: s, groupBase: 5 * s, groupSteps: 22 * s, groupExport: 56 * s, groupCacheExport: 10 * s}},
		{"fresh buildkitd: cached steps pulled for the export", `#5 importing cache manifest from r/x:buildcache
#5 DONE 0.0s
#7 [3/5] RUN dd if=/dev/urandom of=/blob bs=1M count=64
#7 CACHED
#10 [5/5] COPY app/ /app
#10 CACHED
#11 exporting to oci image format
#11 ...
#10 [5/5] COPY app/ /app
#10 sha256:e88b 67.13MB / 67.13MB 0.4s done
#10 DONE 0.6s
#11 exporting to oci image format
#11 DONE 2.0s
`, map[string]time.Duration{groupCacheImport: 0, groupPull: 6 * s, groupExport: 20 * s}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := vertexGroups(tt.log); !maps.Equal(got, tt.want) {
				t.Fatalf("vertexGroups = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestDockerfileInstruction checks which vertex names count as Dockerfile steps.
func TestDockerfileInstruction(t *testing.T) {
	tests := []struct {
		name, want string
		ok         bool
	}{
		{"[2/5] COPY app/ /app", "COPY", true},
		{"[stage-1 1/3] FROM docker.io/library/busybox", "FROM", true},
		{"[internal] load build context", "", false},
		{"exporting to image", "", false},
		{"[a/b] RUN x", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := dockerfileInstruction(tt.name)
			if got != tt.want || ok != tt.ok {
				t.Fatalf("dockerfileInstruction(%q) = %q, %v; want %q, %v", tt.name, got, ok, tt.want, tt.ok)
			}
		})
	}
}
