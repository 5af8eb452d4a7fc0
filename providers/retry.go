package providers

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// retrier runs one provider call again when the provider asks for patience.
// Every call this package makes may be repeated: listings and deletes are
// idempotent, EnsureHook finds the hook a lost answer had created, and a
// repeated status replaces itself.
type retrier struct {
	maxAttempts int
	maxWait     time.Duration
}

// unavailableBackoff is the wait before retrying a 502, 503 or 504, times the
// attempt number: those come from a provider's load balancers and pass within
// seconds or not at all.
const unavailableBackoff = 500 * time.Millisecond

// do runs call, which returns errors already classified (a *RateLimitError,
// an *APIError or a transport error), until it succeeds, fails in a way a
// retry cannot fix, or the attempts or the allowed wait run out. The last
// error is returned as it is, so a rate limit that outlasts the client's
// patience comes back as the provider's *RateLimitError with its RetryAfter.
func (r retrier) do(ctx context.Context, call func() error) error {
	for attempt := 1; ; attempt++ {
		err := call()
		if err == nil {
			return nil
		}
		wait, ok := retryWait(err, attempt)
		if !ok || attempt >= r.maxAttempts || wait > r.maxWait {
			return err
		}
		if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < wait {
			return err
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return fmt.Errorf("waiting %s to retry: %w", wait, errors.Join(ctx.Err(), err))
		case <-timer.C:
		}
	}
}

func retryWait(err error, attempt int) (time.Duration, bool) {
	var rl *RateLimitError
	if errors.As(err, &rl) {
		return rl.RetryAfter, true
	}
	switch statusOf(err) {
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return time.Duration(attempt) * unavailableBackoff, true
	}
	return 0, false
}
