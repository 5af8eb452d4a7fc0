package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"regexp"
	"time"
)

// namePattern is the shape of user, namespace and repository names: lowercase, so that
// they are valid in image references and URLs as they are, and at most 63 characters.
var namePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)

// ValidName reports whether name may name a user, a namespace or a repository. The error
// wraps ErrInvalid.
func ValidName(name string) error {
	if !namePattern.MatchString(name) {
		return fmt.Errorf("%w name %q: must match %s", ErrInvalid, name, namePattern)
	}
	return nil
}

// TokenPrefix starts every token the store generates, so that a leaked token is easy to
// recognise (and to scan for).
const TokenPrefix = "slw_"

// User is a person or a machine that calls the API with a bearer token.
type User struct {
	ID        int64     `json:"id"`
	Name      string    `json:"name"`
	SiteAdmin bool      `json:"site_admin"`
	CreatedAt time.Time `json:"created_at"`
}

// NewToken returns a fresh API token: TokenPrefix and 32 random bytes in unpadded base64url.
func NewToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generating token: %w", err)
	}
	return TokenPrefix + base64.RawURLEncoding.EncodeToString(b), nil
}

// hashToken is what the store keeps of a token. Tokens carry 256 random bits, so guessing
// one from its hash is hopeless and a plain SHA-256 is enough: a slow password hash (bcrypt,
// argon2) only protects low-entropy secrets, and would cost every API call its delay.
// Looking a user up by this hash also means no token is ever compared byte by byte.
func hashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// CreateUser adds a user and returns it with its token. The token is not kept, only its
// hash: this is the one time it can be shown.
func (s *Store) CreateUser(ctx context.Context, name string, siteAdmin bool) (User, string, error) {
	if err := ValidName(name); err != nil {
		return User{}, "", fmt.Errorf("creating user: %w", err)
	}
	token, err := NewToken()
	if err != nil {
		return User{}, "", fmt.Errorf("creating user %q: %w", name, err)
	}
	u := User{Name: name, SiteAdmin: siteAdmin, CreatedAt: now()}
	err = s.queryRow(ctx, s.db,
		"INSERT INTO users (name, token_hash, site_admin, created_at) VALUES (?, ?, ?, ?) RETURNING id",
		u.Name, hashToken(token), u.SiteAdmin, u.CreatedAt).Scan(&u.ID)
	if err != nil {
		return User{}, "", fmt.Errorf("creating user %q: %w", name, classify(err))
	}
	return u, token, nil
}

// EnsureAdmin makes the user name a site admin whose token is token, creating the user when
// missing. The gateway calls it at every start with the stack's admin token, so changing
// that token and restarting replaces the old one.
func (s *Store) EnsureAdmin(ctx context.Context, name, token string) (User, error) {
	if err := ValidName(name); err != nil {
		return User{}, fmt.Errorf("ensuring admin: %w", err)
	}
	if token == "" {
		return User{}, fmt.Errorf("ensuring admin %q: empty token: %w", name, ErrInvalid)
	}
	u := User{}
	err := s.queryRow(ctx, s.db, `INSERT INTO users (name, token_hash, site_admin, created_at) VALUES (?, ?, ?, ?)
ON CONFLICT (name) DO UPDATE SET token_hash = excluded.token_hash, site_admin = excluded.site_admin
RETURNING id, name, site_admin, created_at`,
		name, hashToken(token), true, now()).Scan(&u.ID, &u.Name, &u.SiteAdmin, timeColumn{&u.CreatedAt})
	if err != nil {
		return User{}, fmt.Errorf("ensuring admin %q: %w", name, classify(err))
	}
	return u, nil
}

// UserByToken returns the user whose token is token, or an error wrapping ErrNotFound.
func (s *Store) UserByToken(ctx context.Context, token string) (User, error) {
	if token == "" {
		return User{}, fmt.Errorf("looking up token: %w", ErrNotFound)
	}
	u := User{}
	err := s.queryRow(ctx, s.db, "SELECT id, name, site_admin, created_at FROM users WHERE token_hash = ?",
		hashToken(token)).Scan(&u.ID, &u.Name, &u.SiteAdmin, timeColumn{&u.CreatedAt})
	if err != nil {
		return User{}, fmt.Errorf("looking up token: %w", classify(err))
	}
	return u, nil
}

// GetUser returns the user called name, or an error wrapping ErrNotFound.
func (s *Store) GetUser(ctx context.Context, name string) (User, error) {
	u, err := s.userByName(ctx, s.db, name)
	if err != nil {
		return User{}, fmt.Errorf("getting user %q: %w", name, err)
	}
	return u, nil
}

// userByName looks a user up inside or outside a transaction; a missing user is ErrNotFound.
func (s *Store) userByName(ctx context.Context, q queryer, name string) (User, error) {
	u := User{}
	err := s.queryRow(ctx, q, "SELECT id, name, site_admin, created_at FROM users WHERE name = ?", name).
		Scan(&u.ID, &u.Name, &u.SiteAdmin, timeColumn{&u.CreatedAt})
	if err != nil {
		return User{}, classify(err)
	}
	return u, nil
}
