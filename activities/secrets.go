package activities

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"

	"github.com/moby/buildkit/session"
	"github.com/moby/buildkit/session/secrets/secretsprovider"
	"go.temporal.io/sdk/temporal"

	"github.com/slipway-dev/slipway/build"
)

// Secrets reads the values of a namespace's build secrets for the build step. The worker's
// implementation opens them from the gateway's database; values never travel in a build's
// input, so none is in Temporal's history.
type Secrets interface {
	// SecretValues returns the value of each of names in namespace ns. A name the namespace
	// does not hold is an error wrapping build.ErrUnknownSecret that names it; no error holds
	// a value.
	SecretValues(ctx context.Context, ns string, names []string) (map[string][]byte, error)
}

// secretMask is what the build log and the build step's errors show in place of a value.
const secretMask = "***"

// openSecrets reads the build secrets in names and returns the session attachable that serves
// them to BuildKit from memory (RUN --mount=type=secret,id=NAME: never a file on the worker,
// never a build arg), and log wrapped so that no value reaches it. With no names it returns
// log as it is. A secret the namespace no longer holds fails the build at once, naming it.
func (a *Activities) openSecrets(ctx context.Context, ns string, names []string, log io.WriteCloser) ([]session.Attachable, *maskWriter, error) {
	if len(names) == 0 {
		return nil, newMaskWriter(log, nil), nil
	}
	if err := build.CheckSecrets(names); err != nil {
		return nil, newMaskWriter(log, nil), build.ApplicationError(err)
	}
	if a.Secrets == nil {
		return nil, newMaskWriter(log, nil), temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("the build names secrets (%s) and this worker has no secret key to read them", strings.Join(names, ", ")),
			build.ErrTypeSecretMissing, nil)
	}
	values, err := a.Secrets.SecretValues(ctx, ns, names)
	if errors.Is(err, build.ErrUnknownSecret) {
		return nil, newMaskWriter(log, nil), temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("build secrets: %v (set it again, or drop it from the rule)", err), build.ErrTypeSecretMissing, nil)
	}
	if err != nil {
		return nil, newMaskWriter(log, nil), fmt.Errorf("reading build secrets: %w", err)
	}
	mw := newMaskWriter(log, values)
	return []session.Attachable{secretsprovider.FromMap(values)}, mw, nil
}

// maskWriter replaces every occurrence of a secret value in what it writes by secretMask. A
// value may arrive split across writes (BuildKit's progress is written as it comes), so the
// bytes that could begin one are held back until the next write tells, or until Close.
type maskWriter struct {
	mu sync.Mutex
	w  io.WriteCloser
	// patterns are the byte strings masked, longest first so that a value holding another is
	// masked whole.
	patterns [][]byte
	// pending are bytes written but held back: a prefix of some pattern.
	pending []byte
}

// newMaskWriter masks values in what goes to w. Besides each value whole, it masks the value
// without surrounding white space (a key file's final newline) and each line of at least four
// bytes of a value of several lines, since a build's log prefixes every line it prints.
func newMaskWriter(w io.WriteCloser, values map[string][]byte) *maskWriter {
	seen := map[string]bool{}
	var patterns [][]byte
	add := func(b []byte) {
		if len(b) == 0 || seen[string(b)] {
			return
		}
		seen[string(b)] = true
		patterns = append(patterns, b)
	}
	for _, v := range values {
		add(v)
		add(bytes.TrimSpace(v))
		if bytes.ContainsAny(v, "\r\n") {
			for _, line := range bytes.FieldsFunc(v, func(r rune) bool { return r == '\n' || r == '\r' }) {
				if line = bytes.TrimSpace(line); len(line) >= 4 {
					add(line)
				}
			}
		}
	}
	sort.SliceStable(patterns, func(i, j int) bool { return len(patterns[i]) > len(patterns[j]) })
	return &maskWriter{w: w, patterns: patterns}
}

// Write masks p, holding back a tail that may begin a value. It reports p as written whole.
func (m *maskWriter) Write(p []byte) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.patterns) == 0 {
		return m.w.Write(p)
	}
	m.pending = append(m.pending, p...)
	out, rest := m.mask(m.pending, false)
	m.pending = append([]byte(nil), rest...)
	if len(out) > 0 {
		if _, err := m.w.Write(out); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

// Close writes what was held back, masked, and closes the log.
func (m *maskWriter) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.pending) > 0 {
		out, _ := m.mask(m.pending, true)
		m.pending = nil
		if _, err := m.w.Write(out); err != nil {
			m.w.Close()
			return err
		}
	}
	return m.w.Close()
}

// mask returns b with every pattern replaced, and unless final the tail of b that is a proper
// prefix of a pattern, left out of the first result.
func (m *maskWriter) mask(b []byte, final bool) (out, rest []byte) {
	out = make([]byte, 0, len(b))
	i := 0
scan:
	for i < len(b) {
		for _, p := range m.patterns {
			if bytes.HasPrefix(b[i:], p) {
				out = append(out, secretMask...)
				i += len(p)
				continue scan
			}
		}
		if !final {
			for _, p := range m.patterns {
				if len(b)-i < len(p) && bytes.HasPrefix(p, b[i:]) {
					return out, b[i:]
				}
			}
		}
		out = append(out, b[i])
		i++
	}
	return out, nil
}

// String masks s whole, for a message that leaves the worker (an error in the workflow's
// history).
func (m *maskWriter) String(s string) string {
	if len(m.patterns) == 0 {
		return s
	}
	out, _ := m.mask([]byte(s), true)
	return string(out)
}

// maskError is err with every secret value in its message masked. An application error keeps
// its type and whether it may be retried; the cause is dropped when it held a value.
func (m *maskWriter) maskError(err error) error {
	if err == nil || len(m.patterns) == 0 {
		return err
	}
	msg := err.Error()
	masked := m.String(msg)
	if masked == msg {
		return err
	}
	var ae *temporal.ApplicationError
	if errors.As(err, &ae) {
		if ae.NonRetryable() {
			return temporal.NewNonRetryableApplicationError(masked, ae.Type(), nil)
		}
		return temporal.NewApplicationError(masked, ae.Type())
	}
	return errors.New(masked)
}
