package activities

import (
	"context"
	"errors"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
)

// StepFailure is a refusal of one step carried in the result of the activity that did the
// step's work, so that the workflow can report it as that step's failure: a missing
// Dockerfile is still the resolve step's error, not the clone's.
type StepFailure struct {
	// Type is the application error type (build.ErrType...).
	Type    string `json:"type"`
	Message string `json:"message"`
}

// resolveAfterClone checks the paths of in.Resolve in the checkout the clone just made, as
// ResolveDockerfile would, and records the outcome in res. A refusal (a missing Dockerfile, a
// path that leaves the repository) goes into res.ResolveFailure; any other error fails the
// clone, which is retried from nothing.
func (a *Activities) resolveAfterClone(ctx context.Context, in CloneInput, res *CloneResult) error {
	root, err := a.checkout(in.Workspace)
	if err != nil {
		return err
	}
	paths, err := ResolvePaths(root, in.Resolve.DockerfilePath, in.Resolve.ContextPath)
	var appErr *temporal.ApplicationError
	switch {
	case errors.As(err, &appErr) && appErr.NonRetryable():
		res.ResolveFailure = &StepFailure{Type: appErr.Type(), Message: appErr.Message()}
		return nil
	case err != nil:
		return err
	}
	activity.GetLogger(ctx).Info("resolved paths", "dockerfile", paths.DockerfilePath, "context", paths.ContextPath)
	res.Resolved = &paths
	return nil
}
