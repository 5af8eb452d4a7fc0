package gateway

import (
	"context"
	"fmt"
	"strings"
	"sync"
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
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/slipway-dev/slipway/build"
)

// mockStack returns a stack of its own for t: the gateway over a SQLite database in t's
// temporary directory and a mocked Temporal client (fakeTemporal) that answers what the
// handlers ask. It is for tests that need no visibility query, worker or Temporal's own
// deduplication under concurrency; those run on devStack.
func mockStack(t *testing.T) *harness {
	t.Helper()
	fake := newFakeTemporal(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	hs, err := newHarness(ctx, t.TempDir(), "127.0.0.1:7233", fake)
	if err != nil {
		t.Fatal(err)
	}
	hs.fake = fake
	t.Cleanup(func() {
		hs.close()
		// Whatever the test did, the request log must not hold a token or a webhook secret.
		if leak := hs.leakIn(hs.logBuf.String()); leak != "" {
			t.Errorf("the gateway's log holds %s", leak)
		}
	})
	return hs
}

// fakeTemporal is a mocked client that keeps the executions started through it and answers
// as a Temporal server does under the gateway's id policies: a start under the id of a running
// build finds that build (USE_EXISTING), under the id of a closed one is refused with its run
// (REJECT_DUPLICATE). Describe, history, cancel and terminate work on what it keeps.
type fakeTemporal struct {
	*mocks.Client

	mu   sync.Mutex
	runs map[string]*fakeRun
	seq  int
}

// fakeRun is one execution the fake keeps.
type fakeRun struct {
	runID   string
	opts    client.StartWorkflowOptions
	input   any
	started time.Time
	status  enumspb.WorkflowExecutionStatus
}

func newFakeTemporal(t *testing.T) *fakeTemporal {
	f := &fakeTemporal{Client: mocks.NewClient(t), runs: map[string]*fakeRun{}}
	f.On("ExecuteWorkflow", mock.Anything, mock.Anything, build.WorkflowName, mock.Anything).Maybe().
		Return(func(_ context.Context, opts client.StartWorkflowOptions, _ any, args ...any) (client.WorkflowRun, error) {
			return f.start(t, opts, args)
		})
	f.On("DescribeWorkflow", mock.Anything, mock.Anything, mock.Anything).Maybe().
		Return(func(_ context.Context, id, runID string) (*client.WorkflowExecutionDescription, error) {
			return f.describe(t, id)
		})
	f.On("GetWorkflowHistory", mock.Anything, mock.Anything, mock.Anything, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT).Maybe().
		Return(func(_ context.Context, id, _ string, _ bool, _ enumspb.HistoryEventFilterType) client.HistoryEventIterator {
			return f.history(t, id)
		})
	f.On("CancelWorkflow", mock.Anything, mock.Anything, mock.Anything).Maybe().
		Return(func(_ context.Context, id, _ string) error {
			return f.close(id, enumspb.WORKFLOW_EXECUTION_STATUS_CANCELED)
		})
	f.On("TerminateWorkflow", mock.Anything, mock.Anything, mock.Anything, mock.Anything).Maybe().
		Return(func(_ context.Context, id, _, _ string, _ ...any) error {
			return f.close(id, enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED)
		})
	f.On("CheckHealth", mock.Anything, mock.Anything).Maybe().Return(&client.CheckHealthResponse{}, nil)
	return f
}

func (f *fakeTemporal) start(t *testing.T, opts client.StartWorkflowOptions, args []any) (client.WorkflowRun, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.runs[opts.ID]
	switch {
	case r != nil && r.status != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING:
		return nil, serviceerror.NewWorkflowExecutionAlreadyStarted("workflow execution already finished", "", r.runID)
	case r == nil:
		f.seq++
		r = &fakeRun{runID: fmt.Sprintf("run-%d", f.seq), opts: opts, started: time.Now(), status: enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING}
		if len(args) == 1 {
			r.input = args[0]
		}
		f.runs[opts.ID] = r
	}
	run := mocks.NewWorkflowRun(t)
	run.On("GetID").Maybe().Return(opts.ID)
	run.On("GetRunID").Maybe().Return(r.runID)
	return run, nil
}

func (f *fakeTemporal) close(id string, status enumspb.WorkflowExecutionStatus) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.runs[id]
	if r == nil {
		return serviceerror.NewNotFound("workflow not found for ID: " + id)
	}
	if r.status != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		return serviceerror.NewNotFound("workflow execution already completed")
	}
	r.status = status
	return nil
}

// attributes are run r's keyword search attributes by name.
func (r *fakeRun) attributes() map[string]string {
	out := map[string]string{}
	for k, v := range r.opts.TypedSearchAttributes.GetUntypedValues() {
		if s, ok := v.(string); ok {
			out[k.GetName()] = s
		}
	}
	return out
}

// info is r as visibility and Describe show it.
func (r *fakeRun) info(t *testing.T, id string) *workflowpb.WorkflowExecutionInfo {
	dc := converter.GetDefaultDataConverter()
	enc := func(v any) *commonpb.Payload {
		p, err := dc.ToPayload(v)
		if err != nil {
			t.Errorf("encoding %v: %v", v, err)
		}
		return p
	}
	sa := map[string]*commonpb.Payload{}
	for k, v := range r.attributes() {
		sa[k] = enc(v)
	}
	memo := map[string]*commonpb.Payload{}
	for k, v := range r.opts.Memo {
		memo[k] = enc(v)
	}
	info := &workflowpb.WorkflowExecutionInfo{
		Execution:        &commonpb.WorkflowExecution{WorkflowId: id, RunId: r.runID},
		Type:             &commonpb.WorkflowType{Name: build.WorkflowName},
		TaskQueue:        r.opts.TaskQueue,
		Status:           r.status,
		StartTime:        timestamppb.New(r.started),
		SearchAttributes: &commonpb.SearchAttributes{IndexedFields: sa},
		Memo:             &commonpb.Memo{Fields: memo},
	}
	if r.status != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		info.CloseTime = timestamppb.Now()
	}
	return info
}

func (f *fakeTemporal) run(id string) *fakeRun {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r := f.runs[id]; r != nil {
		c := *r
		return &c
	}
	return nil
}

func (f *fakeTemporal) describe(t *testing.T, id string) (*client.WorkflowExecutionDescription, error) {
	r := f.run(id)
	if r == nil {
		return nil, serviceerror.NewNotFound("workflow not found for ID: " + id)
	}
	info := r.info(t, id)
	return &client.WorkflowExecutionDescription{
		WorkflowExecutionMetadata: client.WorkflowExecutionMetadata{Status: r.status, TaskQueueName: r.opts.TaskQueue},
		RawResponse:               &workflowservice.DescribeWorkflowExecutionResponse{WorkflowExecutionInfo: info},
	}, nil
}

// history is the first event of a build no worker took up: its start, with its input.
func (f *fakeTemporal) history(t *testing.T, id string) client.HistoryEventIterator {
	var events []*historypb.HistoryEvent
	if r := f.run(id); r != nil {
		p, err := converter.GetDefaultDataConverter().ToPayload(r.input)
		if err != nil {
			t.Errorf("encoding the input of %s: %v", id, err)
		}
		events = append(events, &historypb.HistoryEvent{
			EventType: enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED,
			Attributes: &historypb.HistoryEvent_WorkflowExecutionStartedEventAttributes{
				WorkflowExecutionStartedEventAttributes: &historypb.WorkflowExecutionStartedEventAttributes{
					Input: &commonpb.Payloads{Payloads: []*commonpb.Payload{p}},
				},
			},
		})
	}
	it := mocks.NewHistoryEventIterator(t)
	i := 0
	it.On("HasNext").Maybe().Return(func() bool { return i < len(events) })
	it.On("Next").Maybe().Return(func() (*historypb.HistoryEvent, error) { i++; return events[i-1], nil })
	return it
}

// count counts the executions matching query, a conjunction of `Attribute = 'value'` terms
// (the ones the tests write), exactly: the fake has no visibility delay.
func (f *fakeTemporal) count(t testing.TB, query string) int64 {
	t.Helper()
	want := map[string]string{}
	for _, term := range strings.Split(query, " AND ") {
		k, v, ok := strings.Cut(term, " = ")
		if !ok || len(v) < 2 || v[0] != '\'' || v[len(v)-1] != '\'' {
			t.Fatalf("the fake cannot read the query term %q", term)
		}
		want[k] = v[1 : len(v)-1]
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var n int64
	for _, r := range f.runs {
		attrs := r.attributes()
		attrs["WorkflowType"] = build.WorkflowName
		match := true
		for k, v := range want {
			if attrs[k] != v {
				match = false
			}
		}
		if match {
			n++
		}
	}
	return n
}
