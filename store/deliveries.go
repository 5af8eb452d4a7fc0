package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Delivery is a webhook event that started a build.
type Delivery struct {
	RuleID    string
	EventKey  string
	BuildID   string
	CreatedAt time.Time
}

// FindDelivery returns the delivery of ruleID's event key recorded after since, or an error
// wrapping ErrNotFound.
func (s *Store) FindDelivery(ctx context.Context, ruleID, key string, since time.Time) (Delivery, error) {
	d := Delivery{RuleID: ruleID, EventKey: key}
	err := s.queryRow(ctx, s.db, `SELECT build_id, created_at FROM deliveries
WHERE rule_id = ? AND event_key = ? AND created_at >= ?`, ruleID, key, since.UTC()).Scan(&d.BuildID, timeColumn{&d.CreatedAt})
	if errors.Is(err, sql.ErrNoRows) {
		return Delivery{}, fmt.Errorf("delivery %q of rule %q: %w", key, ruleID, ErrNotFound)
	}
	if err != nil {
		return Delivery{}, fmt.Errorf("reading delivery: %w", err)
	}
	return d, nil
}

// RecordDelivery remembers that d's event started d.BuildID, replacing a record older than
// since, and forgets every delivery recorded before since. A record of the same event made
// after since is kept: the first build stays the answer.
func (s *Store) RecordDelivery(ctx context.Context, d Delivery, since time.Time) error {
	if d.CreatedAt.IsZero() {
		d.CreatedAt = now()
	}
	return s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := s.exec(ctx, tx, "DELETE FROM deliveries WHERE created_at < ?", since.UTC()); err != nil {
			return fmt.Errorf("forgetting old deliveries: %w", err)
		}
		if _, err := s.exec(ctx, tx, `INSERT INTO deliveries (rule_id, event_key, build_id, created_at) VALUES (?, ?, ?, ?)
ON CONFLICT (rule_id, event_key) DO NOTHING`, d.RuleID, d.EventKey, d.BuildID, d.CreatedAt.UTC()); err != nil {
			return fmt.Errorf("recording delivery: %w", err)
		}
		return nil
	})
}

// RecordTagDeletion remembers, under key, the generation of a rule's tag after a deletion of
// it: the builds of the tag pushed again are known by it, so the tag builds again even at the
// commit it had. A later deletion replaces it; it expires with the deliveries.
func (s *Store) RecordTagDeletion(ctx context.Context, ruleID, key, generation string) error {
	if _, err := s.exec(ctx, s.db, `INSERT INTO deliveries (rule_id, event_key, build_id, created_at) VALUES (?, ?, ?, ?)
ON CONFLICT (rule_id, event_key) DO UPDATE SET build_id = excluded.build_id, created_at = excluded.created_at`,
		ruleID, key, generation, now().UTC()); err != nil {
		return fmt.Errorf("recording tag deletion: %w", err)
	}
	return nil
}
