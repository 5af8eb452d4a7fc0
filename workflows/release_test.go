package workflows

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/slipway-dev/slipway/activities"
	"github.com/slipway-dev/slipway/build"
)

// TestEarlyRelease checks when a build gives its slot back: a build whose steps succeeded
// starts doing so with the session's end (versionEarlyRelease), so the release arrives while
// the session's last activity (here Cleanup, which waits a while for it) still runs; a build
// that failed, or one recorded before the change, gives it back only after that activity.
func TestEarlyRelease(t *testing.T) {
	tests := []struct {
		name     string
		oldShape bool
		buildErr error
		want     bool // the release arrives while Cleanup runs
	}{
		{name: "succeeded", want: true},
		{name: "recorded before the change", oldShape: true},
		{name: "build failed", buildErr: temporal.NewNonRetryableApplicationError("exit code: 3", build.ErrTypeBuildFailed, nil)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newBareEnv(t)
			var a *activities.Activities
			env.OnActivity(a.BuildLimits, mock.Anything).Return(testLimits, nil)
			env.OnActivity(a.RequestSlot, mock.Anything, mock.Anything).Return(func(context.Context, activities.RequestSlotInput) error {
				env.SignalWorkflow(activities.SignalSlotGranted, nil)
				return nil
			})
			released := make(chan struct{}, 4)
			env.OnSignalExternalWorkflow(mock.Anything, mock.Anything, mock.Anything, activities.SignalSlotRelease, mock.Anything).Return(
				func(_, _, _, _ string, _ any) error {
					released <- struct{}{}
					return nil
				})
			during := false
			env.OnActivity(a.Cleanup, mock.Anything, mock.Anything).Return(func(context.Context, activities.CleanupInput) error {
				select {
				case <-released:
					during = true
				case <-time.After(2 * time.Second):
				}
				return nil
			})
			env.OnActivity(a.Build, mock.Anything, mock.Anything).Return(activities.BuildResult{Digest: "sha256:abc"}, tt.buildErr)
			env.OnActivity(a.Push, mock.Anything, mock.Anything).Return(activities.PushResult{Digest: "sha256:abc"}, nil)
			var c calls
			mockHappy(env, &c) // after the overrides: the first matching mock wins
			if tt.oldShape {
				env.OnGetVersion(versionEarlyRelease, workflow.DefaultVersion, 1).Return(workflow.DefaultVersion)
			}
			env.ExecuteWorkflow(DockerBuilder, input())
			err := env.GetWorkflowError()
			if (err != nil) != (tt.buildErr != nil) || err != nil && !errors.As(err, new(*temporal.ApplicationError)) {
				t.Fatalf("workflow error = %v, want %v", err, tt.buildErr)
			}
			if during != tt.want {
				t.Errorf("slot given back while Cleanup ran: %t, want %t", during, tt.want)
			}
			if !during && len(released) != 1 {
				t.Errorf("slot given back %d times after Cleanup, want once", len(released))
			}
		})
	}
}
