package workflows

import (
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/slipway-dev/slipway/activities"
	"github.com/slipway-dev/slipway/build"
)

// ReconcileResult lists the builds a reconciliation started, and the heads of the rule's refs
// it saw, which the next run of the Schedule reads as its last completion result.
type ReconcileResult struct {
	Started []string          `json:"started"`
	Seen    map[string]string `json:"seen,omitempty"`
}

// Reconcile is a rule's reconciliation, run by the rule's Schedule every reconcile_every:
// it finds the heads of the rule's refs that no build built (a webhook delivery that never
// came) and starts their builds, with trigger reconcile. A head whose start fails is left for
// the next run: it is dropped from what this run reports seen, so the next run asks again.
func Reconcile(ctx workflow.Context, in build.ReconcileInput) (ReconcileResult, error) {
	var a *activities.Activities
	actx := workflow.WithActivityOptions(ctx, opts(2*time.Minute, 0, 3))
	q := activities.MissedHeadsInput{ReconcileInput: in}
	if workflow.HasLastCompletionResult(ctx) {
		var prev ReconcileResult
		if err := workflow.GetLastCompletionResult(ctx, &prev); err == nil {
			q.Seen = prev.Seen
		}
	}
	var heads activities.MissedHeads
	if err := workflow.ExecuteActivity(actx, a.MissedHeads, q).Get(ctx, &heads); err != nil {
		return ReconcileResult{}, err
	}
	res := ReconcileResult{Started: []string{}, Seen: heads.Seen}
	for _, h := range heads.Missed {
		var id string
		err := workflow.ExecuteActivity(actx, a.StartReconciled, activities.StartReconciledInput{Reconcile: in, Head: h}).Get(ctx, &id)
		if err != nil {
			workflow.GetLogger(ctx).Warn("starting a reconciled build", "ref", h.Ref.Name, "commit", h.Commit, "error", err)
			delete(res.Seen, activities.RefKey(h.Ref))
			continue
		}
		res.Started = append(res.Started, id)
	}
	return res, nil
}
