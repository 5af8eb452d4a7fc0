package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// LinkIdentity lets the provider's user subject (its numeric id; login is its name, for
// people) sign in as user userID, replacing an earlier link of the same provider user.
func (s *Store) LinkIdentity(ctx context.Context, userID int64, provider, subject, login string) error {
	if provider == "" || subject == "" {
		return fmt.Errorf("linking identity: %w: empty provider or subject", ErrInvalid)
	}
	return s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := s.exec(ctx, tx, "DELETE FROM identities WHERE provider = ? AND subject = ?", provider, subject); err != nil {
			return fmt.Errorf("linking identity: %w", err)
		}
		if _, err := s.exec(ctx, tx, `INSERT INTO identities (provider, subject, user_id, login, created_at)
VALUES (?, ?, ?, ?, ?)`, provider, subject, userID, login, now()); err != nil {
			return fmt.Errorf("linking identity: %w", classify(err))
		}
		return nil
	})
}

// UserByIdentity returns the user the provider's user subject is linked to, or an error
// wrapping ErrNotFound (also for a disabled user).
func (s *Store) UserByIdentity(ctx context.Context, provider, subject string) (User, error) {
	var id int64
	err := s.queryRow(ctx, s.db, "SELECT user_id FROM identities WHERE provider = ? AND subject = ?", provider, subject).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return User{}, fmt.Errorf("identity %s:%s: %w", provider, subject, ErrNotFound)
	}
	if err != nil {
		return User{}, fmt.Errorf("looking up identity: %w", err)
	}
	u, err := scanUser(s.queryRow(ctx, s.db, "SELECT "+userColumns+" WHERE id = ? AND NOT disabled", id))
	if err != nil {
		return User{}, fmt.Errorf("looking up identity: %w", err)
	}
	return u, nil
}
