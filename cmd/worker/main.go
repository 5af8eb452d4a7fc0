// Command worker runs Slipway builds: it polls the docker-builder task queue for
// workflow_docker_builder and runs each build's steps in a session on this host.
package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/slipway-dev/slipway/worker"
)

func main() {
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := worker.Run(ctx, os.Getenv, logger); err != nil {
		logger.Error("worker stopped", "error", err)
		os.Exit(1)
	}
}
