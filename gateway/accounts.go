package gateway

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/slipway-dev/slipway/build"
	"github.com/slipway-dev/slipway/providers"
	"github.com/slipway-dev/slipway/store"
)

// providerError answers for a failed provider call, saying which side is wrong.
func (a *Server) providerError(c *gin.Context, what string, err error) {
	switch {
	case errors.Is(err, providers.ErrUnauthorized):
		fail(c, http.StatusBadRequest, what+": the provider refused the account's token (revoked or expired?)")
	case errors.Is(err, providers.ErrNotFound):
		fail(c, http.StatusNotFound, what+": not found, or the account cannot see it")
	case errors.Is(err, providers.ErrForbidden):
		fail(c, http.StatusForbidden, what+": the account lacks the right on the provider")
	case errors.Is(err, providers.ErrRateLimited):
		wait := 60 * time.Second
		var rl *providers.RateLimitError
		if errors.As(err, &rl) && rl.RetryAfter > 0 {
			wait = rl.RetryAfter
		}
		c.Header("Retry-After", strconv.Itoa(int(wait.Round(time.Second).Seconds())))
		fail(c, http.StatusServiceUnavailable, what+": the provider's rate limit is reached; try again later")
	default:
		a.logger.Error(what, "error", err)
		fail(c, http.StatusBadGateway, what+": the provider did not answer")
	}
}

// needAccounts answers 503 when this gateway was started without a way to seal tokens.
func (a *Server) needAccounts(c *gin.Context) bool {
	if a.accounts == nil {
		fail(c, http.StatusServiceUnavailable, "connected accounts are off: the gateway has no secret key")
		return false
	}
	return true
}

// connectAccount connects a provider account to the namespace: a provider token, checked
// against the provider, sealed at rest and never shown again.
func (a *Server) connectAccount(c *gin.Context) {
	ns := c.Param("ns")
	if !a.needAccounts(c) {
		return
	}
	var body struct {
		Provider string `json:"provider"`
		Token    string `json:"token"`
	}
	if !bindJSON(c, &body) {
		return
	}
	if body.Provider != build.ProviderGitHub && body.Provider != build.ProviderGitLab {
		fail(c, http.StatusBadRequest, fmt.Sprintf("provider %q is not github or gitlab", body.Provider))
		return
	}
	if body.Token == "" {
		fail(c, http.StatusBadRequest, "token is required")
		return
	}
	acct, err := a.accounts.Connect(c.Request.Context(), ns, body.Provider, body.Token, user(c).Name)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrConflict) {
			a.storeError(c, "account", err)
			return
		}
		a.providerError(c, "connecting the "+body.Provider+" account", err)
		return
	}
	c.JSON(http.StatusCreated, acct)
}

func (a *Server) listAccounts(c *gin.Context) {
	ns := c.Param("ns")
	list, err := a.store.ListAccounts(c.Request.Context(), ns)
	if err != nil {
		a.storeError(c, "namespace "+ns, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"accounts": list})
}

// nsAccount loads account :account and checks it belongs to namespace :ns.
func (a *Server) nsAccount(c *gin.Context) (store.Account, bool) {
	acct, err := a.store.GetAccount(c.Request.Context(), c.Param("account"))
	if err == nil && acct.Namespace != c.Param("ns") {
		err = store.ErrNotFound
	}
	if err != nil {
		a.storeError(c, fmt.Sprintf("account %q", c.Param("account")), err)
		return store.Account{}, false
	}
	return acct, true
}

func (a *Server) deleteAccount(c *gin.Context) {
	acct, ok := a.nsAccount(c)
	if !ok {
		return
	}
	if err := a.store.DeleteAccount(c.Request.Context(), acct.ID); err != nil {
		a.storeError(c, "account", err)
		return
	}
	c.Status(http.StatusNoContent)
}

// browse lists what an account can build from, the way the console picks a source: owners
// (organizations or groups), their repositories, then branches or tags. It needs write, the
// role that creates rules, since it shows the account's private repositories.
func (a *Server) browse(c *gin.Context) {
	acct, ok := a.nsAccount(c)
	if !ok || !a.needAccounts(c) {
		return
	}
	page := 1
	if p := c.Query("page"); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 {
			fail(c, http.StatusBadRequest, "page must be a positive number")
			return
		}
		page = n
	}
	owner, repo := c.Query("owner"), c.Query("repository")
	what := c.Param("what")
	if what != "owners" && owner == "" {
		fail(c, http.StatusBadRequest, "owner is required")
		return
	}
	if (what == "branches" || what == "tags") && repo == "" {
		fail(c, http.StatusBadRequest, "repository is required")
		return
	}
	// The same names a rule's source may hold: they go into the provider's API paths as
	// they are, so ".." or "?" would reach other endpoints with the namespace's token.
	if owner != "" && (!validOwner(owner) || (acct.Provider == build.ProviderGitHub && strings.Contains(owner, "/"))) {
		fail(c, http.StatusBadRequest, fmt.Sprintf("owner %q is not an organization or group path", shorten(owner, 80)))
		return
	}
	if repo != "" && !validRepository(repo) {
		fail(c, http.StatusBadRequest, fmt.Sprintf("repository %q is not a repository name", shorten(repo, 80)))
		return
	}
	ctx := c.Request.Context()
	_, client, err := a.accounts.Client(ctx, acct.ID)
	if err != nil {
		a.internal(c, "opening account", err)
		return
	}
	var (
		items any
		next  providers.Page
	)
	switch what {
	case "owners":
		items, next, err = client.Owners(ctx, page)
	case "repositories":
		items, next, err = client.Repos(ctx, owner, page)
	case "branches":
		items, next, err = client.Branches(ctx, owner, repo, page)
	case "tags":
		items, next, err = client.Tags(ctx, owner, repo, page)
	default:
		fail(c, http.StatusNotFound, "no such endpoint")
		return
	}
	if err != nil {
		a.providerError(c, "listing "+what, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"items": items, "next_page": next.Next})
}
