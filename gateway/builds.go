package gateway

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/temporal"

	"github.com/slipway-dev/slipway/build"
	"github.com/slipway-dev/slipway/builds"
	"github.com/slipway-dev/slipway/logstore"
	"github.com/slipway-dev/slipway/store"
	"github.com/slipway-dev/slipway/webhook"
)

// ctxBuild is where requireBuild leaves the build record of :id.
const ctxBuild = "slipway.build"

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

// buildNow starts a build of a branch or tag of the rule's source by hand.
func (a *Server) buildNow(c *gin.Context) {
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
	req := builds.Request{Rule: rule, Ref: ref, Commit: body.Commit, Trigger: build.TriggerManual, BuildArgs: body.BuildArgs}
	req.Captures, req.Latest = a.refExtras(c.Request.Context(), rule, ref)
	// The checks the workflow makes first, so a bad request is a 400, not a failed build. A
	// rule saved before the operator's limits (or written by hand) meets them now.
	if err := a.builds.InputOf(req).Validate(); err != nil {
		failInvalid(c, err, "cache", "timeout", "dockerfile_path", "context_path")
		return
	}
	if err := checkTimeout(rule.Timeout, a.maxTimeout()); err != nil {
		fail(c, http.StatusBadRequest, "the rule's "+err.Error())
		return
	}
	req.ID = "build-" + rule.ID + "-manual-" + randomHex(8)
	if key := c.GetHeader("Idempotency-Key"); key != "" {
		req.ID = webhook.ManualBuildID(rule.ID, user(c).Name+"\x00"+key)
	}
	id, runID, _, err := a.builds.Start(c.Request.Context(), req)
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
	c.JSON(http.StatusAccepted, gin.H{"id": id, "run_id": runID, "ui_url": a.builds.UIURL(id, runID), "logs_url": a.builds.LogsURL(id)})
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

// listBuilds lists the build records of an image repository, newest first.
func (a *Server) listBuilds(c *gin.Context) {
	ns, repo := c.Param("ns"), c.Param("repo")
	if _, err := a.store.GetRepository(c.Request.Context(), ns, repo); err != nil {
		a.storeError(c, fmt.Sprintf("repository %q", repo), err)
		return
	}
	q := builds.Query{Namespace: ns, Repository: repo, Rule: c.Query("rule"), Status: c.Query("status"), Limit: 20}
	if err := q.Check(); err != nil {
		fail(c, http.StatusBadRequest, err.Error())
		return
	}
	if l := c.Query("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 100 {
			fail(c, http.StatusBadRequest, "limit must be between 1 and 100")
			return
		}
		q.Limit = n
	}
	if p := c.Query("page_token"); p != "" {
		var err error
		if q.PageToken, err = base64.RawURLEncoding.DecodeString(p); err != nil {
			fail(c, http.StatusBadRequest, "page_token is not one this API gave")
			return
		}
	}
	out, next, err := a.builds.List(c.Request.Context(), q)
	var bad *builds.QueryError
	if errors.As(err, &bad) {
		fail(c, http.StatusBadRequest, bad.Error())
		return
	}
	if err != nil {
		a.logger.Error("listing builds", "error", err)
		fail(c, http.StatusServiceUnavailable, "could not list builds: Temporal is unavailable")
		return
	}
	c.JSON(http.StatusOK, gin.H{"builds": out, "next_page_token": base64.RawURLEncoding.EncodeToString(next)})
}

// requireBuild loads build :id for the handler (buildOf) and lets the request on only when its
// caller holds need in the build's namespace. A build the caller may not see reads as
// missing, and the answer says "build", not the namespace's name.
func (a *Server) requireBuild(need store.Role) gin.HandlerFunc {
	return func(c *gin.Context) {
		id := c.Param("id")
		rec, err := a.builds.Get(c.Request.Context(), id)
		if errors.Is(err, builds.ErrNotFound) {
			fail(c, http.StatusNotFound, fmt.Sprintf("build %q not found", id))
			return
		}
		if err != nil {
			a.logger.Error("describing build", "id", id, "error", err)
			fail(c, http.StatusServiceUnavailable, "could not read the build: Temporal is unavailable")
			return
		}
		if code, msg := a.access(c, rec.Namespace, need); code != 0 {
			if code == http.StatusNotFound {
				msg = fmt.Sprintf("build %q not found", id)
			}
			fail(c, code, msg)
			return
		}
		c.Set(ctxBuild, rec)
		c.Next()
	}
}

// buildOf is the record requireBuild loaded.
func buildOf(c *gin.Context) builds.Record {
	v, _ := c.Get(ctxBuild)
	return v.(builds.Record)
}

// getBuild answers one build record with its parameters and steps.
func (a *Server) getBuild(c *gin.Context) {
	rec, err := a.builds.Details(c.Request.Context(), buildOf(c))
	if err != nil {
		a.logger.Warn("reading build input", "id", rec.ID, "error", err)
	}
	c.JSON(http.StatusOK, rec)
}

// buildLogs answers the stored log, or with ?follow=1 the log as it grows until the build
// ends.
func (a *Server) buildLogs(c *gin.Context) {
	rec := buildOf(c)
	id, runID := rec.ID, rec.RunID
	c.Header("Content-Type", "text/plain; charset=utf-8")
	c.Header("X-Content-Type-Options", "nosniff")
	c.Header("Cache-Control", "no-store")
	follow := c.Query("follow") == "1" || c.Query("follow") == "true"
	if !follow || !rec.Running() {
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
	w, leave, ok := a.follows.Join(user(c).Name, id, runID)
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
	// The build's end is watched once for all its followers (builds.Followers).
	done := func(context.Context) (bool, error) { return w.Ended(), nil }
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

// cancelBuild asks a running build to stop.
func (a *Server) cancelBuild(c *gin.Context) {
	rec := buildOf(c)
	if !rec.Running() {
		fail(c, http.StatusConflict, fmt.Sprintf("build %q already ended: %s", rec.ID, rec.Execution))
		return
	}
	if err := a.builds.Cancel(c.Request.Context(), rec); err != nil {
		a.logger.Error("cancelling build", "id", rec.ID, "error", err)
		fail(c, http.StatusServiceUnavailable, "could not cancel the build: Temporal is unavailable")
		return
	}
	c.JSON(http.StatusAccepted, gin.H{"id": rec.ID, "run_id": rec.RunID, "status": "canceling"})
}
