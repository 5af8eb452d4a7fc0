package worker

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"

	"github.com/slipway-dev/slipway/logstore"
)

// fakeRuns answers visibility queries over the runs it holds, counting the queries.
type fakeRuns struct {
	live    map[string]bool
	queries int
}

var quoted = regexp.MustCompile(`'([^']*)'`)

func (f *fakeRuns) ListWorkflow(_ context.Context, req *workflowservice.ListWorkflowExecutionsRequest) (*workflowservice.ListWorkflowExecutionsResponse, error) {
	f.queries++
	if !strings.HasPrefix(req.Query, "RunId IN (") {
		panic("unexpected query " + req.Query)
	}
	resp := &workflowservice.ListWorkflowExecutionsResponse{}
	for _, m := range quoted.FindAllStringSubmatch(req.Query, -1) {
		if f.live[m[1]] {
			resp.Executions = append(resp.Executions, &workflowpb.WorkflowExecutionInfo{Execution: &commonpb.WorkflowExecution{RunId: m[1]}})
		}
	}
	return resp, nil
}

func TestLogSweep(t *testing.T) {
	dir := t.TempDir()
	logs, err := logstore.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	day := 24 * time.Hour
	write := func(build, run string, age time.Duration) string {
		t.Helper()
		w, err := logs.Append(build, run)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(w, "log\n")
		w.Close()
		p := logs.Path(build, run)
		at := time.Now().Add(-age)
		if err := os.Chtimes(p, at, at); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		build, run string
		age        time.Duration
		live       bool
		wantGone   bool
	}{
		{"build-gone", "run-gone", 2 * day, false, true},
		{"build-live", "run-live", 2 * day, true, false},      // still in Temporal (running long, or retained)
		{"build-young", "run-young", time.Hour, false, false}, // younger than retention: not even asked
		{"build-two-runs", "run-old", 3 * day, false, true},
		{"build-two-runs", "run-new", 3 * day, true, false},
		// An id no file name can hold is hashed; its runs are still found by run id.
		{"build/with/slashes:" + strings.Repeat("x", 200), "run-hashed", 2 * day, false, true},
	}
	runs := &fakeRuns{live: map[string]bool{}}
	paths := make([]string, len(tests))
	for i, tt := range tests {
		paths[i] = write(tt.build, tt.run, tt.age)
		runs.live[tt.run] = tt.live
	}
	s := LogSweeper{Logs: logs, Runs: runs, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Retention: func(context.Context) (time.Duration, error) { return day, nil }}
	n, err := s.Sweep(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if n != 3 || runs.queries != 1 {
		t.Errorf("removed %d logs in %d queries, want 3 in 1", n, runs.queries)
	}
	for i, tt := range tests {
		_, err := os.Stat(paths[i])
		if gone := os.IsNotExist(err); gone != tt.wantGone {
			t.Errorf("%s/%s: gone %v, want %v", tt.build, tt.run, gone, tt.wantGone)
		}
	}
	// A build's folder goes with its last log.
	if _, err := os.Stat(strings.TrimSuffix(paths[0], "/run-gone.log")); !os.IsNotExist(err) {
		t.Errorf("the folder of a build whose logs all went is still there: %v", err)
	}
	// Many old logs go in batches.
	for i := range 120 {
		write("bulk", fmt.Sprintf("run-bulk-%03d", i), 2*day)
	}
	runs.queries = 0
	if n, err := s.Sweep(context.Background()); err != nil || n != 120 || runs.queries != 3 {
		t.Errorf("bulk sweep removed %d in %d queries (%v), want 120 in 3", n, runs.queries, err)
	}
}
