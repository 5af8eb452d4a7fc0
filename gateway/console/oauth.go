package console

import (
	"errors"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"golang.org/x/oauth2"
)

// accountID is the shape of a connected account's id.
var accountID = regexp.MustCompile(`^a-[a-z0-9]{1,40}$`)

// OAuthApps are the OAuth apps "Connect GitHub/GitLab" (源代码授权) authorizes with, by
// provider, with their endpoints, scopes and callback URL; a provider without one offers token
// pasting only.
type OAuthApps map[string]*oauth2.Config

// providers lists the providers with an app configured.
func (o OAuthApps) providers() []string {
	var out []string
	for _, p := range []string{"github", "gitlab"} {
		if o[p] != nil {
			out = append(out, p)
		}
	}
	return out
}

// oauthStart (a form's POST, so it carries the CSRF token) sends the browser to the
// provider's consent page. The state and the PKCE verifier are kept in the session, so only
// this browser can finish the authorization.
func (cn *Console) oauthStart(c *gin.Context) {
	ns, provider := c.Param("ns"), c.Param("provider")
	app := cn.d.OAuth[provider]
	if app == nil {
		cn.renderError(c, http.StatusNotFound, cn.lang(c).T("error.not_found"))
		return
	}
	r, err := cn.role(c, ns)
	if err != nil {
		cn.fail(c, err)
		return
	}
	if !accessOf(r).Write {
		cn.renderError(c, http.StatusForbidden, cn.lang(c).T("error.forbidden"))
		return
	}
	// Reconnecting names the account whose token the authorization replaces.
	target := ns + "/" + provider
	if acct := c.PostForm("account"); acct != "" {
		if !accountID.MatchString(acct) {
			cn.renderError(c, http.StatusBadRequest, cn.lang(c).T("error.not_found"))
			return
		}
		target += "/" + acct
	}
	state, verifier := randomToken(), oauth2.GenerateVerifier()
	if err := cn.d.Store.SetSessionOAuth(c.Request.Context(), current(c).id, state, verifier, target); err != nil {
		cn.fail(c, err)
		return
	}
	// PKCE for both: GitLab requires it, GitHub accepts it.
	c.Redirect(http.StatusSeeOther, app.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier)))
}

// oauthCallback is where the provider sends the browser back: the state must be the one
// this session started, the code becomes a token, and the token is connected through the API
// as the signed-in user, as a pasted one would be.
func (cn *Console) oauthCallback(c *gin.Context) {
	provider := c.Param("provider")
	sess := current(c)
	// A state is good for one callback, right or wrong: a guess ends the authorization.
	if sess.OAuthState != "" {
		if err := cn.d.Store.SetSessionOAuth(c.Request.Context(), sess.id, "", "", ""); err != nil {
			cn.fail(c, err)
			return
		}
	}
	app := cn.d.OAuth[provider]
	parts := strings.SplitN(sess.OAuthTarget, "/", 3)
	for len(parts) < 3 {
		parts = append(parts, "")
	}
	ns, target, acct := parts[0], parts[1], parts[2]
	if app == nil || sess.OAuthState == "" || target != provider || !sameToken(c.Query("state"), sess.OAuthState) {
		cn.renderError(c, http.StatusBadRequest, cn.lang(c).T("oauth.bad_state"))
		return
	}
	c.Params = append(c.Params, gin.Param{Key: "ns", Value: ns})
	if e := c.Query("error"); e != "" {
		cn.showSettings(c, http.StatusBadRequest, cn.lang(c).T("oauth.denied", provider, e))
		return
	}
	tok, err := app.Exchange(c.Request.Context(), c.Query("code"), oauth2.VerifierOption(sess.OAuthVerifier))
	if err != nil {
		cn.d.Logger.Warn("oauth exchange", "provider", provider, "error", err)
		var re *oauth2.RetrieveError
		msg := cn.lang(c).T("oauth.exchange_failed", provider)
		if errors.As(err, &re) && re.ErrorCode != "" {
			msg += " (" + re.ErrorCode + ")"
		}
		cn.showSettings(c, http.StatusBadGateway, msg)
		return
	}
	// An expiring token (GitLab's) goes with its refresh token, so it is refreshed before use.
	body := map[string]any{"token": tok.AccessToken}
	if tok.RefreshToken != "" {
		body["refresh_token"] = tok.RefreshToken
	}
	if !tok.Expiry.IsZero() {
		body["expires_in"] = max(1, int64(time.Until(tok.Expiry).Seconds()))
	}
	if acct != "" {
		cn.afterSettings(c, cn.call(c, http.MethodPut, "/namespaces/"+esc(ns)+"/accounts/"+esc(acct), nil, body, nil))
		return
	}
	body["provider"] = provider
	cn.afterSettings(c, cn.call(c, http.MethodPost, "/namespaces/"+esc(ns)+"/accounts", nil, body, nil))
}
