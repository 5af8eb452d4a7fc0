package config

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// pki is a throwaway CA with a server certificate for temporal.test and a client certificate,
// written as PEM files.
type pki struct {
	caFile, serverCert, serverKey, clientCert, clientKey, otherCA string
	pool                                                          *x509.CertPool
}

func newPKI(t *testing.T) pki {
	t.Helper()
	dir := t.TempDir()
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	newKey := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	keyDER := func(k *ecdsa.PrivateKey) []byte {
		b, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	newCA := func(name string) (*x509.Certificate, *ecdsa.PrivateKey, []byte) {
		k := newKey()
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
		if err != nil {
			t.Fatal(err)
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		return c, k, der
	}
	ca, caKey, caDER := newCA("slipway test CA")
	_, _, otherDER := newCA("another CA")
	leaf := func(serial int64, name string, usage x509.ExtKeyUsage) (certDER, key []byte) {
		k := newKey()
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return der, keyDER(k)
	}
	sc, sk := leaf(2, "temporal.test", x509.ExtKeyUsageServerAuth)
	cc, ck := leaf(3, "slipway-worker", x509.ExtKeyUsageClientAuth)
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return pki{
		caFile:     write("ca.pem", "CERTIFICATE", caDER),
		otherCA:    write("other-ca.pem", "CERTIFICATE", otherDER),
		serverCert: write("server.pem", "CERTIFICATE", sc), serverKey: write("server-key.pem", "PRIVATE KEY", sk),
		clientCert: write("client.pem", "CERTIFICATE", cc), clientKey: write("client-key.pem", "PRIVATE KEY", ck),
		pool: pool,
	}
}

// mtlsServer is a TLS listener that requires a client certificate of p's CA, as an mTLS
// Temporal frontend does. It completes handshakes and closes.
func mtlsServer(t *testing.T, p pki) string {
	t.Helper()
	cert, err := tls.LoadX509KeyPair(p.serverCert, p.serverKey)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		Certificates: []tls.Certificate{cert}, ClientCAs: p.pool, ClientAuth: tls.RequireAndVerifyClientCert,
		MinVersion: tls.VersionTLS12,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				conn.SetDeadline(time.Now().Add(5 * time.Second))
				conn.(*tls.Conn).Handshake()
				// Read until the client closes, so it sees the handshake's verdict first.
				conn.Read(make([]byte, 1))
			}()
		}
	}()
	return ln.Addr().String()
}

func TestTemporalTLS(t *testing.T) {
	p := newPKI(t)
	addr := mtlsServer(t, p)
	tests := []struct {
		name    string
		env     map[string]string
		wantNil bool
		// wantErr is part of the error of TemporalTLS (or of FromEnv).
		wantErr string
		// handshake: "" skips dialing; "ok" or part of the handshake's error.
		handshake string
	}{
		{name: "no TLS variable: plain gRPC", env: map[string]string{}, wantNil: true},
		{
			name: "mTLS with CA and server name",
			env: map[string]string{"SLIPWAY_TEMPORAL_TLS_CERT": p.clientCert, "SLIPWAY_TEMPORAL_TLS_KEY": p.clientKey,
				"SLIPWAY_TEMPORAL_TLS_CA": p.caFile, "SLIPWAY_TEMPORAL_TLS_SERVER_NAME": "temporal.test"},
			handshake: "ok",
		},
		{
			name:      "no client certificate: the server refuses",
			env:       map[string]string{"SLIPWAY_TEMPORAL_TLS_CA": p.caFile, "SLIPWAY_TEMPORAL_TLS_SERVER_NAME": "temporal.test"},
			handshake: "certificate required",
		},
		{
			name: "wrong server name: the client refuses",
			env: map[string]string{"SLIPWAY_TEMPORAL_TLS_CERT": p.clientCert, "SLIPWAY_TEMPORAL_TLS_KEY": p.clientKey,
				"SLIPWAY_TEMPORAL_TLS_CA": p.caFile, "SLIPWAY_TEMPORAL_TLS_SERVER_NAME": "other.test"},
			handshake: "other.test",
		},
		{
			name: "another CA: the client refuses",
			env: map[string]string{"SLIPWAY_TEMPORAL_TLS_CERT": p.clientCert, "SLIPWAY_TEMPORAL_TLS_KEY": p.clientKey,
				"SLIPWAY_TEMPORAL_TLS_CA": p.otherCA, "SLIPWAY_TEMPORAL_TLS_SERVER_NAME": "temporal.test"},
			handshake: "unknown authority",
		},
		{
			name:    "key does not match certificate",
			env:     map[string]string{"SLIPWAY_TEMPORAL_TLS_CERT": p.clientCert, "SLIPWAY_TEMPORAL_TLS_KEY": p.serverKey},
			wantErr: "client certificate",
		},
		{
			name:    "CA file missing",
			env:     map[string]string{"SLIPWAY_TEMPORAL_TLS_CA": p.clientKey + ".missing"},
			wantErr: "reading the Temporal CA file",
		},
		{
			name:    "CA file holds no certificate",
			env:     map[string]string{"SLIPWAY_TEMPORAL_TLS_CA": p.clientKey},
			wantErr: "no PEM certificate",
		},
		{
			name:    "key without certificate",
			env:     map[string]string{"SLIPWAY_TEMPORAL_TLS_KEY": p.clientKey},
			wantErr: "go together",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := FromEnv(func(k string) string { return tt.env[k] })
			var cfg *tls.Config
			if err == nil {
				cfg, err = c.TemporalTLS()
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.wantNil != (cfg == nil) {
				t.Fatalf("TLS config = %v, want nil: %v", cfg, tt.wantNil)
			}
			if cfg != nil && cfg.MinVersion < tls.VersionTLS12 {
				t.Errorf("MinVersion = %x", cfg.MinVersion)
			}
			if tt.handshake == "" {
				return
			}
			err = handshake(addr, cfg)
			if tt.handshake == "ok" {
				if err != nil {
					t.Fatalf("handshake: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.handshake) {
				t.Fatalf("handshake err = %v, want one containing %q", err, tt.handshake)
			}
		})
	}
}

// handshake dials addr with cfg and reports the handshake's outcome as the server sees it: a
// TLS 1.3 client learns that its certificate was refused only on its first read.
func handshake(addr string, cfg *tls.Config) error {
	d := tls.Dialer{NetDialer: &net.Dialer{Timeout: 5 * time.Second}, Config: cfg}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	_, err = conn.Read(make([]byte, 1))
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return nil // the server kept the connection: it accepted the certificate
	}
	return err
}

func TestTemporalClientOptions(t *testing.T) {
	p := newPKI(t)
	tests := []struct {
		name      string
		env       map[string]string
		wantTLS   bool
		wantCreds bool
	}{
		{name: "local dev server", env: map[string]string{}},
		{name: "API key: credentials, TLS turned on by the SDK", env: map[string]string{"SLIPWAY_TEMPORAL_API_KEY": "k"}, wantCreds: true},
		{name: "API key with a CA", env: map[string]string{"SLIPWAY_TEMPORAL_API_KEY": "k", "SLIPWAY_TEMPORAL_TLS_CA": p.caFile}, wantTLS: true, wantCreds: true},
		{name: "mTLS", env: map[string]string{"SLIPWAY_TEMPORAL_TLS_CERT": p.clientCert, "SLIPWAY_TEMPORAL_TLS_KEY": p.clientKey}, wantTLS: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{"SLIPWAY_TEMPORAL_ADDRESS": "ns.acct.tmprl.cloud:7233", "SLIPWAY_TEMPORAL_NAMESPACE": "ns.acct"}
			for k, v := range tt.env {
				env[k] = v
			}
			c, err := FromEnv(func(k string) string { return env[k] })
			if err != nil {
				t.Fatal(err)
			}
			opts, err := c.TemporalClientOptions(nil)
			if err != nil {
				t.Fatal(err)
			}
			if opts.HostPort != "ns.acct.tmprl.cloud:7233" || opts.Namespace != "ns.acct" {
				t.Errorf("HostPort, Namespace = %q, %q", opts.HostPort, opts.Namespace)
			}
			if got := opts.ConnectionOptions.TLS != nil; got != tt.wantTLS {
				t.Errorf("TLS set = %v, want %v", got, tt.wantTLS)
			}
			if got := opts.Credentials != nil; got != tt.wantCreds {
				t.Errorf("Credentials set = %v, want %v", got, tt.wantCreds)
			}
		})
	}
}
