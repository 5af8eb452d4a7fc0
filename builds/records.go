package builds

import (
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/sdk/converter"

	"github.com/slipway-dev/slipway/build"
)

// Record is one build as a person reads it, made from what Temporal keeps of its execution:
// search attributes, memo, status and times.
type Record struct {
	ID         string     `json:"id"`
	RunID      string     `json:"run_id"`
	Namespace  string     `json:"namespace"`
	Repository string     `json:"repository"`
	RuleID     string     `json:"rule_id"`
	Status     string     `json:"status"`
	Trigger    string     `json:"trigger"`
	Ref        string     `json:"ref"`
	Commit     string     `json:"commit"`
	Tags       []string   `json:"tags"`
	Image      string     `json:"image"`
	Digest     string     `json:"digest"`
	StartedAt  time.Time  `json:"started_at"`
	FinishedAt *time.Time `json:"finished_at"`
	Error      string     `json:"error,omitempty"`
	// Reason says why a queued build waits, why a build was superseded or skipped, or which
	// newer build canceled it.
	Reason string `json:"reason,omitempty"`
	// RebuildOf names the build this one repeats (POST /builds/{id}/rebuild).
	RebuildOf string `json:"rebuild_of,omitempty"`
	// HeldTags are the mutable tags the build left on a newer commit, with the reason; Tags
	// lists only the tags it wrote.
	HeldTags []build.HeldTag `json:"held_tags,omitempty"`
	UIURL    string          `json:"ui_url"`
	LogsURL  string          `json:"logs_url"`
	// Params and Steps are filled for one build only (Details).
	Params *Params            `json:"params,omitempty"`
	Steps  []build.StepStatus `json:"steps,omitempty"`

	// Execution is Temporal's status of the run, by the names records use; a queued build's
	// is "running", a superseded one's "succeeded", a build ended at its timeout "failed".
	Execution string `json:"-"`
}

// Running reports whether the build's execution is still open: it can be cancelled and its
// log still grows.
func (r Record) Running() bool { return r.Execution == "running" }

// Params is everything a build ran with. Nothing in it is secret.
type Params struct {
	Source         build.Source      `json:"source"`
	Ref            build.Ref         `json:"ref"`
	Commit         string            `json:"commit"`
	DockerfilePath string            `json:"dockerfile_path"`
	ContextPath    string            `json:"context_path"`
	TagTemplate    string            `json:"tag_template"`
	BuildArgs      map[string]string `json:"build_args"`
	SanitizeRef    bool              `json:"sanitize_ref"`
	Timeout        string            `json:"timeout,omitempty"`
	Image          string            `json:"image"`
	// Secrets names the build secrets the build was given; their values are never shown.
	Secrets []string `json:"secrets,omitempty"`
}

// paramsOf is what in shows of a build, with the defaults the workflow applies filled in.
func paramsOf(in build.Input) *Params {
	p := &Params{
		Source: in.Source, Ref: in.Ref, Commit: in.Commit, DockerfilePath: in.DockerfilePath,
		ContextPath: in.ContextPath, TagTemplate: in.TagTemplate, BuildArgs: in.BuildArgs,
		SanitizeRef: in.SanitizeRef, Timeout: in.Timeout, Image: in.Image, Secrets: in.Secrets,
	}
	if p.DockerfilePath == "" {
		p.DockerfilePath = build.DefaultDockerfile
	}
	if p.TagTemplate == "" {
		p.TagTemplate = build.DefaultTagTemplate
	}
	return p
}

// statusNames maps Temporal's execution status to a record's status.
var statusNames = map[enumspb.WorkflowExecutionStatus]string{
	enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING:    "running",
	enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED:  "succeeded",
	enumspb.WORKFLOW_EXECUTION_STATUS_FAILED:     "failed",
	enumspb.WORKFLOW_EXECUTION_STATUS_CANCELED:   "canceled",
	enumspb.WORKFLOW_EXECUTION_STATUS_TIMED_OUT:  "timed_out",
	enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED: "terminated",
}

// record reads one execution as a build record. Values that do not decode read as empty: a
// record is shown whatever an older or foreign execution carries.
func (s *Service) record(info *workflowpb.WorkflowExecutionInfo) Record {
	dc := converter.GetDefaultDataConverter()
	str := func(p *commonpb.Payload) string {
		var v string
		if p != nil {
			_ = dc.FromPayload(p, &v)
		}
		return v
	}
	sa := info.GetSearchAttributes().GetIndexedFields()
	memo := info.GetMemo().GetFields()
	rec := Record{
		ID:         info.GetExecution().GetWorkflowId(),
		RunID:      info.GetExecution().GetRunId(),
		Namespace:  str(sa[build.AttrNamespace.GetName()]),
		Repository: str(sa[build.AttrRepository.GetName()]),
		RuleID:     str(sa[build.AttrRule.GetName()]),
		Status:     statusNames[info.GetStatus()],
		Trigger:    str(sa[build.AttrTrigger.GetName()]),
		Ref:        str(sa[build.AttrRef.GetName()]),
		Commit:     str(sa[build.AttrCommit.GetName()]),
		Image:      str(memo[build.MemoImage]),
		Digest:     str(memo[build.MemoDigest]),
		Error:      str(memo[build.MemoError]),
		StartedAt:  info.GetStartTime().AsTime(),
		Tags:       []string{},
		Execution:  statusNames[info.GetStatus()],
	}
	if p := memo[build.MemoTags]; p != nil {
		_ = dc.FromPayload(p, &rec.Tags)
	}
	if rec.Tags == nil {
		rec.Tags = []string{}
	}
	if p := memo[build.MemoHeldTags]; p != nil {
		_ = dc.FromPayload(p, &rec.HeldTags)
	}
	// A push build whose commit had left its branch, or which changed nothing its rule's
	// paths select, completed without building.
	if o := str(memo[build.MemoOutcome]); rec.Status == "succeeded" && (o == build.OutcomeSuperseded || o == build.OutcomeSkipped) {
		rec.Status, rec.Reason = o, str(memo[build.MemoReason])
	}
	// A build a newer one of its ref canceled (run policy latest_only) says which.
	if rec.Status == "canceled" {
		rec.Reason = str(memo[build.MemoReason])
	}
	rec.RebuildOf = str(memo[build.MemoRebuildOf])
	if c := str(memo[build.MemoCommit]); c != "" {
		rec.Commit = c
	}
	// The workflow ends itself at its timeout, cleanly, so it closes as failed; the record
	// says what happened.
	if rec.Status == "failed" && str(memo[build.MemoErrorType]) == build.ErrTypeTimedOut {
		rec.Status = "timed_out"
	}
	// A running build that waits for one of its namespace's build slots is queued.
	if q := str(memo[build.MemoQueued]); rec.Status == "running" && q != "" {
		rec.Status, rec.Reason = "queued", q
	}
	if rec.Status == "canceled" && rec.Error == "" {
		rec.Error = "canceled"
	}
	if info.GetCloseTime() != nil {
		t := info.GetCloseTime().AsTime()
		rec.FinishedAt = &t
	}
	rec.UIURL = s.UIURL(rec.ID, rec.RunID)
	rec.LogsURL = s.LogsURL(rec.ID)
	return rec
}
