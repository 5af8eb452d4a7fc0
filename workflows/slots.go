package workflows

import (
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/slipway-dev/slipway/activities"
	"github.com/slipway-dev/slipway/build"
)

// slotsCheckEvery is how often a namespace's slots workflow looks for holders that ended
// without giving their slot back (terminated builds).
const slotsCheckEvery = 30 * time.Second

// slotRequestAgain is how often a waiting build repeats its request for a slot.
const slotRequestAgain = 5 * time.Minute

// slotsIdle is how long a slots workflow with no holder and no waiter lives on.
const slotsIdle = 5 * time.Minute

// slotsMaxEvents bounds the history of one run of a slots workflow before it continues as new.
const slotsMaxEvents = 2000

// BuildSlots is a namespace's slots workflow: a semaphore that lets at most the worker's
// configured number of the namespace's builds run at once, and queues the others in order
// of arrival (the temporalio samples' mutex, with a count). Builds ask with SignalWithStart
// (activities.RequestSlot), wait for SignalSlotGranted and give the slot back with
// SignalSlotRelease when they end, however they end; a build terminated before it could is
// found by a periodic check. It continues as new to keep its history short and ends when it
// has been idle a while.
func BuildSlots(ctx workflow.Context, in activities.SlotsInput) error {
	s := &slots{SlotsInput: in, lost: workflow.NewChannel(ctx)}
	if s.Limit < 1 {
		s.Limit = 1
	}
	acquire := workflow.GetSignalChannel(ctx, activities.SignalSlotAcquire)
	release := workflow.GetSignalChannel(ctx, activities.SignalSlotRelease)
	idleSince := workflow.Now(ctx)
	s.grant(ctx)
	for {
		tick := workflow.NewTimer(ctx, slotsCheckEvery)
		ticked := false
		sel := workflow.NewSelector(ctx)
		sel.AddReceive(acquire, func(c workflow.ReceiveChannel, _ bool) {
			var r activities.SlotRequest
			c.Receive(ctx, &r)
			s.add(ctx, r)
		})
		sel.AddReceive(release, func(c workflow.ReceiveChannel, _ bool) {
			var h activities.SlotHolder
			c.Receive(ctx, &h)
			s.remove(h)
		})
		sel.AddReceive(s.lost, func(c workflow.ReceiveChannel, _ bool) {
			var h activities.SlotHolder
			c.Receive(ctx, &h)
			s.remove(h)
		})
		sel.AddFuture(tick, func(workflow.Future) { ticked = true })
		for !ticked {
			sel.Select(ctx)
			s.grant(ctx)
			if len(s.Holders)+len(s.Waiting) > 0 {
				idleSince = workflow.Now(ctx)
			}
		}
		if len(s.Holders) > 0 {
			s.dropEnded(ctx)
			s.grant(ctx)
		}
		if len(s.Holders)+len(s.Waiting) == 0 && workflow.Now(ctx).Sub(idleSince) >= slotsIdle {
			if !s.drain(ctx, acquire, release) {
				return nil
			}
			s.grant(ctx)
			idleSince = workflow.Now(ctx)
		}
		info := workflow.GetInfo(ctx)
		if info.GetContinueAsNewSuggested() || info.GetCurrentHistoryLength() > slotsMaxEvents {
			s.drain(ctx, acquire, release)
			return workflow.NewContinueAsNewError(ctx, BuildSlots, s.SlotsInput)
		}
	}
}

type slots struct {
	activities.SlotsInput
	// lost receives holders whose grant could not be delivered: they ended while waiting.
	lost workflow.Channel
}

// drain takes every signal already received, so none is lost when the run ends; it reports
// whether there were any.
func (s *slots) drain(ctx workflow.Context, acquire, release workflow.ReceiveChannel) bool {
	got := false
	for {
		var r activities.SlotRequest
		if acquire.ReceiveAsync(&r) {
			s.add(ctx, r)
			got = true
			continue
		}
		var h activities.SlotHolder
		if release.ReceiveAsync(&h) {
			s.remove(h)
			got = true
			continue
		}
		return got
	}
}

func (s *slots) add(ctx workflow.Context, r activities.SlotRequest) {
	if r.Limit > 0 {
		s.Limit = r.Limit // the newest worker's configuration wins
	}
	for _, h := range s.Holders {
		if h == r.SlotHolder { // a repeated request: the grant may have been lost
			s.signal(ctx, h, activities.SignalSlotGranted, s.id(ctx))
			return
		}
	}
	for _, w := range s.Waiting {
		if w.SlotHolder == r.SlotHolder {
			return
		}
	}
	if s.Policy == build.RunLatestOnly {
		// The newcomer is the newest build of the ref: the older ones stop, the holder once
		// it has cleaned up (its release frees the slot), the waiters at once.
		for _, h := range s.Holders {
			s.supersede(ctx, h, r.WorkflowID)
		}
		for _, w := range s.Waiting {
			s.supersede(ctx, w.SlotHolder, r.WorkflowID)
		}
		s.Waiting = nil
	}
	s.Waiting = append(s.Waiting, r)
	if len(s.Holders) >= s.Limit {
		q := activities.SlotQueued{
			Namespace: s.Namespace, Running: len(s.Holders), Limit: s.Limit, Position: len(s.Waiting), Policy: s.Policy,
			Slots: s.id(ctx),
		}
		if len(s.Holders) > 0 {
			q.Holder = s.Holders[0].WorkflowID
		}
		s.signal(ctx, r.SlotHolder, activities.SignalSlotQueued, q)
	}
}

// id is the slots workflow's own id, which its grants carry so that a build waiting for two
// slots (its rule's, then its namespace's) tells them apart.
func (s *slots) id(ctx workflow.Context) string { return workflow.GetInfo(ctx).WorkflowExecution.ID }

// supersede tells build h that build by supersedes it, then asks h to cancel: the signal is
// delivered first, so h knows why it was canceled.
func (s *slots) supersede(ctx workflow.Context, h activities.SlotHolder, by string) {
	f := workflow.SignalExternalWorkflow(ctx, h.WorkflowID, h.RunID, activities.SignalSlotSuperseded, activities.SlotSuperseded{By: by})
	workflow.Go(ctx, func(gctx workflow.Context) {
		_ = f.Get(gctx, nil)
		// A build that has ended already has nothing to cancel.
		_ = workflow.RequestCancelExternalWorkflow(gctx, h.WorkflowID, h.RunID).Get(gctx, nil)
	})
}

func (s *slots) remove(h activities.SlotHolder) {
	for i, x := range s.Holders {
		if x == h {
			s.Holders = append(s.Holders[:i:i], s.Holders[i+1:]...)
			return
		}
	}
	for i, x := range s.Waiting {
		if x.SlotHolder == h {
			s.Waiting = append(s.Waiting[:i:i], s.Waiting[i+1:]...)
			return
		}
	}
}

// grant hands free slots to the waiters, first come first served.
func (s *slots) grant(ctx workflow.Context) {
	for len(s.Holders) < s.Limit && len(s.Waiting) > 0 {
		h := s.Waiting[0].SlotHolder
		s.Waiting = s.Waiting[1:]
		s.Holders = append(s.Holders, h)
		s.signal(ctx, h, activities.SignalSlotGranted, s.id(ctx))
	}
}

// signal sends a build a signal without waiting; a build that has ended gives its slot back.
func (s *slots) signal(ctx workflow.Context, h activities.SlotHolder, name string, arg any) {
	f := workflow.SignalExternalWorkflow(ctx, h.WorkflowID, h.RunID, name, arg)
	workflow.Go(ctx, func(gctx workflow.Context) {
		if err := f.Get(gctx, nil); err != nil {
			s.lost.Send(gctx, h)
		}
	})
}

// dropEnded frees the slots of holders that no longer run.
func (s *slots) dropEnded(ctx workflow.Context) {
	var a *activities.Activities
	actx := workflow.WithActivityOptions(ctx, opts(time.Minute, 0, 3))
	var ended []activities.SlotHolder
	if err := workflow.ExecuteActivity(actx, a.EndedBuilds, s.Holders).Get(ctx, &ended); err != nil {
		workflow.GetLogger(ctx).Warn("checking slot holders", "error", err)
		return
	}
	for _, h := range ended {
		s.remove(h)
	}
}

// acquireSlot waits for one of the namespace's build slots, showing the wait as the queued
// step and in the memo. The returned release gives the slot back (or leaves the queue), from
// the coroutine of the context it is given; it is to be called however the build ends.
func acquireSlot(ctx workflow.Context, in build.Input, st *build.Status) (release func(workflow.Context), err error) {
	return acquire(ctx, activities.RequestSlotInput{Namespace: in.Namespace}, st)
}

// acquireRuleSlot waits for the slot of the build's rule (run policy serial) or of the rule's
// ref (latest_only), like acquireSlot.
func acquireRuleSlot(ctx workflow.Context, in build.Input, st *build.Status) (release func(workflow.Context), err error) {
	ref := in.Ref
	return acquire(ctx, activities.RequestSlotInput{Namespace: in.Namespace, Policy: in.RunPolicy, RuleID: in.RuleID, Ref: &ref}, st)
}

// acquire waits for a slot of the slots workflow req names. Holder is filled in here.
func acquire(ctx workflow.Context, req activities.RequestSlotInput, st *build.Status) (release func(workflow.Context), err error) {
	info := workflow.GetInfo(ctx)
	me := activities.SlotHolder{WorkflowID: info.WorkflowExecution.ID, RunID: info.WorkflowExecution.RunID}
	req.Holder = me
	slotsID := req.SlotsID(info.TaskQueueName)
	// A grant or a queued notice from another slots workflow than the one asked (a repeated
	// grant of the rule's slot arriving late) is not this slot's.
	mine := func(from string) bool { return from == "" || from == slotsID }
	granted := workflow.GetSignalChannel(ctx, activities.SignalSlotGranted)
	queued := workflow.GetSignalChannel(ctx, activities.SignalSlotQueued)
	release = func(ctx workflow.Context) {
		dctx, _ := workflow.NewDisconnectedContext(ctx)
		err := workflow.SignalExternalWorkflow(dctx, slotsID, "",
			activities.SignalSlotRelease, me).Get(dctx, nil)
		if err != nil {
			workflow.GetLogger(ctx).Warn("giving the build slot back", "error", err)
		}
	}
	var a *activities.Activities
	lctx := workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
		StartToCloseTimeout: 10 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, MaximumInterval: 10 * time.Second},
	})
	request := func() error {
		return workflow.ExecuteLocalActivity(lctx, a.RequestSlot, req).Get(ctx, nil)
	}
	if err := request(); err != nil {
		return release, err
	}
	st.Step = "queued"
	for {
		got, ask := false, false
		// Asking again now and then is harmless (the slots workflow knows its waiters) and
		// mends a lost grant or a slots workflow an operator terminated.
		again, stopAgain := workflow.WithCancel(ctx)
		sel := workflow.NewSelector(ctx)
		sel.AddFuture(workflow.NewTimer(again, slotRequestAgain), func(f workflow.Future) { ask = f.Get(ctx, nil) == nil })
		sel.AddReceive(granted, func(c workflow.ReceiveChannel, _ bool) {
			var from string
			c.Receive(ctx, &from)
			got = mine(from)
		})
		sel.AddReceive(queued, func(c workflow.ReceiveChannel, _ bool) {
			var q activities.SlotQueued
			c.Receive(ctx, &q)
			if !mine(q.Slots) {
				return
			}
			st.QueuedReason = q.Reason()
			if err := workflow.UpsertMemo(ctx, map[string]any{build.MemoQueued: st.QueuedReason}); err != nil {
				workflow.GetLogger(ctx).Warn("recording the queued reason", "error", err)
			}
		})
		sel.AddReceive(ctx.Done(), func(workflow.ReceiveChannel, bool) {})
		sel.Select(ctx)
		stopAgain()
		if ctx.Err() != nil {
			return release, ctx.Err()
		}
		if got {
			break
		}
		if ask {
			if err := request(); err != nil {
				return release, err
			}
		}
	}
	if st.QueuedReason != "" {
		st.QueuedReason = ""
		if err := workflow.UpsertMemo(ctx, map[string]any{build.MemoQueued: ""}); err != nil {
			return release, fmt.Errorf("clearing the queued reason: %w", err)
		}
	}
	return release, nil
}
