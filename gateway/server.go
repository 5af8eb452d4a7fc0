package main

import (
	"crypto/rand"
	_ "embed"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"go.temporal.io/sdk/client"

	"github.com/slipway-dev/slipway/accounts"
	"github.com/slipway-dev/slipway/config"
	"github.com/slipway-dev/slipway/gateway/store"
	"github.com/slipway-dev/slipway/logstore"
)

// maxWebhookBody is the most a delivery may carry; GitHub caps payloads at 25 MB.
const maxWebhookBody = 25 << 20

// maxAPIBody bounds the JSON of an API call.
const maxAPIBody = 1 << 20

//go:embed openapi.json
var openAPIDoc []byte

// api holds what every handler needs.
type api struct {
	cfg config.Config
	// accounts resolves connected accounts; nil turns account endpoints into 503s.
	accounts *accounts.Resolver
	store    *store.Store
	temporal client.Client
	logs     *logstore.Store
	logger   *slog.Logger
}

func newAPI(cfg config.Config, st *store.Store, tc client.Client, logs *logstore.Store, logger *slog.Logger) *api {
	return &api{cfg: cfg, store: st, temporal: tc, logs: logs, logger: logger}
}

// router lays out DESIGN.md §4.
func (a *api) router() *gin.Engine {
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.Use(a.requestLog(), a.recovery())
	r.HandleMethodNotAllowed = true
	r.NoRoute(func(c *gin.Context) { fail(c, http.StatusNotFound, "no such endpoint") })
	r.NoMethod(func(c *gin.Context) { fail(c, http.StatusMethodNotAllowed, "method not allowed") })

	r.GET("/healthz", a.healthz)
	r.GET("/api/v1/openapi.json", func(c *gin.Context) { c.Data(http.StatusOK, "application/json", openAPIDoc) })

	v1 := r.Group("/api/v1", a.authenticate)
	v1.POST("/users", a.createUser)
	v1.POST("/namespaces", a.createNamespace)
	v1.PUT("/namespaces/:ns/members/:user", a.setMember)
	v1.POST("/namespaces/:ns/repositories", a.createRepository)
	v1.GET("/namespaces/:ns/repositories", a.listRepositories)
	v1.POST("/namespaces/:ns/accounts", a.connectAccount)
	v1.GET("/namespaces/:ns/accounts", a.listAccounts)
	v1.DELETE("/namespaces/:ns/accounts/:account", a.deleteAccount)
	v1.GET("/namespaces/:ns/accounts/:account/:what", a.browse)
	rules := v1.Group("/namespaces/:ns/repositories/:repo/build-rules")
	rules.POST("", a.createRule)
	rules.GET("", a.listRules)
	rules.GET("/:id", a.getRule)
	rules.PUT("/:id", a.updateRule)
	rules.DELETE("/:id", a.deleteRule)
	rules.POST("/:id/builds", a.buildNow)
	v1.GET("/namespaces/:ns/repositories/:repo/builds", a.listBuilds)
	v1.GET("/builds/:id", a.getBuild)
	v1.GET("/builds/:id/logs", a.buildLogs)
	v1.POST("/builds/:id/cancel", a.cancelBuild)

	r.POST("/webhooks/github/:rule_id", a.githubWebhook)
	r.POST("/webhooks/gitlab/:rule_id", a.gitlabWebhook)
	return r
}

// healthz answers whether the gateway can serve: its database and Temporal answer.
func (a *api) healthz(c *gin.Context) {
	ctx := c.Request.Context()
	checks := gin.H{}
	code := http.StatusOK
	if _, err := a.store.SchemaVersion(ctx); err != nil {
		checks["database"] = err.Error()
		code = http.StatusServiceUnavailable
	} else {
		checks["database"] = "ok"
	}
	if _, err := a.temporal.CheckHealth(ctx, &client.CheckHealthRequest{}); err != nil {
		checks["temporal"] = "unreachable"
		code = http.StatusServiceUnavailable
	} else {
		checks["temporal"] = "ok"
	}
	c.JSON(code, checks)
}

// fail answers with the API's error shape and stops the chain.
func fail(c *gin.Context, code int, msg string) {
	c.AbortWithStatusJSON(code, gin.H{"error": msg})
}

// internal answers 500 and logs the cause, which may name internals a caller need not see.
func (a *api) internal(c *gin.Context, what string, err error) {
	a.logger.Error(what, "error", err, "path", c.FullPath())
	fail(c, http.StatusInternalServerError, what)
}

// requestLog logs one line per request: method, route, status, time. Never headers, bodies or
// query strings, which may carry tokens and secrets.
func (a *api) requestLog() gin.HandlerFunc {
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
func (a *api) recovery() gin.HandlerFunc {
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
