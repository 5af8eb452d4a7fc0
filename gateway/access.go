package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/go-containerregistry/pkg/name"

	"github.com/slipway-dev/slipway/config"
	"github.com/slipway-dev/slipway/registryclean"
	"github.com/slipway-dev/slipway/store"
)

// tokenUseEvery is how finely a token's last use is recorded: a token used all day costs the
// database one write a minute, not one per request.
const tokenUseEvery = time.Minute

// touchToken records the caller's token use when the recorded one is older than
// tokenUseEvery, and returns u as it now stands. A failure is logged: it must not refuse the
// call.
func (a *Server) touchToken(ctx context.Context, u store.User) store.User {
	at := time.Now().UTC()
	if u.TokenLastUsedAt != nil && at.Sub(*u.TokenLastUsedAt) < tokenUseEvery {
		return u
	}
	wrote, err := a.store.TouchToken(ctx, u.ID, at, tokenUseEvery)
	if err != nil {
		a.logger.Warn("recording token use", "user", u.Name, "error", err)
	}
	if wrote {
		u.TokenLastUsedAt = &at
	}
	return u
}

// tokenView is what the API shows of a token: never the token, its dates.
type tokenView struct {
	CreatedAt  *time.Time `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
}

// userView is a user as the API shows it.
type userView struct {
	Name      string     `json:"name"`
	SiteAdmin bool       `json:"site_admin"`
	Disabled  bool       `json:"disabled"`
	CreatedAt time.Time  `json:"created_at"`
	Token     *tokenView `json:"token"`
}

func viewUser(u store.User) userView {
	v := userView{Name: u.Name, SiteAdmin: u.SiteAdmin, Disabled: u.Disabled, CreatedAt: u.CreatedAt}
	if !u.Disabled {
		v.Token = &tokenView{CreatedAt: u.TokenCreatedAt, LastUsedAt: u.TokenLastUsedAt}
	}
	return v
}

// namespaces are the namespaces the caller sees, with the role held in each: a site admin
// sees all, with the admin role it holds everywhere.
func (a *Server) namespaces(c *gin.Context) ([]store.Membership, error) {
	u := user(c)
	if !u.SiteAdmin {
		return a.store.UserNamespaces(c.Request.Context(), u.ID)
	}
	all, err := a.store.AllNamespaces(c.Request.Context(), u.ID)
	for i := range all {
		all[i].Role = store.RoleAdmin
	}
	return all, err
}

// me answers who the caller is.
func (a *Server) me(c *gin.Context) {
	nss, err := a.namespaces(c)
	if err != nil {
		a.internal(c, "listing namespaces", err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"user": viewUser(user(c)), "namespaces": nss})
}

func (a *Server) listNamespaces(c *gin.Context) {
	nss, err := a.namespaces(c)
	if err != nil {
		a.internal(c, "listing namespaces", err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"namespaces": nss})
}

// adminTokenNote says where the site admin's token lives: the gateway sets it at every start,
// so one made through the API would not outlive a restart.
const adminTokenNote = "the site admin's token is SLIPWAY_ADMIN_TOKEN (or $SLIPWAY_HOME/admin-token): change it there and restart the gateway"

// rotateMyToken gives the caller a new token, shown once; the one that authenticated this
// call stops at once.
func (a *Server) rotateMyToken(c *gin.Context) {
	a.issueToken(c, user(c).Name)
}

// rotateUserToken is the site admin giving a user a new token: the way back in for a user
// enabled again, or for one who lost theirs.
func (a *Server) rotateUserToken(c *gin.Context) {
	if !user(c).SiteAdmin {
		fail(c, http.StatusForbidden, "only the site admin issues tokens to other users")
		return
	}
	a.issueToken(c, c.Param("user"))
}

func (a *Server) issueToken(c *gin.Context, name string) {
	target, err := a.store.GetUser(c.Request.Context(), name)
	if err != nil {
		a.storeError(c, fmt.Sprintf("user %q", name), err)
		return
	}
	if target.SiteAdmin {
		fail(c, http.StatusConflict, adminTokenNote)
		return
	}
	u, token, err := a.store.RotateToken(c.Request.Context(), name)
	switch {
	case errors.Is(err, store.ErrDisabled):
		fail(c, http.StatusConflict, fmt.Sprintf("user %q is disabled: enable it first (PATCH /api/v1/users/%s {\"disabled\": false})", name, name))
		return
	case err != nil:
		a.storeError(c, fmt.Sprintf("user %q", name), err)
		return
	}
	c.JSON(http.StatusCreated, gin.H{"name": u.Name, "token": token, "created_at": u.TokenCreatedAt})
}

// patchUser is the site admin disabling a user (every token answers 401 from then on) or
// enabling one again (with no token: POST /api/v1/users/{user}/token gives one).
func (a *Server) patchUser(c *gin.Context) {
	if !user(c).SiteAdmin {
		fail(c, http.StatusForbidden, "only the site admin disables or enables users")
		return
	}
	var body struct {
		Disabled *bool `json:"disabled"`
	}
	if !bindJSON(c, &body) {
		return
	}
	if body.Disabled == nil {
		fail(c, http.StatusBadRequest, `"disabled" (true or false) is required`)
		return
	}
	name := c.Param("user")
	u, err := a.store.SetDisabled(c.Request.Context(), name, *body.Disabled)
	switch {
	case errors.Is(err, store.ErrInvalid):
		fail(c, http.StatusConflict, "a site admin cannot be disabled: "+adminTokenNote)
		return
	case err != nil:
		a.storeError(c, fmt.Sprintf("user %q", name), err)
		return
	}
	if u.Disabled {
		a.logger.Info("user disabled", "user", u.Name, "by", user(c).Name)
	}
	c.JSON(http.StatusOK, viewUser(u))
}

func (a *Server) listMembers(c *gin.Context) {
	ns := c.Param("ns")
	ms, err := a.store.ListMembers(c.Request.Context(), ns)
	if err != nil {
		a.storeError(c, "namespace "+ns, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"members": ms})
}

// memberError answers for a refused change of membership.
func (a *Server) memberError(c *gin.Context, ns, name string, err error) {
	switch {
	case errors.Is(err, store.ErrLastAdmin):
		fail(c, http.StatusConflict, fmt.Sprintf("%q is the last admin of namespace %q: make another member admin first", name, ns))
	default:
		a.storeError(c, fmt.Sprintf("user %q", name), err)
	}
}

// removeMember takes a member's role away: their next call in the namespace is a 404 like a
// stranger's.
func (a *Server) removeMember(c *gin.Context) {
	ns, name := c.Param("ns"), c.Param("user")
	err := a.store.RemoveMember(c.Request.Context(), ns, name)
	if errors.Is(err, store.ErrNotFound) {
		// One answer for no such user and no such member: names do not leak.
		fail(c, http.StatusNotFound, fmt.Sprintf("user %q is no member of namespace %q", name, ns))
		return
	}
	if err != nil {
		a.memberError(c, ns, name, err)
		return
	}
	c.Status(http.StatusNoContent)
}

// hookReport is a managed hook a deletion could not remove: it is still on the provider,
// delivering to a rule that is gone, until someone removes it there.
type hookReport struct {
	RuleID string `json:"rule_id"`
	store.OrphanedHook
}

// deleteRepository deletes an image repository with its rules and their managed hooks; its
// images stay in the registry unless ?images=delete. Build records stay in Temporal (until
// its retention) and readable at /api/v1/builds/{id}.
func (a *Server) deleteRepository(c *gin.Context) {
	ns, repo := c.Param("ns"), c.Param("repo")
	images := c.DefaultQuery("images", "keep")
	if images != "keep" && images != "delete" {
		fail(c, http.StatusBadRequest, fmt.Sprintf("images %q is neither keep nor delete", images))
		return
	}
	ctx := c.Request.Context()
	if _, err := a.store.GetRepository(ctx, ns, repo); err != nil {
		a.storeError(c, fmt.Sprintf("repository %q", repo), err)
		return
	}
	out := gin.H{"namespace": ns, "name": repo, "images": "kept"}
	// Images first: when the registry fails, nothing is deleted and the call can be repeated.
	if images == "delete" {
		ref, err := name.NewRepository(a.image(ns, repo))
		if err != nil {
			a.internal(c, "naming the image repository", err)
			return
		}
		res, err := registryclean.DeleteRepository(ctx, ref, a.registryKeychain)
		if err != nil {
			a.logger.Error("deleting images", "repository", ref.String(), "error", err)
			fail(c, http.StatusBadGateway, fmt.Sprintf("deleting the images of %s failed; nothing else was deleted, try again (does the registry allow deletes?)", ref))
			return
		}
		out["images"] = "deleted"
		out["deleted_tags"] = res.Tags
		out["deleted_manifests"] = res.Manifests
	}
	dropRetention := a.retentionDropper(ctx, ns, repo)
	rules, err := a.store.DeleteRepository(ctx, ns, repo)
	if err != nil {
		a.storeError(c, fmt.Sprintf("repository %q", repo), err)
		return
	}
	dropRetention()
	ids := make([]string, 0, len(rules))
	orphans := []hookReport{}
	for _, r := range rules {
		ids = append(ids, r.ID)
		left := r.OrphanedHooks
		if r.Hook.ID != 0 {
			left = append(left, store.OrphanedHook{Source: r.Source, AccountID: r.AccountID, HookID: r.Hook.ID})
		}
		for _, o := range a.removeHooks(ctx, left) {
			orphans = append(orphans, hookReport{RuleID: r.ID, OrphanedHook: o})
		}
	}
	if len(orphans) > 0 {
		a.logger.Warn("hooks left on providers", "repository", ns+"/"+repo, "count", len(orphans))
	}
	out["deleted_rules"] = ids
	out["orphaned_hooks"] = orphans
	c.JSON(http.StatusOK, out)
}

// removeHook deletes a managed hook through the account that made it.
func (a *Server) removeHook(ctx context.Context, o store.OrphanedHook) error {
	if a.accounts == nil {
		return errors.New("connected accounts are off: the gateway has no secret key")
	}
	_, client, err := a.accounts.Client(ctx, o.AccountID)
	if err != nil {
		return fmt.Errorf("account %s: %s", o.AccountID, errorText(err))
	}
	if err := client.DeleteHook(ctx, o.Source.Owner, o.Source.Repository, o.HookID); err != nil {
		return errors.New(hookProblem(err))
	}
	return nil
}

// removeHooks tries to delete hooks and returns those it could not, each with why.
func (a *Server) removeHooks(ctx context.Context, hooks []store.OrphanedHook) []store.OrphanedHook {
	left := []store.OrphanedHook{}
	for _, o := range hooks {
		if err := a.removeHook(ctx, o); err != nil {
			o.Error = err.Error()
			left = append(left, o)
		}
	}
	return left
}

// leaveOldSource removes the managed hook old had on its source when r builds from another
// source (or through another account), and tries again the hooks left on earlier sources. What
// cannot be removed is recorded on the rule (orphaned_hooks), not forgotten. It returns r with
// its hook and orphans as stored.
func (a *Server) leaveOldSource(ctx context.Context, old, r store.Rule) store.Rule {
	pending := old.OrphanedHooks
	moved := old.Hook.ID != 0 && (old.Source != r.Source || old.AccountID != r.AccountID)
	if moved {
		pending = append(pending, store.OrphanedHook{Source: old.Source, AccountID: old.AccountID, HookID: old.Hook.ID})
		r.Hook = store.RuleHook{}
		if err := a.store.SetRuleHook(ctx, r.ID, r.Hook); err != nil {
			a.logger.Error("recording hook state", "rule", r.ID, "error", err)
		}
	}
	if len(pending) == 0 {
		return r
	}
	r.OrphanedHooks = a.removeHooks(ctx, pending)
	if err := a.store.SetOrphanedHooks(ctx, r.ID, r.OrphanedHooks); err != nil {
		a.logger.Error("recording orphaned hooks", "rule", r.ID, "error", err)
	}
	return r
}

// rotateWebhookSecret gives a rule a new webhook secret, shown once in the answer; the old one
// validates no delivery from then on, and the managed hook, if any, is updated with the new.
func (a *Server) rotateWebhookSecret(c *gin.Context) {
	r, ok := a.repoRule(c)
	if !ok {
		return
	}
	r, err := a.store.RotateWebhookSecret(c.Request.Context(), r.ID)
	if err != nil {
		a.storeError(c, fmt.Sprintf("build rule %q", c.Param("id")), err)
		return
	}
	r = a.syncHook(c.Request.Context(), r)
	c.JSON(http.StatusOK, a.ruleView(r, true))
}

// checkCreator applies SLIPWAY_NAMESPACE_CREATORS.
func (a *Server) checkCreator(c *gin.Context) bool {
	if a.cfg.NamespaceCreators == config.CreatorsAdmin && !user(c).SiteAdmin {
		fail(c, http.StatusForbidden, "only the site admin creates namespaces on this Slipway (SLIPWAY_NAMESPACE_CREATORS=admin)")
		return false
	}
	return true
}
