// Package secretbox encrypts small secrets, such as the Git provider tokens of
// connected accounts, before they are stored, and decrypts them when a request
// or a worker needs them.
//
// A sealed value is text, safe for a TEXT column:
//
//	v1:<base64(nonce | ciphertext | tag)>
//
// with AES-256-GCM under a 32-byte key and a random 96-bit nonce per Seal. The
// caller passes an additional-data string that names the row the value belongs
// to (an account ID, say): Open with any other string fails, so a value copied
// into another row cannot be opened there. The "v1:" prefix leaves room for a
// later format or key rotation without guessing what a stored value is.
package secretbox

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// EnvKey is the environment variable KeyFromEnv reads.
const EnvKey = "SLIPWAY_SECRET_KEY"

// KeySize is the length of a key in bytes (AES-256).
const KeySize = 32

// version1 prefixes every value that Seal produces today.
const version1 = "v1"

// Errors Open returns, wrapped with context. None of them holds the key, the
// plaintext or the sealed value.
var (
	// ErrMalformed means the value is not of the form "v1:<base64>" or is too
	// short to hold a nonce and a tag.
	ErrMalformed = errors.New("sealed value is malformed")
	// ErrUnsupportedVersion means the value has a version prefix this build
	// does not know, such as one written by a newer Slipway.
	ErrUnsupportedVersion = errors.New("sealed value has an unsupported version")
	// ErrAuthentication means the value does not decrypt under this key and
	// additional data: the wrong key, the wrong row, or a tampered value.
	ErrAuthentication = errors.New("sealed value failed authentication")
)

// Box seals and opens values under one key. It is safe for concurrent use.
type Box struct {
	aead cipher.AEAD
}

// New returns a Box for a 32-byte key.
func New(key []byte) (*Box, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("secretbox key is %d bytes, want %d", len(key), KeySize)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("creating AES cipher: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("creating GCM: %w", err)
	}
	return &Box{aead: aead}, nil
}

// KeyFromEnv returns a Box for the key in SLIPWAY_SECRET_KEY: 32 bytes, base64
// (standard alphabet, padded) or hex encoded, such as the output of
// `openssl rand -base64 32`. getenv is usually os.Getenv. Its errors name the
// variable and the expected form, never the value.
func KeyFromEnv(getenv func(string) string) (*Box, error) {
	raw := strings.TrimSpace(getenv(EnvKey))
	if raw == "" {
		return nil, fmt.Errorf("%s is not set: want 32 random bytes, base64 or hex encoded (openssl rand -base64 32)", EnvKey)
	}
	key, ok := decodeKey(raw)
	if !ok {
		return nil, fmt.Errorf("%s is not 32 bytes in base64 (44 characters) or hex (64 characters); generate one with openssl rand -base64 32", EnvKey)
	}
	box, err := New(key)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", EnvKey, err)
	}
	return box, nil
}

// decodeKey reads hex first: 64 hex digits are also valid base64, and would
// decode to 48 bytes there.
func decodeKey(s string) ([]byte, bool) {
	if len(s) == 2*KeySize {
		if key, err := hex.DecodeString(s); err == nil {
			return key, true
		}
	}
	key, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(key) != KeySize {
		return nil, false
	}
	return key, true
}

// Seal encrypts plaintext and binds it to aad, which Open must be given again.
func (b *Box) Seal(plaintext []byte, aad string) (string, error) {
	nonce := make([]byte, b.aead.NonceSize(), b.aead.NonceSize()+len(plaintext)+b.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("reading a random nonce: %w", err)
	}
	sealed := b.aead.Seal(nonce, nonce, plaintext, additionalData(version1, aad))
	return version1 + ":" + base64.StdEncoding.EncodeToString(sealed), nil
}

// Open decrypts a value that Seal returned for the same aad.
func (b *Box) Open(sealed, aad string) ([]byte, error) {
	version, payload, ok := strings.Cut(sealed, ":")
	if !ok {
		return nil, fmt.Errorf("opening secret: no version prefix: %w", ErrMalformed)
	}
	if version != version1 {
		// The prefix is not echoed: a value stored unsealed by mistake may
		// be a secret that happens to hold a colon.
		return nil, fmt.Errorf("opening secret: %w", ErrUnsupportedVersion)
	}
	data, err := base64.StdEncoding.DecodeString(payload)
	if err != nil {
		return nil, fmt.Errorf("opening secret: payload is not base64: %w", ErrMalformed)
	}
	if len(data) < b.aead.NonceSize()+b.aead.Overhead() {
		return nil, fmt.Errorf("opening secret: payload is %d bytes, too short: %w", len(data), ErrMalformed)
	}
	nonce, ciphertext := data[:b.aead.NonceSize()], data[b.aead.NonceSize():]
	plaintext, err := b.aead.Open(nil, nonce, ciphertext, additionalData(version, aad))
	if err != nil {
		// GCM's own error says nothing more than this one.
		return nil, fmt.Errorf("opening secret: %w", ErrAuthentication)
	}
	return plaintext, nil
}

// additionalData also binds the version, so a value cannot be replayed under
// a later format that reads the same bytes differently.
func additionalData(version, aad string) []byte {
	return []byte("slipway/secretbox/" + version + "\x00" + aad)
}
