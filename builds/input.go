package builds

import (
	"context"
	"errors"
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/converter"

	"github.com/slipway-dev/slipway/build"
)

// Get reads build id's record from its execution. ErrNotFound covers an id that is no
// build's, an execution that is not workflow_docker_builder, and one without a namespace.
func (s *Service) Get(ctx context.Context, id string) (Record, error) {
	if !ValidID(id) {
		return Record{}, ErrNotFound
	}
	ctx, cancel := context.WithTimeout(ctx, Timeout)
	defer cancel()
	desc, err := s.temporal.DescribeWorkflow(ctx, id, "")
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		return Record{}, ErrNotFound
	}
	if err != nil {
		return Record{}, fmt.Errorf("describing build %q: %w", id, err)
	}
	info := desc.RawResponse.GetWorkflowExecutionInfo()
	if info.GetType().GetName() != build.WorkflowName {
		return Record{}, ErrNotFound
	}
	rec := s.record(info)
	if rec.Namespace == "" {
		return Record{}, ErrNotFound
	}
	return rec, nil
}

// Details adds to rec what only one build shows: the parameters it ran with, from its
// history, and its steps, from the workflow's status query. A build whose worker is away has
// no steps; one no worker has taken up yet has run none, and is not queried (the query would
// wait out its timeout). The error says why the parameters could not be read; rec is
// returned as complete as it could be made.
func (s *Service) Details(ctx context.Context, rec Record) (Record, error) {
	ctx, cancel := context.WithTimeout(ctx, Timeout)
	defer cancel()
	in, takenUp, err := s.Input(ctx, rec.ID, rec.RunID)
	if err == nil {
		rec.Params = paramsOf(in)
	}
	if takenUp {
		qctx, qcancel := context.WithTimeout(ctx, 3*time.Second)
		defer qcancel()
		if v, qerr := s.temporal.QueryWorkflow(qctx, rec.ID, rec.RunID, build.StatusQuery); qerr == nil {
			var st build.Status
			if v.Get(&st) == nil {
				rec.Steps = st.Steps
			}
		}
	}
	return rec, err
}

// historyScan is how many events after the first Input reads to learn whether a worker took
// the build up.
const historyScan = 64

// Input reads the input a build started with from the first event of its history, and
// reports whether a worker has taken the build up (completed a workflow task), which the
// first few events show.
func (s *Service) Input(ctx context.Context, id, runID string) (build.Input, bool, error) {
	var in build.Input
	it := s.temporal.GetWorkflowHistory(ctx, id, runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	if !it.HasNext() {
		return in, false, errors.New("empty history")
	}
	ev, err := it.Next()
	if err != nil {
		return in, false, fmt.Errorf("reading history: %w", err)
	}
	payloads := ev.GetWorkflowExecutionStartedEventAttributes().GetInput().GetPayloads()
	if len(payloads) != 1 {
		return in, false, fmt.Errorf("start event has %d inputs", len(payloads))
	}
	if err := converter.GetDefaultDataConverter().FromPayload(payloads[0], &in); err != nil {
		return in, false, fmt.Errorf("decoding input: %w", err)
	}
	for i := 0; i < historyScan && it.HasNext(); i++ {
		ev, err := it.Next()
		if err != nil {
			break
		}
		if ev.GetEventType() == enumspb.EVENT_TYPE_WORKFLOW_TASK_COMPLETED {
			return in, true, nil
		}
	}
	return in, false, nil
}

// Cancel asks the run of rec to cancel; the workflow stops its build and ends as canceled.
func (s *Service) Cancel(ctx context.Context, rec Record) error {
	ctx, cancel := context.WithTimeout(ctx, Timeout)
	defer cancel()
	if err := s.temporal.CancelWorkflow(ctx, rec.ID, rec.RunID); err != nil {
		return fmt.Errorf("cancelling build %q: %w", rec.ID, err)
	}
	return nil
}
