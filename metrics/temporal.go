package metrics

import (
	"context"
	"fmt"
	"google.golang.org/grpc"

	"github.com/prometheus/client_golang/prometheus"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.temporal.io/sdk/client"
	temporalotel "go.temporal.io/sdk/contrib/opentelemetry"
)

// durationBuckets are the bucket bounds, in seconds, of every duration histogram: from a
// millisecond (a webhook answer, a poll) to an hour (a long image build).
var durationBuckets = []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600}

// TemporalHandler returns the Temporal SDK metrics handler for client.Options.MetricsHandler,
// exporting into reg: temporal_request_*, temporal_workflow_task_*, and per activity type
// temporal_activity_execution_latency_seconds, temporal_activity_schedule_to_start_latency_seconds
// and temporal_activity_execution_failed_total. The returned function flushes and stops the
// meter provider.
func TemporalHandler(reg prometheus.Registerer) (client.MetricsHandler, func(context.Context) error, error) {
	exp, err := otelprom.New(otelprom.WithRegisterer(reg), otelprom.WithoutScopeInfo(), otelprom.WithoutTargetInfo())
	if err != nil {
		return nil, nil, fmt.Errorf("creating the prometheus exporter: %w", err)
	}
	// The SDK's timers are histograms in seconds; OpenTelemetry's default buckets are meant
	// for milliseconds and would put every build in the last one.
	secondsView := sdkmetric.NewView(
		sdkmetric.Instrument{Kind: sdkmetric.InstrumentKindHistogram, Unit: "s"},
		sdkmetric.Stream{Aggregation: sdkmetric.AggregationExplicitBucketHistogram{Boundaries: durationBuckets}},
	)
	provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp), sdkmetric.WithView(secondsView))
	h := temporalotel.NewMetricsHandler(temporalotel.MetricsHandlerOptions{
		Meter: provider.Meter("temporal-sdk-go"),
		// Counters become Prometheus counters (_total) rather than gauges.
		UseMonotonicCounters: true,
		// A metric the meter refuses must not take the worker down.
		OnError: func(error) {},
	})
	return h, provider.Shutdown, nil
}

// DialTemporal connects to Temporal with opts, the SDK's metrics going into reg and the given
// interceptors on every call. close closes the client, then flushes and stops the metrics.
func DialTemporal(ctx context.Context, opts client.Options, reg prometheus.Registerer, interceptors ...grpc.UnaryClientInterceptor) (c client.Client, close func(), err error) {
	var stopMeter func(context.Context) error
	opts.MetricsHandler, stopMeter, err = TemporalHandler(reg)
	if err != nil {
		return nil, nil, err
	}
	if len(interceptors) > 0 {
		opts.ConnectionOptions.DialOptions = append(opts.ConnectionOptions.DialOptions,
			grpc.WithChainUnaryInterceptor(interceptors...))
	}
	c, err = client.DialContext(ctx, opts)
	if err != nil {
		stopMeter(context.Background())
		return nil, nil, fmt.Errorf("connecting to temporal at %s: %w", opts.HostPort, err)
	}
	return c, func() { c.Close(); stopMeter(context.Background()) }, nil
}
