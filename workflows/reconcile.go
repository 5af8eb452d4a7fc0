package workflows

import (
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/slipway-dev/slipway/activities"
)

// ReconcileResult lists the builds a reconciliation started.
type ReconcileResult struct {
	Started []string `json:"started"`
}

// Reconcile is a rule's reconciliation, run by the rule's Schedule every reconcile_every:
// it finds the heads of the rule's refs that no build built (a webhook delivery that never
// came) and starts their builds, with trigger reconcile. A head whose start fails is left for
// the next run.
func Reconcile(ctx workflow.Context, in activities.ReconcileInput) (ReconcileResult, error) {
	var a *activities.Activities
	actx := workflow.WithActivityOptions(ctx, opts(2*time.Minute, 0, 3))
	var missed []activities.MissedHead
	if err := workflow.ExecuteActivity(actx, a.MissedHeads, in).Get(ctx, &missed); err != nil {
		return ReconcileResult{}, err
	}
	res := ReconcileResult{Started: []string{}}
	for _, h := range missed {
		var id string
		err := workflow.ExecuteActivity(actx, a.StartReconciled, activities.StartReconciledInput{Reconcile: in, Head: h}).Get(ctx, &id)
		if err != nil {
			workflow.GetLogger(ctx).Warn("starting a reconciled build", "ref", h.Ref.Name, "commit", h.Commit, "error", err)
			continue
		}
		res.Started = append(res.Started, id)
	}
	return res, nil
}
