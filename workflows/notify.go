package workflows

import (
	"errors"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/slipway-dev/slipway/activities"
	"github.com/slipway-dev/slipway/build"
)

// notifyHorizon is how long a delivery is tried before it is given up: a receiver down for a
// night still gets the event.
const notifyHorizon = 24 * time.Hour

// notifyRetry spaces the attempts of one delivery: 5 s, then doubling up to 30 min.
var notifyRetry = temporal.RetryPolicy{
	InitialInterval:    5 * time.Second,
	BackoffCoefficient: 2,
	MaximumInterval:    30 * time.Minute,
}

// notifier sends a build's events to the notifications that want them. Each event that any
// notification wants starts a Notify workflow as an abandoned child: it outlives the build,
// retries on its own, and the build waits at most for the server to start it, never for a
// receiver. Events nobody wants start nothing (a local activity reads who wants what).
type notifier struct {
	in build.Input
	// root is the workflow's own context; sends use a disconnected copy, so a canceled
	// build still says so.
	root workflow.Context
	on   bool
	// starts are the child starts in flight, each ready once the server started it.
	starts []workflow.Future
}

// startNotifying is the build's first hook: it sends the started event and goes on without
// waiting for the delivery to start. It runs in the workflow's own coroutine, before anything
// else: a local activity run beside other commands would not replay in the same order.
// Executions recorded before notifications existed send nothing.
func startNotifying(ctx workflow.Context, in build.Input) *notifier {
	n := &notifier{in: in, root: ctx}
	n.on = workflow.GetVersion(ctx, versionNotify, workflow.DefaultVersion, 1) == 1
	if n.on {
		n.send(ctx, build.EventStarted, n.event(build.EventStarted, build.EventStarted, in.Commit, nil, ""))
	}
	return n
}

// finished is the build's last hook: it sends the event of how the build ended and waits
// until the server has started the deliveries (not for them to be delivered), so that none
// is lost with the build's end.
func (n *notifier) finished(commit string, res *build.Result, err error) {
	if !n.on {
		return
	}
	ctx, _ := workflow.NewDisconnectedContext(n.root)
	event, status, msg := buildEvent(res, err)
	if res != nil && res.Commit != "" {
		commit = res.Commit
	}
	n.send(ctx, event, n.event(event, status, commit, res, msg))
	for _, f := range n.starts {
		if err := f.Get(ctx, nil); err != nil {
			workflow.GetLogger(ctx).Warn("notification not started", "error", err)
		}
	}
}

// send starts the delivery of ev to the notifications that want event and adds the start to
// n.starts; a failure to read who wants it is logged, never the build's.
func (n *notifier) send(ctx workflow.Context, event string, ev build.BuildEvent) {
	ctx, _ = workflow.NewDisconnectedContext(ctx)
	var a *activities.Activities
	var targets []string
	lctx := workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
		StartToCloseTimeout: 10 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 3},
	})
	if err := workflow.ExecuteLocalActivity(lctx, a.NotifyTargets, activities.NotifyTargetsInput{
		Namespace: n.in.Namespace, RuleID: n.in.RuleID, Event: event,
	}).Get(ctx, &targets); err != nil {
		workflow.GetLogger(ctx).Warn("reading who wants a build event", "event", event, "error", err)
		return
	}
	if len(targets) == 0 {
		return
	}
	cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
		WorkflowID:               workflow.GetInfo(ctx).WorkflowExecution.ID + "-notify-" + event,
		ParentClosePolicy:        enumspb.PARENT_CLOSE_POLICY_ABANDON,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		WorkflowExecutionTimeout: notifyHorizon + time.Hour,
	})
	f := workflow.ExecuteChildWorkflow(cctx, build.NotifyWorkflowName, NotifyInput{Targets: targets, Event: ev})
	n.starts = append(n.starts, f.GetChildWorkflowExecution())
}

// event is the build event as far as the build knows it; the delivery adds the page link.
func (n *notifier) event(event, status, commit string, res *build.Result, msg string) build.BuildEvent {
	ev := build.BuildEvent{
		Event: event, Status: status, BuildID: workflow.GetInfo(n.root).WorkflowExecution.ID,
		Namespace: n.in.Namespace, Repository: n.in.Repository, RuleID: n.in.RuleID, Ref: n.in.Ref,
		Commit: commit, Trigger: n.in.Trigger, Image: n.in.Image, Tags: []string{}, Error: msg,
		Timestamp: workflow.Now(n.root).UTC(),
	}
	if res != nil {
		ev.Tags, ev.Digest = res.Tags, res.Digest
		if ev.Tags == nil {
			ev.Tags = []string{}
		}
	}
	return ev
}

// buildEvent names how a build ended: the event, the record's status and the error.
func buildEvent(res *build.Result, err error) (event, status, msg string) {
	if err == nil {
		status = build.EventSucceeded
		if res != nil && res.Status != "" {
			status = res.Status
		}
		return build.EventSucceeded, status, ""
	}
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) && appErr.Type() == build.ErrTypeTimedOut {
		return build.EventTimedOut, build.EventTimedOut, appErr.Message()
	}
	var canceled *temporal.CanceledError
	if errors.As(err, &canceled) {
		msg = "build canceled"
		if canceled.HasDetails() {
			var reason string
			if canceled.Details(&reason) == nil && reason != "" {
				msg = reason
			}
		}
		return build.EventCanceled, build.EventCanceled, msg
	}
	return build.EventFailed, build.EventFailed, errorMessage(err)
}

// NotifyInput is the input of the Notify workflow: one build event and the notifications to
// deliver it to.
type NotifyInput struct {
	Targets []string         `json:"targets"`
	Event   build.BuildEvent `json:"event"`
}

// Notify is slipway_notify: it delivers one build event to each target, each on its own
// retries for up to notifyHorizon, and marks in the delivery log those it gave up on. The
// signing secrets stay in the database: only notification ids pass through history.
func Notify(ctx workflow.Context, in NotifyInput) error {
	var a *activities.Activities
	runID := workflow.GetInfo(ctx).WorkflowExecution.RunID
	type pending struct {
		in activities.DeliverInput
		f  workflow.Future
	}
	var all []pending
	for _, id := range in.Targets {
		d := activities.DeliverInput{NotificationID: id, DeliveryID: runID + ":" + id, Event: in.Event}
		retry := notifyRetry
		ao := workflow.ActivityOptions{
			ActivityID:             "deliver-" + id,
			StartToCloseTimeout:    30 * time.Second,
			ScheduleToCloseTimeout: notifyHorizon,
			RetryPolicy:            &retry,
		}
		all = append(all, pending{in: d, f: workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, ao), a.DeliverNotification, d)})
	}
	failed := 0
	for _, p := range all {
		err := p.f.Get(ctx, nil)
		if err == nil {
			continue
		}
		failed++
		ao := opts(30*time.Second, 0, 5)
		gerr := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, ao), a.GiveUpDelivery,
			activities.GiveUpInput{DeliverInput: p.in, Error: errorMessage(err)}).Get(ctx, nil)
		if gerr != nil {
			workflow.GetLogger(ctx).Warn("delivery not marked failed", "notification", p.in.NotificationID, "error", gerr)
		}
	}
	if failed > 0 {
		workflow.GetLogger(ctx).Warn("deliveries given up", "failed", failed, "of", len(all))
	}
	return nil
}
