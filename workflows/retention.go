package workflows

import (
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/slipway-dev/slipway/activities"
	"github.com/slipway-dev/slipway/build"
)

// Retention is an image repository's retention run, started by the repository's Schedule
// every policy period (or by hand: `temporal schedule trigger`). One activity plans and
// deletes, so the plan it deletes by is never older than the deletion; its result lists what
// went and why.
func Retention(ctx workflow.Context, in build.RetentionInput) (activities.RetentionResult, error) {
	var a *activities.Activities
	actx := workflow.WithActivityOptions(ctx, opts(20*time.Minute, 0, 3))
	var res activities.RetentionResult
	err := workflow.ExecuteActivity(actx, a.ApplyRetention, in).Get(ctx, &res)
	return res, err
}
