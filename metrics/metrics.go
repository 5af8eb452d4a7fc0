// Package metrics is Slipway's Prometheus instrumentation: the registry each process serves on
// /metrics, the Temporal SDK's metrics handler exported into it, the gateway's HTTP, webhook and
// build-start counters, the worker's build step histogram, and the /healthz and /readyz probes.
//
// Every constructor takes the registry it registers into; nothing uses Prometheus's global
// default registry, so tests and several servers in one process never collide.
package metrics

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// NewRegistry returns an empty registry holding the Go runtime and process collectors, which
// every Slipway process exports.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// Handler serves reg in the Prometheus text format.
func Handler(reg *prometheus.Registry) http.Handler {
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})
}

// Check is one dependency a readiness probe asks.
type Check struct {
	// Name is the key of the check in the probe's JSON answer ("temporal", "buildkitd").
	Name string
	// Probe answers nil when the dependency can be used now.
	Probe func(context.Context) error
}

// checkTimeout bounds each probe, so a hung dependency gives a 503 rather than a hung kubelet.
const checkTimeout = 5 * time.Second

// Unavailable is what a probe answer says of a part that is down. The error itself goes to
// the log: probes are unauthenticated, and an error's text can name hosts, users and paths.
const Unavailable = "unavailable"

// Ready runs every check at once and reports {"name": "ok" | "unavailable"}, all ok or not;
// the error of each failed check is given to logger.
func Ready(ctx context.Context, logger *slog.Logger, checks []Check) (map[string]string, bool) {
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	out := make(map[string]string, len(checks))
	var mu sync.Mutex
	var wg sync.WaitGroup
	ok := true
	for _, c := range checks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := c.Probe(ctx)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				logger.Warn("readiness check failed", "check", c.Name, "error", err)
				out[c.Name] = Unavailable
				ok = false
				return
			}
			out[c.Name] = "ok"
		}()
	}
	wg.Wait()
	return out, ok
}

// ReadyHandler answers 200 with every check "ok", else 503 naming what failed (and logging
// why).
func ReadyHandler(logger *slog.Logger, checks ...Check) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		res, ok := Ready(r.Context(), logger, checks)
		code := http.StatusOK
		if !ok {
			code = http.StatusServiceUnavailable
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		json.NewEncoder(w).Encode(res)
	})
}

// OpsMux is what a process without an HTTP API of its own (the worker) serves on its metrics
// address: /metrics, /healthz (the process is alive: always 200) and /readyz (its dependencies
// answer).
func OpsMux(reg *prometheus.Registry, logger *slog.Logger, checks ...Check) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", Handler(reg))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"status":"ok"}` + "\n"))
	})
	mux.Handle("GET /readyz", ReadyHandler(logger, checks...))
	return mux
}
