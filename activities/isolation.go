package activities

import (
	"context"
	"fmt"
	"sync"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/slipway-dev/slipway/build"
	"github.com/slipway-dev/slipway/buildnet"
)

// networkLabel is the label buildkitd's workers carry with their network mode ("cni" when
// RUN steps get network namespaces of their own, "host" when they share buildkitd's).
const networkLabel = "org.mobyproject.buildkit.worker.network"

// isolationTTL is how long a passed check is trusted: a few milliseconds saved per build
// against a window in which a filter removed by hand goes unnoticed.
const isolationTTL = 10 * time.Second

// Isolation is what the worker checks of the build network before each build.
type Isolation struct {
	// Off is the operator's explicit opt-out (SLIPWAY_BUILD_ISOLATION=off): builds run
	// whatever buildkitd's network, each build log says so.
	Off bool
	// Bridge is the build network's bridge when buildkitd shares this host (and network
	// namespace) with the worker; its egress filter is then checked too. Empty checks only
	// buildkitd's network mode (a buildkitd elsewhere guards its own filter).
	Bridge string

	mu     sync.Mutex
	passed time.Time
}

// check returns nil when builds may run: isolation is on and holds, or is explicitly off.
func (a *Activities) checkIsolation(ctx context.Context) error {
	iso := a.Isolation
	if iso == nil || iso.Off {
		return nil
	}
	iso.mu.Lock()
	defer iso.mu.Unlock()
	if time.Since(iso.passed) < isolationTTL {
		return nil
	}
	refuse := func(what string) error {
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf(
			"build refused: %s; RUN steps would reach the service and other teams' builds "+
				"(the operator sets up the build network, see docs/security.md, or opts out with SLIPWAY_BUILD_ISOLATION=off)",
			what), build.ErrTypeIsolationMissing, nil)
	}
	workers, err := a.Buildkit.ListWorkers(ctx)
	if err != nil {
		// Not a verdict on isolation: buildkitd is away, and the build step retries.
		return fmt.Errorf("listing buildkitd's workers: %w", err)
	}
	if len(workers) == 0 {
		return fmt.Errorf("buildkitd has no worker")
	}
	for _, w := range workers {
		if mode := w.Labels[networkLabel]; mode != "cni" {
			return refuse(fmt.Sprintf("buildkitd worker %s runs RUN steps on network %q, not on a build bridge (cni)", w.ID, mode))
		}
	}
	if iso.Bridge != "" {
		if err := buildnet.Check(ctx, iso.Bridge); err != nil {
			return refuse(err.Error())
		}
	}
	iso.passed = time.Now()
	return nil
}
