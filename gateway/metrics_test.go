package gateway

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.temporal.io/sdk/client"
	"google.golang.org/grpc"

	"github.com/slipway-dev/slipway/metrics"
)

// metricsHarness is a gateway of its own beside h's, on the same database and Temporal, wired as
// main wires it: its Temporal client carries the start interceptor, which alone can tell a new
// build from a repeated one.
func metricsHarness(t *testing.T) *harness {
	t.Helper()
	h := devStack(t)
	reg := metrics.NewRegistry()
	gm := metrics.NewGateway(reg)
	opts, err := h.cfg.TemporalClientOptions(nil)
	if err != nil {
		t.Fatal(err)
	}
	opts.ConnectionOptions.DialOptions = append(opts.ConnectionOptions.DialOptions,
		grpc.WithChainUnaryInterceptor(gm.StartInterceptor()))
	opts.MetricsHandler, _, err = metrics.TemporalHandler(reg)
	if err != nil {
		t.Fatal(err)
	}
	tc, err := client.Dial(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tc.Close)
	buf := &syncBuffer{}
	a := New(Deps{Config: h.cfg, Store: h.store, Temporal: tc, Logs: h.logs,
		Logger: slog.New(slog.NewTextHandler(buf, nil)), Registry: reg, Metrics: gm})
	srv := httptest.NewServer(a.Handler())
	t.Cleanup(srv.Close)
	mh := &harness{cfg: h.cfg, store: h.store, logs: h.logs, temporal: h.temporal, api: a, srv: srv, logBuf: buf,
		admin: h.admin, owner: h.owner, reader: h.reader, writer: h.writer, outsider: h.outsider, stranger: h.stranger}
	mh.tokenList = append(mh.tokenList, h.admin, h.owner, h.reader, h.writer, h.outsider, h.stranger)
	t.Cleanup(func() {
		if leak := mh.leakIn(buf.String()); leak != "" {
			t.Errorf("the gateway's log holds %s", leak)
		}
	})
	return mh
}

// scrape reads GET /metrics as Prometheus would, failing t when it is not valid exposition text.
func (hs *harness) scrape(t *testing.T) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := hs.srv.Client().Get(hs.srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s", resp.Status)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("GET /metrics Content-Type %q", ct)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("GET /metrics is not Prometheus text: %v", err)
	}
	return fams
}

// value finds the sample of family name whose labels are exactly labels ("k=v" pairs) and
// returns a counter's value or a histogram's count; ok is false without such a sample.
func value(fams map[string]*dto.MetricFamily, name string, labels ...string) (float64, bool) {
	sort.Strings(labels)
	want := strings.Join(labels, ",")
	for _, m := range fams[name].GetMetric() {
		var got []string
		for _, l := range m.GetLabel() {
			got = append(got, l.GetName()+"="+l.GetValue())
		}
		sort.Strings(got)
		if strings.Join(got, ",") != want {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue(), true
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount()), true
		case m.Gauge != nil:
			return m.GetGauge().GetValue(), true
		}
	}
	return 0, false
}

func TestMetrics(t *testing.T) {
	mh := metricsHarness(t)
	tm := mh.newTeam(t, "metrics")
	rule := mh.createRule(t, tm, githubRule())
	mh.buildNow(t, tm, rule.ID)

	commit := randomCommit()
	push := fixture(t, "github/push_branch.json", setCommit(commit))
	deliveries := []struct {
		what, ruleID, event string
		body                []byte
		signature           string
		wantCode            int
	}{
		{"push of main", rule.ID, "push", push, sign(rule.Secret, push), 202},
		{"the same push again", rule.ID, "push", push, sign(rule.Secret, push), 202},
		{"a bad signature", rule.ID, "push", push, sign("not-the-secret", push), 401},
		{"an unknown rule", "r-nosuchrule", "push", push, sign(rule.Secret, push), 404},
		{"a body that is not JSON", rule.ID, "push", []byte("{nope"), sign(rule.Secret, []byte("{nope")), 400},
	}
	ping := fixture(t, "github/ping.json", nil)
	feature := fixture(t, "github/push_branch.json", func(m map[string]any) { m["ref"] = "refs/heads/feature-x" })
	tag := fixture(t, "github/push_tag.json", func(m map[string]any) { m["ref"] = "refs/tags/v-" + randomHex(4) })
	deliveries = append(deliveries, []struct {
		what, ruleID, event string
		body                []byte
		signature           string
		wantCode            int
	}{
		{"a ping", rule.ID, "ping", ping, sign(rule.Secret, ping), 200},
		{"a push of a branch not in the triggers", rule.ID, "push", feature, sign(rule.Secret, feature), 202},
		{"a new tag", rule.ID, "push", tag, sign(rule.Secret, tag), 202},
	}...)
	for _, d := range deliveries {
		r := mh.deliverGitHub(t, d.ruleID, d.event, d.body, d.signature, randomHex(8))
		expect(t, r, d.wantCode, d.what)
	}
	expect(t, mh.do(t, "GET", "/readyz", "", nil), 200, "readyz")
	expect(t, mh.do(t, "GET", "/no/such/endpoint", "", nil), 404, "an unknown path")

	fams := mh.scrape(t)
	for _, tc := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"slipway_builds_started_total", []string{"trigger=manual"}, 1},
		{"slipway_builds_started_total", []string{"trigger=push"}, 1},
		{"slipway_builds_started_total", []string{"trigger=tag"}, 1},
		{"slipway_webhook_deliveries_total", []string{"provider=github", "outcome=started"}, 2},
		{"slipway_webhook_deliveries_total", []string{"provider=github", "outcome=duplicate"}, 1},
		{"slipway_webhook_deliveries_total", []string{"provider=github", "outcome=unauthorized"}, 2},
		{"slipway_webhook_deliveries_total", []string{"provider=github", "outcome=malformed"}, 1},
		{"slipway_webhook_deliveries_total", []string{"provider=github", "outcome=ignored"}, 2},
		{"slipway_webhook_deliveries_total", []string{"provider=github", "outcome=error"}, 0},
		{"slipway_webhook_deliveries_total", []string{"provider=gitlab", "outcome=started"}, 0},
		{"slipway_http_requests_total", []string{"route=/webhooks/github/:rule_id", "method=POST", "code=202"}, 4},
		{"slipway_http_requests_total", []string{"route=/webhooks/github/:rule_id", "method=POST", "code=401"}, 1},
		{"slipway_http_requests_total", []string{"route=/api/v1/namespaces/:ns/repositories/:repo/build-rules/:id/builds", "method=POST", "code=202"}, 1},
		{"slipway_http_requests_total", []string{"route=/readyz", "method=GET", "code=200"}, 1},
		{"slipway_http_requests_total", []string{"route=unmatched", "method=GET", "code=404"}, 1},
		{"slipway_http_request_seconds", []string{"route=/webhooks/github/:rule_id"}, 8},
		{"slipway_http_request_seconds", []string{"route=/readyz"}, 1},
	} {
		got, ok := value(fams, tc.name, tc.labels...)
		if !ok || got != tc.want {
			t.Errorf("%s{%s} = %v (found: %v), want %v", tc.name, strings.Join(tc.labels, ","), got, ok, tc.want)
		}
	}
	// The Temporal client's own metrics are in the same registry.
	var temporal []string
	for name := range fams {
		if strings.HasPrefix(name, "temporal_request") {
			temporal = append(temporal, name)
		}
	}
	if len(temporal) == 0 {
		t.Errorf("no temporal_request* metric of the SDK on /metrics")
	}
	if _, ok := fams["go_goroutines"]; !ok {
		t.Errorf("no Go runtime metrics on /metrics")
	}
}

func TestDeliveryOutcome(t *testing.T) {
	started := func(n, dup int) *metrics.Starts {
		s := &metrics.Starts{}
		for i := 0; i < n; i++ {
			s.Add(true)
		}
		for i := 0; i < dup; i++ {
			s.Add(false)
		}
		return s
	}
	for _, tc := range []struct {
		code   int
		starts *metrics.Starts
		want   string
	}{
		{202, started(1, 0), metrics.OutcomeStarted},
		{202, started(0, 1), metrics.OutcomeDuplicate},
		{202, started(0, 0), metrics.OutcomeIgnored},
		{200, started(0, 0), metrics.OutcomeIgnored},
		{401, started(0, 0), metrics.OutcomeUnauthorized},
		{404, started(0, 0), metrics.OutcomeUnauthorized},
		{400, started(0, 0), metrics.OutcomeMalformed},
		{413, started(0, 0), metrics.OutcomeMalformed},
		{500, started(0, 0), metrics.OutcomeError},
		{503, started(0, 0), metrics.OutcomeError},
	} {
		if got := deliveryOutcome(tc.code, tc.starts); got != tc.want {
			t.Errorf("deliveryOutcome(%d) = %s, want %s", tc.code, got, tc.want)
		}
	}
	for route, want := range map[string]string{"/webhooks/github/:rule_id": "github", "/webhooks/gitlab/:rule_id": "gitlab", "/healthz": "", "": ""} {
		if got, _ := webhookProvider(route); got != want {
			t.Errorf("webhookProvider(%q) = %q, want %q", route, got, want)
		}
	}
}
