package gateway

import (
	"os/exec"
	"strings"
	"testing"
)

// TestLinksNoBuildEngine keeps the gateway off the build engine: it shares the build contract
// (package build) with the worker, never the worker's BuildKit and containerd clients, which
// would add some ninety packages to a binary that only starts workflows. go-containerregistry's
// registry client links docker/cli's config-file reader; that is all of docker/cli it may link.
func TestLinksNoBuildEngine(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/slipway-dev/slipway/gateway").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, pkg := range strings.Fields(string(out)) {
		switch {
		case strings.HasPrefix(pkg, "github.com/moby/buildkit"),
			strings.HasPrefix(pkg, "github.com/containerd/"),
			strings.HasPrefix(pkg, "github.com/docker/cli/") && !strings.HasPrefix(pkg, "github.com/docker/cli/cli/config"),
			pkg == "github.com/slipway-dev/slipway/activities",
			pkg == "github.com/slipway-dev/slipway/workflows":
			t.Errorf("the gateway links %s", pkg)
		}
	}
}
