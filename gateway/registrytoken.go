package gateway

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/slipway-dev/slipway/registryauth"
	"github.com/slipway-dev/slipway/store"
)

// registryTokenTTL bounds a user's registry token; clients ask again when it runs out, as
// Docker Hub's five minutes have them do.
const registryTokenTTL = 5 * time.Minute

// registryToken is the registry's token service (the Docker registry token protocol): Basic
// auth with a Slipway user name and API token, and a JWT granting of the requested scopes
// what the user's roles allow. `docker login` and `crane auth login` ask it with no scope, to
// check the password; they get a token that grants nothing.
func (a *Server) registryToken(c *gin.Context) {
	name, token, ok := c.Request.BasicAuth()
	if !ok || name == "" || token == "" {
		c.Header("WWW-Authenticate", `Basic realm="slipway registry"`)
		fail(c, http.StatusUnauthorized, "registry tokens need Basic auth: a Slipway user name and API token")
		return
	}
	u, err := a.store.UserByToken(c.Request.Context(), token)
	if errors.Is(err, store.ErrNotFound) || (err == nil && u.Name != name) {
		c.Header("WWW-Authenticate", `Basic realm="slipway registry"`)
		fail(c, http.StatusUnauthorized, "invalid user name or token")
		return
	}
	if err != nil {
		a.internal(c, "checking token", err)
		return
	}
	c.Set(ctxUserName, u.Name) // for the request log
	if a.registryKey == nil {
		fail(c, http.StatusServiceUnavailable, "the registry token service has no key")
		return
	}
	if svc := c.Query("service"); svc != "" && svc != registryauth.Service {
		fail(c, http.StatusBadRequest, fmt.Sprintf("service %q is not %q", svc, registryauth.Service))
		return
	}
	requested, err := registryauth.ParseScopes(c.QueryArray("scope"))
	if err != nil {
		fail(c, http.StatusBadRequest, err.Error())
		return
	}
	var lookupErr error
	roles := map[string]string{}
	rules := registryauth.UserRules(u.SiteAdmin, func(ns string) string {
		if r, ok := roles[ns]; ok {
			return r
		}
		role, err := a.store.MemberRole(c.Request.Context(), ns, u.ID)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			lookupErr = err
		}
		roles[ns] = string(role)
		return string(role)
	})
	granted := registryauth.Grant(requested, rules)
	if lookupErr != nil {
		a.internal(c, "checking role", lookupErr)
		return
	}
	tok, err := a.registryKey.Mint(u.Name, granted, registryTokenTTL)
	if err != nil {
		a.internal(c, "minting registry token", err)
		return
	}
	c.JSON(http.StatusOK, tok.Response())
}
