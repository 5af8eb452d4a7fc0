package gateway

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/slipway-dev/slipway/build"
	"github.com/slipway-dev/slipway/builds"
	"github.com/slipway-dev/slipway/store"
)

// reconcileScheduleID is the id of the Temporal Schedule that reconciles rule ruleID.
func reconcileScheduleID(ruleID string) string { return "slipway-reconcile-" + ruleID }

// syncReconcile makes the rule's reconcile Schedule match its reconcile_every: created or
// updated (with the rule's parameters as they are now) when set, deleted when it was set
// before (old is the rule before the save; zero for a new rule). A rule that never had one
// costs Temporal nothing. The rule is saved whatever Temporal says; a failure is logged and
// mended by the next save.
func (a *Server) syncReconcile(ctx context.Context, old, r store.Rule) {
	if old.ReconcileEvery == "" && r.ReconcileEvery == "" {
		return
	}
	if err := a.applyReconcile(ctx, r); err != nil {
		a.logger.Error("syncing the rule's reconcile schedule", "rule", r.ID, "error", err)
	}
}

// dropReconcile deletes the reconcile Schedule of a deleted rule, if it has one.
func (a *Server) dropReconcile(ctx context.Context, r store.Rule) {
	if r.ReconcileEvery == "" {
		return
	}
	if err := a.deleteReconcile(ctx, r.ID); err != nil {
		a.logger.Error("deleting the rule's reconcile schedule", "rule", r.ID, "error", err)
	}
}

func (a *Server) applyReconcile(ctx context.Context, r store.Rule) error {
	if r.ReconcileEvery == "" {
		return a.deleteReconcile(ctx, r.ID)
	}
	every, err := time.ParseDuration(r.ReconcileEvery)
	if err != nil {
		return fmt.Errorf("reconcile_every %q: %w", r.ReconcileEvery, err)
	}
	ctx, cancel := context.WithTimeout(ctx, builds.Timeout)
	defer cancel()
	id := reconcileScheduleID(r.ID)
	spec := client.ScheduleSpec{Intervals: []client.ScheduleIntervalSpec{{Every: every}}}
	action := &client.ScheduleWorkflowAction{
		ID:        id,
		Workflow:  build.ReconcileWorkflowName,
		TaskQueue: a.cfg.TaskQueue,
		Args: []any{build.ReconcileInput{
			Template: a.builds.InputOf(builds.Request{Rule: r}), Triggers: r.Triggers, TagLatest: r.TagLatest,
		}},
		WorkflowExecutionTimeout: 10 * time.Minute,
	}
	sc := a.temporal.ScheduleClient()
	_, err = sc.Create(ctx, client.ScheduleOptions{ID: id, Spec: spec, Action: action})
	if !errors.Is(err, temporal.ErrScheduleAlreadyRunning) {
		return err
	}
	return sc.GetHandle(ctx, id).Update(ctx, client.ScheduleUpdateOptions{
		DoUpdate: func(in client.ScheduleUpdateInput) (*client.ScheduleUpdate, error) {
			s := in.Description.Schedule
			s.Spec, s.Action = &spec, action
			return &client.ScheduleUpdate{Schedule: &s}, nil
		},
	})
}

func (a *Server) deleteReconcile(ctx context.Context, ruleID string) error {
	ctx, cancel := context.WithTimeout(ctx, builds.Timeout)
	defer cancel()
	err := a.temporal.ScheduleClient().GetHandle(ctx, reconcileScheduleID(ruleID)).Delete(ctx)
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		return nil
	}
	return err
}
