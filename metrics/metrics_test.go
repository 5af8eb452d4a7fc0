package metrics

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/worker"
)

func TestOpsMux(t *testing.T) {
	buildkitDown := errors.New("dial unix /run/buildkit/buildkitd.sock: connect: no such file or directory")
	for _, tc := range []struct {
		name      string
		buildkit  error
		wantCode  int
		wantReady map[string]string
	}{
		{"all answer", nil, 200, map[string]string{"temporal": "ok", "buildkitd": "ok"}},
		{"buildkitd down", buildkitDown, 503, map[string]string{"temporal": "ok", "buildkitd": Unavailable}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := NewRegistry()
			var logs bytes.Buffer
			mux := OpsMux(reg, slog.New(slog.NewTextHandler(&logs, nil)),
				Check{Name: "temporal", Probe: func(context.Context) error { return nil }},
				Check{Name: "buildkitd", Probe: func(context.Context) error { return tc.buildkit }})
			get := func(path string) *httptest.ResponseRecorder {
				rec := httptest.NewRecorder()
				mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
				return rec
			}
			if rec := get("/healthz"); rec.Code != 200 {
				t.Errorf("/healthz = %d, want 200 whatever the dependencies", rec.Code)
			}
			rec := get("/readyz")
			if rec.Code != tc.wantCode {
				t.Errorf("/readyz = %d, want %d", rec.Code, tc.wantCode)
			}
			var got map[string]string
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
				t.Fatalf("/readyz body %q: %v", rec.Body, err)
			}
			for k, v := range tc.wantReady {
				if got[k] != v {
					t.Errorf("/readyz %s = %q, want %q", k, got[k], v)
				}
			}
			if strings.Contains(rec.Body.String(), "buildkitd.sock") {
				t.Errorf("/readyz shows the error text: %s", rec.Body)
			}
			if tc.buildkit != nil && !strings.Contains(logs.String(), "buildkitd.sock") {
				t.Errorf("the error was not logged: %s", logs.String())
			}
			if rec := get("/metrics"); rec.Code != 200 || !strings.Contains(rec.Body.String(), "go_goroutines") {
				t.Errorf("/metrics = %d without go_goroutines", rec.Code)
			}
		})
	}
}

func TestReadyTimesOut(t *testing.T) {
	start := time.Now()
	var logs bytes.Buffer
	res, ok := Ready(context.Background(), slog.New(slog.NewTextHandler(&logs, nil)), []Check{{Name: "hung", Probe: func(ctx context.Context) error {
		<-ctx.Done()
		return ctx.Err()
	}}})
	if ok || res["hung"] != Unavailable || !strings.Contains(logs.String(), "deadline") {
		t.Errorf("Ready = %v, %v (log %q); want the hung check failed on its deadline, logged", res, ok, logs.String())
	}
	if d := time.Since(start); d > 2*checkTimeout {
		t.Errorf("Ready took %s", d)
	}
}

// family gathers reg and returns the family called name.
func family(t *testing.T, reg *prometheus.Registry, name string) *dto.MetricFamily {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() == name {
			return f
		}
	}
	var names []string
	for _, f := range fams {
		names = append(names, f.GetName())
	}
	t.Fatalf("no %s among %v", name, names)
	return nil
}

func labels(m *dto.Metric) map[string]string {
	out := map[string]string{}
	for _, l := range m.GetLabel() {
		out[l.GetName()] = l.GetValue()
	}
	return out
}

func TestTemporalHandler(t *testing.T) {
	reg := NewRegistry()
	h, stop, err := TemporalHandler(reg)
	if err != nil {
		t.Fatal(err)
	}
	defer stop(context.Background())
	tagged := h.WithTags(map[string]string{"activity_type": "Build", "task_queue": "docker-builder"})
	tagged.Timer("temporal_activity_execution_latency").Record(90 * time.Second)
	tagged.Counter("temporal_activity_execution_failed").Inc(1)

	f := family(t, reg, "temporal_activity_execution_latency_seconds")
	if f.GetType() != dto.MetricType_HISTOGRAM || len(f.GetMetric()) != 1 {
		t.Fatalf("latency family: %v", f)
	}
	m := f.GetMetric()[0]
	if l := labels(m); l["activity_type"] != "Build" || l["task_queue"] != "docker-builder" {
		t.Errorf("labels %v", l)
	}
	hist := m.GetHistogram()
	if hist.GetSampleCount() != 1 || hist.GetSampleSum() != 90 {
		t.Errorf("count %d sum %v, want 1 and 90 (seconds)", hist.GetSampleCount(), hist.GetSampleSum())
	}
	// 90 s lands in the 120 s bucket, not past the last bound as with OpenTelemetry's defaults.
	for _, b := range hist.GetBucket() {
		if b.GetUpperBound() == 60 && b.GetCumulativeCount() != 0 || b.GetUpperBound() == 120 && b.GetCumulativeCount() != 1 {
			t.Errorf("bucket le=%v holds %d", b.GetUpperBound(), b.GetCumulativeCount())
		}
	}
	c := family(t, reg, "temporal_activity_execution_failed_total")
	if c.GetType() != dto.MetricType_COUNTER || c.GetMetric()[0].GetCounter().GetValue() != 1 {
		t.Errorf("failed counter: %v", c)
	}
}

func TestBuildSteps(t *testing.T) {
	reg := prometheus.NewRegistry()
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.SetWorkerOptions(worker.Options{Interceptors: []interceptor.WorkerInterceptor{NewBuildSteps(reg)}})
	env.RegisterActivityWithOptions(func(context.Context) error { return nil }, activity.RegisterOptions{Name: "Clone"})
	env.RegisterActivityWithOptions(func(context.Context) error { return errors.New("registry down") }, activity.RegisterOptions{Name: "Push"})
	if _, err := env.ExecuteActivity("Clone"); err != nil {
		t.Fatal(err)
	}
	if _, err := env.ExecuteActivity("Push"); err == nil {
		t.Fatal("Push did not fail")
	}
	got := map[string]uint64{}
	for _, m := range family(t, reg, "slipway_build_step_seconds").GetMetric() {
		l := labels(m)
		got[l["step"]+"/"+l["outcome"]] = m.GetHistogram().GetSampleCount()
	}
	want := map[string]uint64{"Clone/ok": 1, "Push/error": 1}
	if len(got) != len(want) || got["Clone/ok"] != 1 || got["Push/error"] != 1 {
		t.Errorf("slipway_build_step_seconds samples %v, want %v", got, want)
	}
}
