package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Secret is a namespace's build secret as it may be shown: its name and who set it when.
// The value is write-only: the store returns it only to SecretValues, for a build.
type Secret struct {
	Namespace string    `json:"namespace"`
	Name      string    `json:"name"`
	CreatedBy string    `json:"created_by"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedBy string    `json:"updated_by"`
	UpdatedAt time.Time `json:"updated_at"`
}

// secretValueAAD binds a sealed secret value to its row: the namespace by id (a namespace
// deleted and made again under its name does not open the old values) and the name.
func secretValueAAD(nsID int64, name string) string {
	return "build-secret:" + strconv.FormatInt(nsID, 10) + "/" + name
}

// PutSecret sets secret name of namespace ns to value, sealed at rest with the store's
// secret box, and reports whether it was created (false: replaced). The caller checks the
// name and the value's size. The error wraps ErrNotFound when there is no such namespace.
func (s *Store) PutSecret(ctx context.Context, ns, name string, value []byte, by string) (Secret, bool, error) {
	if s.box == nil {
		return Secret{}, false, fmt.Errorf("setting secret %s: secrets are sealed at rest and this store was opened without a secret box", name)
	}
	var (
		out     Secret
		created bool
	)
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		n, err := s.namespaceByName(ctx, tx, ns)
		if err != nil {
			return fmt.Errorf("namespace %s: %w", ns, err)
		}
		sealed, err := s.box.Seal(value, secretValueAAD(n.ID, name))
		if err != nil {
			return fmt.Errorf("sealing: %w", err)
		}
		at := now()
		old, err := scanSecret(s.queryRow(ctx, tx, "SELECT "+secretColumns+" WHERE s.namespace_id = ? AND s.name = ?", n.ID, name))
		switch {
		case err == nil:
			if !at.After(old.UpdatedAt) {
				at = old.UpdatedAt.Add(time.Microsecond)
			}
			_, err = s.exec(ctx, tx, "UPDATE secrets SET value_sealed = ?, updated_by = ?, updated_at = ? WHERE namespace_id = ? AND name = ?",
				sealed, by, at, n.ID, name)
			out = old
			out.UpdatedBy, out.UpdatedAt = by, at
		case errors.Is(err, ErrNotFound):
			created = true
			_, err = s.exec(ctx, tx, `INSERT INTO secrets (namespace_id, name, value_sealed, created_by, created_at, updated_by, updated_at)
VALUES (?, ?, ?, ?, ?, ?, ?)`, n.ID, name, sealed, by, at, by, at)
			out = Secret{Namespace: ns, Name: name, CreatedBy: by, CreatedAt: at, UpdatedBy: by, UpdatedAt: at}
		}
		return classify(err)
	})
	if err != nil {
		return Secret{}, false, fmt.Errorf("setting secret %s of %s: %w", name, ns, err)
	}
	return out, created, nil
}

const secretColumns = `n.name, s.name, s.created_by, s.created_at, s.updated_by, s.updated_at
FROM secrets s JOIN namespaces n ON n.id = s.namespace_id`

func scanSecret(row rowScanner) (Secret, error) {
	var sc Secret
	err := row.Scan(&sc.Namespace, &sc.Name, &sc.CreatedBy, timeColumn{&sc.CreatedAt}, &sc.UpdatedBy, timeColumn{&sc.UpdatedAt})
	return sc, classify(err)
}

// ListSecrets returns the secrets of namespace ns by name, without their values.
func (s *Store) ListSecrets(ctx context.Context, ns string) ([]Secret, error) {
	rows, err := s.query(ctx, s.db, "SELECT "+secretColumns+" WHERE n.name = ? ORDER BY s.name", ns)
	if err != nil {
		return nil, fmt.Errorf("listing secrets of %s: %w", ns, classify(err))
	}
	defer rows.Close()
	out := []Secret{}
	for rows.Next() {
		sc, err := scanSecret(rows)
		if err != nil {
			return nil, fmt.Errorf("listing secrets of %s: %w", ns, err)
		}
		out = append(out, sc)
	}
	return out, rows.Err()
}

// MissingSecrets returns those of names that namespace ns holds no secret under, in the
// order given.
func (s *Store) MissingSecrets(ctx context.Context, ns string, names []string) ([]string, error) {
	if len(names) == 0 {
		return nil, nil
	}
	have, err := s.ListSecrets(ctx, ns)
	if err != nil {
		return nil, err
	}
	set := map[string]bool{}
	for _, sc := range have {
		set[sc.Name] = true
	}
	var missing []string
	for _, n := range names {
		if !set[n] {
			missing = append(missing, n)
		}
	}
	return missing, nil
}

// DeleteSecret removes secret name of namespace ns. Rules that name it keep the name, and
// their builds fail at the build step, naming it. The error wraps ErrNotFound when there is
// no such secret.
func (s *Store) DeleteSecret(ctx context.Context, ns, name string) error {
	res, err := s.exec(ctx, s.db, "DELETE FROM secrets WHERE name = ? AND namespace_id = (SELECT id FROM namespaces WHERE name = ?)", name, ns)
	if err != nil {
		return fmt.Errorf("deleting secret %s of %s: %w", name, ns, classify(err))
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return fmt.Errorf("deleting secret %s of %s: %w", name, ns, ErrNotFound)
	}
	return nil
}

// SecretValues opens the values of secrets names of namespace ns, for the one build that
// hands them to BuildKit. A name the namespace does not hold is an error wrapping ErrNotFound
// that names it; no error holds a value.
func (s *Store) SecretValues(ctx context.Context, ns string, names []string) (map[string][]byte, error) {
	if s.box == nil {
		return nil, fmt.Errorf("reading secrets of %s: this store was opened without a secret box", ns)
	}
	n, err := s.namespaceByName(ctx, s.db, ns)
	if err != nil {
		return nil, fmt.Errorf("reading secrets of %s: namespace: %w", ns, err)
	}
	out := make(map[string][]byte, len(names))
	for _, name := range names {
		var sealed string
		err := s.queryRow(ctx, s.db, "SELECT value_sealed FROM secrets WHERE namespace_id = ? AND name = ?", n.ID, name).Scan(&sealed)
		if err != nil {
			return nil, fmt.Errorf("secret %s of namespace %s: %w", name, ns, classify(err))
		}
		v, err := s.box.Open(sealed, secretValueAAD(n.ID, name))
		if err != nil {
			return nil, fmt.Errorf("opening secret %s of namespace %s (was SLIPWAY_SECRET_KEY changed?): %w", name, ns, err)
		}
		out[name] = v
	}
	return out, nil
}
