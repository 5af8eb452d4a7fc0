package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"strings"
)

// Verification errors. The handler answers 401 to all of them; they are
// distinct so the log says what was wrong. None of them, nor any error this
// file wraps, ever holds the secret or the digest we expected.
var (
	// ErrEmptySecret means the rule has no webhook secret. An empty key would
	// let anyone who knows the rule ID sign a delivery, so it never validates.
	ErrEmptySecret = errors.New("webhook secret is empty")
	// ErrNoSignature means a GitHub delivery came without X-Hub-Signature-256.
	ErrNoSignature = errors.New("missing X-Hub-Signature-256 header")
	// ErrBadSignature means X-Hub-Signature-256 is not a SHA-256 HMAC of the
	// body under the rule's secret.
	ErrBadSignature = errors.New("webhook signature does not match")
	// ErrNoToken means a GitLab delivery came without X-Gitlab-Token.
	ErrNoToken = errors.New("missing X-Gitlab-Token header")
	// ErrBadToken means X-Gitlab-Token is not the rule's secret.
	ErrBadToken = errors.New("webhook token does not match")
)

const sha256Prefix = "sha256="

// VerifyGitHub checks GitHub's X-Hub-Signature-256 header, "sha256=" and the
// hex HMAC-SHA256 of the raw body under the rule's secret, before anything
// parses the body. It has no SHA-1 fallback: a delivery signed only with
// X-Hub-Signature (sha1=) fails, since SHA-1 HMACs are what an attacker who
// downgrades the header would want us to accept.
func VerifyGitHub(secret string, body []byte, signature256 string) error {
	m, err := NewGitHubMAC(secret, signature256)
	if err != nil {
		return err
	}
	m.Write(body)
	return m.Verify()
}

// GitHubMAC checks a GitHub signature over a body as the body streams in: write the body to
// it (an io.TeeReader does), then Verify. The header is checked first, by NewGitHubMAC, so a
// delivery without a well-formed signature is refused before its body is read.
type GitHubMAC struct {
	want []byte
	mac  hash.Hash
}

// NewGitHubMAC parses X-Hub-Signature-256 for a rule's secret. It fails with ErrEmptySecret,
// ErrNoSignature or ErrBadSignature (malformed) without reading anything.
func NewGitHubMAC(secret, signature256 string) (*GitHubMAC, error) {
	if secret == "" {
		return nil, ErrEmptySecret
	}
	if signature256 == "" {
		return nil, ErrNoSignature
	}
	digest, ok := strings.CutPrefix(signature256, sha256Prefix)
	if !ok {
		return nil, fmt.Errorf("signature is not sha256=<hex>: %w", ErrBadSignature)
	}
	want, err := hex.DecodeString(digest)
	if err != nil || len(want) != sha256.Size {
		return nil, fmt.Errorf("signature is not 64 hex digits: %w", ErrBadSignature)
	}
	return &GitHubMAC{want: want, mac: hmac.New(sha256.New, []byte(secret))}, nil
}

// Write adds body bytes to the HMAC; it never fails.
func (m *GitHubMAC) Write(p []byte) (int, error) { return m.mac.Write(p) }

// Verify compares, in constant time, the HMAC of everything written with the signature.
func (m *GitHubMAC) Verify() error {
	if !hmac.Equal(m.want, m.mac.Sum(nil)) {
		return ErrBadSignature
	}
	return nil
}

// VerifyGitLab checks GitLab's X-Gitlab-Token header, which carries the
// rule's secret itself. Both sides are hashed first so the comparison takes
// the same time whatever the token's length: subtle.ConstantTimeCompare
// returns early on a length mismatch, which would reveal the secret's length.
func VerifyGitLab(secret, token string) error {
	if secret == "" {
		return ErrEmptySecret
	}
	if token == "" {
		return ErrNoToken
	}
	want := sha256.Sum256([]byte(secret))
	got := sha256.Sum256([]byte(token))
	if subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
		return ErrBadToken
	}
	return nil
}
