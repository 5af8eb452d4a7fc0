package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
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
	// Disabled users have no working token; enabling them again gives them none either.
	Disabled bool `json:"disabled"`
	// TokenCreatedAt is when the user's token was made (nil: before this was recorded, or no
	// token since the user was disabled); TokenLastUsedAt when it last authenticated a call,
	// to a minute or so (nil: never).
	TokenCreatedAt  *time.Time `json:"token_created_at"`
	TokenLastUsedAt *time.Time `json:"token_last_used_at"`
}

// userFields are the columns scanUser reads, in its order; userColumns reads them from users.
const (
	userFields  = "id, name, site_admin, created_at, disabled, token_created_at, token_last_used_at"
	userColumns = userFields + " FROM users"
)

func scanUser(row rowScanner) (User, error) {
	var (
		u                 User
		created, lastUsed nullTime
	)
	err := row.Scan(&u.ID, &u.Name, &u.SiteAdmin, timeColumn{&u.CreatedAt}, &u.Disabled, &created, &lastUsed)
	if err != nil {
		return User{}, classify(err)
	}
	u.TokenCreatedAt, u.TokenLastUsedAt = created.ptr(), lastUsed.ptr()
	return u, nil
}

// nullTime scans a timestamp that may be NULL.
type nullTime struct {
	t     time.Time
	valid bool
}

// Scan implements sql.Scanner.
func (n *nullTime) Scan(src any) error {
	if src == nil {
		n.valid = false
		return nil
	}
	n.valid = true
	return timeColumn{&n.t}.Scan(src)
}

func (n nullTime) ptr() *time.Time {
	if !n.valid {
		return nil
	}
	t := n.t
	return &t
}

// revokedHash is what replaces the token hash of a disabled user: no token hashes to it
// (hashes are hex), so no old token works again, and it is unique like the column.
func revokedHash() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generating revoked marker: %w", err)
	}
	return "revoked:" + hex.EncodeToString(b), nil
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
	u.TokenCreatedAt = &u.CreatedAt
	err = s.queryRow(ctx, s.db,
		"INSERT INTO users (name, token_hash, site_admin, created_at, token_created_at) VALUES (?, ?, ?, ?, ?) RETURNING id",
		u.Name, hashToken(token), u.SiteAdmin, u.CreatedAt, u.CreatedAt).Scan(&u.ID)
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
	// The token's dates are kept when it is the one already stored: the admin's token is set
	// at every start, and is not new each time.
	t := now()
	u, err := scanUser(s.queryRow(ctx, s.db, `INSERT INTO users (name, token_hash, site_admin, created_at, token_created_at) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (name) DO UPDATE SET token_hash = excluded.token_hash, site_admin = excluded.site_admin, disabled = FALSE,
token_created_at = CASE WHEN users.token_hash = excluded.token_hash THEN users.token_created_at ELSE excluded.token_created_at END,
token_last_used_at = CASE WHEN users.token_hash = excluded.token_hash THEN users.token_last_used_at ELSE NULL END
RETURNING `+userFields,
		name, hashToken(token), true, t, t))
	if err != nil {
		return User{}, fmt.Errorf("ensuring admin %q: %w", name, classify(err))
	}
	return u, nil
}

// UserByToken returns the user whose token is token, or an error wrapping ErrNotFound (also
// for a disabled user).
func (s *Store) UserByToken(ctx context.Context, token string) (User, error) {
	if token == "" {
		return User{}, fmt.Errorf("looking up token: %w", ErrNotFound)
	}
	u, err := scanUser(s.queryRow(ctx, s.db, "SELECT "+userColumns+" WHERE token_hash = ? AND NOT disabled",
		hashToken(token)))
	if err != nil {
		return User{}, fmt.Errorf("looking up token: %w", err)
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
	return scanUser(s.queryRow(ctx, q, "SELECT "+userColumns+" WHERE name = ?", name))
}

// TouchToken records that the token of user id was used at, unless a use within every before
// was already recorded: callers may call it on every request, and the database sees at most
// one write per token per every. It answers whether it wrote.
func (s *Store) TouchToken(ctx context.Context, id int64, at time.Time, every time.Duration) (bool, error) {
	at = at.UTC().Truncate(time.Microsecond)
	res, err := s.exec(ctx, s.db, `UPDATE users SET token_last_used_at = ?
WHERE id = ? AND (token_last_used_at IS NULL OR token_last_used_at <= ?)`, at, id, at.Add(-every))
	if err != nil {
		return false, fmt.Errorf("recording token use of user %d: %w", id, classify(err))
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("recording token use of user %d: %w", id, err)
	}
	return n > 0, nil
}

// RotateToken gives the user called name a new token and returns it; the old one stops
// working at once. The error wraps ErrNotFound for no such user and ErrDisabled for a
// disabled one (enable the user first).
func (s *Store) RotateToken(ctx context.Context, name string) (User, string, error) {
	token, err := NewToken()
	if err != nil {
		return User{}, "", fmt.Errorf("rotating token of %q: %w", name, err)
	}
	var u User
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		u, err = s.userByName(ctx, tx, name)
		if err != nil {
			return err
		}
		if u.Disabled {
			return ErrDisabled
		}
		t := now()
		_, err = s.exec(ctx, tx, "UPDATE users SET token_hash = ?, token_created_at = ?, token_last_used_at = NULL WHERE id = ?",
			hashToken(token), t, u.ID)
		u.TokenCreatedAt, u.TokenLastUsedAt = &t, nil
		return classify(err)
	})
	if err != nil {
		return User{}, "", fmt.Errorf("rotating token of %q: %w", name, err)
	}
	return u, token, nil
}

// SetDisabled disables or enables the user called name and returns it. Disabling revokes the
// user's token for good: enabling again leaves the user without one until RotateToken makes a
// new one. Site admins cannot be disabled (ErrInvalid): their token is the stack's.
func (s *Store) SetDisabled(ctx context.Context, name string, disabled bool) (User, error) {
	var u User
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		u, err = s.userByName(ctx, tx, name)
		if err != nil {
			return err
		}
		if u.SiteAdmin && disabled {
			return fmt.Errorf("%w: a site admin cannot be disabled; change SLIPWAY_ADMIN_TOKEN instead", ErrInvalid)
		}
		if !disabled {
			_, err = s.exec(ctx, tx, "UPDATE users SET disabled = FALSE WHERE id = ?", u.ID)
			u.Disabled = false
			return classify(err)
		}
		revoked, err := revokedHash()
		if err != nil {
			return err
		}
		_, err = s.exec(ctx, tx, "UPDATE users SET disabled = TRUE, token_hash = ?, token_created_at = NULL, token_last_used_at = NULL WHERE id = ?",
			revoked, u.ID)
		u.Disabled, u.TokenCreatedAt, u.TokenLastUsedAt = true, nil, nil
		return classify(err)
	})
	if err != nil {
		return User{}, fmt.Errorf("setting user %q disabled=%t: %w", name, disabled, err)
	}
	return u, nil
}
