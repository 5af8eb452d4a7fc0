package gateway

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/slipway-dev/slipway/build"
	"github.com/slipway-dev/slipway/builds"
	"github.com/slipway-dev/slipway/metrics"
	"github.com/slipway-dev/slipway/store"
	"github.com/slipway-dev/slipway/webhook"
)

// readBody reads a body of declared length n (-1: unknown) into one buffer of that size, so a
// body holds no more memory than the gate weighed it at; a chunked body grows its buffer.
func readBody(r io.Reader, n int64) ([]byte, error) {
	if n < 0 {
		var buf bytes.Buffer
		_, err := buf.ReadFrom(r)
		return buf.Bytes(), err
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, err
	}
	return body, nil
}

func (a *Server) githubWebhook(c *gin.Context) {
	a.deliver(c, build.ProviderGitHub)
}

func (a *Server) gitlabWebhook(c *gin.Context) {
	a.deliver(c, build.ProviderGitLab)
}

// webhookRetryAfter is what a delivery refused for load is told to wait, in seconds.
const webhookRetryAfter = "2"

// deliver handles one delivery: check what can be checked from the headers (the rule, the
// declared size, GitLab's token, the form of GitHub's signature), take a place among the
// bodies read at once, read a bounded body while hashing it, verify, and only then parse,
// match against the rule, start the build, answer. The answer comes once the start is
// recorded in Temporal, so a 202 is never given for a build that was not started, and a 503
// makes the provider deliver again.
func (a *Server) deliver(c *gin.Context, provider string) {
	ctx := c.Request.Context()
	rule, ev, release, ok := a.receive(c, provider)
	if !ok {
		return
	}
	// The place among the bodies read at once is held until the answer, which bounds the
	// deliveries waiting on Temporal too.
	defer release()
	if ev.Kind == webhook.KindPing {
		c.JSON(http.StatusOK, gin.H{"ok": true, "rule_id": rule.ID})
		return
	}
	d := webhook.Rule{Source: rule.BuildSource(), Triggers: rule.Triggers, SkipMarkers: rule.SkipMarkers}.Match(ev)
	// A zero retention (a configuration not read from the environment) keeps no record.
	remember := a.cfg.DeliveryRetention > 0
	since := time.Now().Add(-a.cfg.DeliveryRetention)
	if d.Deleted && ev.Kind == webhook.KindTag && remember {
		a.recordTagDeletion(ctx, rule, ev)
	}
	if !d.Build {
		c.JSON(http.StatusAccepted, gin.H{"builds": []string{}, "build_urls": []string{}, "reason": d.Reason})
		return
	}
	if ev.Kind == webhook.KindTag && remember {
		if del, err := a.store.FindDelivery(ctx, rule.ID, webhook.TagDeletionKey(rule.ID, ev.Ref), since); err == nil {
			ev.Generation = del.BuildID
		} else if !errors.Is(err, store.ErrNotFound) {
			a.internal(c, "reading deliveries", err)
			return
		}
	}
	req := a.webhookRequest(ctx, rule, ev, d)
	// The event may have started a build longer ago than Temporal keeps executions: the
	// gateway's own record answers with that build, and nothing starts.
	if remember {
		seen, err := a.store.FindDelivery(ctx, rule.ID, req.ID, since)
		if err == nil {
			metrics.AddDuplicate(ctx)
			a.logger.Info("delivery of an event already built", "rule", rule.ID, "build", seen.BuildID, "first_seen", seen.CreatedAt)
			c.JSON(http.StatusAccepted, gin.H{"builds": []string{seen.BuildID}, "build_urls": a.buildURLs(seen.BuildID), "reason": d.Reason})
			return
		}
		if !errors.Is(err, store.ErrNotFound) {
			a.internal(c, "reading deliveries", err)
			return
		}
	}
	id, _, _, err := a.builds.Start(ctx, req)
	if err != nil {
		a.logger.Error("starting build from webhook", "rule", rule.ID, "delivery", ev.Delivery, "error", err)
		fail(c, http.StatusServiceUnavailable, "build not started: Temporal is unavailable; deliver again")
		return
	}
	// Recorded after the start: a failure here leaves only Temporal's own deduplication, and a
	// record is never there for a build that did not start.
	if remember {
		if err := a.store.RecordDelivery(ctx, store.Delivery{RuleID: rule.ID, EventKey: req.ID, BuildID: id}, since); err != nil {
			a.logger.Warn("recording delivery", "rule", rule.ID, "build", id, "error", err)
		}
	}
	c.JSON(http.StatusAccepted, gin.H{"builds": []string{id}, "build_urls": a.buildURLs(id), "reason": d.Reason})
}

// receive finds the delivery's rule, reads its body within the body gate, verifies it against
// the rule's secret and parses it. release gives the gate's place back; when ok is false it has
// answered and released.
func (a *Server) receive(c *gin.Context, provider string) (rule store.Rule, ev webhook.Event, release func(), ok bool) {
	ctx := c.Request.Context()
	rule, err := a.store.GetRule(ctx, c.Param("rule_id"))
	if errors.Is(err, store.ErrNotFound) || (err == nil && rule.Source.Provider != provider) {
		fail(c, http.StatusNotFound, "no such build rule for "+provider)
		return rule, webhook.Event{}, nil, false
	}
	if err != nil {
		a.internal(c, "loading rule", err)
		return rule, webhook.Event{}, nil, false
	}
	if c.Request.ContentLength > maxWebhookBody {
		fail(c, http.StatusRequestEntityTooLarge, fmt.Sprintf("payload larger than %d bytes", maxWebhookBody))
		return rule, webhook.Event{}, nil, false
	}
	var mac *webhook.GitHubMAC
	switch provider {
	case build.ProviderGitHub:
		// The signature is checked as the body streams in; its form is checked now.
		if mac, err = webhook.NewGitHubMAC(rule.WebhookSecret, c.GetHeader("X-Hub-Signature-256")); err != nil {
			fail(c, http.StatusUnauthorized, err.Error())
			return rule, webhook.Event{}, nil, false
		}
	case build.ProviderGitLab:
		// GitLab's token is a header: a delivery without it costs no read of its body.
		if err := webhook.VerifyGitLab(rule.WebhookSecret, c.GetHeader("X-Gitlab-Token")); err != nil {
			fail(c, http.StatusUnauthorized, err.Error())
			return rule, webhook.Event{}, nil, false
		}
	}
	body, release, ok := a.readGated(c, mac)
	if !ok {
		return rule, webhook.Event{}, nil, false
	}
	switch provider {
	case build.ProviderGitHub:
		if err := mac.Verify(); err != nil {
			fail(c, http.StatusUnauthorized, err.Error())
			release()
			return rule, webhook.Event{}, nil, false
		}
		ev, err = webhook.ParseGitHub(c.GetHeader("X-GitHub-Event"), body)
		ev.Delivery = c.GetHeader("X-GitHub-Delivery")
	case build.ProviderGitLab:
		ev, err = webhook.ParseGitLab(c.GetHeader("X-Gitlab-Event"), body)
		ev.Delivery = c.GetHeader("X-Gitlab-Event-UUID")
	}
	if err != nil {
		if errors.Is(err, webhook.ErrMalformed) {
			fail(c, http.StatusBadRequest, err.Error())
		} else {
			a.internal(c, "parsing payload", err)
		}
		release()
		return rule, webhook.Event{}, nil, false
	}
	return rule, ev, release, true
}

// readGated takes a place among the bodies read at once and reads the body into it, through
// mac when there is one. release gives the place back; when ok is false it has answered.
func (a *Server) readGated(c *gin.Context, mac *webhook.GitHubMAC) (body []byte, release func(), ok bool) {
	// A body is weighed by what it may carry: its Content-Length, which the server holds it
	// to, or the cap when it is sent chunked.
	size := c.Request.ContentLength
	if size < 0 {
		size = maxWebhookBody
	}
	release, ok = a.bodies.acquire(c.Request.Context(), size, bodyWait)
	if !ok {
		c.Header("Retry-After", webhookRetryAfter)
		fail(c, http.StatusServiceUnavailable, "too many deliveries being read at once; deliver again")
		return nil, nil, false
	}
	var src io.Reader = http.MaxBytesReader(c.Writer, c.Request.Body, maxWebhookBody)
	if mac != nil {
		src = io.TeeReader(src, mac)
	}
	body, err := readBody(src, c.Request.ContentLength)
	if err != nil {
		release()
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			fail(c, http.StatusRequestEntityTooLarge, fmt.Sprintf("payload larger than %d bytes", maxWebhookBody))
		} else {
			fail(c, http.StatusBadRequest, "reading payload: "+err.Error())
		}
		return nil, nil, false
	}
	return body, release, true
}

// webhookRequest is the build a matched event asks for: its id, ref and trigger, the captures
// of the entry that matched, latest on the default branch, and the path filter when the
// payload could not decide it.
func (a *Server) webhookRequest(ctx context.Context, rule store.Rule, ev webhook.Event, d webhook.Decision) builds.Request {
	req := builds.Request{ID: webhook.BuildID(rule.ID, ev), Rule: rule, Commit: ev.Commit, Captures: d.Captures}
	if ev.Kind == webhook.KindTag {
		req.Ref, req.Trigger = build.Ref{Type: build.RefTag, Name: ev.Ref}, build.TriggerTag
	} else {
		req.Ref, req.Trigger = build.Ref{Type: build.RefBranch, Name: ev.Ref}, build.TriggerPush
		if rule.TagLatest == tagLatestDefaultBranch {
			def := ev.DefaultBranch
			if def == "" {
				def = a.defaultBranch(ctx, rule)
			}
			_, req.Latest = refExtras(rule, req.Ref, def)
		}
	}
	if d.ComputePaths {
		req.Paths, req.Before = rule.Triggers.Paths, ev.Before
	}
	return req
}

// recordTagDeletion remembers that a tag of rule's source was deleted, so its next push builds
// again even at the commit it had. The deletion's delivery id is the generation, so a
// redelivery of the same deletion changes nothing; a failure costs only that rebuild.
func (a *Server) recordTagDeletion(ctx context.Context, rule store.Rule, ev webhook.Event) {
	gen := ev.Delivery
	if gen == "" {
		gen = strconv.FormatInt(time.Now().UnixNano(), 10)
	}
	if err := a.store.RecordTagDeletion(ctx, rule.ID, webhook.TagDeletionKey(rule.ID, ev.Ref), gen); err != nil {
		a.logger.Warn("recording tag deletion", "rule", rule.ID, "tag", ev.Ref, "error", err)
	}
}
