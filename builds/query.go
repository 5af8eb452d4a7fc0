package builds

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"go.temporal.io/api/workflowservice/v1"

	"github.com/slipway-dev/slipway/build"
)

// Query selects the builds of one image repository, a page at a time.
type Query struct {
	Namespace  string
	Repository string
	// Rule, when set, keeps the builds of one rule.
	Rule string
	// Status, when set, keeps the builds with this record status.
	Status string
	// Limit is the page size; 0 means 20.
	Limit int
	// PageToken continues where the page that gave it ended.
	PageToken []byte
}

// QueryError is a query List refuses: the caller's mistake, which Error says.
type QueryError struct{ msg string }

// Error says what is wrong with the query, in words for the caller.
func (e *QueryError) Error() string { return e.msg }

// visibilityStatus maps a record's status to the ExecutionStatus visibility filters on.
var visibilityStatus = map[string]string{
	"running": "Running", "succeeded": "Completed", "failed": "Failed",
	"canceled": "Canceled", "timed_out": "TimedOut", "terminated": "Terminated",
	// A superseded build completed without building; the record tells it from its memo.
	build.OutcomeSuperseded: "Completed",
	build.OutcomeSkipped:    "Completed",
}

// literal quotes v as a visibility string. Names reach it validated (by the store, or as
// ids), so it never has to escape; a value with a quote, backslash or control character is
// refused rather than escaped, so no value can end the literal.
func literal(what, v string) (string, error) {
	if strings.ContainsAny(v, `'"\`+"`") || strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return "", &QueryError{fmt.Sprintf("%s %q cannot be searched for", what, v)}
	}
	return "'" + v + "'", nil
}

// Check refuses a rule that is no id and a status no record has, with a *QueryError.
func (q Query) Check() error {
	if q.Rule != "" && !ValidID(q.Rule) {
		return &QueryError{fmt.Sprintf("rule %q is not a rule id", q.Rule)}
	}
	if _, ok := visibilityStatus[q.Status]; q.Status != "" && !ok {
		return &QueryError{fmt.Sprintf("status %q is not one of running, succeeded, superseded, skipped, failed, canceled, timed_out, terminated", q.Status)}
	}
	return nil
}

// text is q as a visibility query.
func (q Query) text() (string, error) {
	if err := q.Check(); err != nil {
		return "", err
	}
	vs := visibilityStatus[q.Status]
	terms := [][2]string{
		{"WorkflowType", build.WorkflowName},
		{build.AttrNamespace.GetName(), q.Namespace},
		{build.AttrRepository.GetName(), q.Repository},
	}
	if q.Rule != "" {
		terms = append(terms, [2]string{build.AttrRule.GetName(), q.Rule})
	}
	if vs != "" {
		terms = append(terms, [2]string{"ExecutionStatus", vs})
	}
	parts := make([]string, 0, len(terms))
	for _, t := range terms {
		v, err := literal(t[0], t[1])
		if err != nil {
			return "", err
		}
		parts = append(parts, t[0]+" = "+v)
	}
	return strings.Join(parts, " AND "), nil
}

// List returns a page of q's builds, newest first, and the token of the next page (empty at
// the end). A *QueryError is the caller's; any other error is Temporal's.
func (s *Service) List(ctx context.Context, q Query) ([]Record, []byte, error) {
	text, err := q.text()
	if err != nil {
		return nil, nil, err
	}
	limit := q.Limit
	if limit <= 0 {
		limit = 20
	}
	ctx, cancel := context.WithTimeout(ctx, Timeout)
	defer cancel()
	resp, err := s.temporal.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
		Namespace: s.set.TemporalNamespace, PageSize: int32(limit), NextPageToken: q.PageToken, Query: text,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("listing builds: %w", err)
	}
	out := make([]Record, 0, len(resp.GetExecutions()))
	for _, info := range resp.GetExecutions() {
		rec := s.record(info)
		// succeeded, superseded and skipped share Temporal's Completed: a page may hold fewer records
		// than the limit, and the next page token goes on.
		if visibilityStatus[q.Status] == "Completed" && rec.Status != q.Status {
			continue
		}
		out = append(out, rec)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].StartedAt.After(out[j].StartedAt) })
	return out, resp.GetNextPageToken(), nil
}
