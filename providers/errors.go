package providers

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The kinds of failure callers act on. Errors from a Client wrap one of them
// (test with errors.Is) with what was being done, and often an *APIError with
// the provider's own words.
var (
	// ErrUnauthorized means the provider refused the token (401): it was
	// revoked, expired or never valid. The account must be connected again.
	ErrUnauthorized = errors.New("token is invalid, expired or revoked")
	// ErrForbidden means the token is valid but may not do this (403), such as
	// creating a webhook without admin rights on the repository.
	ErrForbidden = errors.New("token lacks the permission")
	// ErrNotFound means the provider has no such thing, or will not show it to
	// this token (404): GitHub and GitLab answer 404, not 403, for a private
	// repository the token cannot see.
	ErrNotFound = errors.New("not found or not visible to the token")
	// ErrRateLimited means the provider asked us to slow down for longer than
	// the client would wait. Errors that wrap it also hold a *RateLimitError.
	ErrRateLimited = errors.New("rate limited by the provider")
)

// RateLimitError tells how long the provider asked to wait. It wraps
// ErrRateLimited. A gateway answering a user may pass RetryAfter on as a
// Retry-After header; a worker may sleep it or let its activity retry.
type RateLimitError struct {
	// RetryAfter is how long the provider asked to wait, from Retry-After or
	// its rate limit's reset time.
	RetryAfter time.Duration
}

// Error says for how long.
func (e *RateLimitError) Error() string {
	return fmt.Sprintf("%v: retry after %s", ErrRateLimited, e.RetryAfter.Round(time.Second))
}

// Unwrap makes errors.Is(err, ErrRateLimited) hold.
func (e *RateLimitError) Unwrap() error { return ErrRateLimited }

// APIError is a provider's answer with an error status that is not a rate
// limit. It wraps ErrUnauthorized, ErrForbidden or ErrNotFound for 401, 403
// and 404.
type APIError struct {
	// Provider is GitHub or GitLab.
	Provider string
	// StatusCode is the HTTP status.
	StatusCode int
	// Message is the provider's message, with any validation details, such as
	// "Validation Failed: Hook already exists on this repository".
	Message string
}

// Error gives the kind of failure first, then the provider's words.
func (e *APIError) Error() string {
	detail := fmt.Sprintf("%s answered %d", e.Provider, e.StatusCode)
	if e.Message != "" {
		detail += ": " + e.Message
	}
	if kind := e.Unwrap(); kind != nil {
		return kind.Error() + " (" + detail + ")"
	}
	return detail
}

// Unwrap returns the sentinel for the status, or nil.
func (e *APIError) Unwrap() error {
	switch e.StatusCode {
	case http.StatusUnauthorized:
		return ErrUnauthorized
	case http.StatusForbidden:
		return ErrForbidden
	case http.StatusNotFound:
		return ErrNotFound
	}
	return nil
}

// maxMessage bounds the provider's words in an error, which end up in logs
// and API answers.
const maxMessage = 300

func newAPIError(provider string, code int, msg, token string) *APIError {
	msg = strings.Join(strings.Fields(strings.ReplaceAll(msg, token, redacted)), " ")
	if msg == "" {
		msg = http.StatusText(code)
	}
	if r := []rune(msg); len(r) > maxMessage {
		msg = string(r[:maxMessage]) + "…"
	}
	return &APIError{Provider: provider, StatusCode: code, Message: msg}
}

func statusOf(err error) int {
	var apiErr *APIError
	if errors.As(err, &apiErr) {
		return apiErr.StatusCode
	}
	return 0
}

// redacted stands in for the token wherever a provider or a transport might
// have echoed it.
const redacted = "[REDACTED]"

// scrub is the last thing every Client method does to an error. Tokens travel
// only in headers, so they should never reach a message; if one does anyway
// (a proxy or a provider echoing a request), the message is rewritten and
// only the classification survives, since the wrapped errors would still
// print the token.
func scrub(err error, token string) error {
	if err == nil || token == "" || !strings.Contains(err.Error(), token) {
		return err
	}
	return &scrubbedError{
		msg:   strings.ReplaceAll(err.Error(), token, redacted),
		kinds: kindsOf(err),
	}
}

type scrubbedError struct {
	msg   string
	kinds []error
}

// Error is the message with the token replaced.
func (e *scrubbedError) Error() string { return e.msg }

// Unwrap gives the kinds callers test for, nothing that prints.
func (e *scrubbedError) Unwrap() []error { return e.kinds }

// kindsOf keeps what callers test for and nothing that prints.
func kindsOf(err error) []error {
	var kinds []error
	var rl *RateLimitError
	if errors.As(err, &rl) {
		kinds = append(kinds, &RateLimitError{RetryAfter: rl.RetryAfter})
	}
	for _, k := range []error{ErrUnauthorized, ErrForbidden, ErrNotFound, ErrRateLimited, context.Canceled, context.DeadlineExceeded} {
		if errors.Is(err, k) {
			kinds = append(kinds, k)
		}
	}
	return kinds
}

// retryAfter reads a Retry-After header: delay-seconds or an HTTP date.
func retryAfter(h http.Header, now time.Time) (time.Duration, bool) {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil && secs >= 0 {
		return time.Duration(secs) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(0, t.Sub(now)), true
	}
	return 0, false
}

// resetAfter reads a reset time given as Unix seconds, such as GitHub's
// X-RateLimit-Reset or GitLab's RateLimit-Reset.
func resetAfter(h http.Header, name string, now time.Time) (time.Duration, bool) {
	v := strings.TrimSpace(h.Get(name))
	if v == "" {
		return 0, false
	}
	secs, err := strconv.ParseInt(v, 10, 64)
	if err != nil || secs <= 0 {
		return 0, false
	}
	return untilReset(time.Unix(secs, 0), now), true
}

// untilReset is the wait until a provider's reset time, with a second to
// spare for the clocks' skew and the reset's whole-second precision (as
// go-github itself does when it sleeps for a reset).
func untilReset(reset, now time.Time) time.Duration {
	return max(0, reset.Sub(now)) + time.Second
}
