package secretbox_test

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/slipway-dev/slipway/secretbox"
)

func key(b byte) []byte { return bytes.Repeat([]byte{b}, secretbox.KeySize) }

func mustBox(t *testing.T, k []byte) *secretbox.Box {
	t.Helper()
	box, err := secretbox.New(k)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return box
}

func TestSealOpen(t *testing.T) {
	box := mustBox(t, key(1))
	token := []byte("ghp_0123456789abcdefghijklmnopqrstuvwxyz")
	sealed, err := box.Seal(token, "account:42")
	if err != nil {
		t.Fatalf("Seal: %v", err)
	}
	// Flip one bit inside the ciphertext, keeping the form valid, so only
	// the GCM tag can notice.
	payload := strings.TrimPrefix(sealed, "v1:")
	raw, err := base64.StdEncoding.DecodeString(payload)
	if err != nil {
		t.Fatalf("payload is not base64: %v", err)
	}
	raw[len(raw)/2] ^= 0x01
	tampered := "v1:" + base64.StdEncoding.EncodeToString(raw)

	tests := []struct {
		name    string
		box     *secretbox.Box
		sealed  string
		aad     string
		want    []byte
		wantErr error
	}{
		{name: "round trip", box: box, sealed: sealed, aad: "account:42", want: token},
		{name: "wrong key", box: mustBox(t, key(2)), sealed: sealed, aad: "account:42", wantErr: secretbox.ErrAuthentication},
		{name: "wrong aad", box: box, sealed: sealed, aad: "account:43", wantErr: secretbox.ErrAuthentication},
		{name: "tampered", box: box, sealed: tampered, aad: "account:42", wantErr: secretbox.ErrAuthentication},
		{name: "bad version", box: box, sealed: "v2:" + payload, aad: "account:42", wantErr: secretbox.ErrUnsupportedVersion},
		{name: "no version", box: box, sealed: payload, aad: "account:42", wantErr: secretbox.ErrMalformed},
		{name: "empty", box: box, sealed: "", aad: "account:42", wantErr: secretbox.ErrMalformed},
		{name: "not base64", box: box, sealed: "v1:***", aad: "account:42", wantErr: secretbox.ErrMalformed},
		{name: "too short", box: box, sealed: "v1:" + base64.StdEncoding.EncodeToString(make([]byte, 27)), aad: "account:42", wantErr: secretbox.ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.box.Open(tt.sealed, tt.aad)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Open error = %v, want %v", err, tt.wantErr)
				}
				if got != nil {
					t.Errorf("Open returned %q with an error", got)
				}
				if strings.Contains(err.Error(), string(token)) || (tt.sealed != "" && strings.Contains(err.Error(), tt.sealed)) {
					t.Errorf("error %q echoes the secret or the sealed value", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			if !bytes.Equal(got, tt.want) {
				t.Errorf("Open = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestSealFormat(t *testing.T) {
	box := mustBox(t, key(1))
	tests := []struct {
		name      string
		plaintext []byte
	}{
		{name: "empty plaintext", plaintext: []byte{}},
		{name: "token", plaintext: []byte("glpat-abcdefghijklmnopqrst")},
		{name: "binary", plaintext: []byte{0, 1, 2, 0xff}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := box.Seal(tt.plaintext, "row")
			if err != nil {
				t.Fatalf("Seal: %v", err)
			}
			b, err := box.Seal(tt.plaintext, "row")
			if err != nil {
				t.Fatalf("Seal: %v", err)
			}
			if a == b {
				t.Error("two Seals of the same plaintext are equal: the nonce is not random")
			}
			payload, ok := strings.CutPrefix(a, "v1:")
			if !ok {
				t.Fatalf("sealed value %q lacks the v1: prefix", a)
			}
			raw, err := base64.StdEncoding.DecodeString(payload)
			if err != nil {
				t.Fatalf("payload is not standard base64: %v", err)
			}
			if want := 12 + len(tt.plaintext) + 16; len(raw) != want {
				t.Errorf("payload is %d bytes, want nonce(12)+plaintext+tag(16) = %d", len(raw), want)
			}
			if len(tt.plaintext) > 3 && bytes.Contains(raw, tt.plaintext) {
				t.Error("payload holds the plaintext")
			}
			got, err := box.Open(a, "row")
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			if !bytes.Equal(got, tt.plaintext) {
				t.Errorf("Open = %q, want %q", got, tt.plaintext)
			}
		})
	}
}

func TestNewKeySize(t *testing.T) {
	for _, n := range []int{0, 16, 24, 31, 33, 64} {
		if _, err := secretbox.New(make([]byte, n)); err == nil {
			t.Errorf("New accepted a %d-byte key", n)
		}
	}
}

func TestKeyFromEnv(t *testing.T) {
	k := key(7)
	b64 := base64.StdEncoding.EncodeToString(k)
	hx := hex.EncodeToString(k)
	sealed, err := mustBox(t, k).Seal([]byte("secret"), "a")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		value   string
		wantErr string
	}{
		{name: "base64", value: b64},
		{name: "base64 with newline", value: b64 + "\n"},
		{name: "hex", value: hx},
		{name: "upper hex", value: strings.ToUpper(hx)},
		{name: "missing", value: "", wantErr: "SLIPWAY_SECRET_KEY is not set"},
		{name: "blank", value: "  \n", wantErr: "SLIPWAY_SECRET_KEY is not set"},
		{name: "short base64", value: base64.StdEncoding.EncodeToString(k[:16]), wantErr: "SLIPWAY_SECRET_KEY is not 32 bytes"},
		{name: "long hex", value: hx + "00", wantErr: "SLIPWAY_SECRET_KEY is not 32 bytes"},
		{name: "garbage", value: "correct horse battery staple", wantErr: "SLIPWAY_SECRET_KEY is not 32 bytes"},
		{name: "raw url base64", value: base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{0xfb}, 32)), wantErr: "SLIPWAY_SECRET_KEY is not 32 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			getenv := func(name string) string {
				if name != secretbox.EnvKey {
					t.Errorf("KeyFromEnv read %q", name)
					return ""
				}
				return tt.value
			}
			box, err := secretbox.KeyFromEnv(getenv)
			if tt.wantErr != "" {
				if err == nil {
					t.Fatal("KeyFromEnv accepted a bad key")
				}
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("error %q does not contain %q", err, tt.wantErr)
				}
				if v := strings.TrimSpace(tt.value); v != "" && strings.Contains(err.Error(), v) {
					t.Errorf("error %q echoes the variable's value", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("KeyFromEnv: %v", err)
			}
			got, err := box.Open(sealed, "a")
			if err != nil || string(got) != "secret" {
				t.Errorf("box from env cannot open a value sealed under the same key: %q, %v", got, err)
			}
		})
	}
}
