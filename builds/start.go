package builds

import (
	"context"
	"errors"
	"maps"
	"slices"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/slipway-dev/slipway/build"
	"github.com/slipway-dev/slipway/store"
)

// Request is one build to start: a rule's build of a ref, by a trigger.
type Request struct {
	// ID is the workflow id; the same id starts nothing new (a redelivery, a repeated event,
	// a repeated Idempotency-Key).
	ID      string
	Rule    store.Rule
	Ref     build.Ref
	Commit  string
	Trigger string
	// BuildArgs go over the rule's own.
	BuildArgs map[string]string
	// Captures are what the rule's matching trigger entry captured from the ref; Latest says
	// the ref is the default branch of a rule with tag_latest.
	Captures map[string]string
	Latest   bool
	// Paths and Before ask the clone step to decide the rule's path filter, when the
	// webhook's payload could not.
	Paths  *build.PathFilter
	Before string
}

// Start starts workflow_docker_builder for req, or finds the build already started under the
// same id, running or finished: then started is false and id and runID are that build's. A
// finished build is not built again by a late redelivery of its event.
func (s *Service) Start(ctx context.Context, req Request) (id, runID string, started bool, err error) {
	return s.StartInput(ctx, req.ID, s.InputOf(req), nil)
}

// StartInput is Start for an input already made (a rebuild's, read back from the build it
// repeats), with memo entries beside the image and the log URL.
func (s *Service) StartInput(ctx context.Context, id string, in build.Input, memo map[string]any) (string, string, bool, error) {
	opts := s.startOptions(id, in)
	maps.Copy(opts.Memo, memo)
	ctx, cancel := context.WithTimeout(ctx, Timeout)
	defer cancel()
	run, err := s.temporal.ExecuteWorkflow(ctx, opts, build.WorkflowName, in)
	var dup *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &dup) {
		return id, dup.RunId, false, nil
	}
	if err != nil {
		return "", "", false, err
	}
	// With USE_EXISTING the client hides whether the server made a new run: a running build
	// under the same id answers with its own run. Only the server's answer tells (metrics
	// counts it there), so a start that was no error counts as started here.
	return run.GetID(), run.GetRunID(), true, nil
}

// InputOf is the input req starts its build with: the rule's parameters, with the request's
// build args over the rule's. Its Validate is what the workflow checks first.
func (s *Service) InputOf(req Request) build.Input {
	r := req.Rule
	args := map[string]string{}
	maps.Copy(args, r.BuildArgs)
	maps.Copy(args, req.BuildArgs)
	return build.Input{
		Namespace: r.Namespace, Repository: r.Repository, RuleID: r.ID,
		Source: r.BuildSource(), Ref: req.Ref, Commit: req.Commit,
		DockerfilePath: r.DockerfilePath, ContextPath: r.ContextPath, TagTemplate: r.TagTemplate,
		BuildArgs: args, Image: s.Image(r.Namespace, r.Repository), Trigger: req.Trigger,
		SanitizeRef: r.SanitizeRef, Timeout: r.Timeout, Cache: r.Cache,
		Captures: req.Captures, Latest: req.Latest, Semver: r.Semver, Paths: req.Paths, Before: req.Before,
		RunPolicy: r.RunPolicy, Secrets: slices.Clone(r.Secrets),
		Platforms: r.Platforms,
	}
}

// startOptions are how build id of in starts: id policies, backstop timeout, search
// attributes and memo.
func (s *Service) startOptions(id string, in build.Input) client.StartWorkflowOptions {
	return client.StartWorkflowOptions{
		ID:        id,
		TaskQueue: s.set.TaskQueue,
		// The workflow ends itself cleanly at its timeout; this is the backstop.
		WorkflowExecutionTimeout: in.TimeoutOrDefault() + 5*time.Minute,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		// A finished build is not built again by a late redelivery of its event.
		WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		TypedSearchAttributes: temporal.NewSearchAttributes(build.SearchAttributes(in)...),
		Memo: map[string]any{
			build.MemoImage:  in.Image,
			build.MemoLogURL: s.LogsURL(id),
		},
	}
}
