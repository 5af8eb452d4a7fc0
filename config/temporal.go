package config

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"

	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"
)

// Secret is a setting that must never be shown: it prints, formats and logs as "[redacted]".
type Secret string

// String hides the value from fmt's %v and %s.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return "[redacted]"
}

// GoString hides the value from fmt's %#v.
func (s Secret) GoString() string { return `"` + s.String() + `"` }

// LogValue hides the value from log/slog.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalText hides the value from encoding/json and friends.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// TemporalClientOptions are the client options the worker and the gateway dial Temporal with:
// address, namespace, logger, and TLS or an API key when configured. Callers add what is theirs
// (a metrics handler, interceptors) before dialing.
func (c Config) TemporalClientOptions(logger *slog.Logger) (client.Options, error) {
	opts := client.Options{
		HostPort:  c.TemporalAddress,
		Namespace: c.TemporalNamespace,
	}
	if logger != nil {
		opts.Logger = tlog.NewStructuredLogger(logger)
	}
	tlsCfg, err := c.TemporalTLS()
	if err != nil {
		return client.Options{}, err
	}
	opts.ConnectionOptions.TLS = tlsCfg
	if c.TemporalAPIKey != "" {
		// The SDK turns TLS on (system roots) for an API key when no TLS option is set.
		opts.Credentials = client.NewAPIKeyStaticCredentials(string(c.TemporalAPIKey))
	}
	return opts, nil
}

// TemporalTLS is the TLS configuration of the connection to Temporal: nil (plain gRPC) when no
// SLIPWAY_TEMPORAL_TLS_* variable is set; with any of them, TLS 1.2 or later, the client
// certificate when given, the CA file's roots (else the system's) and the server name when given.
func (c Config) TemporalTLS() (*tls.Config, error) {
	if c.TemporalTLSCert == "" && c.TemporalTLSKey == "" && c.TemporalTLSCA == "" && c.TemporalTLSServerName == "" {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.TemporalTLSServerName}
	if c.TemporalTLSCert != "" || c.TemporalTLSKey != "" {
		if c.TemporalTLSCert == "" || c.TemporalTLSKey == "" {
			return nil, fmt.Errorf("SLIPWAY_TEMPORAL_TLS_CERT and SLIPWAY_TEMPORAL_TLS_KEY go together: set both or neither")
		}
		cert, err := tls.LoadX509KeyPair(c.TemporalTLSCert, c.TemporalTLSKey)
		if err != nil {
			return nil, fmt.Errorf("loading the Temporal client certificate %s: %w", c.TemporalTLSCert, err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	if c.TemporalTLSCA != "" {
		pem, err := os.ReadFile(c.TemporalTLSCA)
		if err != nil {
			return nil, fmt.Errorf("reading the Temporal CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("the Temporal CA file %s holds no PEM certificate", c.TemporalTLSCA)
		}
		cfg.RootCAs = pool
	}
	return cfg, nil
}
