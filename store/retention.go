package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/slipway-dev/slipway/build"
)

// RetentionPolicy is an image repository's retention policy as stored.
type RetentionPolicy struct {
	Namespace  string `json:"namespace"`
	Repository string `json:"repository"`
	build.RetentionPolicy
	UpdatedAt time.Time `json:"updated_at"`
}

// SetRetention creates or replaces the retention policy of repository ns/repo. The policy is
// checked by its caller (build.RetentionPolicy.Validate); the store keeps what it is given.
func (s *Store) SetRetention(ctx context.Context, ns, repo string, p build.RetentionPolicy) (RetentionPolicy, error) {
	rules, err := json.Marshal(p.Rules)
	if err != nil {
		return RetentionPolicy{}, fmt.Errorf("encoding retention rules: %w", err)
	}
	out := RetentionPolicy{Namespace: ns, Repository: repo, RetentionPolicy: p, UpdatedAt: now()}
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		r, err := s.repositoryByName(ctx, tx, ns, repo)
		if err != nil {
			return fmt.Errorf("repository: %w", err)
		}
		_, err = s.exec(ctx, tx, `INSERT INTO retention_policies (repository_id, rules, every, updated_at) VALUES (?, ?, ?, ?)
ON CONFLICT (repository_id) DO UPDATE SET rules = excluded.rules, every = excluded.every, updated_at = excluded.updated_at`,
			r.ID, string(rules), p.Every, out.UpdatedAt)
		return classify(err)
	})
	if err != nil {
		return RetentionPolicy{}, fmt.Errorf("setting the retention policy of %s/%s: %w", ns, repo, err)
	}
	return out, nil
}

// GetRetention returns the retention policy of ns/repo, or an error wrapping ErrNotFound when
// the repository has none (or does not exist).
func (s *Store) GetRetention(ctx context.Context, ns, repo string) (RetentionPolicy, error) {
	out := RetentionPolicy{Namespace: ns, Repository: repo}
	var rules string
	err := s.queryRow(ctx, s.db, `SELECT p.rules, p.every, p.updated_at FROM retention_policies p
JOIN repositories r ON r.id = p.repository_id
JOIN namespaces n ON n.id = r.namespace_id
WHERE n.name = ? AND r.name = ?`, ns, repo).Scan(&rules, &out.Every, timeColumn{&out.UpdatedAt})
	if errors.Is(err, sql.ErrNoRows) {
		return RetentionPolicy{}, fmt.Errorf("retention policy of %s/%s: %w", ns, repo, ErrNotFound)
	}
	if err != nil {
		return RetentionPolicy{}, fmt.Errorf("reading the retention policy of %s/%s: %w", ns, repo, err)
	}
	if err := json.Unmarshal([]byte(rules), &out.Rules); err != nil {
		return RetentionPolicy{}, fmt.Errorf("decoding the retention policy of %s/%s: %w", ns, repo, err)
	}
	return out, nil
}

// DeleteRetention removes the retention policy of ns/repo; an error wrapping ErrNotFound
// says it had none.
func (s *Store) DeleteRetention(ctx context.Context, ns, repo string) error {
	res, err := s.exec(ctx, s.db, `DELETE FROM retention_policies WHERE repository_id =
(SELECT r.id FROM repositories r JOIN namespaces n ON n.id = r.namespace_id WHERE n.name = ? AND r.name = ?)`, ns, repo)
	if err != nil {
		return fmt.Errorf("deleting the retention policy of %s/%s: %w", ns, repo, err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return fmt.Errorf("retention policy of %s/%s: %w", ns, repo, ErrNotFound)
	}
	return nil
}

// ListRetention returns every retention policy, for reconciling the Schedules with them.
func (s *Store) ListRetention(ctx context.Context) ([]RetentionPolicy, error) {
	rows, err := s.query(ctx, s.db, `SELECT n.name, r.name, p.rules, p.every, p.updated_at FROM retention_policies p
JOIN repositories r ON r.id = p.repository_id
JOIN namespaces n ON n.id = r.namespace_id
ORDER BY n.name, r.name`)
	if err != nil {
		return nil, fmt.Errorf("listing retention policies: %w", err)
	}
	defer rows.Close()
	out := []RetentionPolicy{}
	for rows.Next() {
		var p RetentionPolicy
		var rules string
		if err := rows.Scan(&p.Namespace, &p.Repository, &rules, &p.Every, timeColumn{&p.UpdatedAt}); err != nil {
			return nil, fmt.Errorf("reading retention policy: %w", err)
		}
		if err := json.Unmarshal([]byte(rules), &p.Rules); err != nil {
			return nil, fmt.Errorf("decoding the retention policy of %s/%s: %w", p.Namespace, p.Repository, err)
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// RuleTags is what of a build rule decides which tags it keeps in use: the registry cache,
// latest and the semver tags.
type RuleTags struct {
	ID        string
	TagLatest string
	Semver    bool
	Cache     string
}

// RetentionRules returns what the rules of ns/repo tag, for retention to keep. It reads no
// sealed column, so a reader without the secret box (a worker) can call it.
func (s *Store) RetentionRules(ctx context.Context, ns, repo string) ([]RuleTags, error) {
	rows, err := s.query(ctx, s.db, `SELECT ru.id, ru.tag_latest, ru.semver, ru.cache FROM rules ru
JOIN repositories r ON r.id = ru.repository_id
JOIN namespaces n ON n.id = r.namespace_id
WHERE n.name = ? AND r.name = ? ORDER BY ru.seq`, ns, repo)
	if err != nil {
		return nil, fmt.Errorf("listing the rules of %s/%s: %w", ns, repo, err)
	}
	defer rows.Close()
	out := []RuleTags{}
	for rows.Next() {
		var r RuleTags
		if err := rows.Scan(&r.ID, &r.TagLatest, &r.Semver, &r.Cache); err != nil {
			return nil, fmt.Errorf("reading a rule of %s/%s: %w", ns, repo, err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}
