package metrics

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"

	"github.com/slipway-dev/slipway/build"
)

// Webhook delivery outcomes, the values of slipway_webhook_deliveries_total's outcome label.
const (
	// OutcomeStarted: the delivery started a new build.
	OutcomeStarted = "started"
	// OutcomeDuplicate: the build the delivery asks for was already started (a redelivery, a
	// repeated event, GitHub's push and create of one tag).
	OutcomeDuplicate = "duplicate"
	// OutcomeIgnored: verified, but nothing to build (ping, a branch not in the triggers, a
	// deleted ref, another event).
	OutcomeIgnored = "ignored"
	// OutcomeUnauthorized: the signature or token did not verify, or the rule does not exist.
	OutcomeUnauthorized = "unauthorized"
	// OutcomeMalformed: the payload could not be read or parsed.
	OutcomeMalformed = "malformed"
	// OutcomeError: Slipway could not handle it (Temporal or the database down); the provider
	// delivers again.
	OutcomeError = "error"
)

// Gateway is the gateway's instrumentation.
type Gateway struct {
	requests   *prometheus.CounterVec
	seconds    *prometheus.HistogramVec
	deliveries *prometheus.CounterVec
	builds     *prometheus.CounterVec
}

// NewGateway registers the gateway's metrics in reg.
func NewGateway(reg prometheus.Registerer) *Gateway {
	g := &Gateway{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "slipway_http_requests_total",
			Help: "HTTP requests answered, by route (the gin route pattern, or \"unmatched\"), method and status code.",
		}, []string{"route", "method", "code"}),
		seconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "slipway_http_request_seconds",
			Help:    "Time to answer an HTTP request, by route; a followed log counts until it ends.",
			Buckets: durationBuckets,
		}, []string{"route"}),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "slipway_webhook_deliveries_total",
			Help: "Webhook deliveries, by provider and outcome (started, duplicate, ignored, unauthorized, malformed, error).",
		}, []string{"provider", "outcome"}),
		builds: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "slipway_builds_started_total",
			Help: "Builds this gateway started in Temporal (not counting repeats of a started build), by trigger (push, tag, manual).",
		}, []string{"trigger"}),
	}
	reg.MustRegister(g.requests, g.seconds, g.deliveries, g.builds)
	// Known label values are exported at zero, so a rate() has a series from the start.
	for _, o := range []string{OutcomeStarted, OutcomeDuplicate, OutcomeIgnored, OutcomeUnauthorized, OutcomeMalformed, OutcomeError} {
		for _, p := range build.ProviderNames() {
			g.deliveries.WithLabelValues(p, o)
		}
	}
	for _, t := range build.TriggerNames() {
		g.builds.WithLabelValues(t)
	}
	return g
}

// ObserveRequest counts one answered request.
func (g *Gateway) ObserveRequest(route, method string, code int, took time.Duration) {
	g.requests.WithLabelValues(route, method, strconv.Itoa(code)).Inc()
	g.seconds.WithLabelValues(route).Observe(took.Seconds())
}

// ObserveDelivery counts one webhook delivery.
func (g *Gateway) ObserveDelivery(provider, outcome string) {
	g.deliveries.WithLabelValues(provider, outcome).Inc()
}

// Starts is what the Temporal client saw of the workflow starts made under one context: how
// many started a new execution and how many found one already there.
type Starts struct {
	mu        sync.Mutex
	started   int
	duplicate int
}

// Counts returns the new and the already started executions seen so far.
func (s *Starts) Counts() (started, duplicate int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.started, s.duplicate
}

// Add records one start: new or found already there.
func (s *Starts) Add(isNew bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if isNew {
		s.started++
	} else {
		s.duplicate++
	}
}

type startsKey struct{}

// AddDuplicate records, in the Starts of ctx if it has one, a start found already made
// without asking Temporal (the gateway's own record of deliveries answered).
func AddDuplicate(ctx context.Context) {
	if s, _ := ctx.Value(startsKey{}).(*Starts); s != nil {
		s.Add(false)
	}
}

// WithStarts returns a context under which StartInterceptor records the starts it sees.
func WithStarts(ctx context.Context) (context.Context, *Starts) {
	s := &Starts{}
	return context.WithValue(ctx, startsKey{}, s), s
}

// StartInterceptor is a gRPC client interceptor for the gateway's Temporal client
// (client.ConnectionOptions.DialOptions with grpc.WithChainUnaryInterceptor). It reads the
// server's answer to StartWorkflowExecution, which alone knows whether a start with the
// USE_EXISTING conflict policy made a new execution: it counts slipway_builds_started_total by
// the start's BuildTrigger search attribute, and tells the Starts of the call's context.
func (g *Gateway) StartInterceptor() grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		err := invoker(ctx, method, req, reply, cc, opts...)
		start, ok := req.(*workflowservice.StartWorkflowExecutionRequest)
		if !ok {
			return err
		}
		s, _ := ctx.Value(startsKey{}).(*Starts)
		switch {
		case err == nil && reply.(*workflowservice.StartWorkflowExecutionResponse).GetStarted():
			g.builds.WithLabelValues(trigger(start.GetSearchAttributes())).Inc()
			if s != nil {
				s.Add(true)
			}
		case err == nil, alreadyStarted(err):
			if s != nil {
				s.Add(false)
			}
		}
		return err
	}
}

// alreadyStarted tells whether err is the server's answer that the execution exists (a finished
// build under the REJECT_DUPLICATE reuse policy). The interceptor runs inside the SDK's error
// conversion, so err is still a gRPC status.
func alreadyStarted(err error) bool {
	var dup *serviceerror.WorkflowExecutionAlreadyStarted
	return errors.As(err, &dup) || errors.As(serviceerror.FromStatus(status.Convert(err)), &dup)
}

// trigger reads the BuildTrigger Keyword of a start's search attributes, "unknown" without it.
func trigger(sa *commonpb.SearchAttributes) string {
	p := sa.GetIndexedFields()[build.AttrTrigger.GetName()]
	var v string
	if p == nil || json.Unmarshal(p.GetData(), &v) != nil {
		return "unknown"
	}
	if slices.Contains(build.TriggerNames(), v) {
		return v
	}
	// A label value from the request is bounded, so a caller cannot blow up the series.
	return "other"
}
