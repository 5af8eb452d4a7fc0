package providertest

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// oauthApp is an OAuth application registered with a fake.
type oauthApp struct {
	secret   string
	redirect string
}

// oauthGrant is an authorization code a fake handed out and not yet exchanged.
type oauthGrant struct {
	user, clientID, redirect string
	// challenge is the PKCE code challenge (S256) sent with the authorization, if any.
	challenge string
}

// oauthState is the OAuth side of a fake: its apps, codes and the user approving.
type oauthState struct {
	apps   map[string]oauthApp
	grants map[string]oauthGrant
	// approver is the user signed in at the fake's web pages, who approves every request.
	approver string
	// refresh maps the refresh tokens handed out and not yet used to their user and app.
	refresh map[string]oauthGrant
	// Tokens are handed out as "<prefix>oauth-<n>".
	issued int
}

// AddOAuthApp registers an OAuth application: its client id, secret and callback URL (the
// only redirect_uri the fake accepts, as the providers check it).
func (a *fakeAccounts) AddOAuthApp(clientID, secret, redirect string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.oauth.apps == nil {
		a.oauth.apps, a.oauth.grants, a.oauth.refresh = map[string]oauthApp{}, map[string]oauthGrant{}, map[string]oauthGrant{}
	}
	a.oauth.apps[clientID] = oauthApp{secret: secret, redirect: redirect}
}

// SignInWeb makes user the person signed in at the fake's web pages: the authorize endpoint
// approves as them, without a consent page.
func (a *fakeAccounts) SignInWeb(user string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.oauth.approver = user
}

// oauthAuthorize is the authorization endpoint: it checks the request as the provider does
// and sends the browser back to redirect_uri with a code and the state. needPKCE refuses a
// request without an S256 code challenge. a.mu is held.
func (a *fakeAccounts) oauthAuthorize(w http.ResponseWriter, r *http.Request, needPKCE bool) {
	q := r.URL.Query()
	app, ok := a.oauth.apps[q.Get("client_id")]
	if !ok {
		http.Error(w, "unknown client_id", http.StatusNotFound)
		return
	}
	if q.Get("redirect_uri") != "" && q.Get("redirect_uri") != app.redirect {
		http.Error(w, "The redirect_uri is not associated with this application.", http.StatusBadRequest)
		return
	}
	if rt := q.Get("response_type"); rt != "" && rt != "code" || needPKCE && rt != "code" {
		http.Error(w, "response_type must be code", http.StatusBadRequest)
		return
	}
	challenge := q.Get("code_challenge")
	if challenge != "" && q.Get("code_challenge_method") != "S256" || needPKCE && challenge == "" {
		http.Error(w, "PKCE with code_challenge_method S256 is required", http.StatusBadRequest)
		return
	}
	if a.oauth.approver == "" || a.user(a.oauth.approver) == nil {
		http.Error(w, "nobody is signed in at the fake (SignInWeb)", http.StatusUnauthorized)
		return
	}
	a.oauth.issued++
	code := fmt.Sprintf("code-%d", a.oauth.issued)
	a.oauth.grants[code] = oauthGrant{user: a.oauth.approver, clientID: q.Get("client_id"), redirect: app.redirect, challenge: challenge}
	back, err := url.Parse(app.redirect)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	bq := back.Query()
	bq.Set("code", code)
	bq.Set("state", q.Get("state"))
	back.RawQuery = bq.Encode()
	http.Redirect(w, r, back.String(), http.StatusFound)
}

// oauthToken is the token endpoint: a code, with the app's credentials (in the form or in
// basic auth) and the PKCE verifier where the authorization had a challenge, becomes a token
// acting as the user who approved. An expiring token (GitLab's) comes with expires_in and a
// refresh token, which grant_type=refresh_token trades, once, for a new pair. a.mu is held.
func (a *fakeAccounts) oauthToken(w http.ResponseWriter, r *http.Request, prefix string, expiring bool) {
	if err := r.ParseForm(); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "invalid_request"})
		return
	}
	id, secret, basic := r.BasicAuth()
	if !basic {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	app, ok := a.oauth.apps[id]
	if !ok || app.secret != secret {
		writeJSON(w, http.StatusUnauthorized, map[string]any{"error": "invalid_client"})
		return
	}
	var g oauthGrant
	switch r.PostForm.Get("grant_type") {
	case "authorization_code", "":
		code := r.PostForm.Get("code")
		g, ok = a.oauth.grants[code]
		delete(a.oauth.grants, code) // a code is good once
		if !ok || g.clientID != id || r.PostForm.Get("redirect_uri") != "" && r.PostForm.Get("redirect_uri") != g.redirect {
			writeJSON(w, http.StatusBadRequest, map[string]any{"error": "invalid_grant", "error_description": "The provided authorization grant is invalid, expired, revoked or does not match the redirection URI."})
			return
		}
		if g.challenge != "" {
			sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
			if base64.RawURLEncoding.EncodeToString(sum[:]) != g.challenge {
				writeJSON(w, http.StatusBadRequest, map[string]any{"error": "invalid_grant", "error_description": "code_verifier does not match"})
				return
			}
		}
	case "refresh_token":
		rt := r.PostForm.Get("refresh_token")
		g, ok = a.oauth.refresh[rt]
		delete(a.oauth.refresh, rt) // refresh tokens rotate
		if !ok || g.clientID != id {
			writeJSON(w, http.StatusBadRequest, map[string]any{"error": "invalid_grant", "error_description": "The provided authorization grant is invalid, expired, revoked or does not match the redirection URI."})
			return
		}
	default:
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "unsupported_grant_type"})
		return
	}
	a.oauth.issued++
	tok := fmt.Sprintf("%soauth-%d", prefix, a.oauth.issued)
	a.tokens[tok] = &token{user: g.user}
	out := map[string]any{"access_token": tok, "token_type": "bearer", "scope": r.PostForm.Get("scope")}
	if expiring {
		rt := fmt.Sprintf("refresh-%d", a.oauth.issued)
		a.oauth.refresh[rt] = oauthGrant{user: g.user, clientID: id}
		out["token_type"], out["expires_in"], out["refresh_token"], out["created_at"] = "Bearer", 7200, rt, 1700000000
	}
	if strings.Contains(r.Header.Get("Accept"), "application/json") || expiring {
		writeJSON(w, http.StatusOK, out)
		return
	}
	// GitHub answers form-encoded unless asked for JSON.
	v := url.Values{}
	for k, x := range out {
		v.Set(k, fmt.Sprint(x))
	}
	w.Header().Set("Content-Type", "application/x-www-form-urlencoded")
	_, _ = w.Write([]byte(v.Encode()))
}
