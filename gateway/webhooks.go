package main

import (
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/slipway-dev/slipway/activities"
	"github.com/slipway-dev/slipway/gateway/store"
	"github.com/slipway-dev/slipway/gateway/webhook"
	"github.com/slipway-dev/slipway/workflows"
)

func (a *api) githubWebhook(c *gin.Context) {
	a.deliver(c, webhook.ProviderGitHub)
}

func (a *api) gitlabWebhook(c *gin.Context) {
	a.deliver(c, webhook.ProviderGitLab)
}

// deliver handles one delivery: read a bounded body, verify it before anything parses it,
// parse, match against the rule, start the build, answer. The answer comes once the start is
// recorded in Temporal, so a 202 is never given for a build that was not started, and a 503
// makes the provider deliver again.
func (a *api) deliver(c *gin.Context, provider string) {
	ctx := c.Request.Context()
	rule, err := a.store.GetRule(ctx, c.Param("rule_id"))
	if errors.Is(err, store.ErrNotFound) || (err == nil && rule.Source.Provider != provider) {
		fail(c, http.StatusNotFound, "no such build rule for "+provider)
		return
	}
	if err != nil {
		a.internal(c, "loading rule", err)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, maxWebhookBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			fail(c, http.StatusRequestEntityTooLarge, fmt.Sprintf("payload larger than %d bytes", maxWebhookBody))
			return
		}
		fail(c, http.StatusBadRequest, "reading payload: "+err.Error())
		return
	}

	var ev webhook.Event
	switch provider {
	case webhook.ProviderGitHub:
		if err := webhook.VerifyGitHub(rule.WebhookSecret, body, c.GetHeader("X-Hub-Signature-256")); err != nil {
			fail(c, http.StatusUnauthorized, err.Error())
			return
		}
		ev, err = webhook.ParseGitHub(c.GetHeader("X-GitHub-Event"), body)
		ev.Delivery = c.GetHeader("X-GitHub-Delivery")
	case webhook.ProviderGitLab:
		if err := webhook.VerifyGitLab(rule.WebhookSecret, c.GetHeader("X-Gitlab-Token")); err != nil {
			fail(c, http.StatusUnauthorized, err.Error())
			return
		}
		ev, err = webhook.ParseGitLab(c.GetHeader("X-Gitlab-Event"), body)
		ev.Delivery = c.GetHeader("X-Gitlab-Event-UUID")
	}
	if err != nil {
		if errors.Is(err, webhook.ErrMalformed) {
			fail(c, http.StatusBadRequest, err.Error())
			return
		}
		a.internal(c, "parsing payload", err)
		return
	}
	if ev.Kind == webhook.KindPing {
		c.JSON(http.StatusOK, gin.H{"ok": true, "rule_id": rule.ID})
		return
	}
	d := webhook.Match(
		webhook.Source{Provider: rule.Source.Provider, Owner: rule.Source.Owner, Repository: rule.Source.Repository},
		webhook.Triggers{Branches: rule.Triggers.Branches, Tags: rule.Triggers.Tags}, ev)
	if !d.Build {
		c.JSON(http.StatusAccepted, gin.H{"builds": []string{}, "reason": d.Reason})
		return
	}
	req := buildRequest{id: webhook.BuildID(rule.ID, ev), rule: rule, commit: ev.Commit}
	if ev.Kind == webhook.KindTag {
		req.ref, req.trigger = activities.Ref{Type: activities.RefTag, Name: ev.Ref}, workflows.TriggerTag
	} else {
		req.ref, req.trigger = activities.Ref{Type: activities.RefBranch, Name: ev.Ref}, workflows.TriggerPush
	}
	id, _, err := a.startOrExisting(ctx, req)
	if err != nil {
		a.logger.Error("starting build from webhook", "rule", rule.ID, "delivery", ev.Delivery, "error", err)
		fail(c, http.StatusServiceUnavailable, "build not started: Temporal is unavailable; deliver again")
		return
	}
	c.JSON(http.StatusAccepted, gin.H{"builds": []string{id}})
}
