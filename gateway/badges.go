package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/slipway-dev/slipway/builds"
	"github.com/slipway-dev/slipway/store"
)

// badgeMaxAge is how long browsers and proxies may keep a badge: READMEs are read far more
// often than builds end, and each uncached read is a visibility query.
const badgeMaxAge = 30 * time.Second

// badgeToken is what a badge token looks like (store.BadgeToken): anything else is a 404
// without a database read.
var badgeToken = regexp.MustCompile(`^[a-z2-7]{32}$`)

// badgeView is where a rule's status badge is: a public URL, since READMEs are read by
// people without a Slipway account, unguessable since it says how the rule's builds go.
type badgeView struct {
	URL string `json:"url"`
}

// badgeOf is rule id's badge; a rule whose token cannot be read shows none (the log says why)
// rather than failing the rule's answer. ruleView, its caller, has no request context, so the
// read is bounded here.
func (a *Server) badgeOf(id string) *badgeView {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	token, err := a.store.BadgeToken(ctx, id)
	if err != nil {
		a.logger.Warn("reading a rule's badge token", "rule", id, "error", err)
		return nil
	}
	return &badgeView{URL: a.cfg.GatewayURL + "/badges/" + token + ".svg"}
}

// rotateBadgeToken gives a rule's badge a new URL; the old one answers 404 from then on.
func (a *Server) rotateBadgeToken(c *gin.Context) {
	r, ok := a.repoRule(c)
	if !ok {
		return
	}
	if _, err := a.store.RotateBadgeToken(c.Request.Context(), r.ID); err != nil {
		a.storeError(c, fmt.Sprintf("build rule %q", r.ID), err)
		return
	}
	c.JSON(http.StatusOK, a.ruleView(r, false))
}

// Badge states and their colours.
var badgeColors = map[string]string{
	"passing": "#4c1", "failing": "#e05d44", "canceled": "#9f9f9f", "unknown": "#9f9f9f",
}

// badge answers the SVG status badge of the rule that owns the token in the path, for its
// builds of one branch (?branch=) or of every ref: the status of its last finished build.
// No authentication: the token is the capability.
func (a *Server) badge(c *gin.Context) {
	token, ok := strings.CutSuffix(c.Param("file"), ".svg")
	if !ok || !badgeToken.MatchString(token) {
		fail(c, http.StatusNotFound, "no such badge")
		return
	}
	r, err := a.store.RuleByBadgeToken(c.Request.Context(), token)
	if errors.Is(err, store.ErrNotFound) {
		fail(c, http.StatusNotFound, "no such badge")
		return
	}
	if err != nil {
		a.internal(c, "database error", err)
		return
	}
	state, err := a.badgeState(c.Request.Context(), r, c.Query("branch"))
	var qerr *builds.QueryError
	if errors.As(err, &qerr) {
		fail(c, http.StatusBadRequest, qerr.Error())
		return
	}
	if err != nil {
		a.logger.Warn("reading a badge's builds", "rule", r.ID, "error", err)
		c.Header("Cache-Control", "no-store")
		fail(c, http.StatusServiceUnavailable, "build records are unavailable")
		return
	}
	c.Header("Cache-Control", fmt.Sprintf("public, max-age=%d", int(badgeMaxAge.Seconds())))
	// An SVG opened on its own is a document: nothing in it may run or load.
	c.Header("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	c.Header("X-Content-Type-Options", "nosniff")
	c.Data(http.StatusOK, "image/svg+xml; charset=utf-8", []byte(badgeSVG("build", state)))
}

// badgeState is passing, failing, canceled or unknown: the last finished build of rule r (of
// branch, when given) among its last 50, builds that built nothing (superseded, skipped)
// passed over.
func (a *Server) badgeState(ctx context.Context, r store.Rule, branch string) (string, error) {
	recs, _, err := a.builds.List(ctx, builds.Query{Namespace: r.Namespace, Repository: r.Repository, Rule: r.ID, Ref: branch, Limit: 50})
	if err != nil {
		return "", err
	}
	for _, rec := range recs {
		switch rec.Status {
		case "succeeded":
			return "passing", nil
		case "failed", "timed_out", "terminated":
			return "failing", nil
		case "canceled":
			return "canceled", nil
		}
	}
	return "unknown", nil
}

// badgeSVG draws a shields-style badge: label on grey, state on its colour. Both are fixed
// words, never caller input, so nothing needs escaping.
func badgeSVG(label, state string) string {
	lw, sw := textWidth(label)+10, textWidth(state)+10
	w := lw + sw
	return fmt.Sprintf(`<svg xmlns="http://www.w3.org/2000/svg" width="%[1]d" height="20" role="img" aria-label="%[4]s: %[5]s">`+
		`<title>%[4]s: %[5]s</title>`+
		`<linearGradient id="s" x2="0" y2="100%%"><stop offset="0" stop-color="#bbb" stop-opacity=".1"/><stop offset="1" stop-opacity=".1"/></linearGradient>`+
		`<clipPath id="r"><rect width="%[1]d" height="20" rx="3" fill="#fff"/></clipPath>`+
		`<g clip-path="url(#r)"><rect width="%[2]d" height="20" fill="#555"/><rect x="%[2]d" width="%[3]d" height="20" fill="%[6]s"/><rect width="%[1]d" height="20" fill="url(#s)"/></g>`+
		`<g fill="#fff" text-anchor="middle" font-family="Verdana,Geneva,DejaVu Sans,sans-serif" font-size="11">`+
		`<text x="%[7]d" y="15" fill="#010101" fill-opacity=".3">%[4]s</text><text x="%[7]d" y="14">%[4]s</text>`+
		`<text x="%[8]d" y="15" fill="#010101" fill-opacity=".3">%[5]s</text><text x="%[8]d" y="14">%[5]s</text></g></svg>`,
		w, lw, sw, label, state, badgeColors[state], lw/2, lw+sw/2)
}

// textWidth approximates the width of s in 11px Verdana, about 7 px a letter.
func textWidth(s string) int { return 7 * len(s) }
