package workflows

import (
	"context"
	"errors"
	"slices"
	"sort"
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

func TestDockerBuilderSkipsWhenNoWantedFileChanged(t *testing.T) {
	before := strings.Repeat("1", 40)
	tests := []struct {
		name       string
		paths      *build.PathFilter
		skip       string
		wantStatus string
		wantCalls  string
		wantPaths  bool
		wantStates string
	}{
		{"nothing wanted changed", &build.PathFilter{Include: []string{"src/**"}}, "none of the 2 files changed since commit x matches the rule's paths",
			build.OutcomeSkipped, "clone,cleanup", true, "success"},
		{"a wanted file changed", &build.PathFilter{Include: []string{"src/**"}}, "", "", "clone,build,push,cleanup", true, "pending,success"},
		{"payload was complete", nil, "ignored without paths", "", "clone,build,push,cleanup", false, "pending,success"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newEnv(t)
			var c calls
			var a *activities.Activities
			var gotIn activities.CloneInput
			env.OnActivity(a.Clone, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.CloneInput) (activities.CloneResult, error) {
				c.add("clone")
				gotIn = in
				return resolvedClone(in, activities.CloneResult{Commit: commit, LogURL: "http://gw/api/v1/builds/b/logs", Skip: tt.skip}), nil
			})
			var states, descs []string
			env.OnActivity(a.SetCommitStatus, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.StatusInput) error {
				if in.Commit != commit {
					return errors.New("status on no commit")
				}
				states, descs = append(states, in.State), append(descs, in.Description)
				return nil
			})
			mockHappy(env, &c)
			in := input()
			in.Trigger, in.Commit, in.Paths, in.Before = build.TriggerPush, commit, tt.paths, before
			in.Source.AccountID = "a-1"
			env.ExecuteWorkflow(DockerBuilder, in)
			if err := env.GetWorkflowError(); err != nil {
				t.Fatalf("build failed: %v", err)
			}
			var res build.Result
			if err := env.GetWorkflowResult(&res); err != nil {
				t.Fatal(err)
			}
			if res.Status != tt.wantStatus || (tt.wantStatus != "" && res.Reason != tt.skip) {
				t.Errorf("result status %q reason %q, want %q", res.Status, res.Reason, tt.wantStatus)
			}
			if got := c.String(); got != tt.wantCalls {
				t.Errorf("activities ran as %s, want %s", got, tt.wantCalls)
			}
			if (gotIn.Paths != nil) != tt.wantPaths || tt.wantPaths && gotIn.Before != before {
				t.Errorf("clone input paths %v before %q", gotIn.Paths, gotIn.Before)
			}
			if got := strings.Join(states, ","); got != tt.wantStates {
				t.Errorf("commit statuses %s, want %s", got, tt.wantStates)
			}
			if tt.wantStatus == build.OutcomeSkipped && !strings.HasPrefix(descs[0], "skipped: none of the 2 files") {
				t.Errorf("skipped status says %q", descs[0])
			}
		})
	}
}

// policyEnv is a build environment that records the slot requests and grants each at once.
func policyEnv(t *testing.T) (*testsuite.TestWorkflowEnvironment, *calls, *[]activities.RequestSlotInput, *signals) {
	env := newBareEnv(t)
	var a *activities.Activities
	env.OnActivity(a.BuildLimits, mock.Anything).Return(testLimits, nil)
	var mu sync.Mutex
	var reqs []activities.RequestSlotInput
	env.OnActivity(a.RequestSlot, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.RequestSlotInput) error {
		mu.Lock()
		reqs = append(reqs, in)
		mu.Unlock()
		env.SignalWorkflow(activities.SignalSlotGranted, in.SlotsID("default-test-taskqueue"))
		return nil
	})
	var c calls
	var sig signals
	sig.mock(env)
	mockHappy(env, &c)
	return env, &c, &reqs, &sig
}

func TestDockerBuilderRunPolicies(t *testing.T) {
	for _, tt := range []struct {
		policy       string
		wantRequests string
		wantReleases string
	}{
		{"", "namespace", "slot-release:slipway-slots-default-test-taskqueue-demo"},
		{build.RunParallel, "namespace", "slot-release:slipway-slots-default-test-taskqueue-demo"},
		{build.RunSerial, "serial r-1,namespace",
			"slot-release:slipway-slots-default-test-taskqueue-demo slot-release:slipway-rule-slots-default-test-taskqueue-r-1"},
		{build.RunLatestOnly, "latest_only r-1 main,namespace",
			"slot-release:slipway-slots-default-test-taskqueue-demo slot-release:slipway-ref-slots-default-test-taskqueue-r-1-branch-main"},
	} {
		t.Run("policy "+tt.policy, func(t *testing.T) {
			env, c, reqs, sig := policyEnv(t)
			in := input()
			in.RunPolicy = tt.policy
			env.ExecuteWorkflow(DockerBuilder, in)
			if err := env.GetWorkflowError(); err != nil {
				t.Fatalf("build failed: %v", err)
			}
			var got []string
			for _, r := range *reqs {
				switch {
				case r.Policy == "":
					got = append(got, "namespace")
				case r.Policy == build.RunLatestOnly:
					got = append(got, r.Policy+" "+r.RuleID+" "+r.Ref.Name)
				default:
					got = append(got, r.Policy+" "+r.RuleID)
				}
			}
			if g := strings.Join(got, ","); g != tt.wantRequests {
				t.Errorf("slot requests %s, want %s", g, tt.wantRequests)
			}
			// A build that succeeded gives its slots back at once (versionEarlyRelease), so the
			// test environment may deliver the two in either order.
			if g, want := sortedFields(sig.String()), sortedFields(tt.wantReleases); g != want {
				t.Errorf("signals %q, want %q", g, want)
			}
			if g := c.String(); g != "clone,build,push,cleanup" {
				t.Errorf("activities ran as %s", g)
			}
		})
	}
}

// A grant from the rule's slots workflow that arrives late does not stand for the
// namespace's slot.
func TestDockerBuilderIgnoresAnotherSlotsGrant(t *testing.T) {
	env := newBareEnv(t)
	var a *activities.Activities
	env.OnActivity(a.BuildLimits, mock.Anything).Return(testLimits, nil)
	env.OnActivity(a.RequestSlot, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.RequestSlotInput) error {
		if in.Policy == build.RunSerial {
			// Granted twice: a repeated request met the first grant.
			env.SignalWorkflow(activities.SignalSlotGranted, in.SlotsID("default-test-taskqueue"))
			env.SignalWorkflow(activities.SignalSlotGranted, in.SlotsID("default-test-taskqueue"))
		}
		return nil
	})
	var c calls
	var sig signals
	sig.mock(env)
	mockHappy(env, &c)
	var ranEarly string
	env.RegisterDelayedCallback(func() { ranEarly = c.String() }, time.Minute)
	env.RegisterDelayedCallback(func() {
		env.SignalWorkflow(activities.SignalSlotGranted, "slipway-slots-default-test-taskqueue-demo")
	}, 2*time.Minute)
	in := input()
	in.RunPolicy = build.RunSerial
	env.ExecuteWorkflow(DockerBuilder, in)
	if err := env.GetWorkflowError(); err != nil {
		t.Fatalf("build failed: %v", err)
	}
	if ranEarly != "" {
		t.Fatalf("the build ran on the rule's second grant: %s", ranEarly)
	}
}

func TestDockerBuilderSupersededByANewerBuild(t *testing.T) {
	for _, tt := range []struct {
		name string
		// at is when the newer build arrives: while this one waits for its slot, or runs.
		queued bool
	}{
		{"while queued", true},
		{"while running", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			env := newBareEnv(t)
			var a *activities.Activities
			env.OnActivity(a.BuildLimits, mock.Anything).Return(testLimits, nil)
			env.OnActivity(a.RequestSlot, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.RequestSlotInput) error {
				if !tt.queued || in.Policy == "" {
					env.SignalWorkflow(activities.SignalSlotGranted, in.SlotsID("default-test-taskqueue"))
				}
				return nil
			})
			var c calls
			var sig signals
			sig.mock(env)
			env.OnActivity(a.Build, mock.Anything, mock.Anything).Return(func(ctx context.Context, _ activities.BuildInput) (activities.BuildResult, error) {
				c.add("build")
				// What the ref's slots workflow does when a newer build of the ref asks.
				env.SignalWorkflow(activities.SignalSlotSuperseded, activities.SlotSuperseded{By: "build-2"})
				env.CancelWorkflow()
				select {
				case <-ctx.Done():
					return activities.BuildResult{}, ctx.Err()
				case <-time.After(10 * time.Second):
					return activities.BuildResult{}, errors.New("build was not cancelled")
				}
			})
			mockHappy(env, &c)
			if tt.queued {
				env.RegisterDelayedCallback(func() {
					env.SignalWorkflow(activities.SignalSlotSuperseded, activities.SlotSuperseded{By: "build-2"})
					env.CancelWorkflow()
				}, time.Minute)
			}
			in := input()
			in.RunPolicy = build.RunLatestOnly
			env.ExecuteWorkflow(DockerBuilder, in)
			err := env.GetWorkflowError()
			var canceled *temporal.CanceledError
			var reason string
			if !errors.As(err, &canceled) || !canceled.HasDetails() || canceled.Details(&reason) != nil || reason != "superseded by build build-2" {
				t.Fatalf("error = %v (reason %q), want canceled, superseded by build build-2", err, reason)
			}
			want := "clone,build,cleanup"
			if tt.queued {
				want = ""
			}
			if got := c.String(); got != want {
				t.Errorf("activities ran as %s, want %s", got, want)
			}
			if got := sig.String(); !strings.Contains(got, "slot-release:slipway-ref-slots-default-test-taskqueue-r-1-branch-main") {
				t.Errorf("signals %q: the ref's slot was not given back", got)
			}
		})
	}
}

func TestBuildSlotsRunPolicies(t *testing.T) {
	for _, tt := range []struct {
		policy string
		steps  []slotStep
	}{
		{build.RunSerial, []slotStep{
			{time.Second, []string{"acquire b1", "acquire b2", "acquire b3"},
				"slot-granted:b1 slot-queued:b2(waiting for build b1 to end: the rule's run_policy is serial) slot-queued:b3(waiting for build b1 to end: the rule's run_policy is serial)"},
			{2 * time.Second, []string{"release b1"}, "slot-granted:b2"},
			{3 * time.Second, []string{"release b2"}, "slot-granted:b3"},
			{4 * time.Second, []string{"release b3"}, ""},
		}},
		{build.RunLatestOnly, []slotStep{
			{time.Second, []string{"acquire b1"}, "slot-granted:b1"},
			{2 * time.Second, []string{"acquire b2"},
				"slot-superseded:b1(build b2) slot-queued:b2(waiting for build b1, which this newer build supersedes, to stop) cancel:b1"},
			{3 * time.Second, []string{"acquire b3"},
				"slot-superseded:b1(build b3) slot-superseded:b2(build b3) slot-queued:b3(waiting for build b1, which this newer build supersedes, to stop) cancel:b1 cancel:b2"},
			// b2, canceled while waiting, leaves the queue; b1 stops and gives the slot back.
			{4 * time.Second, []string{"release b2", "release b1"}, "slot-granted:b3"},
			{5 * time.Second, []string{"release b3"}, ""},
		}},
	} {
		t.Run(tt.policy, func(t *testing.T) {
			runSlots(t, activities.SlotsInput{Namespace: "demo", Policy: tt.policy, Limit: 1}, tt.steps)
		})
	}
}

// slotStep is what a test sends a slots workflow at a time, and the signals it then sent
// since the step before.
type slotStep struct {
	at   time.Duration
	do   []string // "acquire ID" or "release ID"
	want string
}

// runSlots runs a slots workflow through steps, checking what it says to the builds.
func runSlots(t *testing.T, in activities.SlotsInput, steps []slotStep) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflow(BuildSlots)
	var a *activities.Activities
	env.RegisterActivity(a)
	env.OnActivity(a.EndedBuilds, mock.Anything, mock.Anything).Return(nil, nil)
	var mu sync.Mutex
	var sent []string
	env.OnSignalExternalWorkflow(mock.Anything, mock.Anything, mock.Anything, mock.Anything, mock.Anything).Return(
		func(_, id, _, name string, arg any) error {
			mu.Lock()
			defer mu.Unlock()
			entry := name + ":" + id
			switch v := arg.(type) {
			case activities.SlotQueued:
				entry += "(" + v.Reason() + ")"
			case activities.SlotSuperseded:
				entry += "(build " + v.By + ")"
			}
			sent = append(sent, entry)
			return nil
		})
	env.OnRequestCancelExternalWorkflow(mock.Anything, mock.Anything, mock.Anything).Return(func(_, id, _ string) error {
		mu.Lock()
		defer mu.Unlock()
		sent = append(sent, "cancel:"+id)
		return nil
	})
	for _, st := range steps {
		env.RegisterDelayedCallback(func() {
			mu.Lock()
			sent = nil
			mu.Unlock()
			for _, d := range st.do {
				verb, id, _ := strings.Cut(d, " ")
				h := activities.SlotHolder{WorkflowID: id, RunID: "run-" + id}
				if verb == "acquire" {
					env.SignalWorkflow(activities.SignalSlotAcquire, activities.SlotRequest{SlotHolder: h, Limit: 1})
				} else {
					env.SignalWorkflow(activities.SignalSlotRelease, h)
				}
			}
			env.RegisterDelayedCallback(func() {
				mu.Lock()
				defer mu.Unlock()
				// Signals to different workflows go out concurrently, in no set order.
				got, want := slices.Sorted(slices.Values(sent)), signalList(st.want)
				slices.Sort(want)
				if !slices.Equal(got, want) {
					t.Errorf("after %s: signals %q, want %q", st.at, got, want)
				}
			}, time.Millisecond)
		}, st.at)
	}
	env.ExecuteWorkflow(BuildSlots, in)
	if err := env.GetWorkflowError(); err != nil {
		t.Fatalf("slots workflow failed: %v", err)
	}
}

// signalList splits a want string of policy tests into its entries, which hold spaces in
// their reasons: each entry starts with "slot-" or "cancel:".
func signalList(s string) []string {
	if s == "" {
		return nil
	}
	s = strings.NewReplacer(" slot-", "\x00slot-", " cancel:", "\x00cancel:").Replace(s)
	return strings.Split(s, "\x00")
}

// sortedFields is s's space-separated fields, sorted.
func sortedFields(s string) string {
	f := strings.Fields(s)
	sort.Strings(f)
	return strings.Join(f, " ")
}
