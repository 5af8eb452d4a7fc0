package workflows

import (
	"context"
	"testing"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/testsuite"

	"github.com/slipway-dev/slipway/activities"
	"github.com/slipway-dev/slipway/build"
	"github.com/slipway-dev/slipway/retention"
)

func TestRetentionReturnsWhatWasDeleted(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflow(Retention)
	var a *activities.Activities
	env.RegisterActivity(a)
	in := build.RetentionInput{Namespace: "demo", Repository: "app"}
	env.OnActivity(a.ApplyRetention, mock.Anything, in).Return(func(context.Context, build.RetentionInput) (activities.RetentionResult, error) {
		return activities.RetentionResult{Policy: true, Deleted: []retention.Decision{{Tag: retention.Tag{Name: "main-1"}, Reason: "old"}}}, nil
	})
	env.ExecuteWorkflow(Retention, in)
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	var res activities.RetentionResult
	if err := env.GetWorkflowResult(&res); err != nil {
		t.Fatal(err)
	}
	if len(res.Deleted) != 1 || res.Deleted[0].Name != "main-1" {
		t.Fatalf("result %+v", res)
	}
}
