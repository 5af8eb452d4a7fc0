package gateway

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/slipway-dev/slipway/build"
	"github.com/slipway-dev/slipway/builds"
	"github.com/slipway-dev/slipway/providers"
	"github.com/slipway-dev/slipway/store"
	"github.com/slipway-dev/slipway/webhook"
)

// previewBody is a rule body, saved or not, and the refs to try it on; without refs they are
// listed through the rule's account.
type previewBody struct {
	ruleBody
	Refs *previewRefs `json:"refs"`
}

// previewRefs are the refs a preview tries a rule on.
type previewRefs struct {
	Branches []string `json:"branches"`
	Tags     []string `json:"tags"`
	// DefaultBranch is the repository's default branch, for tag_latest; listed refs read it
	// through the account.
	DefaultBranch string `json:"default_branch"`
}

// previewRef is what a rule would do with one ref.
type previewRef struct {
	Type string `json:"type"`
	Name string `json:"name"`
	// Commit is the commit the listing gave, or "" for a ref sent by name; tags are then
	// rendered with a stand-in commit of zeros.
	Commit string `json:"commit,omitempty"`
	// Matches says whether a push of the ref starts a build; Entry is the trigger entry it
	// matched, Reason why it does or does not.
	Matches bool   `json:"matches"`
	Entry   string `json:"entry,omitempty"`
	Reason  string `json:"reason"`
	// Tags are the tags a build would push; Error says why it could not render them.
	Tags  []string `json:"tags"`
	Error string   `json:"error,omitempty"`
}

// maxPreviewPages bounds the branches and the tags a preview lists through an account, a
// provider page (100 refs) each.
const maxPreviewPages = 5

// previewCommit stands in for the commit of a ref sent by name.
const previewCommit = "0000000000000000000000000000000000000000"

// previewRule answers which refs a rule would build and with which tags, as Cloud Build shows
// in its trigger form, before the rule is saved. It needs the write role, like saving a rule:
// without refs it reads the repository through the namespace's account.
func (a *Server) previewRule(c *gin.Context) {
	ns, repo := c.Param("ns"), c.Param("repo")
	var body previewBody
	if !bindJSON(c, &body) {
		return
	}
	warnings, err := a.validateRule(&body.ruleBody, ns, repo)
	if err != nil {
		fail(c, http.StatusBadRequest, err.Error())
		return
	}
	if !a.checkAccount(c, ns, body.ruleBody) {
		return
	}
	rule := body.rule(ns, repo)
	ctx := c.Request.Context()
	var refs []previewRef
	defaultBranch := ""
	if body.Refs != nil {
		defaultBranch = body.Refs.DefaultBranch
		for _, b := range body.Refs.Branches {
			refs = append(refs, previewRef{Type: build.RefBranch, Name: b})
		}
		for _, t := range body.Refs.Tags {
			refs = append(refs, previewRef{Type: build.RefTag, Name: t})
		}
	} else {
		if rule.AccountID == "" {
			fail(c, http.StatusBadRequest, "give refs ({\"branches\": [...], \"tags\": [...]}) or an account_id to list them through")
			return
		}
		if !a.needAccounts(c) {
			return
		}
		listed, def, err := a.listRefs(ctx, rule)
		if err != nil {
			fail(c, http.StatusBadGateway, "listing the refs of "+rule.Source.Owner+"/"+rule.Source.Repository+": "+err.Error())
			return
		}
		refs, defaultBranch = listed, def
	}
	now := time.Now()
	for i := range refs {
		refs[i] = a.previewOne(rule, refs[i], defaultBranch, now)
	}
	if refs == nil {
		refs = []previewRef{}
	}
	c.JSON(http.StatusOK, gin.H{"refs": refs, "default_branch": defaultBranch, "warnings": nonNil(warnings)})
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// previewOne matches one ref against rule and renders its tags as a build would.
func (a *Server) previewOne(rule store.Rule, p previewRef, defaultBranch string, now time.Time) previewRef {
	p.Tags = []string{}
	ref := build.Ref{Type: p.Type, Name: p.Name}
	if err := ref.Check(); err != nil {
		p.Reason = "not a ref Git accepts"
		p.Error = err.Error()
		return p
	}
	d, ok := webhook.MatchRef(rule.Triggers, ref)
	p.Matches, p.Entry, p.Reason = ok, d.Entry, d.Reason
	if !ok {
		return p
	}
	captures, latest := refExtras(rule, ref, defaultBranch)
	commit := p.Commit
	if commit == "" {
		commit = previewCommit
	}
	in := a.builds.InputOf(builds.Request{Rule: rule, Ref: ref, Commit: commit, Trigger: build.TriggerManual, Captures: captures, Latest: latest})
	res, err := build.RenderTags(build.RenderTagInput{TagTemplate: in.TagTemplate, Ref: ref, Commit: commit, Time: now,
		SanitizeRef: in.SanitizeRef, Captures: in.Captures, Latest: in.Latest, Semver: in.Semver})
	if err != nil {
		p.Error = errorText(err)
		return p
	}
	p.Tags = res.Tags
	return p
}

// listRefs lists the branches and tags of rule's source through its account, and its
// default branch.
func (a *Server) listRefs(ctx context.Context, rule store.Rule) ([]previewRef, string, error) {
	_, client, err := a.accounts.Client(ctx, rule.AccountID)
	if err != nil {
		return nil, "", err
	}
	var refs []previewRef
	for _, kind := range []struct {
		refType string
		list    func(ctx context.Context, owner, repo string, page int) ([]providers.RefHead, providers.Page, error)
	}{{build.RefBranch, client.Branches}, {build.RefTag, client.Tags}} {
		for page, n := 1, 0; page != 0 && n < maxPreviewPages; n++ {
			heads, next, err := kind.list(ctx, rule.Source.Owner, rule.Source.Repository, page)
			if err != nil {
				return nil, "", fmt.Errorf("%ss: %w", kind.refType, err)
			}
			for _, h := range heads {
				refs = append(refs, previewRef{Type: kind.refType, Name: h.Name, Commit: h.Commit})
			}
			page = next.Next
		}
	}
	return refs, a.defaultBranch(ctx, rule), nil
}
