package store

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
)

// migrationFiles holds the schema, one folder per dialect. Both folders hold the same
// versions: a migration that needs no dialect-specific SQL is still written twice, so
// reading one folder tells the whole story of that database.
//
//go:embed migrations/sqlite/*.sql migrations/postgres/*.sql
var migrationFiles embed.FS

// goSteps are the migrations done in Go, in place of their (comment-only) SQL files, because
// they need the secret box.
var goSteps = map[int]func(s *Store, ctx context.Context, tx *sql.Tx) error{
	5: (*Store).sealWebhookSecrets,
}

// migration is one versioned schema change, from a file named NNNN_description.sql.
type migration struct {
	version int
	name    string
	sql     string
}

// migrationsDir is the folder of migrationFiles that holds d's migrations.
func migrationsDir(d dialect) string {
	if d == dialectPostgres {
		return "migrations/postgres"
	}
	return "migrations/sqlite"
}

// loadMigrations reads the migrations of d, ordered by version.
func loadMigrations(d dialect) ([]migration, error) {
	dir := migrationsDir(d)
	entries, err := fs.ReadDir(migrationFiles, dir)
	if err != nil {
		return nil, fmt.Errorf("reading migrations: %w", err)
	}
	var ms []migration
	seen := map[int]string{}
	for _, e := range entries {
		prefix, _, ok := strings.Cut(e.Name(), "_")
		version, err := strconv.Atoi(prefix)
		if !ok || err != nil || version <= 0 {
			return nil, fmt.Errorf("reading migrations: file %q is not named NNNN_description.sql", e.Name())
		}
		if other, dup := seen[version]; dup {
			return nil, fmt.Errorf("reading migrations: %q and %q share version %d", other, e.Name(), version)
		}
		seen[version] = e.Name()
		body, err := fs.ReadFile(migrationFiles, path.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("reading migration %q: %w", e.Name(), err)
		}
		ms = append(ms, migration{version: version, name: e.Name(), sql: string(body)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	return ms, nil
}

// migrate applies, in one transaction, every migration the database has not recorded in
// schema_migrations. A failing migration leaves the schema as it was.
func (s *Store) migrate(ctx context.Context) error {
	ms, err := loadMigrations(s.dialect)
	if err != nil {
		return err
	}
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		if s.dialect == dialectPostgres {
			// Two gateways starting at once against one database take turns; the
			// second then finds everything applied. The key is arbitrary but fixed.
			if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock(7355608101)"); err != nil {
				return fmt.Errorf("locking schema: %w", err)
			}
		}
		// SQLite's transaction already holds the write lock (BEGIN IMMEDIATE).
		timestamp := "TIMESTAMP"
		if s.dialect == dialectPostgres {
			timestamp = "TIMESTAMPTZ"
		}
		if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
	version    INTEGER PRIMARY KEY,
	applied_at `+timestamp+` NOT NULL
)`); err != nil {
			return fmt.Errorf("creating schema_migrations: %w", err)
		}
		applied := map[int]bool{}
		rows, err := tx.QueryContext(ctx, "SELECT version FROM schema_migrations")
		if err != nil {
			return fmt.Errorf("reading schema_migrations: %w", err)
		}
		for rows.Next() {
			var v int
			if err := rows.Scan(&v); err != nil {
				rows.Close()
				return fmt.Errorf("reading schema_migrations: %w", err)
			}
			applied[v] = true
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("reading schema_migrations: %w", err)
		}
		for _, m := range ms {
			if applied[m.version] {
				continue
			}
			if step, ok := goSteps[m.version]; ok {
				if s.box == nil {
					// Left for the next Open with the key; the step only touches values it
					// has not sealed yet, so running after later migrations is fine.
					continue
				}
				if err := step(s, ctx, tx); err != nil {
					return fmt.Errorf("applying migration %s: %w", m.name, err)
				}
			} else if _, err := tx.ExecContext(ctx, m.sql); err != nil {
				return fmt.Errorf("applying migration %s: %w", m.name, err)
			}
			if _, err := s.exec(ctx, tx, "INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)",
				m.version, now()); err != nil {
				return fmt.Errorf("recording migration %s: %w", m.name, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("migrating database: %w", err)
	}
	return nil
}

// SchemaVersion reports the highest migration version applied to the database.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var v sql.NullInt64
	if err := s.db.QueryRowContext(ctx, "SELECT MAX(version) FROM schema_migrations").Scan(&v); err != nil {
		return 0, fmt.Errorf("reading schema version: %w", err)
	}
	return int(v.Int64), nil
}
