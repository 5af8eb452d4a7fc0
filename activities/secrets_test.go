package activities

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"go.temporal.io/sdk/temporal"

	"github.com/slipway-dev/slipway/build"
)

// bufCloser is a log that records what reached it and whether it was closed.
type bufCloser struct {
	bytes.Buffer
	closed bool
}

func (b *bufCloser) Close() error { b.closed = true; return nil }

func TestMaskWriter(t *testing.T) {
	values := map[string][]byte{
		"TOKEN": []byte("s3cr3t-t0ken"),
		"SHORT": []byte("xy"),
		"KEY":   []byte("-----BEGIN KEY-----\nline-one-of-key\nline-two-of-key\n-----END KEY-----\n"),
		"LONG":  []byte("s3cr3t-t0ken-and-more"),
	}
	tests := []struct {
		name   string
		writes []string
		want   string
	}{
		{"no secret", []string{"hello world\n"}, "hello world\n"},
		{"whole value in one write", []string{"#5 0.12 s3cr3t-t0ken\n"}, "#5 0.12 ***\n"},
		{"value split across writes", []string{"#5 0.12 s3cr", "3t-t0", "ken done\n"}, "#5 0.12 *** done\n"},
		{"one byte at a time", strings.Split("a s3cr3t-t0ken b", ""), "a *** b"},
		{"prefix that is no value", []string{"s3cr3t-", "nope\n"}, "s3cr3t-nope\n"},
		{"prefix held to the end", []string{"ends with s3cr3t-t0"}, "ends with s3cr3t-t0"},
		{"longer value containing another", []string{"s3cr3t-t0ken-and-more!"}, "***!"},
		{"twice, adjacent", []string{"s3cr3t-t0kens3cr3t-t0ken"}, "******"},
		{"short value", []string{"xyz"}, "***z"},
		{"line of a key as a step prints it", []string{"#7 0.3 line-one-of-key\n#7 0.3 line-two-of-key\n"}, "#7 0.3 ***\n#7 0.3 ***\n"},
		{"key whole", []string{"-----BEGIN KEY-----\nline-one-of-key\nline-two-of-key\n-----END KEY-----\n"}, "***"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bufCloser
			m := newMaskWriter(&out, values)
			for _, w := range tt.writes {
				n, err := m.Write([]byte(w))
				if err != nil || n != len(w) {
					t.Fatalf("Write(%q) = %d, %v", w, n, err)
				}
			}
			if err := m.Close(); err != nil {
				t.Fatal(err)
			}
			if got := out.String(); got != tt.want {
				t.Errorf("log = %q, want %q", got, tt.want)
			}
			if !out.closed {
				t.Error("the log was not closed")
			}
		})
	}
}

func TestMaskWriterWithoutSecretsPassesThrough(t *testing.T) {
	var out bufCloser
	m := newMaskWriter(&out, nil)
	fmt.Fprint(m, "s3cr3t")
	if out.String() != "s3cr3t" {
		t.Fatalf("log = %q: nothing to mask must hold nothing back", out.String())
	}
}

func TestMaskError(t *testing.T) {
	m := newMaskWriter(&bufCloser{}, map[string][]byte{"T": []byte("p4ssw0rd")})
	err := m.maskError(temporal.NewNonRetryableApplicationError("build failed: echo p4ssw0rd", build.ErrTypeBuildFailed, nil))
	var ae *temporal.ApplicationError
	if !errors.As(err, &ae) || !ae.NonRetryable() || ae.Type() != build.ErrTypeBuildFailed || strings.Contains(err.Error(), "p4ssw0rd") {
		t.Fatalf("masked = %v", err)
	}
	if plain := m.maskError(errors.New("a p4ssw0rd b")); plain.Error() != "a *** b" {
		t.Fatalf("masked plain error = %q", plain)
	}
	same := errors.New("nothing here")
	if m.maskError(same) != same {
		t.Fatal("an error without a value must be returned as it is")
	}
}

// fakeSecrets serves values from a map, as the worker's database would.
type fakeSecrets map[string]map[string][]byte

func (f fakeSecrets) SecretValues(_ context.Context, ns string, names []string) (map[string][]byte, error) {
	out := map[string][]byte{}
	for _, n := range names {
		v, ok := f[ns][n]
		if !ok {
			return nil, fmt.Errorf("namespace %s has no secret %s: %w", ns, n, build.ErrUnknownSecret)
		}
		out[n] = v
	}
	return out, nil
}

func TestOpenSecrets(t *testing.T) {
	store := fakeSecrets{"team": {"TOKEN": []byte("v4lue-of-token")}}
	tests := []struct {
		name     string
		secrets  Secrets
		ns       string
		names    []string
		wantType string // "" means no error
		attached int
	}{
		{"none named", store, "team", nil, "", 0},
		{"named and held", store, "team", []string{"TOKEN"}, "", 1},
		{"deleted since the rule was saved", store, "team", []string{"TOKEN", "GONE"}, build.ErrTypeSecretMissing, 0},
		{"another namespace's", store, "other", []string{"TOKEN"}, build.ErrTypeSecretMissing, 0},
		{"worker without a key", nil, "team", []string{"TOKEN"}, build.ErrTypeSecretMissing, 0},
		{"bad name from a hand-made input", store, "team", []string{"../etc"}, build.ErrTypeInvalidInput, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := &Activities{Secrets: tt.secrets}
			var out bufCloser
			att, log, err := a.openSecrets(context.Background(), tt.ns, tt.names, &out)
			if log == nil {
				t.Fatal("no log returned")
			}
			if tt.wantType == "" {
				if err != nil {
					t.Fatal(err)
				}
			} else {
				var ae *temporal.ApplicationError
				if !errors.As(err, &ae) || ae.Type() != tt.wantType || !ae.NonRetryable() {
					t.Fatalf("err = %v, want non-retryable %s", err, tt.wantType)
				}
				if tt.wantType == build.ErrTypeSecretMissing && len(tt.names) > 1 && !strings.Contains(err.Error(), "GONE") {
					t.Fatalf("err %q does not name the missing secret", err)
				}
				if strings.Contains(err.Error(), "v4lue-of-token") {
					t.Fatalf("err %q holds a value", err)
				}
			}
			if len(att) != tt.attached {
				t.Fatalf("%d attachables, want %d", len(att), tt.attached)
			}
			fmt.Fprint(log, "echo v4lue-of-token\n")
			log.Close()
			if tt.attached > 0 && strings.Contains(out.String(), "v4lue-of-token") {
				t.Fatalf("log holds the value: %q", out.String())
			}
		})
	}
}
