package gateway

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"

	"github.com/slipway-dev/slipway/build"
	"github.com/slipway-dev/slipway/logstore"
	"github.com/slipway-dev/slipway/store"
	"github.com/slipway-dev/slipway/webhook"
)

// temporalTimeout bounds each call the gateway makes to Temporal while a caller waits.
const temporalTimeout = 10 * time.Second

// buildIDPattern is what a build id may look like in a URL: what BuildID and ManualBuildID make,
// and what ops may pick with the CLI.
var buildIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,254}$`)

var commitPattern = regexp.MustCompile(`^[0-9a-f]{40}$`)

// errorText is the message of an error without Temporal's wrapping.
func errorText(err error) string {
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		return appErr.Message()
	}
	return err.Error()
}

// failInvalid answers 400 with what a *build.InvalidError says, and 500 for any other error.
// A message about one of ruleFields, which the rule holds and the caller did not send, says so.
func failInvalid(c *gin.Context, err error, ruleFields ...string) {
	var ie *build.InvalidError
	if !errors.As(err, &ie) {
		fail(c, http.StatusInternalServerError, "checking the build")
		return
	}
	msg := ie.Msg
	if slices.Contains(ruleFields, ie.Field) {
		msg = "the rule's " + msg
	}
	fail(c, http.StatusBadRequest, msg)
}

// buildRequest is one build to start.
type buildRequest struct {
	id        string
	rule      store.Rule
	ref       build.Ref
	commit    string
	trigger   string
	buildArgs map[string]string
	// captures are what the rule's matching pattern captured from the ref; latest says the
	// ref is the default branch of a rule with tag_latest.
	captures map[string]string
	latest   bool
	// paths and before ask the clone step to decide the rule's path filter, when the
	// webhook's payload could not.
	paths  *build.PathFilter
	before string
}

// input is the build.Input of req: the rule's parameters, with the request's build args over
// the rule's.
func (a *api) input(req buildRequest) build.Input {
	r := req.rule
	args := map[string]string{}
	maps.Copy(args, r.BuildArgs)
	maps.Copy(args, req.buildArgs)
	return build.Input{
		Namespace: r.Namespace, Repository: r.Repository, RuleID: r.ID,
		Source: r.BuildSource(), Ref: req.ref, Commit: req.commit,
		DockerfilePath: r.DockerfilePath, ContextPath: r.ContextPath, TagTemplate: r.TagTemplate,
		BuildArgs: args, Image: a.image(r.Namespace, r.Repository), Trigger: req.trigger,
		SanitizeRef: r.SanitizeRef, Timeout: r.Timeout, Cache: r.Cache,
		Captures: req.captures, Latest: req.latest, Semver: r.Semver, Paths: req.paths, Before: req.before,
		RunPolicy: r.RunPolicy,
	}
}

// start starts workflow_docker_builder for req, or finds the build already started under the
// same id: a redelivery, a repeated event or a repeated Idempotency-Key starts nothing new.
func (a *api) start(ctx context.Context, req buildRequest) (client.WorkflowRun, error) {
	return a.startInput(ctx, req.id, a.input(req), nil)
}

// startInput is start for an input already made, with memo entries beside the image and the
// log URL.
func (a *api) startInput(ctx context.Context, id string, in build.Input, memo map[string]any) (client.WorkflowRun, error) {
	ctx, cancel := context.WithTimeout(ctx, temporalTimeout)
	defer cancel()
	m := map[string]any{
		build.MemoImage:  in.Image,
		build.MemoLogURL: a.logsURL(id),
	}
	maps.Copy(m, memo)
	return a.temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:        id,
		TaskQueue: a.cfg.TaskQueue,
		// The workflow ends itself cleanly at its timeout; this is the backstop.
		WorkflowExecutionTimeout: in.TimeoutOrDefault() + 5*time.Minute,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		// A finished build is not built again by a late redelivery of its event.
		WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		TypedSearchAttributes: temporal.NewSearchAttributes(build.SearchAttributes(in)...),
		Memo:                  m,
	}, build.WorkflowName, in)
}

// startOrExisting is start, with a finished build under the same id counted as started.
func (a *api) startOrExisting(ctx context.Context, req buildRequest) (id, runID string, err error) {
	run, err := a.start(ctx, req)
	var dup *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &dup) {
		return req.id, dup.RunId, nil
	}
	if err != nil {
		return "", "", err
	}
	return run.GetID(), run.GetRunID(), nil
}

func (a *api) logsURL(id string) string {
	return a.cfg.GatewayURL + "/api/v1/builds/" + url.PathEscape(id) + "/logs"
}

func (a *api) uiURL(id, runID string) string {
	return fmt.Sprintf("%s/namespaces/%s/workflows/%s/%s/history", a.cfg.TemporalUIURL,
		url.PathEscape(a.cfg.TemporalNamespace), url.PathEscape(id), url.PathEscape(runID))
}

// buildNow is 立即构建: a build of a branch or tag of the rule's source, started by hand.
func (a *api) buildNow(c *gin.Context) {
	if !a.authorize(c, c.Param("ns"), store.RoleWrite) {
		return
	}
	rule, ok := a.repoRule(c)
	if !ok {
		return
	}
	var body struct {
		Branch    string            `json:"branch"`
		Tag       string            `json:"tag"`
		Commit    string            `json:"commit"`
		BuildArgs map[string]string `json:"build_args"`
	}
	if !bindJSON(c, &body) {
		return
	}
	var ref build.Ref
	switch {
	case body.Branch != "" && body.Tag != "":
		fail(c, http.StatusBadRequest, "give a branch or a tag, not both")
		return
	case body.Branch != "":
		ref = build.Ref{Type: build.RefBranch, Name: body.Branch}
	case body.Tag != "":
		ref = build.Ref{Type: build.RefTag, Name: body.Tag}
	default:
		fail(c, http.StatusBadRequest, "give the branch or the tag to build")
		return
	}
	req := buildRequest{rule: rule, ref: ref, commit: body.Commit, trigger: build.TriggerManual, buildArgs: body.BuildArgs}
	req.captures, req.latest = a.refExtras(c.Request.Context(), rule, ref)
	// The checks the workflow makes first, so a bad request is a 400, not a failed build. A
	// rule saved before the operator's limits (or written by hand) meets them now.
	if err := a.input(req).Validate(); err != nil {
		failInvalid(c, err, "cache", "timeout", "dockerfile_path", "context_path")
		return
	}
	if err := checkTimeout(rule.Timeout, a.maxTimeout()); err != nil {
		fail(c, http.StatusBadRequest, "the rule's "+err.Error())
		return
	}
	id := "build-" + rule.ID + "-manual-" + randomHex(8)
	if key := c.GetHeader("Idempotency-Key"); key != "" {
		id = webhook.ManualBuildID(rule.ID, user(c).Name+"\x00"+key)
	}
	req.id = id
	id, runID, err := a.startOrExisting(c.Request.Context(), req)
	var invalid *serviceerror.InvalidArgument
	if errors.As(err, &invalid) {
		// Temporal refuses the request itself (a value over its limits): trying again cannot
		// help, so it is the caller's 400, never a 503 that clients retry forever.
		a.logger.Warn("build refused by Temporal", "rule", rule.ID, "error", err)
		fail(c, http.StatusBadRequest, "the build was refused: "+invalid.Message)
		return
	}
	if err != nil {
		a.logger.Error("starting build", "rule", rule.ID, "error", err)
		fail(c, http.StatusServiceUnavailable, "could not start the build: Temporal is unavailable; try again")
		return
	}
	c.JSON(http.StatusAccepted, gin.H{"id": id, "run_id": runID, "ui_url": a.uiURL(id, runID), "logs_url": a.logsURL(id)})
}

// shorten cuts s to at most n bytes (on a rune boundary) for an error message, so an answer
// does not echo a huge input back.
func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "..."
}

// buildRecord is 构建记录: one build as a person reads it.
type buildRecord struct {
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
	// Params and Steps are filled for one build only.
	Params *buildParams       `json:"params,omitempty"`
	Steps  []build.StepStatus `json:"steps,omitempty"`
}

// buildParams is 构建参数: everything the build ran with. Nothing in it is secret.
type buildParams struct {
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
}

// statusNames maps Temporal's execution status to a record's status, both ways.
var statusNames = map[enumspb.WorkflowExecutionStatus]string{
	enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING:    "running",
	enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED:  "succeeded",
	enumspb.WORKFLOW_EXECUTION_STATUS_FAILED:     "failed",
	enumspb.WORKFLOW_EXECUTION_STATUS_CANCELED:   "canceled",
	enumspb.WORKFLOW_EXECUTION_STATUS_TIMED_OUT:  "timed_out",
	enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED: "terminated",
}

var visibilityStatus = map[string]string{
	"running": "Running", "succeeded": "Completed", "failed": "Failed",
	"canceled": "Canceled", "timed_out": "TimedOut", "terminated": "Terminated",
	// Superseded and skipped builds completed without building; the record tells them from
	// its memo.
	build.OutcomeSuperseded: "Completed",
	build.OutcomeSkipped:    "Completed",
}

func (a *api) record(info *workflowpb.WorkflowExecutionInfo) buildRecord {
	dc := converter.GetDefaultDataConverter()
	str := func(p *commonpb.Payload) string {
		var s string
		if p != nil {
			_ = dc.FromPayload(p, &s)
		}
		return s
	}
	sa := info.GetSearchAttributes().GetIndexedFields()
	memo := info.GetMemo().GetFields()
	rec := buildRecord{
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
	rec.UIURL = a.uiURL(rec.ID, rec.RunID)
	rec.LogsURL = a.logsURL(rec.ID)
	return rec
}

// listBuilds is 构建记录: the builds of an image repository, newest first, from Temporal
// visibility over the search attributes.
func (a *api) listBuilds(c *gin.Context) {
	ns, repo := c.Param("ns"), c.Param("repo")
	if !a.authorize(c, ns, store.RoleRead) {
		return
	}
	if _, err := a.store.GetRepository(c.Request.Context(), ns, repo); err != nil {
		a.storeError(c, fmt.Sprintf("repository %q", repo), err)
		return
	}
	// Names are validated by the store and rule ids by the pattern below, so quoting is safe.
	q := fmt.Sprintf("WorkflowType = '%s' AND %s = '%s' AND %s = '%s'", build.WorkflowName,
		build.AttrNamespace.GetName(), ns, build.AttrRepository.GetName(), repo)
	if rule := c.Query("rule"); rule != "" {
		if !buildIDPattern.MatchString(rule) {
			fail(c, http.StatusBadRequest, fmt.Sprintf("rule %q is not a rule id", rule))
			return
		}
		q += fmt.Sprintf(" AND %s = '%s'", build.AttrRule.GetName(), rule)
	}
	if s := c.Query("status"); s != "" {
		vs, ok := visibilityStatus[s]
		if !ok {
			fail(c, http.StatusBadRequest, fmt.Sprintf("status %q is not one of running, succeeded, superseded, skipped, failed, canceled, timed_out, terminated", s))
			return
		}
		q += fmt.Sprintf(" AND ExecutionStatus = '%s'", vs)
	}
	limit := 20
	if l := c.Query("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 100 {
			fail(c, http.StatusBadRequest, "limit must be between 1 and 100")
			return
		}
		limit = n
	}
	var token []byte
	if p := c.Query("page_token"); p != "" {
		var err error
		if token, err = base64.RawURLEncoding.DecodeString(p); err != nil {
			fail(c, http.StatusBadRequest, "page_token is not one this API gave")
			return
		}
	}
	ctx, cancel := context.WithTimeout(c.Request.Context(), temporalTimeout)
	defer cancel()
	resp, err := a.temporal.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
		Namespace: a.cfg.TemporalNamespace, PageSize: int32(limit), NextPageToken: token, Query: q,
	})
	if err != nil {
		a.logger.Error("listing builds", "error", err)
		fail(c, http.StatusServiceUnavailable, "could not list builds: Temporal is unavailable")
		return
	}
	out := make([]buildRecord, 0, len(resp.GetExecutions()))
	for _, info := range resp.GetExecutions() {
		rec := a.record(info)
		// succeeded, superseded and skipped share Temporal's Completed: a page may hold fewer
		// records than the limit, and next_page_token goes on.
		if s := c.Query("status"); visibilityStatus[s] == "Completed" && rec.Status != s {
			continue
		}
		out = append(out, rec)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].StartedAt.After(out[j].StartedAt) })
	c.JSON(http.StatusOK, gin.H{"builds": out, "next_page_token": base64.RawURLEncoding.EncodeToString(resp.GetNextPageToken())})
}

// findBuild describes build :id and checks the caller holds need in its namespace. A build
// the caller may not see reads as missing.
func (a *api) findBuild(c *gin.Context, need store.Role) (*workflowpb.WorkflowExecutionInfo, bool) {
	id := c.Param("id")
	if !buildIDPattern.MatchString(id) {
		fail(c, http.StatusNotFound, fmt.Sprintf("build %q not found", id))
		return nil, false
	}
	ctx, cancel := context.WithTimeout(c.Request.Context(), temporalTimeout)
	defer cancel()
	desc, err := a.temporal.DescribeWorkflowExecution(ctx, id, "")
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		fail(c, http.StatusNotFound, fmt.Sprintf("build %q not found", id))
		return nil, false
	}
	if err != nil {
		a.logger.Error("describing build", "id", id, "error", err)
		fail(c, http.StatusServiceUnavailable, "could not read the build: Temporal is unavailable")
		return nil, false
	}
	info := desc.GetWorkflowExecutionInfo()
	if info.GetType().GetName() != build.WorkflowName {
		fail(c, http.StatusNotFound, fmt.Sprintf("build %q not found", id))
		return nil, false
	}
	rec := a.record(info)
	if rec.Namespace == "" {
		fail(c, http.StatusNotFound, fmt.Sprintf("build %q not found", id))
		return nil, false
	}
	// A build of a namespace the caller is not in reads as missing: say "build", not the
	// namespace's name.
	if code, msg := a.access(c, rec.Namespace, need); code != 0 {
		if code == http.StatusNotFound {
			msg = fmt.Sprintf("build %q not found", id)
		}
		fail(c, code, msg)
		return nil, false
	}
	return info, true
}

func (a *api) getBuild(c *gin.Context) {
	info, ok := a.findBuild(c, store.RoleRead)
	if !ok {
		return
	}
	rec := a.record(info)
	ctx, cancel := context.WithTimeout(c.Request.Context(), temporalTimeout)
	defer cancel()
	in, takenUp, err := a.buildInput(ctx, rec.ID, rec.RunID)
	if err == nil {
		rec.Params = &buildParams{
			Source: in.Source, Ref: in.Ref, Commit: in.Commit, DockerfilePath: in.DockerfilePath,
			ContextPath: in.ContextPath, TagTemplate: in.TagTemplate, BuildArgs: in.BuildArgs,
			SanitizeRef: in.SanitizeRef, Timeout: in.Timeout, Image: in.Image,
		}
		if rec.Params.DockerfilePath == "" {
			rec.Params.DockerfilePath = build.DefaultDockerfile
		}
		if rec.Params.TagTemplate == "" {
			rec.Params.TagTemplate = build.DefaultTagTemplate
		}
	} else {
		a.logger.Warn("reading build input", "id", rec.ID, "error", err)
	}
	// Steps come from the workflow's status query; a build whose worker is away has none. A
	// build no worker has taken up yet has run no step, and a query would wait out its timeout.
	if takenUp {
		qctx, qcancel := context.WithTimeout(ctx, 3*time.Second)
		defer qcancel()
		if v, err := a.temporal.QueryWorkflow(qctx, rec.ID, rec.RunID, build.StatusQuery); err == nil {
			var st build.Status
			if v.Get(&st) == nil {
				rec.Steps = st.Steps
			}
		}
	}
	c.JSON(http.StatusOK, rec)
}

// buildInput reads the input a build started with from the first event of its history, and
// reports whether a worker has taken the build up (completed a workflow task), which the first
// few events show.
func (a *api) buildInput(ctx context.Context, id, runID string) (build.Input, bool, error) {
	var in build.Input
	it := a.temporal.GetWorkflowHistory(ctx, id, runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
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
	for i := 0; i < 64 && it.HasNext(); i++ {
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

// buildLogs is 构建日志: the stored log, or with ?follow=1 the log as it grows until the
// build ends.
func (a *api) buildLogs(c *gin.Context) {
	info, ok := a.findBuild(c, store.RoleRead)
	if !ok {
		return
	}
	id, runID := info.GetExecution().GetWorkflowId(), info.GetExecution().GetRunId()
	c.Header("Content-Type", "text/plain; charset=utf-8")
	c.Header("X-Content-Type-Options", "nosniff")
	c.Header("Cache-Control", "no-store")
	follow := c.Query("follow") == "1" || c.Query("follow") == "true"
	if !follow || info.GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		f, err := a.logs.Open(id, runID)
		if err != nil {
			// A build that failed before its first step has no log; that is no error.
			c.Status(http.StatusOK)
			return
		}
		defer f.Close()
		c.Status(http.StatusOK)
		_, _ = io.Copy(c.Writer, f)
		return
	}
	w, leave, ok := a.follows.join(user(c).Name, id, runID)
	if !ok {
		c.Header("Retry-After", "30")
		fail(c, http.StatusTooManyRequests, fmt.Sprintf(
			"you follow %d build logs already, the most one user may at once; close one (or read the log without follow)",
			a.cfg.LogFollowersPerUser))
		return
	}
	defer leave()
	c.Status(http.StatusOK)
	c.Writer.Flush()
	// The build's end is watched once for all its followers (followHub).
	done := func(context.Context) (bool, error) { return w.ended.Load(), nil }
	idle := a.cfg.LogFollowIdle
	if idle <= 0 {
		idle = 10 * time.Minute
	}
	err := a.logs.Follow(c.Request.Context(), id, runID, c.Writer, done, idle)
	switch {
	case errors.Is(err, logstore.ErrIdle):
		fmt.Fprintf(c.Writer, "\n[slipway] no new log output for %s: this stream ends here; the build goes on (follow again to read on)\n", idle)
		c.Writer.Flush()
	case err != nil && c.Request.Context().Err() == nil:
		a.logger.Warn("following log", "id", id, "error", err)
	}
}

func (a *api) cancelBuild(c *gin.Context) {
	info, ok := a.findBuild(c, store.RoleWrite)
	if !ok {
		return
	}
	id, runID := info.GetExecution().GetWorkflowId(), info.GetExecution().GetRunId()
	if info.GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		fail(c, http.StatusConflict, fmt.Sprintf("build %q already ended: %s", id, statusNames[info.GetStatus()]))
		return
	}
	ctx, cancel := context.WithTimeout(c.Request.Context(), temporalTimeout)
	defer cancel()
	if err := a.temporal.CancelWorkflow(ctx, id, runID); err != nil {
		a.logger.Error("cancelling build", "id", id, "error", err)
		fail(c, http.StatusServiceUnavailable, "could not cancel the build: Temporal is unavailable")
		return
	}
	c.JSON(http.StatusAccepted, gin.H{"id": id, "run_id": runID, "status": "canceling"})
}
