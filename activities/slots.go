package activities

import (
	"context"
	"errors"
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/slipway-dev/slipway/build"
)

// Build slots: each namespace has a long-running slots workflow (SlotsWorkflowID) that grants
// at most Limits.NamespaceMaxRunning builds of the namespace at once, so one namespace's
// flood of builds queues behind itself and leaves the workers' sessions to the others. The
// limit is the worker's configuration, never a workflow input: anyone who can start a
// workflow could name any limit.

// SlotsWorkflowName is the workflow type of a namespace's slots workflow.
const SlotsWorkflowName = "slipway_build_slots"

// Signals between builds and their namespace's slots workflow.
const (
	// SignalSlotAcquire asks for a slot (a SlotRequest); sent with SignalWithStart.
	SignalSlotAcquire = "slot-acquire"
	// SignalSlotRelease gives a slot back, or leaves the queue (a SlotHolder).
	SignalSlotRelease = "slot-release"
	// SignalSlotGranted tells a waiting build it holds a slot; its argument is the id of the
	// slots workflow that grants it (nothing, from a slots workflow older than that).
	SignalSlotGranted = "slot-granted"
	// SignalSlotQueued tells a build it waits, and why (a SlotQueued).
	SignalSlotQueued = "slot-queued"
	// SignalSlotSuperseded tells a build of a latest_only rule that a newer build of its ref
	// (a SlotSuperseded) asked for the ref's slot; a cancellation request follows it.
	SignalSlotSuperseded = "slot-superseded"
)

// SlotsWorkflowID is the id of the slots workflow of namespace ns on task queue queue. The
// limit holds per task queue: the slots workflow runs on the queue of the builds it serves, so
// a namespace built by two worker fleets (two queues) never waits on a fleet that is away.
func SlotsWorkflowID(queue, ns string) string { return "slipway-slots-" + queue + "-" + ns }

// RuleSlotsWorkflowID is the id of the slots workflow that runs the builds of a serial rule one
// at a time.
func RuleSlotsWorkflowID(queue, rule string) string {
	return "slipway-rule-slots-" + queue + "-" + rule
}

// RefSlotsWorkflowID is the id of the slots workflow of one ref of a latest_only rule: a newer
// build of the ref makes the older ones cancel themselves.
func RefSlotsWorkflowID(queue, rule string, ref build.Ref) string {
	return "slipway-ref-slots-" + queue + "-" + rule + "-" + ref.Type + "-" + ref.Name
}

// Limits are the worker's limits on builds, read from its configuration.
type Limits struct {
	// MaxTimeout is the longest timeout a build may ask for.
	MaxTimeout time.Duration `json:"max_timeout"`
	// NamespaceMaxRunning is how many builds of one namespace run at once.
	NamespaceMaxRunning int `json:"namespace_max_running"`
}

// SlotHolder names one build execution.
type SlotHolder struct {
	WorkflowID string `json:"workflow_id"`
	RunID      string `json:"run_id"`
}

// SlotRequest is a build asking for a slot, with the limit of the worker that sent it.
type SlotRequest struct {
	SlotHolder
	Limit int `json:"limit"`
}

// SlotQueued tells a waiting build where it stands.
type SlotQueued struct {
	Namespace string `json:"namespace"`
	Running   int    `json:"running"`
	Limit     int    `json:"limit"`
	Position  int    `json:"position"`
	// Policy is the rule's run policy when the slots are a rule's (serial) or a ref's
	// (latest_only); Holder is then the build that runs.
	Policy string `json:"policy,omitempty"`
	Holder string `json:"holder,omitempty"`
	// Slots is the id of the slots workflow that queued the build.
	Slots string `json:"slots,omitempty"`
}

// Reason is the queued reason a build record shows. The place in the queue is left out: it
// is the place on arrival, and the build is not told when it moves up.
func (q SlotQueued) Reason() string {
	switch q.Policy {
	case build.RunSerial:
		return fmt.Sprintf("waiting for build %s to end: the rule's run_policy is serial", q.Holder)
	case build.RunLatestOnly:
		return fmt.Sprintf("waiting for build %s, which this newer build supersedes, to stop", q.Holder)
	}
	return fmt.Sprintf("waiting for a build slot: namespace %s runs %d of %d builds", q.Namespace, q.Running, q.Limit)
}

// SlotSuperseded names the newer build that supersedes a build of a latest_only rule.
type SlotSuperseded struct {
	By string `json:"by"`
}

// Reason is what the superseded build's record says.
func (s SlotSuperseded) Reason() string { return "superseded by build " + s.By }

// SlotsInput is the state a slots workflow starts with, and carries over continue-as-new.
type SlotsInput struct {
	Namespace string `json:"namespace"`
	// Policy is empty for a namespace's slots, or the run policy of a rule's slots (serial,
	// latest_only), which hold one build.
	Policy  string        `json:"policy,omitempty"`
	Limit   int           `json:"limit"`
	Holders []SlotHolder  `json:"holders,omitempty"`
	Waiting []SlotRequest `json:"waiting,omitempty"`
}

// RequestSlotInput asks for a slot of Namespace for Holder.
type RequestSlotInput struct {
	Namespace string     `json:"namespace"`
	Holder    SlotHolder `json:"holder"`
	// Policy and RuleID, when set, ask for the slot of the rule (serial) or of the rule's Ref
	// (latest_only) instead of the namespace's.
	Policy string     `json:"policy,omitempty"`
	RuleID string     `json:"rule_id,omitempty"`
	Ref    *build.Ref `json:"ref,omitempty"`
}

// SlotsID is the id of the slots workflow the request goes to on task queue queue.
func (in RequestSlotInput) SlotsID(queue string) string {
	switch in.Policy {
	case build.RunSerial:
		return RuleSlotsWorkflowID(queue, in.RuleID)
	case build.RunLatestOnly:
		var ref build.Ref
		if in.Ref != nil {
			ref = *in.Ref
		}
		return RefSlotsWorkflowID(queue, in.RuleID, ref)
	}
	return SlotsWorkflowID(queue, in.Namespace)
}

// BuildLimits answers the worker's limits; the build workflow runs it as a local activity so
// that the limits come from the worker, not from the build's input.
func (a *Activities) BuildLimits(context.Context) (Limits, error) {
	return a.Limits, nil
}

// RequestSlot sends the build's slot request to its namespace's slots workflow, starting that
// workflow when it is not running, with this worker's limit.
func (a *Activities) RequestSlot(ctx context.Context, in RequestSlotInput) error {
	if a.Temporal == nil {
		return errors.New("worker has no temporal client for build slots")
	}
	limit, whose := max(a.Limits.NamespaceMaxRunning, 1), "namespace "+in.Namespace
	if in.Policy != "" {
		limit, whose = 1, "rule "+in.RuleID
	}
	_, err := a.Temporal.SignalWithStartWorkflow(ctx, in.SlotsID(a.TaskQueue), SignalSlotAcquire,
		SlotRequest{SlotHolder: in.Holder, Limit: limit},
		client.StartWorkflowOptions{
			TaskQueue:             a.TaskQueue,
			WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		},
		SlotsWorkflowName, SlotsInput{Namespace: in.Namespace, Policy: in.Policy, Limit: limit})
	if err != nil {
		return fmt.Errorf("asking %s for a build slot: %w", whose, err)
	}
	return nil
}

// EndedBuilds answers which of holders no longer run, so a build that was terminated (and so
// never gave its slot back) frees it.
func (a *Activities) EndedBuilds(ctx context.Context, holders []SlotHolder) ([]SlotHolder, error) {
	if a.Temporal == nil {
		return nil, errors.New("worker has no temporal client for build slots")
	}
	var ended []SlotHolder
	for _, h := range holders {
		desc, err := a.Temporal.DescribeWorkflow(ctx, h.WorkflowID, h.RunID)
		var nf *serviceerror.NotFound
		switch {
		case errors.As(err, &nf):
			ended = append(ended, h)
		case err != nil:
			return nil, fmt.Errorf("describing build %s: %w", h.WorkflowID, err)
		case desc.Status != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING:
			ended = append(ended, h)
		}
	}
	return ended, nil
}
