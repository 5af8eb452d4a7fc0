package devstack

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"

	"github.com/slipway-dev/slipway/cgroup"
)

// buildCgroup makes the stack's cgroup for build containers and its "default" child with
// the limits (SLIPWAY_BUILD_MEMORY, SLIPWAY_BUILD_PIDS, SLIPWAY_BUILD_CPUS):
// buildkitd runs RUN steps under "default" unless a solve names a cgroup parent of its own,
// which the worker does, with a child of this cgroup per image repository. The name
// is derived from the home so that stacks side by side (tests) keep apart.
func (s *Stack) buildCgroup() error {
	limits, err := cgroup.LimitsFromEnv(os.Getenv)
	if err != nil {
		return err
	}
	sum := sha256.Sum256([]byte(s.home))
	s.BuildCgroup = "slipway-" + hex.EncodeToString(sum[:6])
	s.cgroups = &cgroup.Parent{Path: s.BuildCgroup, Limits: limits}
	// What an earlier stack on this home left (a crash) goes first.
	_ = s.cgroups.Remove("")
	if err := s.cgroups.Create(); err != nil {
		return fmt.Errorf("making the builds' cgroup (RUN steps are bounded by it): %w", err)
	}
	def, err := s.cgroups.Child("default")
	if err != nil {
		return fmt.Errorf("making the builds' default cgroup: %w", err)
	}
	s.defaultCgroup = def
	s.logger.Info("build containers are bounded by cgroups", "parent", s.BuildCgroup, "per_build", limits.String())
	return nil
}

// removeBuildCgroup removes the stack's cgroups once buildkitd is gone.
func (s *Stack) removeBuildCgroup() error {
	if s.cgroups == nil {
		return nil
	}
	return s.cgroups.Remove("")
}
