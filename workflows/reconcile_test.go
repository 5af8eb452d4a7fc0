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
	in := activities.ReconcileInput{Template: input(), Triggers: build.Triggers{Branches: []string{"main", "release/*"}}}
	env.OnActivity(a.MissedHeads, mock.Anything, mock.Anything).Return([]activities.MissedHead{
		{Ref: build.Ref{Type: build.RefBranch, Name: "main"}, Commit: commit, Default: true},
		{Ref: build.Ref{Type: build.RefBranch, Name: "release/1"}, Commit: strings.Repeat("2", 40)},
		{Ref: build.Ref{Type: build.RefBranch, Name: "release/2"}, Commit: strings.Repeat("3", 40)},
	}, nil)
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
}
