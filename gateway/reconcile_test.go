package gateway

import (
	"context"
	"errors"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/slipway-dev/slipway/build"
)

// describeReconcile describes rule's reconcile Schedule; nil when there is none.
func describeReconcile(t *testing.T, ruleID string) *client.ScheduleDescription {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d, err := h.temporal.ScheduleClient().GetHandle(ctx, reconcileScheduleID(ruleID)).Describe(ctx)
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestReconcileSchedule(t *testing.T) {
	h := devStack(t)
	tm := h.newTeam(t, "reconcile")
	body := githubRule()
	body["reconcile_every"] = "5m"
	body["run_policy"] = "serial"
	rule := h.createRule(t, tm, body)

	d := describeReconcile(t, rule.ID)
	if d == nil {
		t.Fatal("no reconcile schedule after creating a rule with reconcile_every")
	}
	if iv := d.Schedule.Spec.Intervals; len(iv) != 1 || iv[0].Every != 5*time.Minute {
		t.Errorf("schedule intervals %+v, want every 5m", iv)
	}
	act, ok := d.Schedule.Action.(*client.ScheduleWorkflowAction)
	if !ok || act.Workflow != build.ReconcileWorkflowName || len(act.Args) != 1 {
		t.Fatalf("schedule action %+v", d.Schedule.Action)
	}
	var in build.ReconcileInput
	p, ok := act.Args[0].(*commonpb.Payload)
	if !ok {
		t.Fatalf("schedule input %T is no payload", act.Args[0])
	}
	if err := converter.GetDefaultDataConverter().FromPayload(p, &in); err != nil {
		t.Fatal(err)
	}
	if in.Template.RuleID != rule.ID || in.Template.RunPolicy != build.RunSerial || in.Template.Image == "" ||
		len(in.Triggers.Branches) != 2 || in.Template.Source.Repository != "hello" {
		t.Errorf("schedule input %+v", in)
	}

	// An update writes the schedule again; reconcile_every "" removes it.
	body["reconcile_every"] = "2m"
	expect(t, h.do(t, "PUT", tm.rule(rule.ID), h.writer, body), 200, "updating the rule")
	if d := describeReconcile(t, rule.ID); d == nil || d.Schedule.Spec.Intervals[0].Every != 2*time.Minute {
		t.Fatalf("schedule after the update: %+v", d)
	}
	body["reconcile_every"] = ""
	expect(t, h.do(t, "PUT", tm.rule(rule.ID), h.writer, body), 200, "turning reconciliation off")
	if d := describeReconcile(t, rule.ID); d != nil {
		t.Fatal("the schedule outlived reconcile_every \"\"")
	}

	// Deleting the rule deletes its schedule.
	body["reconcile_every"] = "1m"
	expect(t, h.do(t, "PUT", tm.rule(rule.ID), h.writer, body), 200, "turning reconciliation on again")
	if describeReconcile(t, rule.ID) == nil {
		t.Fatal("no schedule after turning reconciliation on again")
	}
	expect(t, h.do(t, "DELETE", tm.rule(rule.ID), h.writer, nil), 204, "deleting the rule")
	if describeReconcile(t, rule.ID) != nil {
		t.Fatal("the schedule outlived its rule")
	}
}
