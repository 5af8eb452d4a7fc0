// Package gateway is Slipway's HTTP front: the API people and CI call (rules, build now,
// build records, logs, cancel) and the endpoints GitHub and GitLab deliver webhooks to. It
// parses, authorizes and renders; package builds starts workflow_docker_builder and reads build
// records back from Temporal.
// The binary is cmd/gateway; Run is what it calls.
package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/slipway-dev/slipway/accounts"
	"github.com/slipway-dev/slipway/config"
	"github.com/slipway-dev/slipway/logstore"
	"github.com/slipway-dev/slipway/metrics"
	"github.com/slipway-dev/slipway/registryauth"
	"github.com/slipway-dev/slipway/store"
)

// Run serves the gateway until ctx ends, then shuts it down gracefully. getenv supplies its
// configuration (os.Getenv in the binary), so tests and slipway-dev can run it in process.
func Run(ctx context.Context, getenv func(string) string, logger *slog.Logger) error {
	cfg, err := config.FromEnv(getenv)
	if err != nil {
		return fmt.Errorf("reading configuration: %w", err)
	}
	if err := cfg.MakeHome(); err != nil {
		return err
	}
	// The key comes first: the store seals webhook secrets with it.
	box, err := accounts.LoadKey(getenv, cfg.Home, true)
	if err != nil {
		return err
	}
	st, err := store.Open(ctx, cfg.DatabaseURL, store.WithSecretBox(box))
	if err != nil {
		return fmt.Errorf("opening database: %w", err)
	}
	defer st.Close()
	tokenFile, err := ensureAdmin(ctx, st, cfg.Home, getenv("SLIPWAY_ADMIN_TOKEN"))
	if err != nil {
		return err
	}
	accts := accounts.New(st, box, cfg.ProviderAPIURLs())
	logs, err := logstore.New(cfg.LogsDir())
	if err != nil {
		return err
	}
	reg := metrics.NewRegistry()
	gm := metrics.NewGateway(reg)
	opts, err := cfg.TemporalClientOptions(logger)
	if err != nil {
		return err
	}
	// Only the server's answer to a start says whether it made a new build or found one.
	tc, closeTemporal, err := metrics.DialTemporal(ctx, opts, reg, gm.StartInterceptor())
	if err != nil {
		return err
	}
	defer closeTemporal()

	// The gateway is the registry's token service and keeps its key; the first process of the
	// stack to start makes it.
	key, err := registryauth.LoadOrCreate(cfg.RegistryTokenKey)
	if err != nil {
		return err
	}
	a := New(Deps{
		Config: cfg, Store: st, Temporal: tc, Logs: logs, Logger: logger,
		Accounts: accts, Registry: reg, Metrics: gm, RegistryKey: key,
		// Deleting a repository's images (DELETE .../repositories/{repo}?images=delete) is the
		// gateway acting as the operator, with a token it mints for that repository.
		RegistryKeychain: registryauth.OperatorKeychain(key, cfg.Registry),
	})
	srv := &http.Server{
		Addr:              cfg.GatewayAddr,
		Handler:           a.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Minute,
		// No write timeout: a followed log streams for as long as its build runs. Handlers
		// that talk to Temporal bound their own calls.
		IdleTimeout:    2 * time.Minute,
		MaxHeaderBytes: 1 << 20,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	logger.Info("gateway listening", "addr", cfg.GatewayAddr, "temporal", cfg.TemporalAddress, "admin_token", tokenFile)
	select {
	case err := <-errc:
		return fmt.Errorf("serving: %w", err)
	case <-ctx.Done():
	}
	logger.Info("gateway stopping")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("shutting down: %w", err)
	}
	return nil
}

// SoftMemoryLimit is the Go memory limit the gateway binary sets for itself unless GOMEMLIMIT
// is set. Unverified webhook bodies are the gateway's largest allocations, bounded by the body
// gate; a soft limit of the gate plus room for the rest makes the collector reclaim read
// bodies before the heap doubles, as it otherwise does under a flood. It is process-wide, so
// only the binary sets it, not Run.
func SoftMemoryLimit(cfg config.Config) int64 { return cfg.WebhookBuffer + 64<<20 }

// ensureAdmin makes the site admin's token: SLIPWAY_ADMIN_TOKEN when set, else the one in
// SLIPWAY_HOME/admin-token, else a new one written there (mode 0600). A short or plainly
// non-random token is refused. It returns where the token can be read, never the token.
func ensureAdmin(ctx context.Context, st *store.Store, home, fromEnv string) (string, error) {
	path := filepath.Join(home, "admin-token")
	token := strings.TrimSpace(fromEnv)
	where := "$SLIPWAY_ADMIN_TOKEN"
	if token == "" {
		where = path
		b, err := os.ReadFile(path)
		switch {
		case err == nil:
			token = strings.TrimSpace(string(b))
		case errors.Is(err, os.ErrNotExist):
			token, err = store.NewToken()
			if err != nil {
				return "", err
			}
			if err := os.WriteFile(path, []byte(token+"\n"), 0o600); err != nil {
				return "", fmt.Errorf("writing admin token: %w", err)
			}
		default:
			return "", fmt.Errorf("reading admin token: %w", err)
		}
	}
	if err := checkAdminToken(token); err != nil {
		return "", fmt.Errorf("the site admin token in %s %w", where, err)
	}
	if _, err := st.EnsureAdmin(ctx, "admin", token); err != nil {
		return "", fmt.Errorf("setting up the admin user: %w", err)
	}
	return where, nil
}
