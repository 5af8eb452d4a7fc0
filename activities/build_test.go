package activities

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"go.temporal.io/sdk/temporal"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/slipway-dev/slipway/build"
)

func TestClassifyBuild(t *testing.T) {
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name string
		ctx  context.Context
		err  error
		// retryable says the error must reach the workflow as one its retry policy retries;
		// otherwise it is a non-retryable build.ErrTypeBuildFailed.
		retryable bool
	}{
		{"buildkitd unreachable", nil, status.Error(codes.Unavailable, "connection refused"), true},
		{"solve canceled by buildkitd", nil, status.Error(codes.Canceled, "canceled"), true},
		{"deadline of a call", nil, status.Error(codes.DeadlineExceeded, "deadline"), true},
		{"aborted", nil, status.Error(codes.Aborted, "aborted"), true},
		{"out of resources", nil, status.Error(codes.ResourceExhausted, "too many"), true},
		{"gRPC code under a wrapper", nil, fmt.Errorf("solve: %w", status.Error(codes.Unavailable, "gone")), true},
		{"context error of the solve", nil, fmt.Errorf("solve: %w", context.DeadlineExceeded), true},
		{"failing RUN step", nil, errors.New(`process "/bin/sh -c exit 3" did not complete successfully: exit code: 3`), false},
		{"bad Dockerfile", nil, status.Error(codes.InvalidArgument, "dockerfile parse error line 1: unknown instruction: FORM"), false},
		{"unknown gRPC error", nil, status.Error(codes.Unknown, "failed to solve"), false},
		{"activity canceled", canceled, errors.New("failing RUN step"), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := tt.ctx
			if ctx == nil {
				ctx = context.Background()
			}
			got := classifyBuild(ctx, tt.err)
			var appErr *temporal.ApplicationError
			nonRetryable := errors.As(got, &appErr) && appErr.NonRetryable()
			if tt.retryable {
				if got == nil || nonRetryable {
					t.Fatalf("classifyBuild(%v) = %v, want a retryable error", tt.err, got)
				}
				if ctx.Err() != nil && !errors.Is(got, ctx.Err()) {
					t.Fatalf("classifyBuild under a canceled activity = %v, want the context's error", got)
				}
				return
			}
			if !nonRetryable || appErr.Type() != build.ErrTypeBuildFailed {
				t.Fatalf("classifyBuild(%v) = %v, want a non-retryable %s", tt.err, got, build.ErrTypeBuildFailed)
			}
		})
	}
}
