package metrics

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/temporal"
)

// BuildSteps times every build step (activity) a worker runs into
// slipway_build_step_seconds{step, outcome}: step is the activity type (Clone, Build, Push,
// Cleanup, SetCommitStatus; ResolveDockerfile and RenderTag for builds started before the clone
// did the resolve step and the workflow rendered the tags), outcome is ok, error or canceled. Temporal's
// own temporal_activity_execution_latency_seconds has the same times without the outcome.
type BuildSteps struct {
	interceptor.WorkerInterceptorBase
	seconds *prometheus.HistogramVec
}

// NewBuildSteps registers slipway_build_step_seconds in reg. Pass the result in
// worker.Options.Interceptors.
func NewBuildSteps(reg prometheus.Registerer) *BuildSteps {
	s := &BuildSteps{seconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "slipway_build_step_seconds",
		Help:    "Time one attempt of a build step took on this worker, by step and outcome.",
		Buckets: durationBuckets,
	}, []string{"step", "outcome"})}
	reg.MustRegister(s.seconds)
	return s
}

// InterceptActivity wraps each activity this worker runs.
func (s *BuildSteps) InterceptActivity(ctx context.Context, next interceptor.ActivityInboundInterceptor) interceptor.ActivityInboundInterceptor {
	return &stepTimer{ActivityInboundInterceptorBase: interceptor.ActivityInboundInterceptorBase{Next: next}, seconds: s.seconds}
}

type stepTimer struct {
	interceptor.ActivityInboundInterceptorBase
	seconds *prometheus.HistogramVec
}

func (t *stepTimer) ExecuteActivity(ctx context.Context, in *interceptor.ExecuteActivityInput) (any, error) {
	step := activity.GetInfo(ctx).ActivityType.Name
	// The SDK's session activities last as long as a session, not a step.
	if strings.HasPrefix(step, "internalSession") {
		return t.Next.ExecuteActivity(ctx, in)
	}
	start := time.Now()
	res, err := t.Next.ExecuteActivity(ctx, in)
	t.seconds.WithLabelValues(step, outcome(ctx, err)).Observe(time.Since(start).Seconds())
	return res, err
}

func outcome(ctx context.Context, err error) string {
	switch {
	case err == nil:
		return "ok"
	case temporal.IsCanceledError(err), errors.Is(err, context.Canceled), ctx.Err() != nil:
		return "canceled"
	default:
		return "error"
	}
}
