// Command gateway is Slipway's HTTP front: the API people and CI call (rules, build now,
// build records, logs, cancel) and the endpoints GitHub and GitLab deliver webhooks to. It
// turns both into starts of workflow_docker_builder and reads build records back from Temporal.
package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/gin-gonic/gin"

	"github.com/slipway-dev/slipway/config"
	"github.com/slipway-dev/slipway/gateway"
)

func main() {
	// gin's debug mode prints every route at start; the gateway logs its own requests.
	gin.SetMode(gin.ReleaseMode)
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if cfg, err := config.FromEnv(os.Getenv); err == nil && os.Getenv("GOMEMLIMIT") == "" {
		limit := gateway.SoftMemoryLimit(cfg)
		debug.SetMemoryLimit(limit)
		logger.Info("soft memory limit", "bytes", limit, "override", "GOMEMLIMIT")
	}
	if err := gateway.Run(ctx, os.Getenv, logger); err != nil {
		logger.Error("gateway stopped", "error", err)
		os.Exit(1)
	}
}
