package providertest_test

import (
	"context"
	"net/http"
	"net/url"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/slipway-dev/slipway/internal/testing/providertest"
)

// authorize follows the authorization URL as a browser would, stopping at the redirect back
// to the app, and returns the code and state it carries.
func authorize(t *testing.T, authURL string) (code, state string, status int) {
	t.Helper()
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(authURL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		return "", "", resp.StatusCode
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	if loc.Host != "app.test" || loc.Path != "/callback" {
		t.Fatalf("redirected to %s", loc)
	}
	return loc.Query().Get("code"), loc.Query().Get("state"), resp.StatusCode
}

// TestOAuth runs golang.org/x/oauth2's authorization code flow against both fakes: the code
// comes back with the state, becomes a token that acts as the approving user, and is good
// once; GitLab insists on PKCE.
func TestOAuth(t *testing.T) {
	ctx := context.Background()
	gh, gl := providertest.NewGitHub(t), providertest.NewGitLab(t)
	for _, tc := range []struct {
		name string
		fake interface {
			AddOAuthApp(string, string, string)
			SignInWeb(string)
			AddUser(string, ...string)
		}
		base      string
		endpoint  oauth2.Endpoint
		pkce      bool
		whoami    string
		wantLogin string
	}{
		{"github", gh, gh.URL, oauth2.Endpoint{AuthURL: gh.URL + "/login/oauth/authorize", TokenURL: gh.URL + "/login/oauth/access_token"}, false, gh.URL + "/user", "octocat"},
		{"gitlab", gl, gl.URL, oauth2.Endpoint{AuthURL: gl.URL + "/oauth/authorize", TokenURL: gl.URL + "/oauth/token"}, true, gl.URL + "/api/v4/user", "tanuki"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.fake.AddUser(tc.wantLogin)
			tc.fake.AddOAuthApp("client-1", "secret-1", "http://app.test/callback")
			tc.fake.SignInWeb(tc.wantLogin)
			cfg := &oauth2.Config{ClientID: "client-1", ClientSecret: "secret-1", Endpoint: tc.endpoint,
				RedirectURL: "http://app.test/callback", Scopes: []string{"repo"}}
			verifier := oauth2.GenerateVerifier()
			var opts []oauth2.AuthCodeOption
			if tc.pkce {
				opts = append(opts, oauth2.S256ChallengeOption(verifier))
				if _, _, status := authorize(t, cfg.AuthCodeURL("st")); status != http.StatusBadRequest {
					t.Fatalf("authorization without PKCE: %d, want 400", status)
				}
			}
			code, state, status := authorize(t, cfg.AuthCodeURL("st-1", opts...))
			if status != http.StatusFound || code == "" || state != "st-1" {
				t.Fatalf("authorize: %d, code %q, state %q", status, code, state)
			}
			var exOpts []oauth2.AuthCodeOption
			if tc.pkce {
				if _, err := cfg.Exchange(ctx, code, oauth2.VerifierOption("wrong")); err == nil {
					t.Fatal("exchange with a wrong verifier succeeded")
				}
				code, _, _ = authorize(t, cfg.AuthCodeURL("st-2", opts...))
				exOpts = append(exOpts, oauth2.VerifierOption(verifier))
			}
			tok, err := cfg.Exchange(ctx, code, exOpts...)
			if err != nil {
				t.Fatal(err)
			}
			if tc.pkce && (tok.RefreshToken == "" || tok.Expiry.IsZero()) {
				t.Errorf("GitLab token without refresh token or expiry: %+v", tok)
			}
			if _, err := cfg.Exchange(ctx, code, exOpts...); err == nil {
				t.Error("a code was exchanged twice")
			}
			if tc.pkce {
				// GitLab's refresh tokens rotate: one trade each.
				old := &oauth2.Token{RefreshToken: tok.RefreshToken, Expiry: time.Unix(1, 0)}
				fresh, err := cfg.TokenSource(ctx, old).Token()
				if err != nil || fresh.AccessToken == tok.AccessToken || fresh.RefreshToken == tok.RefreshToken {
					t.Fatalf("refresh: %+v, %v", fresh, err)
				}
				if _, err := cfg.TokenSource(ctx, old).Token(); err == nil {
					t.Error("a refresh token was used twice")
				}
			}
			resp, obj, _ := call(t, "GET", tc.whoami, tok.AccessToken, "")
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("whoami with the token: %d", resp.StatusCode)
			}
			if obj["login"] != tc.wantLogin && obj["username"] != tc.wantLogin {
				t.Errorf("token acts as %v", obj)
			}
			bad := *cfg
			bad.ClientSecret = "nope"
			code, _, _ = authorize(t, cfg.AuthCodeURL("st-3", opts...))
			if _, err := bad.Exchange(ctx, code, exOpts...); err == nil {
				t.Error("exchange with a wrong client secret succeeded")
			}
		})
	}
}
