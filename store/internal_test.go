package store

import (
	"context"
	"path/filepath"
	"reflect"
	"testing"
)

func TestRebindDollar(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"none", "SELECT 1", "SELECT 1"},
		{"several", "INSERT INTO t (a, b) VALUES (?, ?)", "INSERT INTO t (a, b) VALUES ($1, $2)"},
		{"string literal", "SELECT '?' FROM t WHERE a = ?", "SELECT '?' FROM t WHERE a = $1"},
		{"quoted identifier", `SELECT "what?" FROM t WHERE a = ? AND b = ?`, `SELECT "what?" FROM t WHERE a = $1 AND b = $2`},
		{"escaped quote", "SELECT 'it''s ?' WHERE a = ?", "SELECT 'it''s ?' WHERE a = $1"},
		{"comment", "SELECT ? -- why?\nFROM t WHERE a = ?", "SELECT $1 -- why?\nFROM t WHERE a = $2"},
		{"unterminated literal", "SELECT ? 'oops ?", "SELECT $1 'oops ?"},
		{"ten and more", "?,?,?,?,?,?,?,?,?,?,?", "$1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := rebindDollar(tt.in); got != tt.want {
				t.Errorf("rebindDollar(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
	s := &Store{dialect: dialectSQLite}
	if got := s.rebind("a = ?"); got != "a = ?" {
		t.Errorf("SQLite rebind changed the query: %q", got)
	}
}

// TestMigrationsInStep keeps the dialects' migration folders naming the same versions, so
// a schema change cannot land in one database and not the other.
func TestMigrationsInStep(t *testing.T) {
	names := map[dialect][]string{}
	for _, d := range []dialect{dialectSQLite, dialectPostgres} {
		ms, err := loadMigrations(d)
		if err != nil {
			t.Fatal(err)
		}
		if len(ms) == 0 {
			t.Fatalf("no migrations for %s", migrationsDir(d))
		}
		for i, m := range ms {
			if m.version != i+1 {
				t.Errorf("%s: migration %s has version %d, want %d (no gaps)", migrationsDir(d), m.name, m.version, i+1)
			}
			names[d] = append(names[d], m.name)
		}
	}
	if !reflect.DeepEqual(names[dialectSQLite], names[dialectPostgres]) {
		t.Errorf("migrations differ: sqlite %v, postgres %v", names[dialectSQLite], names[dialectPostgres])
	}
}

// TestSQLitePragmas checks the settings every pooled SQLite connection must have.
func TestSQLitePragmas(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "p.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	tests := []struct {
		pragma string
		want   string
	}{
		{"journal_mode", "wal"},
		{"foreign_keys", "1"},
		{"busy_timeout", "10000"},
		{"synchronous", "1"}, // NORMAL
	}
	for _, tt := range tests {
		t.Run(tt.pragma, func(t *testing.T) {
			var got string
			if err := s.db.QueryRowContext(ctx, "PRAGMA "+tt.pragma).Scan(&got); err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("PRAGMA %s = %q, want %q", tt.pragma, got, tt.want)
			}
		})
	}
}

// TestSQLiteInMemory keeps ":memory:" usable for quick tests elsewhere: the pool's single
// connection holds the database, so it survives between calls.
func TestSQLiteInMemory(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, token, err := s.CreateUser(ctx, "alice", false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.UserByToken(ctx, token); err != nil {
		t.Errorf("UserByToken: %v", err)
	}
}
