package workflows

import "go.temporal.io/sdk/workflow"

// slotReleases gives a build's slots back. Without versionEarlyRelease each is given back as
// the build ends, the last taken first, each signal waited for before the next. With it, a
// build whose steps succeeded starts giving them back as soon as its push is done, so the
// signals go out in the workflow task that completes the session, not in a workflow task of
// their own after it.
type slotReleases struct {
	// fns give back the slots in the order they were taken; each signals and waits.
	fns     []func(workflow.Context)
	started bool
	wg      workflow.WaitGroup
}

// add records a slot's release, which must be called however the wait for the slot ended.
func (r *slotReleases) add(release func(workflow.Context)) { r.fns = append(r.fns, release) }

// early starts giving every slot back, all at once and the last taken first, without waiting
// for the signals.
func (r *slotReleases) early(ctx workflow.Context) {
	if r.started || len(r.fns) == 0 {
		return
	}
	r.started = true
	r.wg = workflow.NewWaitGroup(ctx)
	for i := len(r.fns) - 1; i >= 0; i-- {
		release := r.fns[i]
		r.wg.Add(1)
		workflow.Go(ctx, func(gctx workflow.Context) {
			defer r.wg.Done()
			release(gctx)
		})
	}
}

// final gives back what early did not, the last slot taken first, and waits for every signal.
func (r *slotReleases) final(ctx workflow.Context) {
	if r.started {
		dctx, _ := workflow.NewDisconnectedContext(ctx)
		r.wg.Wait(dctx)
		return
	}
	for i := len(r.fns) - 1; i >= 0; i-- {
		r.fns[i](ctx)
	}
}
