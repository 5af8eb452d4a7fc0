package retention

import (
	"context"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/slipway-dev/slipway/build"
)

// Evaluate reads repo's tags and applies policy to them at now, protecting what rules keep in
// use. The gateway's dry run and the worker's run both call it, so they decide alike.
func Evaluate(ctx context.Context, repo name.Repository, policy build.RetentionPolicy, rules []RuleView, now time.Time, opts ...remote.Option) (Plan, error) {
	if err := policy.Validate(); err != nil {
		return Plan{}, err
	}
	tags, err := ListTags(ctx, repo, opts...)
	if err != nil {
		return Plan{}, err
	}
	return Select(tags, policy, ProtectedTags(tags, rules), now)
}

// ScheduleID is the id of the Temporal Schedule that applies the policy of repository
// ns/repo. Names hold no "/", so the id is one repository's alone.
func ScheduleID(ns, repo string) string { return "slipway-retention-" + ns + "/" + repo }
