// Command slipway-dev is what `make run` runs: it starts the local stack (Temporal with its
// web UI, buildkitd, a registry seeded with busybox) on the usual ports, runs the worker and
// the gateway in this process against it, prints where everything is, and stops it all on
// Ctrl-C.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/gin-gonic/gin"

	"github.com/slipway-dev/slipway/accounts"
	"github.com/slipway-dev/slipway/config"
	"github.com/slipway-dev/slipway/devstack"
	"github.com/slipway-dev/slipway/gateway"
	"github.com/slipway-dev/slipway/worker"
)

func main() {
	tools := flag.String("tools", ".tools/bin", "folder holding temporal, buildkitd and buildctl (built by scripts/tools.sh)")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: slipway-dev [-tools DIR]\n\n"+
			"Starts the local Slipway stack, the worker and the gateway. SLIPWAY_HOME (default ./.slipway) holds their data and logs.\n\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	// gin's debug mode prints every route at start; the gateway logs its own requests.
	gin.SetMode(gin.ReleaseMode)
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, logger, *tools); err != nil {
		logger.Error("slipway-dev stopped", "error", err)
		os.Exit(1)
	}
}

// run serves until ctx ends or the worker or the gateway fails, then stops everything.
func run(ctx context.Context, logger *slog.Logger, tools string) (err error) {
	opts, err := devstack.DevOptions(os.Getenv, tools)
	if err != nil {
		return err
	}
	opts.Logger = logger
	stack, err := devstack.Start(ctx, opts)
	if err != nil {
		return fmt.Errorf("starting local stack: %w", err)
	}
	defer func() { err = errors.Join(err, stack.Close()) }()
	workerEnv, gatewayEnv := devstack.Getenv(stack.WorkerEnv()), devstack.Getenv(stack.GatewayEnv())
	// The key that seals connected accounts' tokens is made before the worker and the gateway
	// start, so both read the same one.
	if _, err := accounts.LoadKey(gatewayEnv, stack.Home(), true); err != nil {
		return fmt.Errorf("preparing the secret key: %w", err)
	}
	cfg, err := config.FromEnv(gatewayEnv)
	if err != nil {
		return err
	}
	parts, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 2)
	serve := func(part string, run func(context.Context, func(string) string, *slog.Logger) error, getenv func(string) string) {
		go func() {
			err := run(parts, getenv, logger.With("part", part))
			if err == nil && parts.Err() == nil {
				err = errors.New("ended while it should serve")
			}
			if err != nil {
				err = fmt.Errorf("%s: %w", part, err)
			}
			done <- err
		}()
	}
	serve("worker", worker.Run, workerEnv)
	serve("gateway", gateway.Run, gatewayEnv)
	if err := stack.WriteSummary(os.Stdout, cfg, tools); err != nil {
		return err
	}
	// The first to end, at Ctrl-C or on failure, stops the other, then the stack.
	err = <-done
	logger.Info("stopping")
	cancel()
	return errors.Join(err, <-done)
}
