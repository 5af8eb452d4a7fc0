package workflows

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/testsuite"

	"github.com/slipway-dev/slipway/activities"
	"github.com/slipway-dev/slipway/build"
)

func TestReconcileStartsWhatNoDeliveryBrought(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflow(Reconcile)
	var a *activities.Activities
	env.RegisterActivity(a)
	in := build.ReconcileInput{Template: input(), Triggers: build.Triggers{Branches: []string{"main", "release/*"}}}
	var asked activities.MissedHeadsInput
	env.OnActivity(a.MissedHeads, mock.Anything, mock.Anything).Return(func(_ context.Context, q activities.MissedHeadsInput) (activities.MissedHeads, error) {
		asked = q
		return activities.MissedHeads{Missed: []activities.MissedHead{
			{Ref: build.Ref{Type: build.RefBranch, Name: "main"}, Commit: commit, Default: true},
			{Ref: build.Ref{Type: build.RefBranch, Name: "release/1"}, Commit: strings.Repeat("2", 40)},
			{Ref: build.Ref{Type: build.RefBranch, Name: "release/2"}, Commit: strings.Repeat("3", 40)},
		}, Seen: map[string]string{
			"refs/heads/main": commit, "refs/heads/release/1": strings.Repeat("2", 40),
			"refs/heads/release/2": strings.Repeat("3", 40), "refs/heads/release/3": strings.Repeat("4", 40),
		}}, nil
	})
	// What the Schedule's previous run returned.
	env.SetLastCompletionResult(ReconcileResult{Seen: map[string]string{"refs/heads/main": strings.Repeat("9", 40)}})
	env.OnActivity(a.StartReconciled, mock.Anything, mock.Anything).Return(func(_ context.Context, s activities.StartReconciledInput) (string, error) {
		if s.Reconcile.Template.RuleID != "r-1" {
			return "", errors.New("no rule")
		}
		if s.Head.Ref.Name == "release/2" {
			return "", errors.New("temporal is away")
		}
		return "build-" + s.Head.Ref.Name, nil
	})
	env.ExecuteWorkflow(Reconcile, in)
	if err := env.GetWorkflowError(); err != nil {
		t.Fatalf("reconcile failed: %v", err)
	}
	var res ReconcileResult
	if err := env.GetWorkflowResult(&res); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(res.Started, ","); got != "build-main,build-release/1" {
		t.Errorf("started %s, want the builds whose start did not fail", got)
	}
	if asked.Seen["refs/heads/main"] != strings.Repeat("9", 40) {
		t.Errorf("the previous run's heads did not reach the activity: %v", asked.Seen)
	}
	// The head whose build did not start is not reported seen, so the next run tries again.
	if _, ok := res.Seen["refs/heads/release/2"]; ok || len(res.Seen) != 3 {
		t.Errorf("seen %v, want every head but release/2's", res.Seen)
	}
}
