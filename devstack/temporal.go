package devstack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"path/filepath"
	"slices"
	"strconv"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
)

// temporalNamespace is where the search attributes are registered.
const temporalNamespace = "default"

// DynamicConfig is the Temporal dynamic config Slipway's servers run with, as key and JSON
// value: the dev server takes it as flags, the production-shaped server and the compose
// stack read deploy/temporal-dynamicconfig.yaml, which holds the same values and says why
// each is set. In short: Temporal's defaults are sized for large clusters, and on a
// deployment of a few history shards they make a build wait up to 50 ms at each hop from
// its history to the matching service, and forward tasks between task queue partitions.
func DynamicConfig() [][2]string {
	return [][2]string{
		{"history.transferProcessorMaxPollRPS", "1000"},
		{"matching.numTaskqueueReadPartitions", "1"},
		{"matching.numTaskqueueWritePartitions", "1"},
	}
}

// temporalCommandArgs are the arguments of `temporal server start-dev`. The
// HTTP API, metrics and internal service ports are left to the dev server,
// which picks free ones, so stacks side by side do not collide. The dev
// server's own web UI has no way to turn its write actions off, so it runs
// headless and the stack starts temporal-ui-server beside it (launchUI).
func (s *Stack) temporalCommandArgs(port int) []string {
	args := []string{
		"server", "start-dev",
		"--db-filename", filepath.Join(s.home, "temporal.db"),
		"--ip", "127.0.0.1",
		"--port", strconv.Itoa(port),
		"--headless",
		"--log-level", "warn",
		// WAL with synchronous=NORMAL keeps a committed start durable across a crash of the
		// process (not of the machine) and lets the dev server take several times more
		// workflow starts a second than its default rollback journal.
		"--sqlite-pragma", "journal_mode=wal",
		"--sqlite-pragma", "synchronous=normal",
	}
	for _, kv := range DynamicConfig() {
		args = append(args, "--dynamic-config-value", kv[0]+"="+kv[1])
	}
	// Only a new database takes these; waitTemporal adds any that an older
	// database lacks.
	for _, name := range SearchAttributes() {
		args = append(args, "--search-attribute", name+"=Keyword")
	}
	return args
}

// launchTemporal starts the dev server process without waiting for it.
func (s *Stack) launchTemporal() error {
	if s.external {
		return errors.New("starting temporal: this stack uses an external Temporal server")
	}
	_, err := s.launch(&s.temporal, "temporal", s.temporalBin, s.temporalArgs)
	return err
}

// ensureUI starts the Temporal web UI server for the dev server unless it runs, without
// waiting for it. It is started once the frontend answers: a UI whose first connection was
// refused answers 503 while its gRPC connection backs off. It runs apart from the dev server
// and outlives its restarts.
func (s *Stack) ensureUI() (*Process, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errors.New("starting temporal UI: stack is closed")
	}
	if s.ui != nil && !s.ui.exited() {
		return s.ui, nil
	}
	p, err := startUIServer(s.logger, s.logDir, s.env, s.uiBin, s.home, s.TemporalAddress, s.uiPort, s.uiWrite)
	if err != nil {
		return nil, err
	}
	s.ui = p
	return p, nil
}

// StartTemporal starts the Temporal dev server (after StopTemporal) on the same
// SQLite file and ports, and waits until it serves with the search attributes.
func (s *Stack) StartTemporal(ctx context.Context) error {
	if err := s.launchTemporal(); err != nil {
		return err
	}
	return s.waitTemporal(ctx)
}

// StopTemporal stops the Temporal dev server gracefully and waits until it is
// gone.
func (s *Stack) StopTemporal() error {
	return s.halt(&s.temporal, "temporal", temporalStopGrace)
}

// waitTemporal waits until the frontend answers health checks, the search
// attributes are registered (adding missing ones) and the web UI answers.
func (s *Stack) waitTemporal(ctx context.Context) error {
	s.mu.Lock()
	p := s.temporal
	s.mu.Unlock()
	if p == nil {
		return errors.New("starting temporal: not running")
	}
	// The client is made once the port accepts connections: a gRPC
	// connection that failed while the server booted backs off for seconds.
	var c client.Client
	defer func() {
		if c != nil {
			c.Close()
		}
	}()
	if err := waitReady(ctx, p, temporalReadyTimeout, func(ctx context.Context) error {
		if c == nil {
			conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", s.TemporalAddress)
			if err != nil {
				return err
			}
			conn.Close()
			if c, err = client.NewLazyClient(client.Options{
				HostPort:  s.TemporalAddress,
				Namespace: temporalNamespace,
				Logger:    sdklog.NewStructuredLogger(slog.New(slog.DiscardHandler)),
			}); err != nil {
				return permanent(fmt.Errorf("creating temporal client: %w", err))
			}
		}
		if _, err := c.CheckHealth(ctx, &client.CheckHealthRequest{}); err != nil {
			return err
		}
		if err := ensureSearchAttributes(ctx, s.logger, c.OperatorService()); err != nil {
			return err
		}
		return nil
	}); err != nil {
		return fmt.Errorf("starting temporal: %w", err)
	}
	ui, err := s.ensureUI()
	if err != nil {
		return err
	}
	if err := waitReady(ctx, ui, temporalReadyTimeout, func(ctx context.Context) error {
		return httpOK(ctx, s.TemporalUIURL)
	}); err != nil {
		return fmt.Errorf("starting temporal UI: %w", err)
	}
	s.logger.Info("temporal ready", "address", s.TemporalAddress, "ui", s.TemporalUIURL)
	return nil
}

// ensureSearchAttributes answers nil once every search attribute is a Keyword
// in the namespace, registering the missing ones on the way.
func ensureSearchAttributes(ctx context.Context, logger *slog.Logger, ops operatorservice.OperatorServiceClient) error {
	resp, err := ops.ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: temporalNamespace})
	if err != nil {
		return fmt.Errorf("listing search attributes: %w", err)
	}
	missing := map[string]enumspb.IndexedValueType{}
	for _, name := range SearchAttributes() {
		t, ok := resp.GetCustomAttributes()[name]
		switch {
		case !ok:
			missing[name] = enumspb.INDEXED_VALUE_TYPE_KEYWORD
		case t != enumspb.INDEXED_VALUE_TYPE_KEYWORD:
			return permanent(fmt.Errorf("search attribute %s is %s in namespace %q, want Keyword", name, t, temporalNamespace))
		}
	}
	if len(missing) == 0 {
		return nil
	}
	logger.Info("registering search attributes the database lacks", "names", slices.Sorted(maps.Keys(missing)))
	if _, err := ops.AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{
		Namespace:        temporalNamespace,
		SearchAttributes: missing,
	}); err != nil {
		return fmt.Errorf("adding search attributes: %w", err)
	}
	return errors.New("search attributes added, checking again")
}
