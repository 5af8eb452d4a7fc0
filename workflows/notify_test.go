package workflows

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/slipway-dev/slipway/activities"
	"github.com/slipway-dev/slipway/build"
)

// TestDockerBuilderNotifies runs builds that end each way with a notification that wants every
// event, and checks the events its deliveries carried; a receiver that refuses everything
// fails no build.
func TestDockerBuilderNotifies(t *testing.T) {
	tests := []struct {
		name string
		// breakBuild, when set, is the build step's error.
		breakBuild error
		cancel     bool
		want       []string
		wantErr    string
	}{
		{name: "succeeded", want: []string{"started", "succeeded"}},
		{name: "failed", breakBuild: temporal.NewNonRetryableApplicationError("RUN false: exit code 1", "BuildFailed", nil),
			want: []string{"started", "failed"}, wantErr: "RUN false: exit code 1"},
		{name: "canceled", cancel: true, want: []string{"started", "canceled"}, wantErr: "build canceled"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := newBareEnv(t)
			env.RegisterWorkflowWithOptions(Notify, workflow.RegisterOptions{Name: build.NotifyWorkflowName})
			mockSlots(env, testLimits)
			var a *activities.Activities
			var c calls
			// The first matching mock answers: this one stands before mockHappy's.
			if tc.breakBuild != nil || tc.cancel {
				env.OnActivity(a.Build, mock.Anything, mock.Anything).Return(func(ctx context.Context, _ activities.BuildInput) (activities.BuildResult, error) {
					if tc.cancel {
						env.CancelWorkflow()
						<-ctx.Done()
						return activities.BuildResult{}, ctx.Err()
					}
					return activities.BuildResult{}, tc.breakBuild
				})
			}
			mockHappy(env, &c)
			env.OnActivity(a.NotifyTargets, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.NotifyTargetsInput) ([]string, error) {
				if in.Namespace != "demo" || in.RuleID != "r-1" {
					return nil, errors.New("bad targets input")
				}
				return []string{"n-1"}, nil
			})
			var mu sync.Mutex
			events := map[string]build.BuildEvent{}
			env.OnActivity(a.DeliverNotification, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.DeliverInput) error {
				mu.Lock()
				defer mu.Unlock()
				if in.NotificationID != "n-1" || in.DeliveryID == "" {
					return errors.New("bad delivery input")
				}
				events[in.Event.Event] = in.Event
				return temporal.NewNonRetryableApplicationError("receiver says 500", "Refused", nil)
			})
			gaveUp := 0
			env.OnActivity(a.GiveUpDelivery, mock.Anything, mock.Anything).Return(func(context.Context, activities.GiveUpInput) error {
				mu.Lock()
				defer mu.Unlock()
				gaveUp++
				return nil
			})
			env.ExecuteWorkflow(DockerBuilder, input())
			err := env.GetWorkflowError()
			if tc.breakBuild == nil && !tc.cancel && err != nil {
				t.Fatalf("a refusing receiver failed the build: %v", err)
			}
			mu.Lock()
			defer mu.Unlock()
			for _, name := range tc.want {
				ev, ok := events[name]
				if !ok {
					t.Fatalf("no %s event delivered; got %v", name, events)
				}
				if ev.BuildID == "" || ev.Namespace != "demo" || ev.Repository != "app" || ev.RuleID != "r-1" || ev.Ref.Name != "main" || ev.Image != "127.0.0.1:5000/demo/app" {
					t.Errorf("%s event = %+v", name, ev)
				}
				if ev.Timestamp.IsZero() {
					t.Errorf("%s event has no timestamp", name)
				}
			}
			if len(events) != len(tc.want) {
				t.Errorf("events delivered: %v, want %v", events, tc.want)
			}
			end := events[tc.want[1]]
			if end.Error != tc.wantErr {
				t.Errorf("end event error = %q, want %q", end.Error, tc.wantErr)
			}
			if tc.name == "succeeded" && (end.Commit != commit || len(end.Tags) != 1 || end.Digest != "sha256:abc" || end.Status != "succeeded") {
				t.Errorf("succeeded event = %+v", end)
			}
			if gaveUp != len(tc.want) {
				t.Errorf("%d deliveries marked failed, want %d", gaveUp, len(tc.want))
			}
		})
	}
}

// TestDockerBuilderNotifiesNobody checks that a build nobody wants to hear of starts no
// delivery.
func TestDockerBuilderNotifiesNobody(t *testing.T) {
	env := newBareEnv(t)
	env.RegisterWorkflowWithOptions(Notify, workflow.RegisterOptions{Name: build.NotifyWorkflowName})
	mockSlots(env, testLimits)
	var a *activities.Activities
	var c calls
	mockHappy(env, &c)
	env.OnActivity(a.NotifyTargets, mock.Anything, mock.Anything).Return([]string(nil), nil)
	delivered := 0
	env.OnActivity(a.DeliverNotification, mock.Anything, mock.Anything).Return(func(context.Context, activities.DeliverInput) error {
		delivered++
		return nil
	})
	env.ExecuteWorkflow(DockerBuilder, input())
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	if delivered != 0 {
		t.Fatalf("%d deliveries with no notification", delivered)
	}
}

func TestBuildEvent(t *testing.T) {
	tests := []struct {
		name                string
		res                 *build.Result
		err                 error
		event, status, msgs string
	}{
		{"pushed", &build.Result{}, nil, "succeeded", "succeeded", ""},
		{"skipped", &build.Result{Status: build.OutcomeSkipped}, nil, "succeeded", "skipped", ""},
		{"timed out", nil, temporal.NewNonRetryableApplicationError("build exceeded its timeout of 1s", build.ErrTypeTimedOut, nil), "timed_out", "timed_out", "build exceeded its timeout of 1s"},
		{"superseded by a newer build", nil, temporal.NewCanceledError("superseded by build b-2"), "canceled", "canceled", "superseded by build b-2"},
		{"failed", nil, temporal.NewNonRetryableApplicationError("no Dockerfile", "DockerfileNotFound", nil), "failed", "failed", "no Dockerfile"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e, s, m := buildEvent(tc.res, tc.err)
			if e != tc.event || s != tc.status || m != tc.msgs {
				t.Fatalf("buildEvent = %q %q %q, want %q %q %q", e, s, m, tc.event, tc.status, tc.msgs)
			}
		})
	}
}
