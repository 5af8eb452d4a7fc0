package console

import (
	"encoding/base64"
	"errors"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"golang.org/x/oauth2"

	"github.com/slipway-dev/slipway/providers"
	"github.com/slipway-dev/slipway/store"
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
	if _, ok := cn.requireRole(c, ns, store.RoleWrite); !ok {
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

// connectCallback is where the provider sends back a browser whose session started an
// authorization: the state must be the one this session started, the code becomes a token,
// and the token is connected through the API as the signed-in user, as a pasted one would be
// (or, for "@link", the provider's user is linked to the signed-in user for signing in).
func (cn *Console) connectCallback(c *gin.Context) {
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
	if ns == linkTarget {
		cn.linkCallback(c, provider, app, sess)
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

// linkTarget is the OAuth target of linking a provider user for signing in; "@" is in no
// namespace name.
const linkTarget = "@link"

// oauthLoginCookie holds the state, PKCE verifier and destination of a "Sign in with"
// authorization, which has no session to keep them in.
const oauthLoginCookie = "slipway_oauth_login"

// signInConfig is app with the scopes that only read who the user is.
func signInConfig(provider string, app *oauth2.Config) *oauth2.Config {
	c := *app
	c.Scopes = []string{"read:user"}
	if provider == "gitlab" {
		c.Scopes = []string{"read_user"}
	}
	return &c
}

// oauthCallback is where the providers send browsers back: to finish what the browser's
// session started (connecting an account, linking a sign-in), or a "Sign in with".
func (cn *Console) oauthCallback(c *gin.Context) {
	if id, err := c.Cookie(sessionCookie); err == nil {
		if sess, err := cn.d.Store.SessionByID(c.Request.Context(), id); err == nil && sess.OAuthState != "" {
			c.Set(ctxSession, signedIn{id: id, Session: sess})
			cn.connectCallback(c)
			return
		}
	}
	cn.signInCallback(c)
}

// linkStart (signed in) sends the browser to the provider to link its user there to the
// signed-in one, for "Sign in with GitHub/GitLab".
func (cn *Console) linkStart(c *gin.Context) {
	provider := c.Param("provider")
	app := cn.d.OAuth[provider]
	if app == nil || cn.d.Identify == nil {
		cn.renderError(c, http.StatusNotFound, cn.lang(c).T("error.not_found"))
		return
	}
	state, verifier := randomToken(), oauth2.GenerateVerifier()
	if err := cn.d.Store.SetSessionOAuth(c.Request.Context(), current(c).id, state, verifier, linkTarget+"/"+provider); err != nil {
		cn.fail(c, err)
		return
	}
	c.Redirect(http.StatusSeeOther, signInConfig(provider, app).AuthCodeURL(state, oauth2.S256ChallengeOption(verifier)))
}

// linkCallback links the provider user of the authorization to the signed-in user.
func (cn *Console) linkCallback(c *gin.Context, provider string, app *oauth2.Config, sess signedIn) {
	id, ok := cn.identify(c, provider, app, sess.OAuthVerifier)
	if !ok {
		return
	}
	if err := cn.d.Store.LinkIdentity(c.Request.Context(), sess.User.ID, provider, id.ID, id.Login); err != nil {
		cn.fail(c, err)
		return
	}
	c.Redirect(http.StatusSeeOther, "/")
}

// identify trades the callback's code for a token and asks the provider whose it is. On
// failure it has answered.
func (cn *Console) identify(c *gin.Context, provider string, app *oauth2.Config, verifier string) (providers.Identity, bool) {
	if e := c.Query("error"); e != "" {
		cn.renderError(c, http.StatusBadRequest, cn.lang(c).T("oauth.denied", provider, e))
		return providers.Identity{}, false
	}
	tok, err := signInConfig(provider, app).Exchange(c.Request.Context(), c.Query("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		cn.d.Logger.Warn("oauth exchange", "provider", provider, "error", err)
		cn.renderError(c, http.StatusBadGateway, cn.lang(c).T("oauth.exchange_failed", provider))
		return providers.Identity{}, false
	}
	id, err := cn.d.Identify(c.Request.Context(), provider, tok.AccessToken)
	if err != nil {
		cn.d.Logger.Warn("oauth identity", "provider", provider, "error", err)
		cn.renderError(c, http.StatusBadGateway, cn.lang(c).T("oauth.exchange_failed", provider))
		return providers.Identity{}, false
	}
	return id, true
}

// signInStart is "Sign in with GitHub/GitLab": the sign-in form's CSRF token is checked, the
// state and verifier go in a short-lived cookie, and the browser to the provider.
func (cn *Console) signInStart(c *gin.Context) {
	provider := c.Param("provider")
	app := cn.d.OAuth[provider]
	if app == nil || cn.d.Identify == nil {
		cn.renderError(c, http.StatusNotFound, cn.lang(c).T("error.not_found"))
		return
	}
	want, _ := c.Cookie(loginCookie)
	if !sameToken(c.PostForm(csrfField), want) {
		cn.renderError(c, http.StatusForbidden, cn.lang(c).T("error.csrf"))
		return
	}
	state, verifier := randomToken(), oauth2.GenerateVerifier()
	next := base64.RawURLEncoding.EncodeToString([]byte(localPath(c.PostForm("next"))))
	cn.setCookie(c, oauthLoginCookie, provider+"."+state+"."+verifier+"."+next, 600)
	c.Redirect(http.StatusSeeOther, signInConfig(provider, app).AuthCodeURL(state, oauth2.S256ChallengeOption(verifier)))
}

// signInCallback finishes a "Sign in with": the state must be the cookie's, and the provider
// user must be linked to a Slipway user, who is signed in.
func (cn *Console) signInCallback(c *gin.Context) {
	provider := c.Param("provider")
	ck, _ := c.Cookie(oauthLoginCookie)
	cn.setCookie(c, oauthLoginCookie, "", -1) // good for one callback
	parts := strings.Split(ck, ".")
	app := cn.d.OAuth[provider]
	if len(parts) != 4 || parts[0] != provider || app == nil || cn.d.Identify == nil || !sameToken(c.Query("state"), parts[1]) {
		cn.renderError(c, http.StatusBadRequest, cn.lang(c).T("oauth.bad_state"))
		return
	}
	next := "/"
	if b, err := base64.RawURLEncoding.DecodeString(parts[3]); err == nil {
		next = localPath(string(b))
	}
	id, ok := cn.identify(c, provider, app, parts[2])
	if !ok {
		return
	}
	u, err := cn.d.Store.UserByIdentity(c.Request.Context(), provider, id.ID)
	if errors.Is(err, store.ErrNotFound) {
		tok := randomToken()
		cn.setCookie(c, loginCookie, tok, 3600)
		cn.render(c, http.StatusUnauthorized, "login", page{CSRF: tok, Title: "login.title",
			Data: loginData{Next: next, Error: cn.lang(c).T("login.not_linked", provider, id.Login), OAuth: cn.signInProviders()}})
		return
	}
	if err != nil {
		cn.fail(c, err)
		return
	}
	cn.startSession(c, u.ID, next)
}

// signInProviders are the providers "Sign in with" offers.
func (cn *Console) signInProviders() []string {
	if cn.d.Identify == nil {
		return nil
	}
	return cn.d.OAuth.providers()
}
