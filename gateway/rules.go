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

	"github.com/slipway-dev/slipway/build"
	"github.com/slipway-dev/slipway/builds"
	"github.com/slipway-dev/slipway/config"
	"github.com/slipway-dev/slipway/providers"
	"github.com/slipway-dev/slipway/store"
)

var sourceName = regexp.MustCompile(`^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$`)

// maxTimeout is the longest timeout the operator allows a build (SLIPWAY_MAX_BUILD_TIMEOUT).
func (a *Server) maxTimeout() time.Duration {
	if a.cfg.MaxBuildTimeout > 0 {
		return a.cfg.MaxBuildTimeout
	}
	d, _ := time.ParseDuration(config.DefaultMaxBuildTimeout)
	return d
}

// checkTimeout refuses a timeout that is no duration or longer than the operator allows.
func checkTimeout(timeout string, most time.Duration) error {
	if timeout == "" {
		return nil
	}
	d, err := time.ParseDuration(timeout)
	if err != nil || d <= 0 || d > most {
		return fmt.Errorf("timeout %q is not a duration between 1s and %s (the longest this service allows)", timeout, most)
	}
	return nil
}

// validOwner reports whether owner is an organization, user or (GitLab) group path: names of
// letters, digits, "_", "." and "-" joined by "/", none of them "." or "..". Owners and
// repositories are formatted into provider API paths unescaped (go-github), where a dot
// segment or any other character would lead to another endpoint.
func validOwner(owner string) bool {
	if !sourceName.MatchString(owner) || strings.Contains(owner, "..") {
		return false
	}
	for _, seg := range strings.Split(owner, "/") {
		if seg == "." {
			return false
		}
	}
	return true
}

// validRepository reports whether repo is one repository's name, by validOwner's rules and
// without "/".
func validRepository(repo string) bool {
	return validOwner(repo) && !strings.Contains(repo, "/")
}

// ruleBody is a build rule as callers send it.
type ruleBody struct {
	Source         store.Source      `json:"source"`
	Triggers       build.Triggers    `json:"triggers"`
	TagTemplate    string            `json:"tag_template"`
	DockerfilePath string            `json:"dockerfile_path"`
	ContextPath    string            `json:"context_path"`
	BuildArgs      map[string]string `json:"build_args"`
	SanitizeRef    bool              `json:"sanitize_ref"`
	Timeout        string            `json:"timeout"`
	// AccountID names a connected account of the namespace that reads the source: private
	// clones, a managed webhook, commit statuses.
	AccountID string `json:"account_id"`
	// Cache is where BuildKit keeps the registry cache: "" for IMAGE:buildcache, "off", or an
	// image reference.
	Cache string `json:"cache"`
	// TagLatest is "" or "default_branch": builds of the default branch also tag latest.
	TagLatest string `json:"tag_latest"`
	// Semver adds "1.2.3", "1.2" and "1" to a build of the Git tag "v1.2.3".
	Semver bool `json:"semver"`
	// SkipMarkers is a pointer because its absence means true: a commit saying "[skip ci]"
	// starts nothing unless the rule turns that off.
	SkipMarkers *bool `json:"skip_markers"`
	// RunPolicy is "parallel" (the default), "serial" or "latest_only".
	RunPolicy string `json:"run_policy"`
	// ReconcileEvery is a Go duration of at least a minute, or "" for never.
	ReconcileEvery string `json:"reconcile_every"`
	// Secrets names build secrets of the namespace the rule's builds get; each must exist.
	Secrets []string `json:"secrets"`
	// Platforms are the platforms each build makes into one image index, such as
	// ["linux/amd64", "linux/arm64"]; none builds the worker's own platform.
	Platforms []string `json:"platforms"`
}

// ruleView is a rule as the API shows it: the stored rule and where its webhook is.
type ruleView struct {
	store.Rule
	Webhook webhookView `json:"webhook"`
	// Warnings, in the answer to a save, name the refs the rule may match but not build.
	Warnings []string `json:"warnings,omitempty"`
	// Badge is the rule's public status badge.
	Badge *badgeView `json:"badge,omitempty"`
}

type webhookView struct {
	URL string `json:"url"`
	// Secret is shown once, when the rule is created, like a token.
	Secret string `json:"secret,omitempty"`
}

func (a *Server) ruleView(r store.Rule, withSecret bool) ruleView {
	v := ruleView{Rule: r, Webhook: webhookView{URL: a.cfg.GatewayURL + "/webhooks/" + r.Source.Provider + "/" + r.ID}}
	v.Badge = a.badgeOf(r.ID)
	if withSecret {
		v.Webhook.Secret = r.WebhookSecret
	}
	return v
}

// validateRule refuses at save time what would fail every build of rule b of image repository
// ns/repo, naming the field: the source and triggers here, the rest as the workflow checks a
// build of the rule (build.Input.Validate). It warns of refs the rule matches but cannot build.
func (a *Server) validateRule(b *ruleBody, ns, repo string) ([]string, error) {
	b.Source.Provider = strings.ToLower(strings.TrimSpace(b.Source.Provider))
	if b.Source.Provider != build.ProviderGitHub && b.Source.Provider != build.ProviderGitLab {
		return nil, fmt.Errorf("source.provider %q is not github or gitlab", b.Source.Provider)
	}
	if b.Source.Owner == "" || b.Source.Repository == "" {
		return nil, errors.New("source.owner and source.repository are required")
	}
	if !validOwner(b.Source.Owner) {
		return nil, fmt.Errorf("source.owner %q is not an organization or group path", b.Source.Owner)
	}
	if !validRepository(b.Source.Repository) {
		return nil, fmt.Errorf("source.repository %q is not a repository name", b.Source.Repository)
	}
	if err := checkRuleFields(b); err != nil {
		return nil, err
	}
	if err := normalizeRulePlatforms(b); err != nil {
		return nil, err
	}
	if err := checkTimeout(b.Timeout, a.maxTimeout()); err != nil {
		return nil, err
	}
	warnings, err := a.checkTriggers(*b, ns, repo)
	if err != nil {
		return nil, err
	}
	// The template must render for every kind of ref the rule can build: a rule with no
	// trigger is built by hand, from a branch or a tag.
	var samples []build.Ref
	if len(b.Triggers.Branches) > 0 {
		samples = append(samples, build.Ref{Type: build.RefBranch, Name: "main"})
	}
	if b.Triggers.Tags || len(b.Triggers.TagPatterns) > 0 {
		samples = append(samples, build.Ref{Type: build.RefTag, Name: "v1.0.0"})
	}
	// Captures were checked against the patterns above; a stand-in value renders the rest.
	standIn := map[string]string{}
	for _, c := range build.TemplateCaptures(b.TagTemplate) {
		standIn[c] = "x"
	}
	if len(samples) == 0 {
		samples = []build.Ref{{Type: build.RefBranch, Name: "main"}, {Type: build.RefTag, Name: "v1.0.0"}}
	}
	for _, ref := range samples {
		err := a.builds.InputOf(builds.Request{Rule: b.rule(ns, repo), Ref: ref, Trigger: build.TriggerManual, Captures: standIn}).Validate()
		var ie *build.InvalidError
		if errors.As(err, &ie) && ie.Type == build.ErrTypeInvalidTag {
			return nil, fmt.Errorf("tag_template for a %s build: %w", ref.Type, err)
		}
		if err != nil {
			return nil, err
		}
	}
	return warnings, nil
}

func (b ruleBody) rule(ns, repo string) store.Rule {
	return store.Rule{
		Namespace: ns, Repository: repo, Source: b.Source, Triggers: b.Triggers, TagTemplate: b.TagTemplate,
		DockerfilePath: b.DockerfilePath, ContextPath: b.ContextPath, BuildArgs: b.BuildArgs,
		SanitizeRef: b.SanitizeRef, Timeout: b.Timeout, AccountID: b.AccountID, Cache: b.Cache,
		TagLatest: b.TagLatest, Semver: b.Semver, SkipMarkers: b.SkipMarkers == nil || *b.SkipMarkers,
		RunPolicy: b.RunPolicy, ReconcileEvery: b.ReconcileEvery,
		Secrets:   ruleSecrets(b.Secrets),
		Platforms: b.Platforms,
	}
}

// checkAccount refuses an account of another namespace or provider than the rule's.
func (a *Server) checkAccount(c *gin.Context, ns string, b ruleBody) bool {
	if b.AccountID == "" {
		return true
	}
	acct, err := a.store.GetAccount(c.Request.Context(), b.AccountID)
	if err != nil || acct.Namespace != ns {
		fail(c, http.StatusBadRequest, fmt.Sprintf("account_id %q is no account of namespace %q", b.AccountID, ns))
		return false
	}
	if acct.Provider != b.Source.Provider {
		fail(c, http.StatusBadRequest, fmt.Sprintf("account_id %q is a %s account; the source is on %s", b.AccountID, acct.Provider, b.Source.Provider))
		return false
	}
	return true
}

// syncHook makes the webhook on the rule's source match its triggers when the rule has an
// account: created or updated while it has triggers, removed when it has none. A hook that
// cannot be managed (no admin right on the repository, say) leaves the rule saved, with
// manual builds, and its state says why.
func (a *Server) syncHook(ctx context.Context, r store.Rule) store.Rule {
	if r.AccountID == "" || a.accounts == nil {
		return r
	}
	want := len(r.Triggers.Branches) > 0 || r.Triggers.Tags || len(r.Triggers.TagPatterns) > 0
	if !want && r.Hook.ID == 0 {
		return r
	}
	_, client, err := a.accounts.Client(ctx, r.AccountID)
	switch {
	case err != nil:
		r.Hook.State = "error: " + err.Error()
	case want:
		h, herr := client.EnsureHook(ctx, r.Source.Owner, r.Source.Repository, a.ruleView(r, false).Webhook.URL, r.WebhookSecret)
		if herr != nil {
			r.Hook.State = "error: " + hookProblem(herr)
		} else {
			r.Hook = store.RuleHook{ID: h.ID, State: "active"}
		}
	default:
		if herr := client.DeleteHook(ctx, r.Source.Owner, r.Source.Repository, r.Hook.ID); herr != nil {
			r.Hook.State = "error: " + hookProblem(herr)
		} else {
			r.Hook = store.RuleHook{State: "removed"}
		}
	}
	if err := a.store.SetRuleHook(ctx, r.ID, r.Hook); err != nil {
		a.logger.Error("recording hook state", "rule", r.ID, "error", err)
	}
	return r
}

// hookProblem says what a person can do about a hook the provider refused.
func hookProblem(err error) string {
	switch {
	case errors.Is(err, providers.ErrForbidden), errors.Is(err, providers.ErrNotFound):
		return "the account has no admin right on the repository; add the webhook by hand or connect an admin's account (manual builds work)"
	case errors.Is(err, providers.ErrUnauthorized):
		return "the provider refused the account's token (revoked?)"
	}
	return err.Error()
}

// repoRule loads rule :id and checks it belongs to the repository in the URL, so a rule id
// from another namespace reads as missing.
func (a *Server) repoRule(c *gin.Context) (store.Rule, bool) {
	ns, repo, id := c.Param("ns"), c.Param("repo"), c.Param("id")
	r, err := a.store.GetRule(c.Request.Context(), id)
	if err == nil && (r.Namespace != ns || r.Repository != repo) {
		err = store.ErrNotFound
	}
	if err != nil {
		a.storeError(c, fmt.Sprintf("build rule %q", id), err)
		return store.Rule{}, false
	}
	return r, true
}

func (a *Server) createRule(c *gin.Context) {
	ns, repo := c.Param("ns"), c.Param("repo")
	var body ruleBody
	if !bindJSON(c, &body) {
		return
	}
	warnings, err := a.validateRule(&body, ns, repo)
	if err != nil {
		fail(c, http.StatusBadRequest, err.Error())
		return
	}
	if !a.checkAccount(c, ns, body) || !a.checkRuleSecrets(c, ns, body) {
		return
	}
	r, err := a.store.CreateRule(c.Request.Context(), body.rule(ns, repo))
	if err != nil {
		a.storeError(c, fmt.Sprintf("repository %q", repo), err)
		return
	}
	r = a.syncHook(c.Request.Context(), r)
	a.syncReconcile(c.Request.Context(), store.Rule{}, r)
	v := a.ruleView(r, true)
	v.Warnings = warnings
	c.JSON(http.StatusCreated, v)
}

func (a *Server) listRules(c *gin.Context) {
	ns, repo := c.Param("ns"), c.Param("repo")
	rs, err := a.store.ListRules(c.Request.Context(), ns, repo)
	if err != nil {
		a.storeError(c, fmt.Sprintf("repository %q", repo), err)
		return
	}
	out := make([]ruleView, 0, len(rs))
	for _, r := range rs {
		out = append(out, a.ruleView(r, false))
	}
	c.JSON(http.StatusOK, gin.H{"build_rules": out})
}

func (a *Server) getRule(c *gin.Context) {
	if r, ok := a.repoRule(c); ok {
		c.JSON(http.StatusOK, a.ruleView(r, false))
	}
}

func (a *Server) updateRule(c *gin.Context) {
	old, ok := a.repoRule(c)
	if !ok {
		return
	}
	var body ruleBody
	if !bindJSON(c, &body) {
		return
	}
	warnings, err := a.validateRule(&body, old.Namespace, old.Repository)
	if err != nil {
		fail(c, http.StatusBadRequest, err.Error())
		return
	}
	if !a.checkAccount(c, old.Namespace, body) || !a.checkRuleSecrets(c, old.Namespace, body) {
		return
	}
	r := body.rule(old.Namespace, old.Repository)
	r.ID = old.ID
	r, err = a.store.UpdateRule(c.Request.Context(), r)
	if err != nil {
		a.storeError(c, fmt.Sprintf("build rule %q", old.ID), err)
		return
	}
	r = a.leaveOldSource(c.Request.Context(), old, r)
	r = a.syncHook(c.Request.Context(), r)
	a.syncReconcile(c.Request.Context(), old, r)
	v := a.ruleView(r, false)
	v.Warnings = warnings
	c.JSON(http.StatusOK, v)
}

func (a *Server) deleteRule(c *gin.Context) {
	r, ok := a.repoRule(c)
	if !ok {
		return
	}
	// The rule goes whatever the provider says; its hooks would only deliver to a 404. Hooks
	// left on its former sources get one more try.
	r.Triggers = build.Triggers{}
	a.syncHook(c.Request.Context(), r)
	if left := a.removeHooks(c.Request.Context(), r.OrphanedHooks); len(left) > 0 {
		a.logger.Warn("hooks left on providers", "rule", r.ID, "count", len(left))
	}
	if err := a.store.DeleteRule(c.Request.Context(), r.ID); err != nil {
		a.storeError(c, fmt.Sprintf("build rule %q", r.ID), err)
		return
	}
	a.dropReconcile(c.Request.Context(), r)
	c.Status(http.StatusNoContent)
}
