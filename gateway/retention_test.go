package gateway

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/slipway-dev/slipway/build"
	"github.com/slipway-dev/slipway/retention"
)

func describeRetention(t *testing.T, h *harness, ns, repo string) *client.ScheduleDescription {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d, err := h.temporal.ScheduleClient().GetHandle(ctx, retention.ScheduleID(ns, repo)).Describe(ctx)
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestRetentionRoles: readers see a policy and dry-run it, writers set and remove it,
// non-members see nothing; the repository's Schedule follows the policy.
func TestRetentionRoles(t *testing.T) {
	h := devStack(t)
	tm := h.newTeam(t, "retention")
	path := "/api/v1/namespaces/" + tm.ns + "/repositories/app/retention"
	policy := map[string]any{"rules": []map[string]any{{"tag_pattern": "main-*", "keep_last": 3}}, "every": "12h"}

	if r := h.do(t, "GET", path, h.reader, nil); r.code != 404 || !strings.Contains(string(r.body), "retention policy") {
		t.Fatalf("reading before any policy: %s", r)
	}
	if r := h.do(t, "GET", "/api/v1/namespaces/"+tm.ns+"/repositories/nope/retention", h.reader, nil); r.code != 404 || !strings.Contains(string(r.body), `repository \"nope\" not found`) {
		t.Fatalf("reading the policy of a missing repository: %s", r)
	}
	expect(t, h.do(t, "POST", path+"/dry-run", h.reader, nil), 404, "dry run without a policy")
	expect(t, h.do(t, "PUT", path, h.reader, policy), 403, "a reader setting a policy")
	expect(t, h.do(t, "PUT", path, h.outsider, policy), 404, "an outsider setting a policy")
	for name, bad := range map[string]any{
		"keeps nothing": map[string]any{"rules": []map[string]any{{"tag_pattern": "*"}}},
		"no rules":      map[string]any{"rules": []map[string]any{}},
		"bad pattern":   map[string]any{"rules": []map[string]any{{"tag_pattern": "/(/", "keep_last": 1}}},
		"bad duration":  map[string]any{"rules": []map[string]any{{"tag_pattern": "*", "keep_younger_than": "a month"}}},
		"unknown field": map[string]any{"rules": []map[string]any{{"tag_pattern": "*", "keep_last": 1, "keep_first": 2}}},
	} {
		expect(t, h.do(t, "PUT", path, h.writer, bad), 400, "a policy that "+name)
	}
	if describeRetention(t, h, tm.ns, "app") != nil {
		t.Fatal("a schedule exists before any policy was saved")
	}
	expect(t, h.do(t, "PUT", path, h.writer, policy), 200, "a writer setting a policy")
	expect(t, h.do(t, "PUT", "/api/v1/namespaces/"+tm.ns+"/repositories/nope/retention", h.writer, policy), 404, "a policy of a missing repository")

	var got struct {
		Rules    []build.RetentionRule `json:"rules"`
		Every    string                `json:"every"`
		Schedule string                `json:"schedule"`
	}
	r := h.do(t, "GET", path, h.reader, nil)
	expect(t, r, 200, "a reader reading the policy")
	r.decode(t, &got)
	if len(got.Rules) != 1 || got.Rules[0].KeepLast != 3 || got.Every != "12h0m0s" || got.Schedule != retention.ScheduleID(tm.ns, "app") {
		t.Fatalf("policy read back: %s", r)
	}
	expect(t, h.do(t, "GET", path, h.outsider, nil), 404, "an outsider reading the policy")
	expect(t, h.do(t, "POST", path+"/dry-run", h.outsider, nil), 404, "an outsider's dry run")
	// A reader's dry run gets past the role check: the registry answers it (200), or, when
	// none listens on the harness's registry address, the gateway says the registry failed.
	if r := h.do(t, "POST", path+"/dry-run", h.reader, nil); r.code != 200 && r.code != 502 {
		t.Fatalf("a reader's dry run: %s", r)
	}
	expect(t, h.do(t, "POST", path+"/dry-run", h.reader, map[string]any{"rules": []map[string]any{{"tag_pattern": "*"}}}), 400, "a dry run of a bad policy")

	d := describeRetention(t, h, tm.ns, "app")
	if d == nil {
		t.Fatal("no schedule after the policy was saved")
	}
	if iv := d.Schedule.Spec.Intervals; len(iv) != 1 || iv[0].Every != 12*time.Hour {
		t.Errorf("schedule intervals %+v, want every 12h", iv)
	}
	act, ok := d.Schedule.Action.(*client.ScheduleWorkflowAction)
	if !ok || act.Workflow != build.RetentionWorkflowName || len(act.Args) != 1 {
		t.Fatalf("schedule action %+v", d.Schedule.Action)
	}
	var in build.RetentionInput
	p, ok := act.Args[0].(*commonpb.Payload)
	if !ok {
		t.Fatalf("schedule input %T is no payload", act.Args[0])
	}
	if err := converter.GetDefaultDataConverter().FromPayload(p, &in); err != nil {
		t.Fatal(err)
	}
	if in != (build.RetentionInput{Namespace: tm.ns, Repository: "app"}) {
		t.Errorf("schedule input %+v", in)
	}

	// An update writes the schedule again; DELETE removes policy and schedule.
	policy["every"] = "1h"
	expect(t, h.do(t, "PUT", path, h.writer, policy), 200, "updating the policy")
	if d := describeRetention(t, h, tm.ns, "app"); d == nil || d.Schedule.Spec.Intervals[0].Every != time.Hour {
		t.Fatalf("schedule after the update: %+v", d)
	}
	expect(t, h.do(t, "DELETE", path, h.reader, nil), 403, "a reader removing the policy")
	expect(t, h.do(t, "DELETE", path, h.writer, nil), 204, "a writer removing the policy")
	expect(t, h.do(t, "DELETE", path, h.writer, nil), 404, "removing it again")
	if describeRetention(t, h, tm.ns, "app") != nil {
		t.Fatal("the schedule outlived its policy")
	}

	// Deleting the repository deletes its schedule.
	expect(t, h.do(t, "PUT", path, h.writer, policy), 200, "setting the policy again")
	expect(t, h.do(t, "DELETE", "/api/v1/namespaces/"+tm.ns+"/repositories/app", h.owner, nil), 200, "deleting the repository")
	if describeRetention(t, h, tm.ns, "app") != nil {
		t.Fatal("the schedule outlived its repository")
	}
}

// TestREADMERetentionExample saves the README's retention policy: it must be valid as shown.
func TestREADMERetentionExample(t *testing.T) {
	h := devStack(t)
	tm := h.newTeam(t, "readme-retention")
	for _, body := range readmeBodies(t, "/repositories/app/retention") {
		expect(t, h.do(t, "PUT", "/api/v1/namespaces/"+tm.ns+"/repositories/app/retention", h.writer, body), 200, "the README's policy")
	}
}
