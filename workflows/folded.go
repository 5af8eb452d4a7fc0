package workflows

import (
	"errors"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/slipway-dev/slipway/activities"
	"github.com/slipway-dev/slipway/build"
)

// renderedTags is the outcome of rendering a build's tags in workflow code, recorded in
// history as a side effect so that a later change to the rendering never alters a replay.
type renderedTags struct {
	Tags build.RenderTagResult `json:"tags"`
	// ErrType and Err describe a template that renders no tag for the build.
	ErrType string `json:"err_type,omitempty"`
	Err     string `json:"err,omitempty"`
}

// resolveAndTagFromClone ends the resolve and tag steps without an activity of their own:
// the clone checked the paths on the checkout it made, and the tags are rendered here, in a
// side effect, from the clone's commit and the workflow's clock. Each still shows in the
// status as a step with its start, end and error, the tags rendered even when the paths were
// refused, as when both steps ran together. A clone that did not resolve (a worker older
// than CloneInput.Resolve took it) leaves the resolve step to its own activity.
func (b *buildRun) resolveAndTagFromClone(ctx workflow.Context, ws string, host int, clone activities.CloneResult) (activities.ResolveResult, build.RenderTagResult, error) {
	var paths activities.ResolveResult
	var resolveErr error
	switch {
	case clone.ResolveFailure != nil:
		f := clone.ResolveFailure
		b.instantStep(ctx, build.StepResolve, host, f.Message)
		resolveErr = temporal.NewNonRetryableApplicationError(f.Message, f.Type, nil)
	case clone.Resolved != nil:
		paths = *clone.Resolved
		b.instantStep(ctx, build.StepResolve, host, "")
	default:
		var a *activities.Activities
		resolveErr = b.step(ctx, build.StepResolve, host, opts(time.Minute, 0, 3), a.ResolveDockerfile, activities.ResolveInput{
			Workspace: ws, DockerfilePath: b.in.DockerfilePath, ContextPath: b.in.ContextPath,
		}, &paths)
	}

	tin := b.tagInput(ctx, clone.Commit)
	var r renderedTags
	if err := workflow.SideEffect(ctx, func(workflow.Context) any {
		res, err := build.RenderTags(tin)
		if err == nil {
			return renderedTags{Tags: res}
		}
		out := renderedTags{ErrType: build.ErrTypeInvalidTag, Err: err.Error()}
		var appErr *temporal.ApplicationError
		if errors.As(build.ApplicationError(err), &appErr) {
			out.ErrType, out.Err = appErr.Type(), appErr.Message()
		}
		return out
	}).Get(&r); err != nil {
		return paths, build.RenderTagResult{}, err
	}
	b.instantStep(ctx, build.StepTag, host, r.Err)
	switch {
	case resolveErr != nil:
		return paths, build.RenderTagResult{}, resolveErr
	case r.Err != "":
		return paths, build.RenderTagResult{}, temporal.NewNonRetryableApplicationError(r.Err, r.ErrType, nil)
	}
	return paths, r.Tags, nil
}

// tagInput is what the build's tags are rendered from, at the workflow's time now.
func (b *buildRun) tagInput(ctx workflow.Context, commit string) build.RenderTagInput {
	in := b.in
	return build.RenderTagInput{
		TagTemplate: in.TagTemplate, Ref: in.Ref, Commit: commit,
		Time: workflow.Now(ctx), SanitizeRef: in.SanitizeRef,
		Captures: in.Captures, Latest: in.Latest, Semver: in.Semver,
	}
}

// instantStep records in the status a step that ended as soon as it started, its work done
// by another step's activity or by the workflow itself; errMsg is its error, if any.
func (b *buildRun) instantStep(ctx workflow.Context, name string, host int, errMsg string) {
	now := workflow.Now(ctx)
	b.st.Step = name
	b.st.Steps = append(b.st.Steps, build.StepStatus{Name: name, HostAttempt: host, StartedAt: now, EndedAt: &now, Error: errMsg})
}
