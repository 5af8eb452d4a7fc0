// Package workflows holds workflow_docker_builder, the durable build of one image from one
// Git commit, and the build-slots workflow that queues a namespace's builds. Only
// deterministic code lives here; everything that touches the world is an activity, and the
// input, result and status types are the build package's.
package workflows

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/slipway-dev/slipway/activities"
	"github.com/slipway-dev/slipway/build"
)

// maxHosts bounds how many hosts one build starts over on after losing one.
const maxHosts = 3

// sessionHeartbeat is how soon a dead worker's session is declared failed.
const sessionHeartbeat = 10 * time.Second

// deadlineMargin is how long past the build's deadline its session and build step may run:
// enough for the timer's cancellation to reach them and for the workspace's cleanup.
const deadlineMargin = 2 * time.Minute

// stepHeartbeat is the heartbeat timeout of the long steps, which heartbeat every few seconds
// (at most every 2 s reach the server). It also bounds how long a build waits for a dead host
// to acknowledge the cancellation of its step before starting over elsewhere.
const stepHeartbeat = 15 * time.Second

// buildAttempts bounds the attempts of the build step. Three (about 3 s) gave up on a
// buildkitd that a supervisor restarts; eight wait out about 45 s of it being away.
const buildAttempts = 8

// DockerBuilder is workflow_docker_builder: clone, resolve the Dockerfile, render the tag,
// build and push, all on one host inside a session since the steps share a workspace. When the
// host dies the build starts over on another one; the workspace is removed however it ends.
func DockerBuilder(ctx workflow.Context, in build.Input) (*build.Result, error) {
	st := &build.Status{Step: "queued"}
	sts := &statuses{in: in, root: ctx}
	notes := startNotifying(ctx, in)
	res, err := dockerBuilder(ctx, in, st, sts)
	sts.finished(st.Commit, res, err)
	// The outcome goes into the memo too, so build records listed from visibility show tags,
	// digest and error without reading each history.
	memo := map[string]any{}
	if err != nil {
		memo[build.MemoError] = errorMessage(err)
		// A build of a latest_only rule that a newer build of its ref canceled says which.
		var sup activities.SlotSuperseded
		var canceled *temporal.CanceledError
		if errors.As(err, &canceled) && workflow.GetSignalChannel(ctx, activities.SignalSlotSuperseded).ReceiveAsync(&sup) {
			memo[build.MemoError] = sup.Reason()
			memo[build.MemoReason] = sup.Reason()
			err = temporal.NewCanceledError(sup.Reason())
		}
		var appErr *temporal.ApplicationError
		if errors.As(err, &appErr) {
			memo[build.MemoErrorType] = appErr.Type()
		}
	} else {
		memo[build.MemoTags] = res.Tags
		memo[build.MemoDigest] = res.Digest
		memo[build.MemoCommit] = res.Commit
		if len(res.HeldTags) > 0 {
			memo[build.MemoHeldTags] = res.HeldTags
		}
		if res.Status != "" {
			memo[build.MemoOutcome] = res.Status
			memo[build.MemoReason] = res.Reason
		}
	}
	if merr := workflow.UpsertMemo(ctx, memo); merr != nil {
		workflow.GetLogger(ctx).Warn("recording the outcome in the memo", "error", merr)
	}
	notes.finished(st.Commit, res, err)
	return res, err
}

func dockerBuilder(ctx workflow.Context, in build.Input, st *build.Status, sts *statuses) (*build.Result, error) {
	timeout, err := checkInput(in)
	if err != nil {
		return nil, err
	}
	if err := workflow.SetQueryHandler(ctx, build.StatusQuery, func() (build.Status, error) {
		out := *st
		out.Steps = append([]build.StepStatus(nil), st.Steps...)
		return out, nil
	}); err != nil {
		return nil, fmt.Errorf("registering status query: %w", err)
	}
	// The search attributes and the image memo are set by the gateway at start too; they are
	// set here for builds started with the CLI.
	if err := workflow.UpsertTypedSearchAttributes(ctx, build.SearchAttributes(in)...); err != nil {
		return nil, fmt.Errorf("setting search attributes: %w", err)
	}
	if err := workflow.UpsertMemo(ctx, map[string]any{build.MemoImage: in.Image}); err != nil {
		return nil, fmt.Errorf("setting image memo: %w", err)
	}

	// The operator's limits come from the worker's configuration, never from the input, which
	// anyone able to start a workflow writes. Executions started before them replay without.
	limited := workflow.GetVersion(ctx, versionTenantLimits, workflow.DefaultVersion, 1) == 1
	if limited {
		var a *activities.Activities
		var limits activities.Limits
		lctx := workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{StartToCloseTimeout: 10 * time.Second})
		if err := workflow.ExecuteLocalActivity(lctx, a.BuildLimits).Get(ctx, &limits); err != nil {
			return nil, temporal.NewNonRetryableApplicationError(
				fmt.Sprintf("reading the worker's build limits: %v", err), build.ErrTypeNoLimits, nil)
		}
		if limits.MaxTimeout > 0 && timeout > limits.MaxTimeout {
			return nil, temporal.NewNonRetryableApplicationError(
				fmt.Sprintf("timeout %s is longer than this service allows (%s)", timeout, limits.MaxTimeout), build.ErrTypeInvalidInput, nil)
		}
	}

	// The build's own deadline, so that a build started without an execution timeout (from the
	// CLI, say) still ends, and ends cleanly: work stops and the workspace is removed. Waiting
	// for a build slot counts towards it.
	deadline := workflow.Now(ctx).Add(timeout)
	runCtx, cancel := workflow.WithCancel(ctx)
	defer cancel()
	timedOut := false
	timerCtx, cancelTimer := workflow.WithCancel(ctx)
	defer cancelTimer()
	workflow.Go(ctx, func(gctx workflow.Context) {
		if err := workflow.NewTimer(timerCtx, timeout).Get(gctx, nil); err == nil {
			timedOut = true
			cancel()
		}
	})

	slots := &slotReleases{}
	defer slots.final(ctx)
	if policy := in.RunPolicy; policy == build.RunSerial || policy == build.RunLatestOnly {
		if in.RuleID != "" && workflow.GetVersion(ctx, versionRunPolicy, workflow.DefaultVersion, 1) == 1 {
			// The rule's builds wait for each other (serial) or the ref's newest build
			// cancels the older ones (latest_only), before the namespace's slot is asked.
			release, err := acquireRuleSlot(runCtx, in, st)
			slots.add(release)
			if err := slotError(ctx, err, timedOut, timeout); err != nil {
				return nil, err
			}
		}
	}
	if limited {
		// One namespace's builds wait for each other, not for other namespaces' builds.
		release, err := acquireSlot(runCtx, in, st)
		slots.add(release)
		if err := slotError(ctx, err, timedOut, timeout); err != nil {
			return nil, err
		}
	}

	b := &buildRun{in: in, st: st, sts: sts, deadline: deadline, slots: slots}
	for host := 1; ; host++ {
		st.HostAttempts = host
		res, err := b.onOneHost(runCtx, host)
		switch {
		case err == nil:
			return res, nil
		case timedOut:
			return nil, temporal.NewNonRetryableApplicationError(
				fmt.Sprintf("build exceeded its timeout of %s", timeout), build.ErrTypeTimedOut, nil)
		case ctx.Err() != nil:
			return nil, temporal.NewCanceledError("build canceled")
		case superseded(ctx, in, err):
			st.Step = build.OutcomeSuperseded
			return &build.Result{Image: in.Image, Tags: []string{}, Commit: in.Commit,
				Status: build.OutcomeSuperseded, Reason: errorMessage(err)}, nil
		case !errors.Is(err, errHostLost):
			return nil, err
		case host == maxHosts:
			return nil, temporal.NewNonRetryableApplicationError(
				fmt.Sprintf("lost %d hosts in a row; last: %v", host, err), build.ErrTypeHostLost, nil)
		}
		workflow.GetLogger(ctx).Warn("build host lost, starting over on another", "host_attempt", host, "error", err)
	}
}

// slotError is the build's error after waiting for a slot ended with err: nil once granted.
func slotError(ctx workflow.Context, err error, timedOut bool, timeout time.Duration) error {
	switch {
	case err == nil:
		return nil
	case timedOut:
		return temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("build exceeded its timeout of %s waiting for a build slot", timeout), build.ErrTypeTimedOut, nil)
	case ctx.Err() != nil:
		return temporal.NewCanceledError("build canceled")
	}
	return err
}

// superseded reports whether err says that a push build's commit is no longer on its branch:
// the branch was force-pushed after the event, and the build of its new head owns it. Builds
// started by hand with a commit still fail, since a mistyped commit is no force push.
func superseded(ctx workflow.Context, in build.Input, err error) bool {
	var appErr *temporal.ApplicationError
	if in.Trigger != build.TriggerPush || in.Ref.Type != build.RefBranch || in.Commit == "" ||
		!errors.As(err, &appErr) || appErr.Type() != build.ErrTypeCommitNotOnRef {
		return false
	}
	// Executions that failed this way before the outcome existed replay as failed.
	return workflow.GetVersion(ctx, versionSuperseded, workflow.DefaultVersion, 1) == 1
}

// errHostLost marks a failure caused by the session's worker going away.
var errHostLost = errors.New("build host lost")

type buildRun struct {
	in       build.Input
	st       *build.Status
	sts      *statuses
	deadline time.Time
	// removed is set when the push step removed the session's workspace itself.
	removed bool
	// slots are the build slots it holds, given back early once its steps succeeded.
	slots *slotReleases
}

// onOneHost runs every step in one session and removes the workspace before leaving it.
func (b *buildRun) onOneHost(ctx workflow.Context, host int) (*build.Result, error) {
	remaining := b.deadline.Sub(workflow.Now(ctx))
	// The build's own timer ends it at the deadline. The session and the build step time out
	// a margin later, never first: a session that timed out reads as a lost host, and its
	// workspace would not be removed.
	sessCtx, err := workflow.CreateSession(ctx, &workflow.SessionOptions{
		CreationTimeout:  remaining,
		ExecutionTimeout: remaining + deadlineMargin,
		HeartbeatTimeout: sessionHeartbeat,
	})
	if err != nil {
		return nil, fmt.Errorf("waiting for a build host: %w", err)
	}
	defer workflow.CompleteSession(sessCtx)
	ws := workflow.GetSessionInfo(sessCtx).SessionID
	b.removed = false
	defer b.cleanup(sessCtx, ws)

	res, err := b.steps(sessCtx, ws, host, remaining+deadlineMargin)
	if err == nil && len(b.slots.fns) > 0 && workflow.GetVersion(ctx, versionEarlyRelease, workflow.DefaultVersion, 1) == 1 {
		// Nothing is left but the session's end: the slots go back with it (versionEarlyRelease).
		b.slots.early(ctx)
	}
	var appErr *temporal.ApplicationError
	if err != nil && (workflow.GetSessionInfo(sessCtx).SessionState == workflow.SessionStateFailed ||
		errors.As(err, &appErr) && appErr.Type() == build.ErrTypeWorkspaceLost) {
		return nil, fmt.Errorf("%w: %v", errHostLost, err)
	}
	return res, err
}

// steps runs the five steps; limit bounds the build step, which takes what the build has left.
func (b *buildRun) steps(ctx workflow.Context, ws string, host int, limit time.Duration) (*build.Result, error) {
	in := b.in
	var a *activities.Activities // names the activities; the worker holds the real one
	var clone activities.CloneResult
	cloneIn := activities.CloneInput{
		Workspace: ws, Namespace: in.Namespace, Source: in.Source, Ref: in.Ref, Commit: in.Commit,
	}
	// A push whose payload could not list its files carries the rule's path filter: the clone
	// reads the files from git, and the build ends as skipped when none is wanted.
	filtered := in.Paths != nil && workflow.GetVersion(ctx, versionSkipped, workflow.DefaultVersion, 1) == 1
	if filtered {
		cloneIn.Paths, cloneIn.Before = in.Paths, in.Before
	}
	// The clone resolves the Dockerfile too, and the tags are rendered here: no activity of
	// their own (versionFoldedSteps).
	folded := workflow.GetVersion(ctx, versionFoldedSteps, workflow.DefaultVersion, 1) == 1
	if folded {
		cloneIn.Resolve = &activities.ResolveInput{Workspace: ws, DockerfilePath: in.DockerfilePath, ContextPath: in.ContextPath}
	}
	if err := b.step(ctx, build.StepClone, host, opts(15*time.Minute, stepHeartbeat, 3), a.Clone, cloneIn, &clone); err != nil {
		return nil, err
	}
	if filtered && clone.Skip != "" {
		b.st.Step = build.OutcomeSkipped
		b.st.Commit = clone.Commit
		return &build.Result{Image: in.Image, Tags: []string{}, Commit: clone.Commit,
			Status: build.OutcomeSkipped, Reason: clone.Skip, LogURL: clone.LogURL}, nil
	}
	b.st.LogURL = clone.LogURL
	if b.st.Commit != clone.Commit { // a build that starts over on another host posts pending once
		b.sts.started(clone.Commit)
	}
	b.st.Commit = clone.Commit
	if err := workflow.UpsertMemo(ctx, map[string]any{build.MemoLogURL: clone.LogURL}); err != nil {
		return nil, fmt.Errorf("setting log_url memo: %w", err)
	}
	if in.Commit == "" {
		if err := workflow.UpsertTypedSearchAttributes(ctx, build.AttrCommit.ValueSet(clone.Commit)); err != nil {
			return nil, fmt.Errorf("setting commit search attribute: %w", err)
		}
	}

	var paths activities.ResolveResult
	var tags build.RenderTagResult
	var err error
	if folded {
		paths, tags, err = b.resolveAndTagFromClone(ctx, ws, host, clone)
	} else {
		paths, tags, err = b.resolveAndTag(ctx, ws, host, clone)
	}
	if err != nil {
		return nil, err
	}

	// Builds scheduled before tags were kept in order replay without the revision and the
	// ancestry check.
	ordered := workflow.GetVersion(ctx, versionTagOrder, workflow.DefaultVersion, 1) == 1
	revision, mutable := "", []string(nil)
	if ordered {
		revision, mutable = clone.Commit, tags.Mutable
	}
	// Only builds whose input names secrets ask; the names, never the values, go to the step.
	secretsNS, secretNames := "", []string(nil)
	if len(in.Secrets) > 0 && workflow.GetVersion(ctx, versionBuildSecrets, workflow.DefaultVersion, 1) == 1 {
		secretsNS, secretNames = in.Namespace, in.Secrets
	}
	var built activities.BuildResult
	// A broken build fails at once (non-retryable); the attempts are for a buildkitd that went
	// away, and outlast a restart of it: 1+2+4+8+10+10+10 s between them.
	if err := b.step(ctx, build.StepBuild, host, opts(limit, stepHeartbeat, buildAttempts), a.Build, activities.BuildInput{
		Workspace: ws, DockerfilePath: paths.DockerfilePath, ContextPath: paths.ContextPath, BuildArgs: in.BuildArgs,
		CacheRef: in.CacheRef(), Image: in.Image, CacheMountNS: "slipway/" + in.Namespace + "/" + in.Repository,
		Revision:  revision,
		Namespace: secretsNS, Secrets: secretNames, Platforms: in.Platforms,
	}, &built); err != nil {
		return nil, err
	}

	var pushed activities.PushResult
	pushOpts := opts(15*time.Minute, stepHeartbeat, 10)
	pushOpts.RetryPolicy.MaximumInterval = 30 * time.Second
	if err := b.step(ctx, build.StepPush, host, pushOpts, a.Push, activities.PushInput{
		Workspace: ws, Image: in.Image, Tags: tags.Tags, RemoveWorkspace: true,
		Mutable: mutable, Commit: revision, Namespace: in.Namespace, Source: in.Source, Ref: in.Ref,
	}, &pushed); err != nil {
		return nil, err
	}
	b.removed = pushed.WorkspaceRemoved
	b.st.Step = "done"
	written := tags.Tags
	if ordered && (len(pushed.Tags) > 0 || len(pushed.Held) > 0) {
		written = pushed.Tags
	}
	return &build.Result{
		Image: in.Image, Tags: written, Digest: pushed.Digest, Commit: clone.Commit,
		DockerfilePath: paths.DockerfilePath, LogURL: clone.LogURL, HeldTags: pushed.Held,
	}, nil
}

// resolveAndTag runs the resolve and tag steps as activities of their own, as executions
// recorded before versionFoldedSteps did.
func (b *buildRun) resolveAndTag(ctx workflow.Context, ws string, host int, clone activities.CloneResult) (activities.ResolveResult, build.RenderTagResult, error) {
	in := b.in
	var a *activities.Activities
	var paths activities.ResolveResult
	var tags build.RenderTagResult
	// Resolving the Dockerfile and rendering the tag need only the clone: both are scheduled in
	// the same workflow task, saving a round trip to the server (versionResolveAndTagTogether
	// keeps the old order, resolve before tag, for executions recorded with it).
	resolve := b.startStep(ctx, build.StepResolve, host, opts(time.Minute, 0, 3), a.ResolveDockerfile, activities.ResolveInput{
		Workspace: ws, DockerfilePath: in.DockerfilePath, ContextPath: in.ContextPath,
	})
	together := workflow.GetVersion(ctx, versionResolveAndTagTogether, workflow.DefaultVersion, 1) == 1
	if !together {
		if err := resolve(&paths); err != nil {
			return paths, tags, err
		}
	}
	tag := b.startStep(ctx, build.StepTag, host, opts(time.Minute, 0, 3), a.RenderTag, b.tagInput(ctx, clone.Commit))
	if together {
		if err := resolve(&paths); err != nil {
			return paths, tags, err
		}
	}
	err := tag(&tags)
	return paths, tags, err
}

// step runs one activity and records its start, end and error in the status.
func (b *buildRun) step(ctx workflow.Context, name string, host int, ao workflow.ActivityOptions, fn, arg, out any) error {
	return b.startStep(ctx, name, host, ao, fn, arg)(out)
}

// startStep schedules one activity, recording its start in the status, and returns the
// function that waits for its result into out and records its end and error.
func (b *buildRun) startStep(ctx workflow.Context, name string, host int, ao workflow.ActivityOptions, fn, arg any) func(out any) error {
	b.st.Step = name
	i := len(b.st.Steps)
	b.st.Steps = append(b.st.Steps, build.StepStatus{Name: name, HostAttempt: host, StartedAt: workflow.Now(ctx)})
	ao.ActivityID = fmt.Sprintf("%s-%d", name, host)
	f := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, ao), fn, arg)
	return func(out any) error {
		err := f.Get(ctx, out)
		end := workflow.Now(ctx)
		b.st.Steps[i].EndedAt = &end
		if err != nil {
			b.st.Steps[i].Error = errorMessage(err)
		}
		return err
	}
}

// cleanup removes the workspace on the session's host, also after a cancellation; a host that
// is gone takes its workspace with it, so a failure here is only logged.
func (b *buildRun) cleanup(sessCtx workflow.Context, ws string) {
	if b.removed || workflow.GetSessionInfo(sessCtx).SessionState == workflow.SessionStateFailed {
		return
	}
	var a *activities.Activities
	ctx, _ := workflow.NewDisconnectedContext(sessCtx)
	ao := opts(time.Minute, 0, 3)
	ao.ScheduleToStartTimeout = time.Minute
	ao.ActivityID = "cleanup-" + ws
	err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, ao), a.Cleanup, activities.CleanupInput{Workspace: ws}).Get(ctx, nil)
	if err != nil {
		workflow.GetLogger(sessCtx).Warn("workspace not removed", "workspace", ws, "error", err)
	}
}

// opts gives every activity a start-to-close timeout, long ones a heartbeat timeout, and waits
// for a cancelled activity to stop, so the workspace is removed only after nothing writes to it.
func opts(startToClose, heartbeat time.Duration, attempts int32) workflow.ActivityOptions {
	return workflow.ActivityOptions{
		StartToCloseTimeout: startToClose,
		HeartbeatTimeout:    heartbeat,
		WaitForCancellation: true,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    time.Second,
			BackoffCoefficient: 2,
			MaximumInterval:    10 * time.Second,
			MaximumAttempts:    attempts,
		},
	}
}

// errorMessage is the innermost message of an activity error, which is what a person wants to
// read in the status.
func errorMessage(err error) string {
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		return appErr.Message()
	}
	var toErr *temporal.TimeoutError
	if errors.As(err, &toErr) {
		return "timed out: " + strings.ToLower(toErr.TimeoutType().String())
	}
	return err.Error()
}

// checkInput refuses what no build could do, before any host is taken (build.Input.Validate),
// and returns the build's timeout.
func checkInput(in build.Input) (time.Duration, error) {
	if err := in.Validate(); err != nil {
		return 0, build.ApplicationError(err)
	}
	return in.TimeoutOrDefault(), nil
}

// statuses posts the build's commit statuses through the rule's account: pending once the
// commit is known, then the outcome. They run beside the build, outside the session and after
// a cancellation too; a failure to post is logged, never the build's failure.
type statuses struct {
	in build.Input
	// root is the workflow's own context: statuses go to any worker, not the session's host,
	// which may be the one that died.
	root    workflow.Context
	pending workflow.Future
}

// post starts posting one status and returns at once.
func (s *statuses) post(commit, state, desc string) workflow.Future {
	if s.in.Source.AccountID == "" || commit == "" {
		return nil
	}
	var a *activities.Activities
	ctx, _ := workflow.NewDisconnectedContext(s.root)
	ao := opts(30*time.Second, 0, 3)
	ao.ScheduleToCloseTimeout = 2 * time.Minute
	return workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, ao), a.SetCommitStatus, activities.StatusInput{
		Namespace: s.in.Namespace, Source: s.in.Source, Commit: commit, State: state, Description: desc,
		Context: activities.StatusContext(s.in.Namespace, s.in.Repository),
	})
}

// started posts pending without waiting for it.
func (s *statuses) started(commit string) {
	s.pending = s.post(commit, build.StatePending, "building "+s.in.Image)
}

// finished posts the outcome after pending has gone out, so the outcome is the last word.
func (s *statuses) finished(commit string, res *build.Result, err error) {
	ctx, _ := workflow.NewDisconnectedContext(s.root)
	if s.pending != nil {
		_ = s.pending.Get(ctx, nil)
	}
	if err == nil && res.Status == build.OutcomeSuperseded {
		// Nothing was built for the commit; its replacement reports on its own commit.
		return
	}
	if err == nil && res.Status == build.OutcomeSkipped {
		// A required check must not wait forever on a commit the rule does not build.
		commit = res.Commit
	}
	state, desc := outcome(res, err)
	if f := s.post(commit, state, desc); f != nil {
		if perr := f.Get(ctx, nil); perr != nil {
			workflow.GetLogger(ctx).Warn("commit status not posted", "state", state, "error", perr)
		}
	}
}

// outcome is the commit status a finished build reports: failure for what is wrong with the
// source or the Dockerfile, error for what went wrong around it (cancelled, timed out, hosts lost).
func outcome(res *build.Result, err error) (state, desc string) {
	if err == nil && res.Status == build.OutcomeSkipped {
		return build.StateSuccess, "skipped: " + res.Reason
	}
	if err == nil {
		return build.StateSuccess, "pushed " + res.Image + ":" + strings.Join(res.Tags, ", ")
	}
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		switch appErr.Type() {
		case build.ErrTypeTimedOut, build.ErrTypeHostLost:
			return build.StateError, appErr.Message()
		}
		if appErr.NonRetryable() {
			return build.StateFailure, appErr.Message()
		}
	}
	var canceled *temporal.CanceledError
	if errors.As(err, &canceled) {
		return build.StateError, "build canceled"
	}
	return build.StateError, errorMessage(err)
}
