package gateway

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/gin-gonic/gin"
	"go.temporal.io/api/serviceerror"

	"github.com/slipway-dev/slipway/build"
	"github.com/slipway-dev/slipway/webhook"
)

// rebuildLatest is the commit a rebuild names to build its ref's head instead of the commit
// the build built.
const rebuildLatest = "latest"

// rebuildBuild starts a new build with the parameters build :id (loaded by requireBuild) ran with (read back from its
// execution, so a rule edited or deleted since does not change them), of the commit it
// built, or of its ref's head with {"commit": "latest"}. The new record names the old one in
// rebuild_of. It takes the write role on the build's namespace, as a cancel does.
func (a *Server) rebuildBuild(c *gin.Context) {
	rec := buildOf(c)
	var body struct {
		Commit string `json:"commit"`
	}
	if c.Request.ContentLength != 0 && !bindJSON(c, &body) {
		return
	}
	if body.Commit != "" && body.Commit != rebuildLatest {
		fail(c, http.StatusBadRequest, fmt.Sprintf("commit %q is not \"latest\": a rebuild builds the commit its build built, or the ref's head with \"latest\"", shorten(body.Commit, 80)))
		return
	}
	in, _, err := a.builds.Input(c.Request.Context(), rec.ID, rec.RunID)
	if err != nil {
		a.logger.Error("reading build input", "id", rec.ID, "error", err)
		fail(c, http.StatusServiceUnavailable, "could not read the build's parameters: Temporal is unavailable")
		return
	}
	in = rebuildInput(in, rec.Commit, body.Commit == rebuildLatest)
	// The checks the workflow makes first, so a build that cannot start is a 400 now. The
	// operator's limits may have shrunk since the build ran.
	if err := in.Validate(); err != nil {
		failInvalid(c, err)
		return
	}
	if err := checkTimeout(in.Timeout, a.maxTimeout()); err != nil {
		fail(c, http.StatusBadRequest, "the build's "+err.Error())
		return
	}
	id := "build-" + in.RuleID + "-rebuild-" + randomHex(8)
	if key := c.GetHeader("Idempotency-Key"); key != "" {
		id = webhook.ManualBuildID(in.RuleID, "rebuild\x00"+rec.ID+"\x00"+body.Commit+"\x00"+user(c).Name+"\x00"+key)
	}
	id, runID, _, err := a.builds.StartInput(c.Request.Context(), id, in, map[string]any{build.MemoRebuildOf: rec.ID})
	var invalid *serviceerror.InvalidArgument
	switch {
	case errors.As(err, &invalid):
		a.logger.Warn("rebuild refused by Temporal", "build", rec.ID, "error", err)
		fail(c, http.StatusBadRequest, "the build was refused: "+invalid.Message)
		return
	case err != nil:
		a.logger.Error("starting rebuild", "build", rec.ID, "error", err)
		fail(c, http.StatusServiceUnavailable, "could not start the build: Temporal is unavailable; try again")
		return
	}
	c.JSON(http.StatusAccepted, gin.H{"id": id, "run_id": runID, "ui_url": a.builds.UIURL(id, runID),
		"logs_url": a.builds.LogsURL(id), "rebuild_of": rec.ID})
}

// rebuildInput is the input of a rebuild of a build that started from in and built commit
// (empty when it failed before its clone): the same commit, or the ref's head when latest. A
// rebuild is asked for by hand and always builds, so it is manual and the path filter of the
// push it may repeat is dropped.
func rebuildInput(in build.Input, built string, latest bool) build.Input {
	switch {
	case latest:
		in.Commit = ""
	case in.Commit == "":
		in.Commit = built
	}
	in.Trigger = build.TriggerManual
	in.Paths, in.Before = nil, ""
	return in
}
