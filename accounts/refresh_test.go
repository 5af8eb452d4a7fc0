package accounts_test

import (
	"bytes"
	"context"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/slipway-dev/slipway/accounts"
	"github.com/slipway-dev/slipway/build"
	"github.com/slipway-dev/slipway/internal/testing/providertest"
	"github.com/slipway-dev/slipway/secretbox"
	"github.com/slipway-dev/slipway/store"
)

// TestRefresh connects a GitLab account with an expiring OAuth grant and uses it once it is
// about to expire: the resolver trades the refresh token, seals and stores the new pair, and
// hands out the new token; a second resolver (another process) holding the spent refresh token
// reads the new token back instead of failing. Without OAuth apps, nothing is refreshed.
func TestRefresh(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "slipway.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	alice, _, err := st.CreateUser(ctx, "alice", false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreateNamespace(ctx, "team", alice.ID); err != nil {
		t.Fatal(err)
	}
	box, err := secretbox.New(bytes.Repeat([]byte{3}, secretbox.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	gl := providertest.NewGitLab(t)
	gl.AddUser("tanuki")
	gl.AddOAuthApp("gl-client", "gl-secret", "http://app.test/callback")
	gl.SignInWeb("tanuki")
	app := &oauth2.Config{ClientID: "gl-client", ClientSecret: "gl-secret", RedirectURL: "http://app.test/callback",
		Endpoint: oauth2.Endpoint{AuthURL: gl.URL + "/oauth/authorize", TokenURL: gl.URL + "/oauth/token"}}
	urls := map[string]string{"github": "http://127.0.0.1:1", "gitlab": gl.URL}
	r := accounts.New(st, box, urls).WithOAuth(map[string]*oauth2.Config{"gitlab": app})

	// A grant as the authorization gives it (the flow itself is the console's and its tests').
	verifier := oauth2.GenerateVerifier()
	code, _, _ := authorizeCode(t, app.AuthCodeURL("s", oauth2.S256ChallengeOption(verifier)))
	grant, err := app.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	acct, err := r.ConnectGrant(ctx, "team", "gitlab", accounts.Grant{Token: grant.AccessToken, RefreshToken: grant.RefreshToken,
		Expiry: time.Now().Add(time.Minute)}, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if acct.RefreshSealed == "" || acct.TokenExpiresAt == nil || strings.Contains(acct.RefreshSealed, grant.RefreshToken) {
		t.Fatalf("stored grant %+v", acct)
	}
	before, _ := st.GetAccount(ctx, acct.ID)

	ref := build.AccountRef{ID: acct.ID, Namespace: "team", Provider: "gitlab"}
	tok, err := r.Token(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	if tok == grant.AccessToken {
		t.Fatal("a token about to expire was handed out, not refreshed")
	}
	after, err := st.GetAccount(ctx, acct.ID)
	if err != nil || after.TokenSealed == before.TokenSealed || after.RefreshSealed == before.RefreshSealed ||
		after.TokenExpiresAt == nil || time.Until(*after.TokenExpiresAt) < time.Hour {
		t.Fatalf("after refresh: %+v, %v", after, err)
	}
	if _, c, err := r.Client(ctx, acct.ID); err != nil {
		t.Fatal(err)
	} else if login, err := c.Whoami(ctx); err != nil || login != "tanuki" {
		t.Fatalf("the new token acts as %q, %v", login, err)
	}

	// A process that read the account before the refresh cannot store its own: the refresh
	// token it would replace is no longer the stored one.
	if won, err := st.ReplaceAccountToken(ctx, before, before.RefreshSealed); err != nil || won {
		t.Fatalf("a stale refresh replaced the token: %v, %v", won, err)
	}

	// Without the app, an expiring token is handed out as it is (the provider says when it
	// no longer works, and the account is reconnected).
	expired := after
	past := time.Now().Add(-time.Hour)
	expired.TokenExpiresAt = &past
	if _, err := st.ReplaceAccountToken(ctx, expired, ""); err != nil {
		t.Fatal(err)
	}
	wantTok, err := box.Open(after.TokenSealed, after.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := accounts.New(st, box, urls).Token(ctx, ref); err != nil || got != string(wantTok) {
		t.Fatalf("without the app: %q, %v; want the stored token", got, err)
	}
	if got, err := r.Token(ctx, ref); err != nil || got == string(wantTok) {
		t.Fatalf("with the app, an expired token: %q, %v; want a new one", got, err)
	}
}

// authorizeCode follows an authorization URL as a browser, up to the redirect back, and
// returns the code and state it carries.
func authorizeCode(t *testing.T, authURL string) (code, state string, status int) {
	t.Helper()
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(authURL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || resp.StatusCode != http.StatusFound {
		t.Fatalf("authorize: %d %v", resp.StatusCode, err)
	}
	return loc.Query().Get("code"), loc.Query().Get("state"), resp.StatusCode
}
