package gateway

import (
	"context"
	"crypto/rand"
	_ "embed"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/prometheus/client_golang/prometheus"
	"go.temporal.io/sdk/client"

	"github.com/slipway-dev/slipway/accounts"
	"github.com/slipway-dev/slipway/builds"
	"github.com/slipway-dev/slipway/config"
	"github.com/slipway-dev/slipway/logstore"
	"github.com/slipway-dev/slipway/metrics"
	"github.com/slipway-dev/slipway/registryauth"
	"github.com/slipway-dev/slipway/store"
)

// maxWebhookBody is the most a delivery may carry; GitHub caps payloads at 25 MB.
const maxWebhookBody = config.MaxWebhookBody

// maxAPIBody bounds the JSON of an API call.
const maxAPIBody = 1 << 20

//go:embed openapi.json
var openAPIDoc []byte

// Server is the gateway's HTTP side: its routes and what every handler needs. New builds it
// whole; nothing is set on it afterwards.
type Server struct {
	cfg config.Config
	// accounts resolves connected accounts; nil turns account endpoints into 503s.
	accounts *accounts.Resolver
	store    *store.Store
	temporal client.Client
	// builds is where builds are started, read and cancelled.
	builds *builds.Service
	logs   *logstore.Store
	logger *slog.Logger
	// registry is what /metrics serves; metrics is the gateway's part of it.
	registry *prometheus.Registry
	metrics  *metrics.Gateway
	// registryKey signs registry tokens; nil turns the token service into 503s.
	registryKey *registryauth.Key
	// registryKeychain gives the credentials of the image registry, for deleting a
	// repository's images.
	registryKeychain authn.Keychain
	// bodies bounds the webhook bodies read at once (config WebhookConcurrency, WebhookBuffer).
	bodies *bodyGate
	// follows shares one watcher per followed build and counts each user's followers.
	follows *builds.Followers
	// engine routes requests; it is built once, by New.
	engine *gin.Engine
}

// Deps is what a Server is built from. Config, Store, Temporal, Logs and Logger are needed
// to serve; the others have defaults.
type Deps struct {
	Config   config.Config
	Store    *store.Store
	Temporal client.Client
	Logs     *logstore.Store
	Logger   *slog.Logger
	// Accounts resolves connected accounts; nil turns account endpoints into 503s.
	Accounts *accounts.Resolver
	// Registry is what /metrics serves and Metrics the gateway's part of it; nil makes new
	// ones. Builds are counted as started or duplicate only when the Temporal client was
	// dialed with Metrics.StartInterceptor (Run does); without it a webhook that started a
	// build counts as ignored.
	Registry *prometheus.Registry
	Metrics  *metrics.Gateway
	// RegistryKey signs registry tokens; nil turns the token service into 503s.
	RegistryKey *registryauth.Key
	// RegistryKeychain gives the credentials of the image registry, for deleting a
	// repository's images; nil is anonymous (the local stack's registry).
	RegistryKeychain authn.Keychain
}

// New builds the server and its routes from d.
func New(d Deps) *Server {
	a := &Server{cfg: d.Config, store: d.Store, temporal: d.Temporal, logs: d.Logs, logger: d.Logger,
		accounts: d.Accounts, registry: d.Registry, metrics: d.Metrics, registryKey: d.RegistryKey,
		registryKeychain: d.RegistryKeychain}
	if a.registry == nil {
		a.registry = metrics.NewRegistry()
		a.metrics = nil
	}
	if a.metrics == nil {
		a.metrics = metrics.NewGateway(a.registry)
	}
	if a.registryKeychain == nil {
		a.registryKeychain = authn.NewMultiKeychain()
	}
	cfg := d.Config
	a.builds = builds.New(d.Temporal, builds.Settings{
		TaskQueue: cfg.TaskQueue, TemporalNamespace: cfg.TemporalNamespace, Registry: cfg.Registry,
		GatewayURL: cfg.GatewayURL, TemporalUIURL: cfg.TemporalUIURL,
	})
	concurrency, buffer := cfg.WebhookConcurrency, cfg.WebhookBuffer
	if concurrency < 1 {
		concurrency = 16
	}
	if buffer < maxWebhookBody {
		buffer = 64 << 20
	}
	a.bodies = newBodyGate(concurrency, buffer)
	a.follows = a.builds.NewFollowers(cfg.LogFollowersPerUser, d.Logger)
	a.engine = a.router()
	return a
}

// Handler serves the gateway's routes.
func (a *Server) Handler() http.Handler { return a.engine }

// router lays out the routes. Routes under a namespace are grouped by the role they need
// there; routes of one build check the role in the build's namespace.
func (a *Server) router() *gin.Engine {
	r := gin.New()
	r.Use(a.instrument(), a.requestLog(), a.recovery())
	r.HandleMethodNotAllowed = true
	r.NoRoute(func(c *gin.Context) { fail(c, http.StatusNotFound, "no such endpoint") })
	r.NoMethod(func(c *gin.Context) { fail(c, http.StatusMethodNotAllowed, "method not allowed") })

	r.GET("/healthz", a.healthz)
	r.GET("/readyz", a.readyz)
	r.GET("/metrics", gin.WrapH(metrics.Handler(a.registry)))
	r.GET("/api/v1/openapi.json", func(c *gin.Context) { c.Data(http.StatusOK, "application/json", openAPIDoc) })

	v1 := r.Group("/api/v1", a.authenticate)
	v1.GET("/user", a.me)
	v1.POST("/user/token", a.rotateMyToken)
	v1.POST("/users", a.createUser)
	v1.PATCH("/users/:user", a.patchUser)
	v1.POST("/users/:user/token", a.rotateUserToken)
	v1.GET("/namespaces", a.listNamespaces)
	v1.POST("/namespaces", a.createNamespace)

	ns := v1.Group("/namespaces/:ns")
	read := ns.Group("", a.requireRole(store.RoleRead))
	write := ns.Group("", a.requireRole(store.RoleWrite))
	admin := ns.Group("", a.requireRole(store.RoleAdmin))
	read.GET("/members", a.listMembers)
	admin.PUT("/members/:user", a.setMember)
	admin.DELETE("/members/:user", a.removeMember)
	write.POST("/repositories", a.createRepository)
	read.GET("/repositories", a.listRepositories)
	admin.DELETE("/repositories/:repo", a.deleteRepository)
	write.POST("/accounts", a.connectAccount)
	read.GET("/accounts", a.listAccounts)
	admin.DELETE("/accounts/:account", a.deleteAccount)
	admin.PUT("/accounts/:account", a.reconnectAccount)
	a.secretsRoutes(read, write, admin)
	// Browsing shows the account's private repositories: it needs write, the role that
	// creates rules.
	write.GET("/accounts/:account/:what", a.browse)
	const rules = "/repositories/:repo/build-rules"
	write.POST(rules, a.createRule)
	read.GET(rules, a.listRules)
	read.GET(rules+"/:id", a.getRule)
	write.PUT(rules+"/:id", a.updateRule)
	write.DELETE(rules+"/:id", a.deleteRule)
	write.POST(rules+"/:id/webhook-secret", a.rotateWebhookSecret)
	write.POST(rules+"/:id/builds", a.buildNow)
	write.POST(rules+"/:id/badge-token", a.rotateBadgeToken)
	// Write, as saving a rule: without refs a preview reads the source through the account.
	write.POST(rules+"/preview", a.previewRule)
	read.GET("/repositories/:repo/builds", a.listBuilds)
	write.POST("/notifications", a.createNotification)
	read.GET("/notifications", a.listNotifications)
	read.GET("/notifications/:nid", a.getNotification)
	write.PUT("/notifications/:nid", a.updateNotification)
	write.DELETE("/notifications/:nid", a.deleteNotification)
	write.POST("/notifications/:nid/secret", a.rotateNotificationSecret)
	a.retentionRoutes(read, write)

	v1.GET("/builds/:id", a.requireBuild(store.RoleRead), a.getBuild)
	v1.GET("/builds/:id/logs", a.requireBuild(store.RoleRead), a.buildLogs)
	v1.POST("/builds/:id/cancel", a.requireBuild(store.RoleWrite), a.cancelBuild)
	v1.POST("/builds/:id/rebuild", a.requireBuild(store.RoleWrite), a.rebuildBuild)

	r.GET(registryauth.TokenPath, a.registryToken)

	r.GET("/badges/:file", a.badge)
	r.POST("/webhooks/github/:rule_id", a.githubWebhook)
	r.POST("/webhooks/gitlab/:rule_id", a.gitlabWebhook)
	a.console(r).Register(r)
	return r
}

// healthz answers whether the gateway can serve: its database and Temporal answer. It names
// the part that is down, never its error (which can name hosts and users): that goes to the log.
func (a *Server) healthz(c *gin.Context) {
	ctx := c.Request.Context()
	checks := []metrics.Check{
		{Name: "database", Probe: func(ctx context.Context) error { _, err := a.store.SchemaVersion(ctx); return err }},
		{Name: "temporal", Probe: func(ctx context.Context) error {
			_, err := a.temporal.CheckHealth(ctx, &client.CheckHealthRequest{})
			return err
		}},
	}
	res, ok := metrics.Ready(ctx, a.logger, checks)
	code := http.StatusOK
	if !ok {
		code = http.StatusServiceUnavailable
	}
	c.JSON(code, res)
}

// readyz answers whether the gateway should get traffic: the checks of healthz, under the name
// orchestrators probe readiness with.
func (a *Server) readyz(c *gin.Context) { a.healthz(c) }

// instrument counts every request by route, method and status, times it, and sorts webhook
// deliveries by outcome.
func (a *Server) instrument() gin.HandlerFunc {
	return func(c *gin.Context) {
		start := time.Now()
		route := c.FullPath()
		provider, isWebhook := webhookProvider(route)
		var starts *metrics.Starts
		if isWebhook {
			var ctx context.Context
			ctx, starts = metrics.WithStarts(c.Request.Context())
			c.Request = c.Request.WithContext(ctx)
		}
		c.Next()
		if route == "" {
			route = "unmatched"
		}
		code := c.Writer.Status()
		a.metrics.ObserveRequest(route, c.Request.Method, code, time.Since(start))
		if isWebhook {
			a.metrics.ObserveDelivery(provider, deliveryOutcome(code, starts))
		}
	}
}

// webhookProvider is the provider of a webhook route ("/webhooks/github/:rule_id").
func webhookProvider(route string) (string, bool) {
	rest, ok := strings.CutPrefix(route, "/webhooks/")
	if !ok {
		return "", false
	}
	provider, _, _ := strings.Cut(rest, "/")
	return provider, provider != ""
}

// deliveryOutcome reads what a delivery came to from its answer (401 for a bad
// signature or token, 404 for a rule that is not there, 400 or 413 for a payload that cannot
// be read, 503 when Temporal is down) and from the starts its handler made.
func deliveryOutcome(code int, starts *metrics.Starts) string {
	switch {
	case code < 300:
		started, duplicate := starts.Counts()
		switch {
		case started > 0:
			return metrics.OutcomeStarted
		case duplicate > 0:
			return metrics.OutcomeDuplicate
		}
		return metrics.OutcomeIgnored
	case code == http.StatusUnauthorized, code == http.StatusForbidden, code == http.StatusNotFound:
		return metrics.OutcomeUnauthorized
	case code == http.StatusBadRequest, code == http.StatusRequestEntityTooLarge:
		return metrics.OutcomeMalformed
	}
	return metrics.OutcomeError
}

// fail answers with the API's error shape and stops the chain.
func fail(c *gin.Context, code int, msg string) {
	c.AbortWithStatusJSON(code, gin.H{"error": msg})
}

// internal answers 500 and logs the cause, which may name internals a caller need not see.
func (a *Server) internal(c *gin.Context, what string, err error) {
	a.logger.Error(what, "error", err, "path", c.FullPath())
	fail(c, http.StatusInternalServerError, what)
}

// requestLog logs one line per request: method, route, status, time. Never headers, bodies or
// query strings, which may carry tokens and secrets.
func (a *Server) requestLog() gin.HandlerFunc {
	return func(c *gin.Context) {
		start := time.Now()
		c.Next()
		route := c.FullPath()
		if route == "" {
			route = "unmatched"
		}
		a.logger.Info("request", "method", c.Request.Method, "route", route, "status", c.Writer.Status(),
			"duration_ms", float64(time.Since(start).Microseconds())/1000, "user", c.GetString(ctxUserName))
	}
}

// recovery turns a panic into a 500 with a request id the log also names.
func (a *Server) recovery() gin.HandlerFunc {
	return func(c *gin.Context) {
		defer func() {
			if r := recover(); r != nil {
				if err, ok := r.(error); ok && errors.Is(err, http.ErrAbortHandler) {
					panic(r)
				}
				id := randomHex(8)
				a.logger.Error("panic", "request_id", id, "panic", r, "route", c.FullPath())
				fail(c, http.StatusInternalServerError, "internal error (request "+id+")")
			}
		}()
		c.Next()
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on Linux
	}
	return hex.EncodeToString(b)
}

// bearer extracts the token of an Authorization: Bearer header.
func bearer(h string) string {
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(token)
}
