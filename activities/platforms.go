package activities

import (
	"context"
	"fmt"
	"strings"

	"github.com/containerd/platforms"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"go.temporal.io/sdk/temporal"

	"github.com/slipway-dev/slipway/build"
)

// platformAttr is the Dockerfile frontend's attribute naming the platforms to build, comma-
// separated: one solve builds them all and the OCI export is then one image index.
const platformAttr = "platform"

// buildPlatforms are the input's platforms in normal form, checked again here: the input may
// come from anyone with access to Temporal. None means the worker's own platform.
func buildPlatforms(in BuildInput) ([]string, error) {
	p, err := build.NormalizePlatforms(in.Platforms)
	if err != nil {
		return nil, build.ApplicationError(err)
	}
	return p, nil
}

// checkPlatforms refuses, before any solve, a build of a platform this worker's buildkitd can
// neither run natively nor emulate: BuildKit itself would run such a RUN step natively and
// fail deep into the build with "exec format error", or not at all for a Dockerfile without
// RUN, pushing an image that was never run. The refusal names the platforms and is final:
// another try on the same worker would fail the same way.
func (a *Activities) checkPlatforms(ctx context.Context, want []string) error {
	if len(want) == 0 {
		return nil
	}
	workers, err := a.Buildkit.ListWorkers(ctx)
	if err != nil {
		return fmt.Errorf("listing buildkitd's workers: %w", err)
	}
	var have []ocispec.Platform
	for _, w := range workers {
		have = append(have, w.Platforms...)
	}
	missing, err := unavailablePlatforms(want, have)
	if err != nil {
		return build.ApplicationError(&build.InvalidError{Field: "platforms", Msg: err.Error()})
	}
	if len(missing) == 0 {
		return nil
	}
	names := make([]string, 0, len(have))
	for _, p := range have {
		names = append(names, platforms.Format(p))
	}
	return temporal.NewNonRetryableApplicationError(
		fmt.Sprintf("platform %s cannot be built on this worker: it is not the worker's own and its buildkitd has no emulator for it (it builds %s)",
			strings.Join(missing, ", "), strings.Join(names, ", ")),
		build.ErrTypePlatformUnavailable, nil)
}

// unavailablePlatforms are the platforms of want that no platform of have runs, in
// containerd's matching (a worker of linux/arm64 also runs linux/arm/v7, one of
// linux/amd64/v3 runs linux/amd64).
func unavailablePlatforms(want []string, have []ocispec.Platform) ([]string, error) {
	matchers := make([]platforms.MatchComparer, 0, len(have))
	for _, h := range have {
		matchers = append(matchers, platforms.Only(h))
	}
	var missing []string
	for _, w := range want {
		p, err := platforms.Parse(w)
		if err != nil {
			return nil, fmt.Errorf("platforms: parsing %q: %w", w, err)
		}
		ok := false
		for _, m := range matchers {
			if m.Match(p) {
				ok = true
				break
			}
		}
		if !ok {
			missing = append(missing, w)
		}
	}
	return missing, nil
}

// attrPlatforms are the platforms frontendAttrs set, none when it set none.
func attrPlatforms(attrs map[string]string) []string {
	if attrs[platformAttr] == "" {
		return nil
	}
	return strings.Split(attrs[platformAttr], ",")
}
