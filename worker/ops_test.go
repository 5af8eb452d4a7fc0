package worker

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/metrics"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestServeOps(t *testing.T) {
	addr := freeAddr(t)
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	stop := serveOps(addr, metrics.NewRegistry(), logger,
		metrics.Check{Name: "temporal", Probe: func(context.Context) error { return nil }},
		metrics.Check{Name: "buildkitd", Probe: func(context.Context) error { return errors.New("buildkitd gone") }})
	defer stop()

	if code, _ := get(t, "http://"+addr+"/healthz"); code != 200 {
		t.Errorf("/healthz = %d, want 200", code)
	}
	if code, body := get(t, "http://"+addr+"/readyz"); code != 503 || !strings.Contains(body, `"buildkitd":"unavailable"`) || strings.Contains(body, "buildkitd gone") {
		t.Errorf("/readyz = %d %s, want 503 naming buildkitd without its error text", code, body)
	}
	if !strings.Contains(logs.String(), "buildkitd gone") {
		t.Errorf("the failed check's error was not logged: %s", logs.String())
	}
	if code, body := get(t, "http://"+addr+"/metrics"); code != 200 || !strings.Contains(body, "go_goroutines") {
		t.Errorf("/metrics = %d without go_goroutines", code)
	}

	// A second worker on the same host finds the address taken and builds on without it.
	var second bytes.Buffer
	stop2 := serveOps(addr, metrics.NewRegistry(), slog.New(slog.NewTextHandler(&second, nil)))
	stop2()
	if !strings.Contains(second.String(), "metrics and health endpoints are off") {
		t.Errorf("a taken address was not logged: %s", second.String())
	}
	// "off" serves nothing.
	serveOps("", metrics.NewRegistry(), logger)()
}
