// Command gateway is Slipway's HTTP front: the API people and CI call (rules, build now,
// build records, logs, cancel) and the endpoints GitHub and GitLab deliver webhooks to. It
// turns both into starts of workflow_docker_builder and reads build records back from Temporal.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"go.temporal.io/sdk/client"
	"google.golang.org/grpc"

	"github.com/slipway-dev/slipway/accounts"
	"github.com/slipway-dev/slipway/config"
	"github.com/slipway-dev/slipway/gateway/store"
	"github.com/slipway-dev/slipway/logstore"
	"github.com/slipway-dev/slipway/metrics"
	"github.com/slipway-dev/slipway/registryauth"
)

func main() {
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, logger); err != nil {
		logger.Error("gateway stopped", "error", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, logger *slog.Logger) error {
	cfg, err := config.FromEnv(os.Getenv)
	if err != nil {
		return fmt.Errorf("reading configuration: %w", err)
	}
	if err := cfg.MakeHome(); err != nil {
		return err
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		// Unverified webhook bodies are the gateway's largest allocations, bounded by the body
		// gate; a soft limit of the gate plus room for the rest makes the collector reclaim
		// read bodies before the heap doubles, as it otherwise does under a flood.
		limit := cfg.WebhookBuffer + 64<<20
		debug.SetMemoryLimit(limit)
		logger.Info("soft memory limit", "bytes", limit, "override", "GOMEMLIMIT")
	}
	// The key comes first: the store seals webhook secrets with it.
	box, err := accounts.LoadKey(os.Getenv, cfg.Home, true)
	if err != nil {
		return err
	}
	st, err := store.Open(ctx, cfg.DatabaseURL, store.WithSecretBox(box))
	if err != nil {
		return fmt.Errorf("opening database: %w", err)
	}
	defer st.Close()
	tokenFile, err := ensureAdmin(ctx, st, cfg.Home, os.Getenv("SLIPWAY_ADMIN_TOKEN"))
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
	var stopMeter func(context.Context) error
	opts.MetricsHandler, stopMeter, err = metrics.TemporalHandler(reg)
	if err != nil {
		return err
	}
	defer stopMeter(context.Background())
	// Only the server's answer to a start says whether it made a new build or found one.
	opts.ConnectionOptions.DialOptions = append(opts.ConnectionOptions.DialOptions,
		grpc.WithChainUnaryInterceptor(gm.StartInterceptor()))
	tc, err := client.DialContext(ctx, opts)
	if err != nil {
		return fmt.Errorf("connecting to temporal at %s: %w", cfg.TemporalAddress, err)
	}
	defer tc.Close()

	a := newAPI(cfg, st, tc, logs, logger)
	a.registry, a.metrics = reg, gm
	a.accounts = accts
	// The gateway is the registry's token service and keeps its key; the first process of the
	// stack to start makes it.
	if a.registryKey, err = registryauth.LoadOrCreate(cfg.RegistryTokenKey); err != nil {
		return err
	}
	// Deleting a repository's images (DELETE .../repositories/{repo}?images=delete) is the
	// gateway acting as the operator, with a token it mints for that repository.
	a.registryKeychain = registryauth.OperatorKeychain(a.registryKey, cfg.Registry)
	srv := &http.Server{
		Addr:              cfg.GatewayAddr,
		Handler:           a.router(),
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
