package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"fmt"
	"time"
)

// Account is a GitHub or GitLab account connected to a namespace: its token lets Slipway list
// repositories, manage webhooks, post commit statuses and clone private repositories.
type Account struct {
	// ID is "a-" and 12 random base32 characters; NewAccountID makes one.
	ID        string `json:"id"`
	Namespace string `json:"namespace"`
	Provider  string `json:"provider"`
	// Login is the provider's name for the account, as its API reported it when connected.
	Login     string    `json:"login"`
	CreatedBy string    `json:"created_by"`
	CreatedAt time.Time `json:"created_at"`
	// TokenSealed is the token encrypted by the caller (package secretbox), bound to ID. The
	// store never sees the token itself.
	TokenSealed string `json:"-"`
	// RefreshSealed is the OAuth refresh token, sealed like TokenSealed (bound to ID +
	// "/refresh"); empty for a pasted token.
	RefreshSealed string `json:"-"`
	// TokenExpiresAt is when the token expires (GitLab's OAuth tokens do); nil for never.
	TokenExpiresAt *time.Time `json:"token_expires_at,omitempty"`
}

// NewAccountID returns a fresh account id. The caller makes it before CreateAccount so the
// sealed token can be bound to it.
func NewAccountID() (string, error) {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generating account id: %w", err)
	}
	return "a-" + ruleIDEncoding.EncodeToString(b)[:12], nil
}

const accountColumns = `a.id, n.name, a.provider, a.login, a.created_by, a.created_at, a.token_sealed,
	a.refresh_sealed, a.token_expires_at
FROM accounts a JOIN namespaces n ON n.id = a.namespace_id`

func scanAccount(row rowScanner) (Account, error) {
	var (
		a       Account
		expires nullTime
	)
	err := row.Scan(&a.ID, &a.Namespace, &a.Provider, &a.Login, &a.CreatedBy, timeColumn{&a.CreatedAt}, &a.TokenSealed,
		&a.RefreshSealed, &expires)
	a.TokenExpiresAt = expires.ptr()
	return a, classify(err)
}

// CreateAccount stores a in namespace a.Namespace and fills CreatedAt. The error wraps
// ErrNotFound when there is no such namespace.
func (s *Store) CreateAccount(ctx context.Context, a Account) (Account, error) {
	a.CreatedAt = now()
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		ns, err := s.namespaceByName(ctx, tx, a.Namespace)
		if err != nil {
			return fmt.Errorf("namespace %s: %w", a.Namespace, err)
		}
		_, err = s.exec(ctx, tx, `INSERT INTO accounts (id, namespace_id, provider, login, token_sealed, refresh_sealed,
	token_expires_at, created_by, created_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, a.ID, ns.ID, a.Provider, a.Login, a.TokenSealed, a.RefreshSealed, utcPtr(a.TokenExpiresAt),
			a.CreatedBy, a.CreatedAt)
		return classify(err)
	})
	if err != nil {
		return Account{}, fmt.Errorf("creating account: %w", err)
	}
	return a, nil
}

// GetAccount returns the account id, whichever namespace holds it; callers reaching it through
// a namespace's URL check Namespace.
func (s *Store) GetAccount(ctx context.Context, id string) (Account, error) {
	a, err := scanAccount(s.queryRow(ctx, s.db, "SELECT "+accountColumns+" WHERE a.id = ?", id))
	if err != nil {
		return Account{}, fmt.Errorf("getting account %q: %w", id, err)
	}
	return a, nil
}

// ListAccounts returns the accounts of namespace ns, oldest first.
func (s *Store) ListAccounts(ctx context.Context, ns string) ([]Account, error) {
	rows, err := s.query(ctx, s.db, "SELECT "+accountColumns+" WHERE n.name = ? ORDER BY a.seq", ns)
	if err != nil {
		return nil, fmt.Errorf("listing accounts of %s: %w", ns, classify(err))
	}
	defer rows.Close()
	out := []Account{}
	for rows.Next() {
		a, err := scanAccount(rows)
		if err != nil {
			return nil, fmt.Errorf("listing accounts of %s: %w", ns, err)
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// DeleteAccount removes the account id. Rules that named it keep the reference and their
// builds of private repositories fail, saying the account is gone.
func (s *Store) DeleteAccount(ctx context.Context, id string) error {
	res, err := s.exec(ctx, s.db, "DELETE FROM accounts WHERE id = ?", id)
	if err != nil {
		return fmt.Errorf("deleting account %q: %w", id, classify(err))
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return fmt.Errorf("deleting account %q: %w", id, ErrNotFound)
	}
	return nil
}

// ReplaceAccountToken gives account a.ID a new token: a.Login, a.TokenSealed, a.RefreshSealed
// and a.TokenExpiresAt replace the stored ones, and the id stays, so the rules that name it
// keep working. With ifRefresh set, it replaces them only while the stored refresh token is
// still ifRefresh, and reports false when another process refreshed it first. The error wraps
// ErrNotFound when there is no such account.
func (s *Store) ReplaceAccountToken(ctx context.Context, a Account, ifRefresh string) (bool, error) {
	q := "UPDATE accounts SET login = ?, token_sealed = ?, refresh_sealed = ?, token_expires_at = ? WHERE id = ?"
	args := []any{a.Login, a.TokenSealed, a.RefreshSealed, utcPtr(a.TokenExpiresAt), a.ID}
	if ifRefresh != "" {
		q += " AND refresh_sealed = ?"
		args = append(args, ifRefresh)
	}
	res, err := s.exec(ctx, s.db, q, args...)
	if err != nil {
		return false, fmt.Errorf("replacing the token of account %q: %w", a.ID, classify(err))
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		if ifRefresh != "" {
			if _, err := s.GetAccount(ctx, a.ID); err != nil {
				return false, err
			}
			return false, nil
		}
		return false, fmt.Errorf("replacing the token of account %q: %w", a.ID, ErrNotFound)
	}
	return true, nil
}

// utcPtr is t in UTC for a nullable timestamp column, or nil.
func utcPtr(t *time.Time) any {
	if t == nil {
		return nil
	}
	return t.UTC()
}

// SetRuleHook records the webhook a rule manages on its source repository.
func (s *Store) SetRuleHook(ctx context.Context, ruleID string, h RuleHook) error {
	res, err := s.exec(ctx, s.db, "UPDATE rules SET hook_id = ?, hook_state = ? WHERE id = ?", h.ID, h.State, ruleID)
	if err != nil {
		return fmt.Errorf("recording hook of rule %q: %w", ruleID, classify(err))
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return fmt.Errorf("recording hook of rule %q: %w", ruleID, ErrNotFound)
	}
	return nil
}
