package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/slipway-dev/slipway/logstore"
)

// Build logs live in SLIPWAY_HOME/logs, outside Temporal; a build's record is its Temporal
// execution, which the namespace's retention deletes some time after it closes. The sweeper
// removes the log of every run Temporal no longer has, so no log outlives its record. Only
// logs untouched for longer than the retention can belong to a deleted run (the last write
// comes before the close, the deletion a retention after it), so those alone are looked up,
// by run id in the visibility store, a batch per query.

// EnvLogSweepEvery sets how often the worker sweeps logs (Go duration, default 1h; "off"
// turns it off, for a worker that shares SLIPWAY_HOME with one that sweeps).
const EnvLogSweepEvery = "SLIPWAY_LOG_SWEEP_EVERY"

const (
	defaultLogSweepEvery = time.Hour
	// sweepBatch run ids go in one visibility query.
	sweepBatch = 50
)

// RunLister is what of a Temporal client the sweeper asks: which runs still exist.
type RunLister interface {
	ListWorkflow(ctx context.Context, req *workflowservice.ListWorkflowExecutionsRequest) (*workflowservice.ListWorkflowExecutionsResponse, error)
}

// LogSweeper removes the logs of runs Temporal no longer has.
type LogSweeper struct {
	Logs *logstore.Store
	Runs RunLister
	// Retention is the namespace's retention of closed executions.
	Retention func(ctx context.Context) (time.Duration, error)
	Logger    *slog.Logger
}

// NamespaceRetention reads the retention of Temporal namespace ns, for LogSweeper.
func NamespaceRetention(tc client.Client, ns string) func(context.Context) (time.Duration, error) {
	return func(ctx context.Context) (time.Duration, error) {
		resp, err := tc.WorkflowService().DescribeNamespace(ctx, &workflowservice.DescribeNamespaceRequest{Namespace: ns})
		if err != nil {
			return 0, fmt.Errorf("reading the retention of namespace %s: %w", ns, err)
		}
		return resp.GetConfig().GetWorkflowExecutionRetentionTtl().AsDuration(), nil
	}
}

// Sweep removes the logs of deleted runs once and answers how many it removed.
func (s LogSweeper) Sweep(ctx context.Context) (int, error) {
	ttl, err := s.Retention(ctx)
	if err != nil {
		return 0, err
	}
	if ttl <= 0 {
		return 0, errors.New("the namespace reports no retention")
	}
	logs, err := s.Logs.RunLogs()
	if err != nil {
		return 0, err
	}
	cutoff := time.Now().Add(-ttl)
	var old []logstore.RunLog
	for _, l := range logs {
		if l.ModTime.Before(cutoff) && literalSafe(l.RunID) {
			old = append(old, l)
		}
	}
	removed := 0
	for len(old) > 0 {
		n := min(sweepBatch, len(old))
		batch := old[:n]
		old = old[n:]
		live, err := s.liveRuns(ctx, batch)
		if err != nil {
			return removed, err
		}
		for _, l := range batch {
			if live[l.RunID] {
				continue
			}
			if err := s.Logs.Remove(l); err != nil {
				return removed, err
			}
			removed++
		}
	}
	return removed, nil
}

// liveRuns are the run ids of batch that Temporal still has.
func (s LogSweeper) liveRuns(ctx context.Context, batch []logstore.RunLog) (map[string]bool, error) {
	ids := make([]string, len(batch))
	for i, l := range batch {
		ids[i] = "'" + l.RunID + "'"
	}
	q := "RunId IN (" + strings.Join(ids, ",") + ")"
	live := map[string]bool{}
	var token []byte
	for {
		resp, err := s.Runs.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: q, NextPageToken: token})
		if err != nil {
			return nil, fmt.Errorf("looking up runs of old logs: %w", err)
		}
		for _, e := range resp.GetExecutions() {
			live[e.GetExecution().GetRunId()] = true
		}
		if token = resp.GetNextPageToken(); len(token) == 0 {
			return live, nil
		}
	}
}

// literalSafe reports whether a run id can go between single quotes in a query.
func literalSafe(s string) bool { return s != "" && !strings.ContainsAny(s, `'\`) }

// startLogSweeper sweeps every period (EnvLogSweepEvery) until the returned function is
// called; failures are logged and the next sweep tries again.
func startLogSweeper(getenv func(string) string, s LogSweeper) (func(), error) {
	every := defaultLogSweepEvery
	switch v := getenv(EnvLogSweepEvery); v {
	case "":
	case "off":
		return func() {}, nil
	default:
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("%s %q: want a positive Go duration or off", EnvLogSweepEvery, v)
		}
		every = d
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			n, err := s.Sweep(ctx)
			if err != nil && ctx.Err() == nil {
				s.Logger.Warn("sweeping the logs of deleted builds", "error", err)
			}
			if n > 0 {
				s.Logger.Info("removed the logs of builds Temporal no longer has", "count", n)
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return func() { cancel(); <-done }, nil
}
