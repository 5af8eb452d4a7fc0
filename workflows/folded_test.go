package workflows

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/slipway-dev/slipway/activities"
	"github.com/slipway-dev/slipway/build"
)

// statusOf queries a finished test workflow's status.
func statusOf(t *testing.T, env *testsuite.TestWorkflowEnvironment) build.Status {
	t.Helper()
	v, err := env.QueryWorkflow(build.StatusQuery)
	if err != nil {
		t.Fatal(err)
	}
	var st build.Status
	if err := v.Get(&st); err != nil {
		t.Fatal(err)
	}
	return st
}

// stepNames lists the status's steps by name, with the error of any that failed.
func stepNames(st build.Status) []string {
	var out []string
	for _, s := range st.Steps {
		n := s.Name
		if s.Error != "" {
			n += "!"
		}
		out = append(out, n)
	}
	return out
}

// TestFoldedSteps runs the shape of versionFoldedSteps: the resolve step's work comes with the
// clone's result and the tags are rendered in the workflow, so Clone, Build and Push are the
// only activities of a build, while the status still shows the five steps, each with its
// start and end, a refusal of the resolve step as that step's error and the tags rendered
// all the same, as when resolve and tag ran together.
func TestFoldedSteps(t *testing.T) {
	tests := []struct {
		name string
		// clone returns the clone's result given its input.
		clone     func(activities.CloneInput) activities.CloneResult
		oldShape  bool
		wantCalls string
		wantSteps string
		wantErr   string // the build's error type
	}{
		{
			name: "resolved by the clone",
			clone: func(in activities.CloneInput) activities.CloneResult {
				return resolvedClone(in, activities.CloneResult{Commit: commit})
			},
			wantCalls: "clone,build,push",
			wantSteps: "clone,resolve_dockerfile,render_tag,build,push",
		},
		{
			name: "refused by the clone",
			clone: func(activities.CloneInput) activities.CloneResult {
				return activities.CloneResult{Commit: commit, ResolveFailure: &activities.StepFailure{
					Type: build.ErrTypeDockerfileNotFound, Message: `dockerfile_path "build/Dockerfile": no such file in the repository`}}
			},
			wantCalls: "clone,cleanup",
			wantSteps: "clone,resolve_dockerfile!,render_tag",
			wantErr:   build.ErrTypeDockerfileNotFound,
		},
		{
			name:      "a clone by a worker that does not resolve",
			clone:     func(activities.CloneInput) activities.CloneResult { return activities.CloneResult{Commit: commit} },
			wantCalls: "clone,resolve,build,push",
			wantSteps: "clone,resolve_dockerfile,render_tag,build,push",
		},
		{
			name:      "an execution recorded before the fold",
			clone:     func(activities.CloneInput) activities.CloneResult { return activities.CloneResult{Commit: commit} },
			oldShape:  true,
			wantCalls: "clone,resolve,tag,build,push",
			wantSteps: "clone,resolve_dockerfile,render_tag,build,push",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newEnv(t)
			var c calls
			var a *activities.Activities
			var cloneIn activities.CloneInput
			env.OnActivity(a.Clone, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.CloneInput) (activities.CloneResult, error) {
				c.add("clone")
				cloneIn = in
				return tt.clone(in), nil
			})
			env.OnActivity(a.Push, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.PushInput) (activities.PushResult, error) {
				c.add("push")
				if len(in.Tags) != 1 || in.Tags[0] != "main-0123456" {
					return activities.PushResult{}, errors.New("bad tags")
				}
				return activities.PushResult{Digest: "sha256:abc", WorkspaceRemoved: true}, nil
			})
			mockHappy(env, &c) // after the overrides: the first matching mock wins
			if tt.oldShape {
				env.OnGetVersion(versionFoldedSteps, workflow.DefaultVersion, 1).Return(workflow.DefaultVersion)
			}
			env.ExecuteWorkflow(DockerBuilder, input())
			err := env.GetWorkflowError()
			var appErr *temporal.ApplicationError
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("build failed: %v", err)
			case tt.wantErr != "" && (!errors.As(err, &appErr) || appErr.Type() != tt.wantErr || !appErr.NonRetryable()):
				t.Fatalf("error = %v, want non-retryable %s", err, tt.wantErr)
			}
			if got := c.String(); got != tt.wantCalls {
				t.Errorf("activities ran as %s, want %s", got, tt.wantCalls)
			}
			if asked := cloneIn.Resolve != nil; asked == tt.oldShape {
				t.Errorf("clone asked to resolve: %t", asked)
			} else if asked && (cloneIn.Resolve.DockerfilePath != "build/Dockerfile" || cloneIn.Resolve.Workspace != cloneIn.Workspace) {
				t.Errorf("clone asked to resolve %+v in workspace %s", *cloneIn.Resolve, cloneIn.Workspace)
			}
			st := statusOf(t, env)
			if got := strings.Join(stepNames(st), ","); got != tt.wantSteps {
				t.Errorf("steps %s, want %s", got, tt.wantSteps)
			}
			for i, s := range st.Steps {
				if s.StartedAt.IsZero() || s.EndedAt == nil || s.EndedAt.Before(s.StartedAt) || s.HostAttempt != 1 {
					t.Errorf("step %+v has no start and end on host 1", s)
				}
				if i > 0 && s.StartedAt.Before(*st.Steps[i-1].EndedAt) {
					t.Errorf("step %s starts before %s ended", s.Name, st.Steps[i-1].Name)
				}
			}
		})
	}
}
