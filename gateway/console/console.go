// Package console is Slipway's web console: the seed's pages (namespaces, image repositories,
// build rules, 立即构建, build records, the build page, images, namespace settings) and a
// namespace's notifications and build secrets, rendered on the server from html/template and
// served by the gateway from files embedded in its binary. It holds no authorization or validation of its own: every page and form calls the
// gateway's JSON API in process, as the signed-in user, and shows what the API answers, so a
// person in a browser and a script with a token get the same roles and the same 400s.
package console

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/slipway-dev/slipway/providers"
	"github.com/slipway-dev/slipway/store"
)

//go:embed templates/*.html
var templateFiles embed.FS

//go:embed static
var staticFiles embed.FS

// Deps is what the console needs from the gateway.
type Deps struct {
	// API is the gateway's JSON API. The console calls it in process with the signed-in user
	// in the request's context (WithUser), which the API's authentication accepts.
	API http.Handler
	// Store keeps the console's sessions.
	Store *store.Store
	// GatewayURL is the gateway's public base URL; an https one makes the session cookie Secure.
	GatewayURL string
	// SessionTTL is how long a sign-in lasts; zero means DefaultSessionTTL.
	SessionTTL time.Duration
	Logger     *slog.Logger
	// Tags lists an image's tags in the registry for the Images tab; nil shows none.
	Tags TagLister
	// Identify says whose a provider token is, for "Sign in with GitHub/GitLab"; nil offers
	// no such sign-in.
	Identify func(ctx context.Context, provider, token string) (providers.Identity, error)
	// OAuth configures "Connect GitHub/GitLab"; a provider without an app shows none.
	OAuth OAuthApps
}

// DefaultSessionTTL is how long a sign-in lasts when Deps does not say: a working day.
const DefaultSessionTTL = 12 * time.Hour

// Console serves the pages. Make one with New and add its routes with Register.
type Console struct {
	d     Deps
	pages map[string]*template.Template
}

// New parses the templates; an error is a bug in them.
func New(d Deps) (*Console, error) {
	if d.SessionTTL <= 0 {
		d.SessionTTL = DefaultSessionTTL
	}
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	pages, err := parsePages()
	if err != nil {
		return nil, err
	}
	return &Console{d: d, pages: pages}, nil
}

// parsePages parses each page template together with the layout it fills in.
func parsePages() (map[string]*template.Template, error) {
	names, err := fs.Glob(templateFiles, "templates/*.html")
	if err != nil {
		return nil, fmt.Errorf("listing templates: %w", err)
	}
	base, err := template.New("layout").Funcs(funcs).ParseFS(templateFiles, "templates/layout.html")
	if err != nil {
		return nil, fmt.Errorf("parsing layout: %w", err)
	}
	pages := map[string]*template.Template{}
	for _, n := range names {
		name := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if name == "layout" {
			continue
		}
		t, err := template.Must(base.Clone()).ParseFS(templateFiles, n)
		if err != nil {
			return nil, fmt.Errorf("parsing template %s: %w", name, err)
		}
		pages[name] = t
	}
	return pages, nil
}

// Register adds the console's routes to r.
func (cn *Console) Register(r gin.IRouter) {
	r.GET("/static/*file", cn.static)
	r.GET("/login", cn.loginPage)
	r.POST("/login", cn.login)
	r.GET("/lang/:lang", cn.setLang)
	r.POST("/login/oauth/:provider", cn.signInStart)
	// The callback of every authorization: a session's (connect, link) or a sign-in's.
	r.GET("/oauth/callback/:provider", cn.oauthCallback)

	s := r.Group("", cn.session)
	s.POST("/logout", cn.logout)
	s.GET("/", cn.namespacesPage)
	s.POST("/namespaces", cn.createNamespace)
	s.GET("/ns/:ns", cn.repositoriesPage)
	s.POST("/ns/:ns/repositories", cn.createRepository)
	s.GET("/ns/:ns/settings", cn.settingsPage)
	s.POST("/ns/:ns/members", cn.setMember)
	s.POST("/ns/:ns/members/:user/remove", cn.removeMember)
	s.POST("/ns/:ns/accounts", cn.connectAccount)
	s.POST("/ns/:ns/accounts/:account/remove", cn.removeAccount)
	s.POST("/ns/:ns/accounts/:account/reconnect", cn.reconnectAccount)
	s.POST("/ns/:ns/oauth/:provider", cn.oauthStart)
	s.GET("/ns/:ns/secrets", cn.secretsPage)
	s.POST("/ns/:ns/secrets", cn.setSecret)
	s.POST("/ns/:ns/secrets/:name/remove", cn.removeSecret)
	s.GET("/ns/:ns/notifications", cn.notificationsPage)
	s.POST("/ns/:ns/notifications", cn.createNotification)
	s.GET("/ns/:ns/notifications/:nid", cn.notificationPage)
	s.POST("/ns/:ns/notifications/:nid", cn.updateNotification)
	s.POST("/ns/:ns/notifications/:nid/secret", cn.rotateNotificationSecret)
	s.POST("/ns/:ns/notifications/:nid/remove", cn.removeNotification)
	s.POST("/account/link/:provider", cn.linkStart)
	repo := s.Group("/ns/:ns/repos/:repo")
	repo.GET("", cn.rulesPage)
	repo.GET("/rules", cn.rulesPage)
	repo.GET("/rules/new", cn.ruleFormPage)
	repo.POST("/rules/new", cn.saveRule)
	repo.GET("/rules/:id", cn.ruleFormPage)
	repo.POST("/rules/:id", cn.saveRule)
	repo.GET("/rules/:id/build", cn.buildNowPage)
	repo.POST("/rules/:id/build", cn.buildNow)
	repo.GET("/builds", cn.recordsPage)
	repo.GET("/images", cn.imagesPage)
	repo.GET("/retention", cn.retentionPage)
	repo.POST("/retention", cn.saveRetention)
	repo.POST("/retention/dry-run", cn.dryRunRetention)
	repo.POST("/retention/remove", cn.removeRetention)
	s.GET("/builds/:id", cn.buildPage)
	s.GET("/builds/:id/log", cn.buildLog)
	s.POST("/builds/:id/cancel", cn.cancelBuild)
	s.POST("/builds/:id/rebuild", cn.rebuild)
}

// static serves the embedded stylesheet and script.
func (cn *Console) static(c *gin.Context) {
	c.FileFromFS(path.Join("static", path.Clean("/"+c.Param("file"))), http.FS(staticFiles))
}

// userKey is the context key of the user the console calls the API as.
type userKey struct{}

// WithUser returns ctx carrying u as the caller of an in-process API request. Only code in
// the gateway's process can set it: no header or cookie a client sends becomes this value.
func WithUser(ctx context.Context, u store.User) context.Context {
	return context.WithValue(ctx, userKey{}, u)
}

// UserFrom returns the user WithUser put in ctx.
func UserFrom(ctx context.Context) (store.User, bool) {
	u, ok := ctx.Value(userKey{}).(store.User)
	return u, ok
}

// apiError is a non-2xx answer of the API: its status, message and the field it names.
type apiError struct {
	Status  int    `json:"-"`
	Message string `json:"error"`
	Field   string `json:"field"`
}

func (e *apiError) Error() string { return fmt.Sprintf("%d %s", e.Status, e.Message) }

// recorder is the ResponseWriter of an in-process API call.
type recorder struct {
	header http.Header
	code   int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header         { return r.header }
func (r *recorder) Write(b []byte) (int, error) { return r.body.Write(b) }
func (r *recorder) WriteHeader(code int) {
	if r.code == 0 {
		r.code = code
	}
}

// apiRequest is an in-process request to the API as the signed-in user of c.
func (cn *Console) apiRequest(c *gin.Context, method, path string, query url.Values, body any) (*http.Request, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("encoding request: %w", err)
		}
		rd = bytes.NewReader(b)
	}
	u := "/api/v1" + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(WithUser(c.Request.Context(), current(c).User), method, u, rd)
	if err != nil {
		return nil, fmt.Errorf("making request: %w", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return req, nil
}

// call sends one request to the API as the signed-in user and decodes a 2xx answer into out
// (when not nil). Any other answer is an *apiError.
func (cn *Console) call(c *gin.Context, method, path string, query url.Values, body, out any) error {
	req, err := cn.apiRequest(c, method, path, query, body)
	if err != nil {
		return err
	}
	rec := &recorder{header: http.Header{}}
	cn.d.API.ServeHTTP(rec, req)
	if rec.code == 0 {
		rec.code = http.StatusOK
	}
	if rec.code >= 300 {
		e := &apiError{Status: rec.code}
		if json.Unmarshal(rec.body.Bytes(), e) != nil || e.Message == "" {
			e.Message = http.StatusText(rec.code)
		}
		return e
	}
	if out != nil && rec.body.Len() > 0 {
		if err := json.Unmarshal(rec.body.Bytes(), out); err != nil {
			return fmt.Errorf("decoding %s %s: %w", method, path, err)
		}
	}
	return nil
}

// esc escapes one path segment.
func esc(s string) string { return url.PathEscape(s) }
