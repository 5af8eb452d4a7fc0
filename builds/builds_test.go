package builds

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/serviceerror"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/mocks"
	"go.temporal.io/sdk/temporal"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/slipway-dev/slipway/build"
	"github.com/slipway-dev/slipway/store"
)

var testSettings = Settings{
	TaskQueue: "q", TemporalNamespace: "default", Registry: "registry.test:5000",
	GatewayURL: "http://gw.test", TemporalUIURL: "http://ui.test",
}

func testRule() store.Rule {
	return store.Rule{
		ID: "r1", Namespace: "team", Repository: "app", AccountID: "acct",
		Source:         store.Source{Provider: "github", Owner: "octo", Repository: "hello"},
		DockerfilePath: "build/Dockerfile", ContextPath: "src", TagTemplate: "{ref}",
		BuildArgs: map[string]string{"A": "rule", "B": "rule"}, SanitizeRef: true, Cache: "off",
	}
}

// payload encodes v as the default data converter does on the wire.
func payload(t *testing.T, v any) *commonpb.Payload {
	t.Helper()
	p, err := converter.GetDefaultDataConverter().ToPayload(v)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestStart(t *testing.T) {
	for _, tc := range []struct {
		name        string
		timeout     string
		commit      string
		wantTimeout time.Duration
	}{
		{"default timeout, no commit", "", "", build.DefaultTimeout + 5*time.Minute},
		{"own timeout and a commit", "30m", strings.Repeat("ab", 20), 35 * time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc0 := mocks.NewClient(t)
			run := mocks.NewWorkflowRun(t)
			run.On("GetID").Return("build-1")
			run.On("GetRunID").Return("run-1")
			var opts client.StartWorkflowOptions
			var in build.Input
			tc0.On("ExecuteWorkflow", mock.Anything, mock.Anything, build.WorkflowName, mock.Anything).
				Run(func(args mock.Arguments) {
					opts = args.Get(1).(client.StartWorkflowOptions)
					in = args.Get(3).(build.Input)
				}).Return(run, nil).Once()
			s := New(tc0, testSettings)
			rule := testRule()
			rule.Timeout = tc.timeout
			id, runID, started, err := s.Start(context.Background(), Request{
				ID: "build-1", Rule: rule, Ref: build.Ref{Type: build.RefBranch, Name: "main"},
				Commit: tc.commit, Trigger: build.TriggerManual, BuildArgs: map[string]string{"B": "req", "C": "req"},
			})
			if err != nil || id != "build-1" || runID != "run-1" || !started {
				t.Fatalf("Start = %q, %q, %v, %v", id, runID, started, err)
			}
			if opts.ID != "build-1" || opts.TaskQueue != "q" || opts.WorkflowExecutionTimeout != tc.wantTimeout {
				t.Errorf("options id %q, queue %q, timeout %s", opts.ID, opts.TaskQueue, opts.WorkflowExecutionTimeout)
			}
			if opts.WorkflowIDConflictPolicy != enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING ||
				opts.WorkflowIDReusePolicy != enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE {
				t.Errorf("id policies %v, %v: a repeated id must find the build it started", opts.WorkflowIDConflictPolicy, opts.WorkflowIDReusePolicy)
			}
			want := map[temporal.SearchAttributeKeyKeyword]string{
				build.AttrNamespace: "team", build.AttrRepository: "app", build.AttrRule: "r1",
				build.AttrRef: "main", build.AttrTrigger: build.TriggerManual,
			}
			if tc.commit != "" {
				want[build.AttrCommit] = tc.commit
			}
			if n := opts.TypedSearchAttributes.Size(); n != len(want) {
				t.Errorf("%d search attributes, want %d", n, len(want))
			}
			for k, v := range want {
				if got, _ := opts.TypedSearchAttributes.GetKeyword(k); got != v {
					t.Errorf("search attribute %s = %q, want %q", k.GetName(), got, v)
				}
			}
			wantMemo := map[string]any{build.MemoImage: "registry.test:5000/team/app", build.MemoLogURL: "http://gw.test/api/v1/builds/build-1/logs"}
			if !reflect.DeepEqual(opts.Memo, wantMemo) {
				t.Errorf("memo %v, want %v", opts.Memo, wantMemo)
			}
			wantIn := build.Input{
				Namespace: "team", Repository: "app", RuleID: "r1",
				Source: build.Source{Provider: "github", Owner: "octo", Repository: "hello", AccountID: "acct"},
				Ref:    build.Ref{Type: build.RefBranch, Name: "main"}, Commit: tc.commit,
				DockerfilePath: "build/Dockerfile", ContextPath: "src", TagTemplate: "{ref}",
				BuildArgs: map[string]string{"A": "rule", "B": "req", "C": "req"},
				Image:     "registry.test:5000/team/app", Trigger: build.TriggerManual,
				SanitizeRef: true, Timeout: tc.timeout, Cache: "off",
			}
			if !reflect.DeepEqual(in, wantIn) {
				t.Errorf("input\n %+v\nwant\n %+v", in, wantIn)
			}
		})
	}
}

func TestStartFindsExisting(t *testing.T) {
	for _, tc := range []struct {
		name        string
		err         error
		wantRun     string
		wantStarted bool
		wantErr     bool
	}{
		{"finished build under the id", serviceerror.NewWorkflowExecutionAlreadyStarted("done", "", "run-old"), "run-old", false, false},
		{"Temporal down", serviceerror.NewUnavailable("down"), "", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := mocks.NewClient(t)
			c.On("ExecuteWorkflow", mock.Anything, mock.Anything, build.WorkflowName, mock.Anything).Return(nil, tc.err).Once()
			id, runID, started, err := New(c, testSettings).Start(context.Background(), Request{ID: "build-1", Rule: testRule()})
			if (err != nil) != tc.wantErr || runID != tc.wantRun || started != tc.wantStarted {
				t.Fatalf("Start = %q, %q, %v, %v", id, runID, started, err)
			}
			if !tc.wantErr && id != "build-1" {
				t.Errorf("id %q, want the request's", id)
			}
		})
	}
}

func TestQueryText(t *testing.T) {
	base := "WorkflowType = 'workflow_docker_builder' AND SlipwayNamespace = 'team' AND SlipwayRepository = 'app'"
	for _, tc := range []struct {
		name    string
		q       Query
		want    string
		wantErr string
	}{
		{"repository", Query{Namespace: "team", Repository: "app"}, base, ""},
		{"rule", Query{Namespace: "team", Repository: "app", Rule: "r-1"}, base + " AND SlipwayRule = 'r-1'", ""},
		{"status", Query{Namespace: "team", Repository: "app", Status: "timed_out"}, base + " AND ExecutionStatus = 'TimedOut'", ""},
		{"superseded is completed", Query{Namespace: "team", Repository: "app", Status: "superseded"}, base + " AND ExecutionStatus = 'Completed'", ""},
		{"rule and status", Query{Namespace: "team", Repository: "app", Rule: "r", Status: "running"}, base + " AND SlipwayRule = 'r' AND ExecutionStatus = 'Running'", ""},
		{"quote in a rule", Query{Namespace: "team", Repository: "app", Rule: "r' OR 'a' = 'a"}, "", "is not a rule id"},
		{"unknown status", Query{Namespace: "team", Repository: "app", Status: "done"}, "", `status "done" is not one of`},
		{"quote in a namespace", Query{Namespace: "te'am", Repository: "app"}, "", "cannot be searched for"},
		{"backslash in a repository", Query{Namespace: "team", Repository: `a\`}, "", "cannot be searched for"},
		{"newline in a repository", Query{Namespace: "team", Repository: "a\nb"}, "", "cannot be searched for"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.q.text()
			if tc.wantErr != "" {
				var qe *QueryError
				if !errors.As(err, &qe) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("text() = %q, %v; want a QueryError with %q", got, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("text() = %q, %v\nwant %q", got, err, tc.want)
			}
		})
	}
}

// execution is a visibility entry of a build with the given status, memo and start time.
func execution(t *testing.T, id string, status enumspb.WorkflowExecutionStatus, started time.Time, memo map[string]any) *workflowpb.WorkflowExecutionInfo {
	t.Helper()
	fields := map[string]*commonpb.Payload{}
	for k, v := range memo {
		fields[k] = payload(t, v)
	}
	info := &workflowpb.WorkflowExecutionInfo{
		Execution: &commonpb.WorkflowExecution{WorkflowId: id, RunId: "run-" + id},
		Type:      &commonpb.WorkflowType{Name: build.WorkflowName},
		Status:    status,
		StartTime: timestamppb.New(started),
		Memo:      &commonpb.Memo{Fields: fields},
		SearchAttributes: &commonpb.SearchAttributes{IndexedFields: map[string]*commonpb.Payload{
			build.AttrNamespace.GetName():  payload(t, "team"),
			build.AttrRepository.GetName(): payload(t, "app"),
			build.AttrRule.GetName():       payload(t, "r1"),
			build.AttrRef.GetName():        payload(t, "main"),
			build.AttrTrigger.GetName():    payload(t, "push"),
			build.AttrCommit.GetName():     payload(t, "c0ffee"),
		}},
	}
	if status != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		info.CloseTime = timestamppb.New(started.Add(time.Minute))
	}
	return info
}

func TestRecord(t *testing.T) {
	s := New(nil, testSettings)
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		name       string
		status     enumspb.WorkflowExecutionStatus
		memo       map[string]any
		wantStatus string
		wantReason string
		wantError  string
	}{
		{"running", enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, nil, "running", "", ""},
		{"queued", enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, map[string]any{build.MemoQueued: "waiting for a slot"}, "queued", "waiting for a slot", ""},
		{"succeeded", enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED, nil, "succeeded", "", ""},
		{"superseded", enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED, map[string]any{build.MemoOutcome: build.OutcomeSuperseded, build.MemoReason: "left main"}, "superseded", "left main", ""},
		{"failed", enumspb.WORKFLOW_EXECUTION_STATUS_FAILED, map[string]any{build.MemoError: "boom"}, "failed", "", "boom"},
		{"failed at its timeout", enumspb.WORKFLOW_EXECUTION_STATUS_FAILED, map[string]any{build.MemoErrorType: build.ErrTypeTimedOut, build.MemoError: "too slow"}, "timed_out", "", "too slow"},
		{"canceled", enumspb.WORKFLOW_EXECUTION_STATUS_CANCELED, nil, "canceled", "", "canceled"},
		{"terminated", enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED, nil, "terminated", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := s.record(execution(t, "b1", tc.status, t0, tc.memo))
			if rec.Status != tc.wantStatus || rec.Reason != tc.wantReason || rec.Error != tc.wantError {
				t.Errorf("status %q reason %q error %q, want %q %q %q", rec.Status, rec.Reason, rec.Error, tc.wantStatus, tc.wantReason, tc.wantError)
			}
			if rec.Running() != (tc.status == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING) {
				t.Errorf("Running() = %v for %v", rec.Running(), tc.status)
			}
			if rec.ID != "b1" || rec.RunID != "run-b1" || rec.Namespace != "team" || rec.Repository != "app" ||
				rec.RuleID != "r1" || rec.Ref != "main" || rec.Trigger != "push" || rec.Commit != "c0ffee" || !rec.StartedAt.Equal(t0) {
				t.Errorf("record %+v does not carry the execution's attributes", rec)
			}
			if (rec.FinishedAt == nil) != (tc.status == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING) {
				t.Errorf("finished_at %v for %v", rec.FinishedAt, tc.status)
			}
			if rec.Tags == nil {
				t.Error("tags is null, want []")
			}
			if rec.UIURL != "http://ui.test/namespaces/default/workflows/b1/run-b1/history" || rec.LogsURL != "http://gw.test/api/v1/builds/b1/logs" {
				t.Errorf("links %q %q", rec.UIURL, rec.LogsURL)
			}
		})
	}
	t.Run("memo of a pushed build", func(t *testing.T) {
		rec := s.record(execution(t, "b2", enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED, t0, map[string]any{
			build.MemoTags: []string{"main", "main-abc"}, build.MemoDigest: "sha256:1", build.MemoImage: "reg/team/app",
			build.MemoCommit: "abc", build.MemoHeldTags: []build.HeldTag{{Tag: "latest", Reason: "newer"}},
		}))
		if !reflect.DeepEqual(rec.Tags, []string{"main", "main-abc"}) || rec.Digest != "sha256:1" || rec.Image != "reg/team/app" ||
			rec.Commit != "abc" || !reflect.DeepEqual(rec.HeldTags, []build.HeldTag{{Tag: "latest", Reason: "newer"}}) {
			t.Errorf("record %+v does not carry the memo", rec)
		}
	})
}

func TestList(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	c := mocks.NewClient(t)
	var req *workflowservice.ListWorkflowExecutionsRequest
	c.On("ListWorkflow", mock.Anything, mock.Anything).Run(func(args mock.Arguments) {
		req = args.Get(1).(*workflowservice.ListWorkflowExecutionsRequest)
	}).Return(&workflowservice.ListWorkflowExecutionsResponse{
		Executions: []*workflowpb.WorkflowExecutionInfo{
			execution(t, "old", enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED, t0, nil),
			execution(t, "superseded", enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED, t0.Add(time.Hour), map[string]any{build.MemoOutcome: build.OutcomeSuperseded}),
			execution(t, "new", enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED, t0.Add(2*time.Hour), nil),
		},
		NextPageToken: []byte("next"),
	}, nil).Once()
	recs, next, err := New(c, testSettings).List(context.Background(), Query{Namespace: "team", Repository: "app", Status: "succeeded", Limit: 2, PageToken: []byte("tok")})
	if err != nil {
		t.Fatal(err)
	}
	if req.GetNamespace() != "default" || req.GetPageSize() != 2 || string(req.GetNextPageToken()) != "tok" ||
		req.GetQuery() != "WorkflowType = 'workflow_docker_builder' AND SlipwayNamespace = 'team' AND SlipwayRepository = 'app' AND ExecutionStatus = 'Completed'" {
		t.Errorf("request %v", req)
	}
	// Succeeded and superseded share Completed: the superseded build is left out.
	var ids []string
	for _, r := range recs {
		ids = append(ids, r.ID)
	}
	if !reflect.DeepEqual(ids, []string{"new", "old"}) || string(next) != "next" {
		t.Errorf("ids %v next %q, want [new old] newest first and the server's token", ids, next)
	}

	t.Run("refused query asks nothing", func(t *testing.T) {
		c := mocks.NewClient(t)
		if _, _, err := New(c, testSettings).List(context.Background(), Query{Namespace: "team", Repository: "app", Rule: "a b"}); err == nil {
			t.Fatal("a rule that is no id was listed")
		}
	})
}

// describing answers DescribeWorkflow for id with info.
func describing(c *mocks.Client, id string, info *workflowpb.WorkflowExecutionInfo, err error) {
	var d *client.WorkflowExecutionDescription
	if info != nil {
		d = &client.WorkflowExecutionDescription{
			WorkflowExecutionMetadata: client.WorkflowExecutionMetadata{Status: info.GetStatus()},
			RawResponse:               &workflowservice.DescribeWorkflowExecutionResponse{WorkflowExecutionInfo: info},
		}
	}
	c.On("DescribeWorkflow", mock.Anything, id, mock.Anything).Return(d, err)
}

func TestGet(t *testing.T) {
	t0 := time.Now()
	foreign := execution(t, "foreign", enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, t0, nil)
	foreign.Type.Name = "other_workflow"
	bare := execution(t, "bare", enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, t0, nil)
	delete(bare.SearchAttributes.IndexedFields, build.AttrNamespace.GetName())
	c := mocks.NewClient(t)
	describing(c, "b1", execution(t, "b1", enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, t0, nil), nil)
	describing(c, "gone", nil, serviceerror.NewNotFound("no such workflow"))
	describing(c, "foreign", foreign, nil)
	describing(c, "bare", bare, nil)
	describing(c, "down", nil, serviceerror.NewUnavailable("down"))
	s := New(c, testSettings)
	for _, tc := range []struct {
		id      string
		wantErr error
	}{
		{"b1", nil},
		{"gone", ErrNotFound},
		{"foreign", ErrNotFound},
		{"bare", ErrNotFound},
		{"no/such id", ErrNotFound},
	} {
		t.Run(tc.id, func(t *testing.T) {
			rec, err := s.Get(context.Background(), tc.id)
			if !errors.Is(err, tc.wantErr) || (err == nil && (rec.ID != tc.id || !rec.Running())) {
				t.Fatalf("Get(%q) = %+v, %v; want error %v", tc.id, rec, err, tc.wantErr)
			}
		})
	}
	t.Run("down", func(t *testing.T) {
		if _, err := s.Get(context.Background(), "down"); err == nil || errors.Is(err, ErrNotFound) {
			t.Fatalf("Get with Temporal down = %v, want an error that is not ErrNotFound", err)
		}
	})
}

// history is a mocked iterator over events.
func history(t *testing.T, events ...*historypb.HistoryEvent) *mocks.HistoryEventIterator {
	it := mocks.NewHistoryEventIterator(t)
	i := 0
	it.On("HasNext").Return(func() bool { return i < len(events) }).Maybe()
	it.On("Next").Return(func() (*historypb.HistoryEvent, error) { i++; return events[i-1], nil }).Maybe()
	return it
}

func startedEvent(payloads ...*commonpb.Payload) *historypb.HistoryEvent {
	return &historypb.HistoryEvent{
		EventType: enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED,
		Attributes: &historypb.HistoryEvent_WorkflowExecutionStartedEventAttributes{
			WorkflowExecutionStartedEventAttributes: &historypb.WorkflowExecutionStartedEventAttributes{
				Input: &commonpb.Payloads{Payloads: payloads},
			},
		},
	}
}

func event(typ enumspb.EventType) *historypb.HistoryEvent {
	return &historypb.HistoryEvent{EventType: typ}
}

func TestInput(t *testing.T) {
	in := build.Input{Namespace: "team", Repository: "app", RuleID: "r1", Commit: "abc",
		Ref: build.Ref{Type: build.RefTag, Name: "v1"}, BuildArgs: map[string]string{"A": "1"}}
	for _, tc := range []struct {
		name        string
		events      func(t *testing.T) []*historypb.HistoryEvent
		wantTakenUp bool
		wantErr     string
	}{
		{"taken up", func(t *testing.T) []*historypb.HistoryEvent {
			return []*historypb.HistoryEvent{startedEvent(payload(t, in)), event(enumspb.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED),
				event(enumspb.EVENT_TYPE_WORKFLOW_TASK_STARTED), event(enumspb.EVENT_TYPE_WORKFLOW_TASK_COMPLETED)}
		}, true, ""},
		{"waiting for a worker", func(t *testing.T) []*historypb.HistoryEvent {
			return []*historypb.HistoryEvent{startedEvent(payload(t, in)), event(enumspb.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED)}
		}, false, ""},
		{"empty history", func(*testing.T) []*historypb.HistoryEvent { return nil }, false, "empty history"},
		{"two inputs", func(t *testing.T) []*historypb.HistoryEvent {
			return []*historypb.HistoryEvent{startedEvent(payload(t, in), payload(t, in))}
		}, false, "2 inputs"},
		{"not an input", func(t *testing.T) []*historypb.HistoryEvent {
			return []*historypb.HistoryEvent{startedEvent(payload(t, "a string"))}
		}, false, "decoding input"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := mocks.NewClient(t)
			c.On("GetWorkflowHistory", mock.Anything, "b1", "run-b1", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT).
				Return(history(t, tc.events(t)...)).Once()
			got, takenUp, err := New(c, testSettings).Input(context.Background(), "b1", "run-b1")
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Input error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || takenUp != tc.wantTakenUp || !reflect.DeepEqual(got, in) {
				t.Fatalf("Input = %+v, %v, %v; want %+v, %v", got, takenUp, err, in, tc.wantTakenUp)
			}
		})
	}
}

func TestDetails(t *testing.T) {
	in := build.Input{Namespace: "team", Repository: "app", Image: "reg/team/app"}
	steps := []build.StepStatus{{Name: "clone", HostAttempt: 1}}
	c := mocks.NewClient(t)
	c.On("GetWorkflowHistory", mock.Anything, "b1", "run-b1", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT).
		Return(history(t, startedEvent(payload(t, in)), event(enumspb.EVENT_TYPE_WORKFLOW_TASK_COMPLETED))).Once()
	v := mocks.NewEncodedValue(t)
	v.On("Get", mock.Anything).Run(func(args mock.Arguments) {
		*args.Get(0).(*build.Status) = build.Status{Steps: steps}
	}).Return(nil).Once()
	c.On("QueryWorkflow", mock.Anything, "b1", "run-b1", build.StatusQuery).Return(v, nil).Once()
	rec, err := New(c, testSettings).Details(context.Background(), Record{ID: "b1", RunID: "run-b1"})
	if err != nil {
		t.Fatal(err)
	}
	// The defaults the workflow applies are shown, not left empty.
	want := &Params{Image: "reg/team/app", DockerfilePath: build.DefaultDockerfile, TagTemplate: build.DefaultTagTemplate}
	if !reflect.DeepEqual(rec.Params, want) || !reflect.DeepEqual(rec.Steps, steps) {
		t.Errorf("params %+v steps %+v, want %+v %+v", rec.Params, rec.Steps, want, steps)
	}
}

func TestCancel(t *testing.T) {
	c := mocks.NewClient(t)
	c.On("CancelWorkflow", mock.Anything, "b1", "run-b1").Return(nil).Once()
	c.On("CancelWorkflow", mock.Anything, "b2", "run-b2").Return(serviceerror.NewUnavailable("down")).Once()
	s := New(c, testSettings)
	if err := s.Cancel(context.Background(), Record{ID: "b1", RunID: "run-b1"}); err != nil {
		t.Errorf("Cancel: %v", err)
	}
	if err := s.Cancel(context.Background(), Record{ID: "b2", RunID: "run-b2"}); err == nil {
		t.Error("Cancel with Temporal down gave no error")
	}
}

func TestFollowers(t *testing.T) {
	c := mocks.NewClient(t)
	var describes atomic.Int64
	var ended atomic.Bool
	c.On("DescribeWorkflow", mock.Anything, "b1", "run-b1").Return(
		func(context.Context, string, string) (*client.WorkflowExecutionDescription, error) {
			describes.Add(1)
			st := enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING
			if ended.Load() {
				st = enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED
			}
			return &client.WorkflowExecutionDescription{WorkflowExecutionMetadata: client.WorkflowExecutionMetadata{Status: st}}, nil
		})
	f := New(c, testSettings).NewFollowers(2, slog.New(slog.NewTextHandler(io.Discard, nil)))
	f.every = 10 * time.Millisecond

	w1, leave1, ok1 := f.Join("ann", "b1", "run-b1")
	w2, leave2, ok2 := f.Join("ann", "b1", "run-b1")
	if _, _, ok := f.Join("ann", "b1", "run-b1"); !ok1 || !ok2 || ok {
		t.Fatalf("joins of one user: %v %v %v, want the third refused", ok1, ok2, ok)
	}
	w3, leave3, ok3 := f.Join("bob", "b1", "run-b1")
	if !ok3 || w1 != w2 || w2 != w3 {
		t.Fatal("followers of one build do not share one watch")
	}
	if builds, followers, users := f.Load(); builds != 1 || followers != 3 || users != 2 {
		t.Errorf("load %d builds, %d followers, %d users; want 1, 3, 2", builds, followers, users)
	}
	ended.Store(true)
	deadline := time.Now().Add(5 * time.Second)
	for !w1.Ended() {
		if time.Now().After(deadline) {
			t.Fatal("the watch did not see the build end")
		}
		time.Sleep(5 * time.Millisecond)
	}
	leave1()
	leave1() // twice is once
	leave2()
	leave3()
	if builds, followers, users := f.Load(); builds != 0 || followers != 0 || users != 0 {
		t.Errorf("after every follower left: %d builds, %d followers, %d users", builds, followers, users)
	}
	n := describes.Load()
	time.Sleep(50 * time.Millisecond)
	if describes.Load() != n {
		t.Error("the watcher goes on asking after its build ended")
	}
}
