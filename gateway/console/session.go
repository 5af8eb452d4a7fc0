package console

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/slipway-dev/slipway/store"
)

// Cookie names. The session cookie holds the session id; the login cookie the CSRF token of
// the sign-in form, which has no session yet; the language cookie the switch's choice.
const (
	sessionCookie = "slipway_session"
	loginCookie   = "slipway_login"
	langCookie    = "slipway_lang"
)

// csrfField is the form field every console form carries its CSRF token in.
const csrfField = "csrf"

// ctxSession is the gin context key of the signed-in session.
const ctxSession = "slipway.console.session"

// signedIn is the session of a request that passed session.
type signedIn struct {
	id string
	store.Session
}

func current(c *gin.Context) signedIn {
	s, _ := c.Get(ctxSession)
	v, _ := s.(signedIn)
	return v
}

// secure reports whether cookies must be Secure: the gateway is served over HTTPS.
func (cn *Console) secure(c *gin.Context) bool {
	return c.Request.TLS != nil || strings.HasPrefix(cn.d.GatewayURL, "https://")
}

func (cn *Console) setCookie(c *gin.Context, name, value string, maxAge int) {
	http.SetCookie(c.Writer, &http.Cookie{
		Name: name, Value: value, Path: "/", MaxAge: maxAge,
		HttpOnly: true, Secure: cn.secure(c),
		// Lax, not Strict: a person following a commit status link from GitHub arrives
		// signed in. Every state change is a POST, which Lax keeps to same-site requests.
		SameSite: http.SameSiteLaxMode,
	})
}

// session loads the signed-in session, or sends a page request to sign-in and back. A POST
// must carry the session's CSRF token, or it is refused with 403.
func (cn *Console) session(c *gin.Context) {
	ck, err := c.Cookie(sessionCookie)
	var sess store.Session
	if err == nil {
		sess, err = cn.d.Store.SessionByID(c.Request.Context(), ck)
	}
	if err != nil {
		if !errors.Is(err, http.ErrNoCookie) && !errors.Is(err, store.ErrNotFound) {
			cn.d.Logger.Error("reading session", "error", err)
			c.AbortWithStatus(http.StatusInternalServerError)
			return
		}
		if c.Request.Method != http.MethodGet {
			c.AbortWithStatus(http.StatusUnauthorized)
			return
		}
		c.Redirect(http.StatusSeeOther, "/login?next="+url.QueryEscape(c.Request.URL.RequestURI()))
		c.Abort()
		return
	}
	c.Set(ctxSession, signedIn{id: ck, Session: sess})
	if c.Request.Method == http.MethodPost && !sameToken(c.PostForm(csrfField), sess.CSRFToken) {
		cn.renderError(c, http.StatusForbidden, cn.lang(c).T("error.csrf"))
		c.Abort()
		return
	}
	c.Next()
}

// sameToken compares a sent token with the expected one in constant time; an empty
// expected token matches nothing.
func sameToken(got, want string) bool {
	return want != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// localPath is next when it is a path on this site, else "/": the sign-in page must not send
// people elsewhere.
func localPath(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") {
		return "/"
	}
	return next
}

func randomToken() string {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on Linux
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

type loginData struct {
	Next  string
	Error string
	// OAuth are the providers of "Sign in with".
	OAuth []string
}

func (cn *Console) loginPage(c *gin.Context) {
	tok := randomToken()
	cn.setCookie(c, loginCookie, tok, 3600)
	cn.render(c, http.StatusOK, "login", page{CSRF: tok, Title: "login.title",
		Data: loginData{Next: localPath(c.Query("next")), OAuth: cn.signInProviders()}})
}

// login signs in with a Slipway token.
func (cn *Console) login(c *gin.Context) {
	next := localPath(c.PostForm("next"))
	want, _ := c.Cookie(loginCookie)
	if !sameToken(c.PostForm(csrfField), want) {
		cn.renderError(c, http.StatusForbidden, cn.lang(c).T("error.csrf"))
		return
	}
	u, err := cn.d.Store.UserByToken(c.Request.Context(), strings.TrimSpace(c.PostForm("token")))
	if errors.Is(err, store.ErrNotFound) {
		tok := randomToken()
		cn.setCookie(c, loginCookie, tok, 3600)
		cn.render(c, http.StatusUnauthorized, "login", page{CSRF: tok, Title: "login.title",
			Data: loginData{Next: next, Error: cn.lang(c).T("login.bad_token"), OAuth: cn.signInProviders()}})
		return
	}
	if err != nil {
		cn.fail(c, err)
		return
	}
	cn.startSession(c, u.ID, next)
}

// startSession signs userID in with a new session and goes to next.
func (cn *Console) startSession(c *gin.Context, userID int64, next string) {
	id, err := cn.d.Store.CreateSession(c.Request.Context(), userID, time.Now().Add(cn.d.SessionTTL))
	if err != nil {
		cn.fail(c, err)
		return
	}
	cn.setCookie(c, loginCookie, "", -1)
	cn.setCookie(c, sessionCookie, id, int(cn.d.SessionTTL.Seconds()))
	c.Redirect(http.StatusSeeOther, next)
}

func (cn *Console) logout(c *gin.Context) {
	if err := cn.d.Store.DeleteSession(c.Request.Context(), current(c).id); err != nil {
		cn.fail(c, err)
		return
	}
	cn.setCookie(c, sessionCookie, "", -1)
	c.Redirect(http.StatusSeeOther, "/login")
}

// setLang is the language switch: it remembers the choice and goes back.
func (cn *Console) setLang(c *gin.Context) {
	l := c.Param("lang")
	if _, ok := catalog[l]; !ok {
		c.AbortWithStatus(http.StatusNotFound)
		return
	}
	cn.setCookie(c, langCookie, l, 365*24*3600)
	c.Redirect(http.StatusSeeOther, localPath(c.Query("next")))
}
