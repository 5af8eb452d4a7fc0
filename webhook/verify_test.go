package webhook

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

// signGitHub computes X-Hub-Signature-256 as GitHub does.
func signGitHub(secret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

func TestVerifyGitHub(t *testing.T) {
	const secret = "It's a Secret to Everybody"
	body := []byte("Hello, World!")
	sha1MAC := hmac.New(sha1.New, []byte(secret))
	sha1MAC.Write(body)
	valid := signGitHub(secret, body)

	tests := []struct {
		name      string
		secret    string
		body      []byte
		signature string
		want      error
	}{
		{"valid", secret, body, valid, nil},
		// The example GitHub's documentation gives for validating deliveries.
		{"github documentation example", secret, body, "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17", nil},
		{"uppercase hex", secret, body, "sha256=" + strings.ToUpper(strings.TrimPrefix(valid, "sha256=")), nil},
		{"missing header", secret, body, "", ErrNoSignature},
		{"wrong digest", secret, body, "sha256=" + strings.Repeat("ab", 32), ErrBadSignature},
		{"sha1 only", secret, body, "sha1=" + hex.EncodeToString(sha1MAC.Sum(nil)), ErrBadSignature},
		{"sha1 digest under sha256 prefix", secret, body, "sha256=" + hex.EncodeToString(sha1MAC.Sum(nil)), ErrBadSignature},
		{"another rule's secret", secret, body, signGitHub("another rule's secret", body), ErrBadSignature},
		{"tampered body", secret, []byte("Hello, World?"), valid, ErrBadSignature},
		{"empty body signed", secret, nil, signGitHub(secret, nil), nil},
		{"bad hex", secret, body, "sha256=" + strings.Repeat("zz", 32), ErrBadSignature},
		{"truncated digest", secret, body, valid[:len(valid)-2], ErrBadSignature},
		{"digest with extra bytes", secret, body, valid + "00", ErrBadSignature},
		{"prefix only", secret, body, "sha256=", ErrBadSignature},
		{"uppercase prefix", secret, body, "SHA256=" + strings.TrimPrefix(valid, "sha256="), ErrBadSignature},
		{"digest without prefix", secret, body, strings.TrimPrefix(valid, "sha256="), ErrBadSignature},
		{"empty secret with matching signature", "", body, signGitHub("", body), ErrEmptySecret},
		{"empty secret without signature", "", body, "", ErrEmptySecret},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := VerifyGitHub(tt.secret, tt.body, tt.signature)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("VerifyGitHub() = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("VerifyGitHub() = %v, want %v", err, tt.want)
			}
			msg := err.Error()
			if tt.secret != "" && strings.Contains(msg, tt.secret) {
				t.Errorf("error %q holds the secret", msg)
			}
			if want := strings.TrimPrefix(signGitHub(tt.secret, tt.body), "sha256="); strings.Contains(strings.ToLower(msg), want) {
				t.Errorf("error %q holds the expected digest", msg)
			}
		})
	}
}

func TestVerifyGitLab(t *testing.T) {
	const secret = "glpat-not-a-real-token"
	tests := []struct {
		name   string
		secret string
		token  string
		want   error
	}{
		{"valid", secret, secret, nil},
		{"missing header", secret, "", ErrNoToken},
		{"wrong token of the same length", secret, strings.Repeat("x", len(secret)), ErrBadToken},
		{"prefix of the secret", secret, secret[:len(secret)-1], ErrBadToken},
		{"secret with a suffix", secret, secret + "x", ErrBadToken},
		{"different case", secret, strings.ToUpper(secret), ErrBadToken},
		{"another rule's secret", secret, "another rule's secret", ErrBadToken},
		{"empty secret and empty token", "", "", ErrEmptySecret},
		{"empty secret with a token", "", "anything", ErrEmptySecret},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := VerifyGitLab(tt.secret, tt.token)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("VerifyGitLab() = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("VerifyGitLab() = %v, want %v", err, tt.want)
			}
			if tt.secret != "" && strings.Contains(err.Error(), tt.secret) {
				t.Errorf("error %q holds the secret", err)
			}
		})
	}
}
