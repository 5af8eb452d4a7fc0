package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Session is a console sign-in. Its id is the cookie's value and is never stored: the store
// keeps its hash, as it does for tokens.
type Session struct {
	User      User
	CSRFToken string
	CreatedAt time.Time
	ExpiresAt time.Time
	// OAuthState, OAuthVerifier and OAuthTarget hold an OAuth authorization the session
	// started and has not finished; empty when there is none.
	OAuthState    string
	OAuthVerifier string
	OAuthTarget   string
}

// CreateSession signs userID in until expires and returns the new session id, the secret the
// cookie carries (read the session with SessionByID). Expired sessions of every user are
// forgotten on the way.
func (s *Store) CreateSession(ctx context.Context, userID int64, expires time.Time) (string, error) {
	id, err := NewToken()
	if err != nil {
		return "", err
	}
	csrf, err := NewToken()
	if err != nil {
		return "", err
	}
	created := now()
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := s.exec(ctx, tx, "DELETE FROM sessions WHERE expires_at < ?", created); err != nil {
			return fmt.Errorf("forgetting expired sessions: %w", err)
		}
		if _, err := s.exec(ctx, tx, `INSERT INTO sessions (id_hash, user_id, csrf_token, created_at, expires_at)
VALUES (?, ?, ?, ?, ?)`, hashToken(id), userID, csrf, created, expires.UTC()); err != nil {
			return fmt.Errorf("creating session: %w", classify(err))
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	return id, nil
}

// SessionByID returns the unexpired session whose id is id, with its user, or an error
// wrapping ErrNotFound (also when the user is disabled, or their token was rotated after the
// session began).
func (s *Store) SessionByID(ctx context.Context, id string) (Session, error) {
	if id == "" {
		return Session{}, fmt.Errorf("looking up session: %w", ErrNotFound)
	}
	var (
		sess              Session
		created, lastUsed nullTime
	)
	u := &sess.User
	err := s.queryRow(ctx, s.db, `SELECT u.id, u.name, u.site_admin, u.created_at, u.disabled, u.token_created_at,
	u.token_last_used_at, s.csrf_token, s.created_at, s.expires_at, s.oauth_state, s.oauth_verifier, s.oauth_target
FROM sessions s JOIN users u ON u.id = s.user_id
WHERE s.id_hash = ? AND s.expires_at > ? AND NOT u.disabled`, hashToken(id), now()).Scan(
		&u.ID, &u.Name, &u.SiteAdmin, timeColumn{&u.CreatedAt}, &u.Disabled, &created, &lastUsed,
		&sess.CSRFToken, timeColumn{&sess.CreatedAt}, timeColumn{&sess.ExpiresAt},
		&sess.OAuthState, &sess.OAuthVerifier, &sess.OAuthTarget)
	if errors.Is(err, sql.ErrNoRows) {
		return Session{}, fmt.Errorf("looking up session: %w", ErrNotFound)
	}
	if err != nil {
		return Session{}, fmt.Errorf("looking up session: %w", err)
	}
	u.TokenCreatedAt, u.TokenLastUsedAt = created.ptr(), lastUsed.ptr()
	// Rotating a user's token (a leaked token, a person who left) signs out the sessions
	// started before it, whichever way they signed in.
	if u.TokenCreatedAt != nil && sess.CreatedAt.Before(*u.TokenCreatedAt) {
		return Session{}, fmt.Errorf("looking up session: ended by a token rotation: %w", ErrNotFound)
	}
	return sess, nil
}

// SetSessionOAuth records (or, with empty values, clears) the OAuth authorization session id
// has in flight.
func (s *Store) SetSessionOAuth(ctx context.Context, id, state, verifier, target string) error {
	res, err := s.exec(ctx, s.db, `UPDATE sessions SET oauth_state = ?, oauth_verifier = ?, oauth_target = ?
WHERE id_hash = ?`, state, verifier, target, hashToken(id))
	if err != nil {
		return fmt.Errorf("recording oauth state: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("recording oauth state: session %w", ErrNotFound)
	}
	return nil
}

// DeleteSession signs session id out. Deleting a session that is not there is not an error:
// signing out twice ends the same way.
func (s *Store) DeleteSession(ctx context.Context, id string) error {
	if _, err := s.exec(ctx, s.db, "DELETE FROM sessions WHERE id_hash = ?", hashToken(id)); err != nil {
		return fmt.Errorf("deleting session: %w", err)
	}
	return nil
}
