package workflows

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/slipway-dev/slipway/activities"
	"github.com/slipway-dev/slipway/build"
)

// signals records the signals a workflow under test sent to other workflows.
type signals struct {
	mu   sync.Mutex
	sent []string
}

func (s *signals) mock(env *testsuite.TestWorkflowEnvironment) {
	env.OnSignalExternalWorkflow(mock.Anything, mock.Anything, mock.Anything, mock.Anything, mock.Anything).Return(
		func(_, id, _, name string, arg any) error {
			s.mu.Lock()
			defer s.mu.Unlock()
			entry := name + ":" + id
			if q, ok := arg.(activities.SlotQueued); ok {
				entry += fmt.Sprintf("(%d of %d, place %d)", q.Running, q.Limit, q.Position)
			}
			s.sent = append(s.sent, entry)
			return nil
		})
}

func (s *signals) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.sent, " ")
}

// queuedEnv is a build environment whose slot request is answered by the test's callbacks.
func queuedEnv(t *testing.T) (*testsuite.TestWorkflowEnvironment, *calls, *signals) {
	env := newBareEnv(t)
	var a *activities.Activities
	env.OnActivity(a.BuildLimits, mock.Anything).Return(testLimits, nil)
	env.OnActivity(a.RequestSlot, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.RequestSlotInput) error {
		if in.Namespace != "demo" || in.Holder.WorkflowID == "" {
			return errors.New("bad slot request")
		}
		return nil
	})
	var c calls
	var sig signals
	sig.mock(env)
	mockHappy(env, &c)
	return env, &c, &sig
}

func TestDockerBuilderWaitsForASlot(t *testing.T) {
	env, c, sig := queuedEnv(t)
	env.RegisterDelayedCallback(func() {
		env.SignalWorkflow(activities.SignalSlotQueued, activities.SlotQueued{Namespace: "demo", Running: 4, Limit: 4, Position: 1})
	}, time.Minute)
	var queued build.Status
	var ranWhileQueued string
	env.RegisterDelayedCallback(func() {
		v, err := env.QueryWorkflow(build.StatusQuery)
		if err != nil {
			t.Errorf("query: %v", err)
			return
		}
		_ = v.Get(&queued)
		ranWhileQueued = c.String()
	}, 2*time.Minute)
	env.RegisterDelayedCallback(func() { env.SignalWorkflow(activities.SignalSlotGranted, nil) }, 3*time.Minute)
	env.ExecuteWorkflow(DockerBuilder, input())
	if err := env.GetWorkflowError(); err != nil {
		t.Fatalf("build failed: %v", err)
	}
	if queued.Step != "queued" || !strings.Contains(queued.QueuedReason, "namespace demo runs 4 of 4 builds") {
		t.Errorf("status while waiting = %+v, want queued with the reason", queued)
	}
	if ranWhileQueued != "" {
		t.Errorf("steps ran before the slot was granted: %s", ranWhileQueued)
	}
	if got := c.String(); !strings.HasPrefix(got, "clone,build,push") {
		t.Errorf("activities ran as %s", got)
	}
	if got := sig.String(); got != "slot-release:slipway-slots-default-test-taskqueue-demo" {
		t.Errorf("signals sent: %q, want one release", got)
	}
}

func TestDockerBuilderLeavesTheQueue(t *testing.T) {
	for _, tt := range []struct {
		name    string
		timeout string
		cancel  bool
		check   func(error) bool
	}{
		{"canceled", "", true, func(err error) bool {
			var canceled *temporal.CanceledError
			return errors.As(err, &canceled)
		}},
		{"timed out", "10m", false, func(err error) bool {
			var appErr *temporal.ApplicationError
			return errors.As(err, &appErr) && appErr.Type() == build.ErrTypeTimedOut && strings.Contains(appErr.Message(), "waiting for a build slot")
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			env, c, sig := queuedEnv(t)
			if tt.cancel {
				env.RegisterDelayedCallback(env.CancelWorkflow, time.Minute)
			}
			in := input()
			in.Timeout = tt.timeout
			env.ExecuteWorkflow(DockerBuilder, in)
			if err := env.GetWorkflowError(); !tt.check(err) {
				t.Fatalf("error = %v", err)
			}
			if got := c.String(); got != "" {
				t.Errorf("steps ran without a slot: %s", got)
			}
			if got := sig.String(); got != "slot-release:slipway-slots-default-test-taskqueue-demo" {
				t.Errorf("signals sent: %q, want the build to leave the queue", got)
			}
		})
	}
}

func TestBuildSlots(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflow(BuildSlots)
	var a *activities.Activities
	env.RegisterActivity(a)
	var sig signals
	sig.mock(env)
	var mu sync.Mutex
	ended := map[string]bool{}
	env.OnActivity(a.EndedBuilds, mock.Anything, mock.Anything).Return(func(_ context.Context, hs []activities.SlotHolder) ([]activities.SlotHolder, error) {
		mu.Lock()
		defer mu.Unlock()
		var out []activities.SlotHolder
		for _, h := range hs {
			if ended[h.WorkflowID] {
				out = append(out, h)
			}
		}
		return out, nil
	})
	b := func(id string) activities.SlotHolder {
		return activities.SlotHolder{WorkflowID: id, RunID: "run-" + id}
	}
	acquire := func(id string) func() {
		return func() {
			env.SignalWorkflow(activities.SignalSlotAcquire, activities.SlotRequest{SlotHolder: b(id), Limit: 2})
		}
	}
	release := func(id string) func() { return func() { env.SignalWorkflow(activities.SignalSlotRelease, b(id)) } }
	steps := []struct {
		at   time.Duration
		do   func()
		want string // the signals sent so far
	}{
		{time.Second, func() { acquire("b1")(); acquire("b2")(); acquire("b3")(); acquire("b1")() },
			"slot-granted:b1 slot-granted:b2 slot-queued:b3(2 of 2, place 1) slot-granted:b1"},
		{2 * time.Second, release("b1"),
			"slot-granted:b1 slot-granted:b2 slot-queued:b3(2 of 2, place 1) slot-granted:b1 slot-granted:b3"},
		// b2 is terminated: it never gives its slot back; the periodic check frees it.
		{3 * time.Second, func() {
			acquire("b4")()
			mu.Lock()
			ended["b2"] = true
			mu.Unlock()
		}, "slot-granted:b1 slot-granted:b2 slot-queued:b3(2 of 2, place 1) slot-granted:b1 slot-granted:b3 slot-queued:b4(2 of 2, place 1)"},
		{time.Minute, func() {},
			"slot-granted:b1 slot-granted:b2 slot-queued:b3(2 of 2, place 1) slot-granted:b1 slot-granted:b3 slot-queued:b4(2 of 2, place 1) slot-granted:b4"},
		{2 * time.Minute, func() { release("b3")(); release("b4")() }, ""},
	}
	for _, st := range steps {
		env.RegisterDelayedCallback(func() {
			st.do()
			if st.want != "" {
				env.RegisterDelayedCallback(func() {
					if got := sig.String(); got != st.want {
						t.Errorf("after %s: signals %q, want %q", st.at, got, st.want)
					}
				}, time.Millisecond)
			}
		}, st.at)
	}
	env.ExecuteWorkflow(BuildSlots, activities.SlotsInput{Namespace: "demo", Limit: 2})
	if !env.IsWorkflowCompleted() {
		t.Fatal("slots workflow did not end once idle")
	}
	if err := env.GetWorkflowError(); err != nil {
		t.Fatalf("slots workflow failed: %v", err)
	}
}
