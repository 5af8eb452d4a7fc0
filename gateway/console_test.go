package gateway

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/slipway-dev/slipway/accounts"
	"github.com/slipway-dev/slipway/config"
	"github.com/slipway-dev/slipway/internal/testing/providertest"
	"github.com/slipway-dev/slipway/secretbox"
)

// apiRoutes are the routes of r but the console's pages, which call the API's routes as the
// signed-in user (the tests below check they show what the API answers).
func apiRoutes(r *gin.Engine) gin.RoutesInfo {
	var out gin.RoutesInfo
	for _, ri := range r.Routes() {
		if !strings.HasPrefix(ri.Handler, "github.com/slipway-dev/slipway/gateway/console.") {
			out = append(out, ri)
		}
	}
	return out
}

// browser is a person at the console: a cookie jar and no redirects followed, so each answer
// is seen as sent.
type browser struct {
	t      *testing.T
	base   string
	client *http.Client
	lang   string
}

func (hs *harness) browser(t *testing.T) *browser { return browserAt(t, hs.srv.URL) }

// browserAt is a browser of the console served at base.
func browserAt(t *testing.T, base string) *browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &browser{t: t, base: base, client: &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

type page struct {
	code     int
	location string
	body     string
}

func (b *browser) send(method, path string, form url.Values) page {
	b.t.Helper()
	var rd io.Reader
	if form != nil {
		rd = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(context.Background(), method, b.base+path, rd)
	if err != nil {
		b.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if b.lang != "" {
		req.Header.Set("Accept-Language", b.lang)
	}
	resp, err := b.client.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		b.t.Fatal(err)
	}
	return page{code: resp.StatusCode, location: resp.Header.Get("Location"), body: string(body)}
}

func (b *browser) get(path string) page { b.t.Helper(); return b.send(http.MethodGet, path, nil) }

var csrfInput = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrf is the CSRF token of the forms of p.
func (b *browser) csrf(p page) string {
	b.t.Helper()
	m := csrfInput.FindStringSubmatch(p.body)
	if m == nil {
		b.t.Fatalf("no CSRF token in page:\n%s", p.body)
	}
	return m[1]
}

// post sends form from the page at from, with that page's CSRF token.
func (b *browser) post(from, path string, form url.Values) page {
	b.t.Helper()
	form.Set("csrf", b.csrf(b.get(from)))
	return b.send(http.MethodPost, path, form)
}

func (b *browser) signIn(token string) {
	b.t.Helper()
	p := b.post("/login", "/login", url.Values{"token": {token}, "next": {"/"}})
	if p.code != http.StatusSeeOther || p.location != "/" {
		b.t.Fatalf("sign in: %d %q\n%s", p.code, p.location, p.body)
	}
}

func wantPage(t *testing.T, p page, code int, contains ...string) {
	t.Helper()
	if p.code != code {
		t.Fatalf("got %d (location %q), want %d:\n%s", p.code, p.location, code, p.body)
	}
	for _, s := range contains {
		if !strings.Contains(p.body, s) {
			t.Fatalf("page lacks %q:\n%s", s, p.body)
		}
	}
}

func TestConsoleSignIn(t *testing.T) {
	hs := devStack(t)
	t.Run("not signed in goes to sign-in and back", func(t *testing.T) {
		b := hs.browser(t)
		p := b.get("/builds/some-build?x=1")
		if p.code != http.StatusSeeOther || p.location != "/login?next="+url.QueryEscape("/builds/some-build?x=1") {
			t.Fatalf("got %d %q", p.code, p.location)
		}
		p = b.post(p.location, "/login", url.Values{"token": {hs.writer}, "next": {"/builds/some-build?x=1"}})
		if p.code != http.StatusSeeOther || p.location != "/builds/some-build?x=1" {
			t.Fatalf("after sign in: %d %q", p.code, p.location)
		}
	})
	t.Run("bad token", func(t *testing.T) {
		b := hs.browser(t)
		p := b.post("/login", "/login", url.Values{"token": {"slw_nope"}})
		wantPage(t, p, http.StatusUnauthorized, "That token signs nobody in.")
	})
	t.Run("login without CSRF token", func(t *testing.T) {
		b := hs.browser(t)
		b.get("/login")
		p := b.send(http.MethodPost, "/login", url.Values{"token": {hs.writer}})
		wantPage(t, p, http.StatusForbidden)
	})
	t.Run("next stays on the site", func(t *testing.T) {
		b := hs.browser(t)
		p := b.post("/login", "/login", url.Values{"token": {hs.writer}, "next": {"//evil.example/"}})
		if p.location != "/" {
			t.Fatalf("redirected to %q", p.location)
		}
	})
	t.Run("cookie", func(t *testing.T) {
		b := hs.browser(t)
		p := b.get("/login")
		req, _ := http.NewRequest(http.MethodPost, hs.srv.URL+"/login", strings.NewReader(url.Values{
			"token": {hs.writer}, "csrf": {b.csrf(p)}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := b.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		var set string
		for _, c := range resp.Header.Values("Set-Cookie") {
			if strings.HasPrefix(c, "slipway_session=") {
				set = c
			}
		}
		if !strings.Contains(set, "HttpOnly") || !strings.Contains(set, "SameSite=Lax") || strings.Contains(set, "Secure") {
			t.Fatalf("session cookie %q", set)
		}
	})
	t.Run("sign out", func(t *testing.T) {
		b := hs.browser(t)
		b.signIn(hs.writer)
		wantPage(t, b.get("/"), http.StatusOK)
		p := b.post("/", "/logout", url.Values{})
		if p.code != http.StatusSeeOther {
			t.Fatalf("sign out: %d", p.code)
		}
		if p := b.get("/"); p.code != http.StatusSeeOther {
			t.Fatalf("after sign out: %d", p.code)
		}
	})
	t.Run("form without CSRF token", func(t *testing.T) {
		b := hs.browser(t)
		b.signIn(hs.owner)
		wantPage(t, b.send(http.MethodPost, "/logout", url.Values{}), http.StatusForbidden)
		wantPage(t, b.send(http.MethodPost, "/logout", url.Values{"csrf": {"forged"}}), http.StatusForbidden)
	})
}

func TestConsoleRuleBuildAndRecords(t *testing.T) {
	hs := devStack(t)
	tm := hs.newTeam(t, "console")
	b := hs.browser(t)
	b.signIn(hs.writer)
	repo := "/ns/" + tm.ns + "/repos/app"

	wantPage(t, b.get("/"), http.StatusOK, tm.ns)
	wantPage(t, b.get("/ns/"+tm.ns), http.StatusOK, `href="`+repo+`"`)
	wantPage(t, b.get(repo+"/rules"), http.StatusOK, "New build rule")

	form := url.Values{"provider": {"github"}, "owner": {"octo"}, "repository": {"hello"},
		"branches": {"main\nrelease/*"}, "tags": {"on"}, "tag_template": {"{ref}-{short_commit}"},
		"dockerfile_path": {"build/Dockerfile"}, "build_args": {"GREETING=hi"}, "action": {"save"}}

	t.Run("errors next to their field", func(t *testing.T) {
		bad := url.Values{}
		for k, v := range form {
			bad[k] = v
		}
		bad.Set("owner", "a b")
		p := b.post(repo+"/rules/new", repo+"/rules/new", bad)
		wantPage(t, p, http.StatusBadRequest, `id="owner-err"`, "source.owner")
		bad.Set("owner", "octo")
		bad.Set("timeout", "forever")
		wantPage(t, b.post(repo+"/rules/new", repo+"/rules/new", bad), http.StatusBadRequest, `id="timeout-err"`)
	})
	t.Run("preview", func(t *testing.T) {
		// The API's preview, of sample refs for a rule without an account.
		pv := url.Values{"provider": {"github"}, "owner": {"octo"}, "repository": {"hello"}, "branches": {"release/*"},
			"tag_template": {"{ref}-{short_commit}"}, "sanitize_ref": {"on"}, "semver": {"on"}, "action": {"preview"}}
		p := b.post(repo+"/rules/new", repo+"/rules/new", pv)
		wantPage(t, p, http.StatusOK, "release-1.2-0000000", "branch main")
		if !regexp.MustCompile(`release/1.2</th><td>yes`).MatchString(p.body) || !regexp.MustCompile(`main</th><td>no`).MatchString(p.body) {
			t.Fatalf("preview does not say which refs build:\n%s", p.body)
		}
		// A rule the API refuses says why instead.
		pv.Set("owner", "")
		wantPage(t, b.post(repo+"/rules/new", repo+"/rules/new", pv), http.StatusOK, `id="preview-err"`, "source.owner")
	})

	p := b.post(repo+"/rules/new", repo+"/rules/new", form)
	wantPage(t, p, http.StatusCreated, "Webhook secret", "/webhooks/github/")
	secret := regexp.MustCompile(`<dd><code>([0-9a-f]{64})</code></dd>`).FindStringSubmatch(p.body)
	if secret == nil {
		t.Fatalf("no secret shown:\n%s", p.body)
	}
	hs.addSecret(secret[1])
	rules := b.get(repo + "/rules")
	wantPage(t, rules, http.StatusOK, "octo/hello", "{ref}-{short_commit}")
	ruleID := regexp.MustCompile(`/rules/(r-[a-z0-9]+)/build"`).FindStringSubmatch(rules.body)
	if ruleID == nil {
		t.Fatalf("no build now link:\n%s", rules.body)
	}

	p = b.post(repo+"/rules/"+ruleID[1]+"/build", repo+"/rules/"+ruleID[1]+"/build",
		url.Values{"kind": {"branch"}, "ref": {"main"}, "commit": {strings.Repeat("a", 40)}})
	if p.code != http.StatusSeeOther || !strings.HasPrefix(p.location, "/builds/") {
		t.Fatalf("build now: %d %q\n%s", p.code, p.location, p.body)
	}
	buildPage := p.location
	wantPage(t, b.get(buildPage), http.StatusOK, "running", "main", "aaaaaaaaaa", "build/Dockerfile", "Cancel build", `data-src="`+buildPage+`/log"`)

	// Build again: the API's rebuild of the same commit, as a new build.
	if p := b.get(buildPage); !strings.Contains(p.body, `action="`+buildPage+`/rebuild"`) {
		t.Fatalf("no build-again form:\n%s", p.body)
	}

	p = b.post(buildPage, buildPage+"/rebuild", url.Values{})
	if p.code != http.StatusSeeOther || !strings.Contains(p.location, "-rebuild-") {
		t.Fatalf("build again: %d %q\n%s", p.code, p.location, p.body)
	}

	// The harness's registry does not answer: the tab says so and still gives the pull line.
	wantPage(t, b.get(repo+"/images"), http.StatusOK, "docker pull 127.0.0.1:5000/"+tm.ns+"/app:latest", "The registry did not answer")

	recs := b.get(repo + "/builds")
	wantPage(t, recs, http.StatusOK, `href="`+buildPage+`"`, "aaaaaaa", testUIURL)
	wantPage(t, b.get(repo+"/builds?status=failed"), http.StatusOK, "No builds match.")
	wantPage(t, b.get(repo+"/builds?ref=nomatch"), http.StatusOK, "No builds match.")
	wantPage(t, b.get(repo+"/builds?ref=main"), http.StatusOK, `href="`+buildPage+`"`)

	t.Run("reader sees no write control and cannot forge one", func(t *testing.T) {
		r := hs.browser(t)
		r.signIn(hs.reader)
		for _, path := range []string{repo + "/rules", "/ns/" + tm.ns, buildPage} {
			p := r.get(path)
			wantPage(t, p, http.StatusOK)
			for _, control := range []string{"New build rule", "/build\"", "Cancel build", "Build again", "Create image repository", "/settings"} {
				if strings.Contains(p.body, control) {
					t.Errorf("%s shows the reader %q", path, control)
				}
			}
		}
		wantPage(t, r.get(repo+"/rules/new"), http.StatusForbidden)
		forged := url.Values{}
		for k, v := range form {
			forged[k] = v
		}
		wantPage(t, r.post(repo+"/rules", repo+"/rules/new", forged), http.StatusForbidden)
		wantPage(t, r.post(repo+"/rules", buildPage+"/cancel", url.Values{}), http.StatusForbidden)
		wantPage(t, r.post(repo+"/rules", buildPage+"/rebuild", url.Values{}), http.StatusForbidden)
	})
	t.Run("cancel", func(t *testing.T) {
		p := b.post(buildPage, buildPage+"/cancel", url.Values{})
		if p.code != http.StatusSeeOther || p.location != buildPage {
			t.Fatalf("cancel: %d %q\n%s", p.code, p.location, p.body)
		}
	})
	t.Run("outsider gets 404", func(t *testing.T) {
		o := hs.browser(t)
		o.signIn(hs.outsider)
		for _, path := range []string{"/ns/" + tm.ns, repo + "/rules", repo + "/builds", repo + "/images", buildPage, "/ns/" + tm.ns + "/settings"} {
			wantPage(t, o.get(path), http.StatusNotFound)
		}
	})
	t.Run("chinese", func(t *testing.T) {
		z := hs.browser(t)
		z.lang = "zh-CN,zh;q=0.9,en;q=0.8"
		z.signIn(hs.writer)
		wantPage(t, z.get(repo+"/rules"), http.StatusOK, `lang="zh-CN"`, "构建规则", "立即构建", "新建构建规则")
		wantPage(t, z.get(repo+"/builds"), http.StatusOK, "查看构建记录", "构建记录")
		// The switch overrides the browser's language.
		p := z.get("/lang/en?next=/")
		if p.code != http.StatusSeeOther || p.location != "/" {
			t.Fatalf("switch: %d %q", p.code, p.location)
		}
		wantPage(t, z.get(repo+"/rules"), http.StatusOK, `lang="en"`, "Build rules")
	})
}

func TestConsoleSettings(t *testing.T) {
	hs := devStack(t)
	tm := hs.newTeam(t, "console-settings")
	settings := "/ns/" + tm.ns + "/settings"
	w := hs.browser(t)
	w.signIn(hs.writer)
	wantPage(t, w.get(settings), http.StatusForbidden)

	a := hs.browser(t)
	a.signIn(hs.owner)
	wantPage(t, a.get("/ns/"+tm.ns), http.StatusOK, `href="`+settings+`"`)
	wantPage(t, a.get(settings), http.StatusOK, "reader", "writer", "Connect with a personal access token")
	p := a.post(settings, "/ns/"+tm.ns+"/members", url.Values{"user": {"outsider"}, "role": {"read"}})
	if p.code != http.StatusSeeOther {
		t.Fatalf("adding member: %d\n%s", p.code, p.body)
	}
	wantPage(t, a.get(settings), http.StatusOK, "outsider")
	wantPage(t, a.post(settings, "/ns/"+tm.ns+"/members", url.Values{"user": {"outsider"}, "role": {"boss"}}),
		http.StatusBadRequest, "is not read, write or admin")
	p = a.post(settings, "/ns/"+tm.ns+"/members/outsider/remove", url.Values{})
	if p.code != http.StatusSeeOther {
		t.Fatalf("removing member: %d\n%s", p.code, p.body)
	}
}

// TestConsoleLinksOpen follows a build's API URLs (the commit status target, logs_url) as a
// browser does: to the build page, through sign-in and back. A script still gets the 401.
func TestConsoleLinksOpen(t *testing.T) {
	hs := devStack(t)
	for _, path := range []string{"/api/v1/builds/b-1", "/api/v1/builds/b-1/logs"} {
		t.Run(path, func(t *testing.T) {
			b := hs.browser(t)
			req, _ := http.NewRequest(http.MethodGet, hs.srv.URL+path, nil)
			req.Header.Set("Accept", "text/html,application/xhtml+xml,*/*;q=0.8")
			resp, err := b.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/builds/b-1" {
				t.Fatalf("browser: %d %q", resp.StatusCode, resp.Header.Get("Location"))
			}
			if p := b.get("/builds/b-1"); p.location != "/login?next=%2Fbuilds%2Fb-1" {
				t.Fatalf("build page: %d %q", p.code, p.location)
			}
			expect(t, hs.do(t, "GET", path, "", nil), http.StatusUnauthorized, "script without token")
		})
	}
}

// TestConsoleOAuth connects GitHub and GitLab accounts by OAuth against the provider fakes:
// the authorization carries the real parameters (PKCE included), the state is bound to the
// session that started it and good once, and the token is connected through the API.
func TestConsoleOAuth(t *testing.T) {
	hs := devStack(t)
	gh, gl := providertest.NewGitHub(t), providertest.NewGitLab(t)
	srv := httptest.NewUnstartedServer(nil)
	cfg := hs.cfg
	cfg.GatewayURL = "http://" + srv.Listener.Addr().String()
	cfg.GitHubURL, cfg.GitHubAPIURL, cfg.GitLabURL = gh.URL, gh.URL, gl.URL
	cfg.GitHubOAuth = config.OAuthApp{ClientID: "gh-client", ClientSecret: "gh-secret"}
	cfg.GitLabOAuth = config.OAuthApp{ClientID: "gl-client", ClientSecret: "gl-secret"}
	box, err := secretbox.New(bytes.Repeat([]byte{3}, secretbox.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	a := New(Deps{Config: cfg, Store: hs.store, Temporal: hs.temporal, Logs: hs.logs, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Accounts: accounts.New(hs.store, box, cfg.ProviderAPIURLs()).WithOAuth(cfg.OAuthApps())})
	srv.Config.Handler = a.Handler()
	srv.Start()
	t.Cleanup(srv.Close)

	tm := hs.newTeam(t, "console-oauth")
	settings := "/ns/" + tm.ns + "/settings"
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, tc := range []struct {
		provider, login, authorize string
		fake                       interface {
			AddOAuthApp(string, string, string)
			SignInWeb(string)
			AddUser(string, ...string)
		}
		client string
	}{
		{"github", "octocat", gh.URL + "/login/oauth/authorize", gh, "gh-client"},
		{"gitlab", "tanuki", gl.URL + "/oauth/authorize", gl, "gl-client"},
	} {
		t.Run(tc.provider, func(t *testing.T) {
			tc.fake.AddUser(tc.login)
			tc.fake.AddOAuthApp(tc.client, strings.Replace(tc.client, "client", "secret", 1), cfg.OAuthCallback(tc.provider))
			tc.fake.SignInWeb(tc.login)
			b := browserAt(t, srv.URL)
			b.signIn(hs.owner)
			wantPage(t, b.get(settings), http.StatusOK, "Connect GitHub", "Connect GitLab")

			start := func() *url.URL {
				t.Helper()
				p := b.post(settings, "/ns/"+tm.ns+"/oauth/"+tc.provider, url.Values{})
				if p.code != http.StatusSeeOther || !strings.HasPrefix(p.location, tc.authorize+"?") {
					t.Fatalf("start: %d %q\n%s", p.code, p.location, p.body)
				}
				u, _ := url.Parse(p.location)
				q := u.Query()
				if q.Get("client_id") != tc.client || q.Get("redirect_uri") != cfg.OAuthCallback(tc.provider) ||
					q.Get("state") == "" || q.Get("code_challenge") == "" || q.Get("code_challenge_method") != "S256" ||
					q.Get("response_type") != "code" || q.Get("scope") == "" {
					t.Fatalf("authorization URL %s", u)
				}
				resp, err := noRedirect.Get(u.String())
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				back, _ := url.Parse(resp.Header.Get("Location"))
				if resp.StatusCode != http.StatusFound || back.Path != "/oauth/callback/"+tc.provider || back.Query().Get("state") != q.Get("state") {
					t.Fatalf("provider answered %d %s", resp.StatusCode, back)
				}
				return back
			}

			back := start()
			forged := back.Query()
			forged.Set("state", "forged")
			wantPage(t, b.get(back.Path+"?"+forged.Encode()), http.StatusBadRequest)
			// The forged attempt used up the session's state: this authorization is dead too.
			wantPage(t, b.get(back.RequestURI()), http.StatusBadRequest)

			back = start()
			other := browserAt(t, srv.URL)
			other.signIn(hs.owner)
			wantPage(t, other.get(back.RequestURI()), http.StatusBadRequest)

			p := b.get(back.RequestURI())
			if p.code != http.StatusSeeOther || p.location != settings {
				t.Fatalf("callback: %d %q\n%s", p.code, p.location, p.body)
			}
			sp := b.get(settings)
			wantPage(t, sp, http.StatusOK, tc.login)
			wantPage(t, b.get(back.RequestURI()), http.StatusBadRequest)
			// GitLab's token expires: its refresh token and expiry are kept, for refreshing.
			accts, err := hs.store.ListAccounts(t.Context(), tm.ns)
			if err != nil {
				t.Fatal(err)
			}
			for _, a := range accts {
				if a.Login == tc.login && (a.RefreshSealed != "") != (tc.provider == "gitlab") || (a.TokenExpiresAt != nil) != (a.RefreshSealed != "") {
					t.Errorf("account %s: refresh token sealed %t, expires %v", a.Login, a.RefreshSealed != "", a.TokenExpiresAt)
				}
			}
			t.Run("sign in with", func(t *testing.T) {
				// Not linked yet: refused, saying so.
				nb := browserAt(t, srv.URL)
				p := nb.post("/login", "/login/oauth/"+tc.provider, url.Values{"next": {settings}})
				u, _ := url.Parse(p.location)
				if p.code != http.StatusSeeOther || u.Query().Get("scope") == "" || u.Query().Get("code_challenge") == "" {
					t.Fatalf("sign in with: %d %q", p.code, p.location)
				}
				resp, err := noRedirect.Get(p.location)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				cb, _ := url.Parse(resp.Header.Get("Location"))
				wantPage(t, nb.get(cb.RequestURI()), http.StatusUnauthorized, "No Slipway user is linked", tc.login)

				// The owner links the provider user, then signs in with it.
				p = b.post("/", "/account/link/"+tc.provider, url.Values{})
				resp, err = noRedirect.Get(p.location)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				cb, _ = url.Parse(resp.Header.Get("Location"))
				if p := b.get(cb.RequestURI()); p.code != http.StatusSeeOther || p.location != "/" {
					t.Fatalf("link callback: %d %q\n%s", p.code, p.location, p.body)
				}
				p = nb.post("/login", "/login/oauth/"+tc.provider, url.Values{"next": {settings}})
				resp, err = noRedirect.Get(p.location)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				cb, _ = url.Parse(resp.Header.Get("Location"))
				if p := nb.get(cb.RequestURI()); p.code != http.StatusSeeOther || p.location != settings {
					t.Fatalf("sign-in callback: %d %q\n%s", p.code, p.location, p.body)
				}
				wantPage(t, nb.get(settings), http.StatusOK, "Sign out", "owner")
				// The callback is good once.
				wantPage(t, nb.get(cb.RequestURI()), http.StatusBadRequest)
				// Without the sign-in form's CSRF token, no authorization starts.
				wantPage(t, browserAt(t, srv.URL).send(http.MethodPost, "/login/oauth/"+tc.provider, url.Values{}), http.StatusForbidden)
			})
			if tc.provider != "github" {
				return
			}

			// The account's pickers: organizations, then their repositories, then a rule
			// reading the source through the account, and its branches to build.
			acct := regexp.MustCompile(`/accounts/(a-[^/"]+)/remove`).FindStringSubmatch(sp.body)
			if acct == nil {
				t.Fatalf("no account on the settings page:\n%s", sp.body)
			}
			gh.AddOrg("acme", tc.login)
			gh.AddRepo(providertest.Repo{Owner: "acme", Name: "web", Private: true, Admins: []string{tc.login},
				Branches: []providertest.Ref{{Name: "main", Commit: strings.Repeat("c", 40)}, {Name: "next", Commit: strings.Repeat("d", 40)}}})
			// More than one page of the provider's (30 a page): the picker loads them all.
			for i := range 34 {
				gh.AddRepo(providertest.Repo{Owner: "acme", Name: fmt.Sprintf("svc-%02d", i)})
			}
			repo := "/ns/" + tm.ns + "/repos/app"
			form := url.Values{"provider": {"github"}, "account_id": {acct[1]}, "action": {"load"}}
			wantPage(t, b.post(repo+"/rules/new", repo+"/rules/new", form), http.StatusOK, `list="owner-choices"`, `<option value="acme">`)
			form.Set("owner", "acme")
			wantPage(t, b.post(repo+"/rules/new", repo+"/rules/new", form), http.StatusOK, `list="repository-choices"`, `<option value="web">`, `<option value="svc-33">`, "35 repositories loaded")
			form.Set("repository", "web")
			form.Set("branches", "main")
			form.Set("action", "save")
			p = b.post(repo+"/rules/new", repo+"/rules/new", form)
			if p.code != http.StatusSeeOther || p.location != repo+"/rules" {
				t.Fatalf("saving a rule with an account: %d %q\n%s", p.code, p.location, p.body)
			}
			rules := b.get(repo + "/rules")
			id := regexp.MustCompile(`/rules/(r-[a-z0-9]+)/build"`).FindStringSubmatch(rules.body)
			if id == nil {
				t.Fatalf("no rule:\n%s", rules.body)
			}
			wantPage(t, b.get(repo+"/rules/"+id[1]+"/build"), http.StatusOK, `<option value="main">`, `<option value="next">`)

			// Reconnecting by OAuth keeps the account's id: the rule naming it goes on, with a
			// new token.
			before, err := hs.store.GetAccount(t.Context(), acct[1])
			if err != nil {
				t.Fatal(err)
			}
			p = b.post(settings, "/ns/"+tm.ns+"/oauth/github", url.Values{"account": {acct[1]}})
			u, _ := url.Parse(p.location)
			resp, err := noRedirect.Get(u.String())
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			cb, _ := url.Parse(resp.Header.Get("Location"))
			if p := b.get(cb.RequestURI()); p.code != http.StatusSeeOther {
				t.Fatalf("reconnect callback: %d\n%s", p.code, p.body)
			}
			sp = b.get(settings)
			if n := strings.Count(sp.body, "/reconnect\""); n != 1 {
				t.Fatalf("%d accounts after reconnecting, want the one", n)
			}
			after, err := hs.store.GetAccount(t.Context(), acct[1])
			if err != nil || after.Login != tc.login || after.TokenSealed == before.TokenSealed {
				t.Fatalf("account after reconnecting: %+v, %v", after, err)
			}
		})
	}
}

// TestConsoleLogStreams follows a running build's log through the console, as the build
// page's script does: lines written to the log arrive while the request is open.
func TestConsoleLogStreams(t *testing.T) {
	hs := devStack(t)
	tm := hs.newTeam(t, "console-log")
	rule := hs.createRule(t, tm, githubRule())
	id, runID := hs.buildNow(t, tm, rule.ID)
	w, err := hs.logs.Append(id, runID)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := io.WriteString(w, "#1 cloning\n"); err != nil {
		t.Fatal(err)
	}

	b := hs.browser(t)
	b.signIn(hs.writer)
	// Without follow: the log as it is.
	wantPage(t, b.get("/builds/"+id+"/log"), http.StatusOK, "#1 cloning")

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, b.base+"/builds/"+id+"/log?follow=1", nil)
	resp, err := b.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusOK || !strings.HasPrefix(ct, "text/plain") {
		t.Fatalf("follow: %d %q", resp.StatusCode, ct)
	}
	var got strings.Builder
	buf := make([]byte, 4096)
	wrote := false
	for !strings.Contains(got.String(), "#2 building") {
		n, err := resp.Body.Read(buf)
		got.Write(buf[:n])
		if err != nil {
			t.Fatalf("the stream ended before the second line: %v; read %q", err, got.String())
		}
		if !wrote && strings.Contains(got.String(), "#1 cloning") {
			// The first line arrived; the second is written while the stream is open.
			if _, err := io.WriteString(w, "#2 building\n"); err != nil {
				t.Fatal(err)
			}
			wrote = true
		}
	}
}

// TestConsoleWebhookAnswerLinks checks a delivery's answer names the console page of the build
// it started, which opens (through sign-in) in a browser.
func TestConsoleWebhookAnswerLinks(t *testing.T) {
	hs := devStack(t)
	tm := hs.newTeam(t, "console-hook")
	rule := hs.createRule(t, tm, githubRule())
	body := fixture(t, "github/push_branch.json", setCommit(randomCommit()))
	r := hs.deliverGitHub(t, rule.ID, "push", body, sign(rule.Secret, body), randomHex(16))
	id := oneBuild(t, r, "push")
	var v struct {
		URLs []string `json:"build_urls"`
	}
	r.decode(t, &v)
	if len(v.URLs) != 1 || v.URLs[0] != hs.cfg.GatewayURL+"/builds/"+id {
		t.Fatalf("build_urls %q, want the build page of %s", v.URLs, id)
	}
	b := hs.browser(t)
	path := strings.TrimPrefix(v.URLs[0], hs.cfg.GatewayURL)
	p := b.get(path)
	if p.code != http.StatusSeeOther || !strings.HasPrefix(p.location, "/login?next=") {
		t.Fatalf("not signed in: %d %q", p.code, p.location)
	}
	b.signIn(hs.writer)
	wantPage(t, b.get(path), http.StatusOK, id, "push")
}
