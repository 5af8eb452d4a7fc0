// Package store is the gateway's database: users and their tokens, namespaces and their
// members, image repositories and build rules.
//
// One Store speaks to SQLite (the local stack's default, through the pure-Go
// modernc.org/sqlite driver) or PostgreSQL (through pgx), chosen by the URL given to Open.
// Queries are written once with `?` placeholders and rebound for PostgreSQL; the schema is
// kept as versioned migrations, one folder per dialect, applied at Open.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// ErrNotFound is wrapped by every error that reports a user, namespace, repository or rule
// that does not exist (or a token that matches no user).
var ErrNotFound = errors.New("not found")

// ErrConflict is wrapped by every error that reports a name or id already taken.
var ErrConflict = errors.New("already exists")

// ErrInvalid is wrapped by every error that reports input the store refuses, such as a
// malformed name or an unknown role.
var ErrInvalid = errors.New("invalid")

// ErrLastAdmin is wrapped by the error of a change that would leave a namespace without an
// admin: removing or demoting its last one.
var ErrLastAdmin = errors.New("last admin")

// ErrDisabled is wrapped by the error of giving a disabled user a token.
var ErrDisabled = errors.New("user is disabled")

// Sealer encrypts the secrets the store keeps (webhook secrets), bound to the row they belong
// to; *secretbox.Box is one.
type Sealer interface {
	Seal(plaintext []byte, aad string) (string, error)
	Open(sealed, aad string) ([]byte, error)
}

// Option changes how Open sets up a Store.
type Option func(*Store)

// WithSecretBox seals webhook secrets at rest with box. A Store without one cannot create
// rules or rotate their secrets, reads no sealed secret (its rules have an empty
// WebhookSecret, which never validates a delivery), and leaves the migration that seals old
// plain-text secrets to the next Open that has it.
func WithSecretBox(box Sealer) Option {
	return func(s *Store) { s.box = box }
}

// dialect is the SQL flavour of the database behind a Store.
type dialect int

const (
	dialectSQLite dialect = iota
	dialectPostgres
)

// Store is the gateway's database. It is safe for concurrent use.
type Store struct {
	db      *sql.DB
	dialect dialect
	// box seals webhook secrets; nil when Open was given none.
	box Sealer
}

// sqliteBusyTimeout is how long a SQLite connection waits for a lock held by another
// process (such as a second gateway or a sqlite3 shell) before it gives up.
const sqliteBusyTimeout = 10 * time.Second

// Open connects to the database at url and brings its schema up to date.
//
// A url starting with postgres:// or postgresql:// is a PostgreSQL database. Anything else
// is a SQLite database: a plain file path, sqlite:///abs/path.db, or a SQLite file: URI.
// The folder of a SQLite file is created when missing.
func Open(ctx context.Context, url string, opts ...Option) (*Store, error) {
	var (
		db  *sql.DB
		d   dialect
		err error
	)
	switch {
	case strings.HasPrefix(url, "postgres://"), strings.HasPrefix(url, "postgresql://"):
		d = dialectPostgres
		db, err = sql.Open("pgx", url)
		if err != nil {
			return nil, fmt.Errorf("opening postgres database: %w", err)
		}
		db.SetMaxOpenConns(16)
		db.SetMaxIdleConns(4)
		db.SetConnMaxIdleTime(5 * time.Minute)
	default:
		d = dialectSQLite
		dsn, err := sqliteDSN(url)
		if err != nil {
			return nil, err
		}
		db, err = sql.Open("sqlite", dsn)
		if err != nil {
			return nil, fmt.Errorf("opening sqlite database: %w", err)
		}
		// SQLite allows one writer at a time. One connection serializes every statement
		// in this process, so concurrent webhook requests queue in database/sql instead
		// of failing with SQLITE_BUSY; the gateway's load is far below what that costs.
		// Keeping the connection open also keeps a ":memory:" database alive.
		db.SetMaxOpenConns(1)
		db.SetMaxIdleConns(1)
		db.SetConnMaxLifetime(0)
		db.SetConnMaxIdleTime(0)
	}
	s := &Store{db: db, dialect: d}
	for _, o := range opts {
		o(s)
	}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("connecting to database: %w", err)
	}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// sqliteDSN turns the accepted spellings of a SQLite database into a modernc.org/sqlite
// DSN whose pragmas hold on every connection the pool opens.
func sqliteDSN(url string) (string, error) {
	name := url
	if rest, ok := strings.CutPrefix(url, "sqlite://"); ok {
		name = rest
	}
	if name == "" {
		return "", fmt.Errorf("opening sqlite database: empty path: %w", ErrInvalid)
	}
	path, query, _ := strings.Cut(name, "?")
	if !strings.HasPrefix(name, "file:") && path != ":memory:" {
		if dir := filepath.Dir(path); dir != "." {
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return "", fmt.Errorf("creating folder of sqlite database: %w", err)
			}
		}
	}
	params := []string{
		"_pragma=busy_timeout(" + strconv.FormatInt(sqliteBusyTimeout.Milliseconds(), 10) + ")",
		"_pragma=foreign_keys(1)",
		"_pragma=journal_mode(WAL)",
		"_pragma=synchronous(NORMAL)",
		// Taking the write lock at BEGIN means a transaction never has to upgrade a read
		// lock, the one case where SQLite returns SQLITE_BUSY without waiting.
		"_txlock=immediate",
		"_time_format=sqlite",
	}
	if query != "" {
		params = append([]string{query}, params...)
	}
	return path + "?" + strings.Join(params, "&"), nil
}

// Close closes the database.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("closing database: %w", err)
	}
	return nil
}

// rebind rewrites the `?` placeholders of query into PostgreSQL's $1, $2, ... Question
// marks inside single-quoted literals, double-quoted identifiers and comments are left
// alone.
func (s *Store) rebind(query string) string {
	if s.dialect != dialectPostgres {
		return query
	}
	return rebindDollar(query)
}

func rebindDollar(query string) string {
	var b strings.Builder
	b.Grow(len(query) + 8)
	n := 0
	for i := 0; i < len(query); i++ {
		c := query[i]
		switch {
		case c == '\'' || c == '"':
			end := strings.IndexByte(query[i+1:], c)
			if end < 0 {
				b.WriteString(query[i:])
				return b.String()
			}
			b.WriteString(query[i : i+end+2])
			i += end + 1
		case c == '-' && i+1 < len(query) && query[i+1] == '-':
			end := strings.IndexByte(query[i:], '\n')
			if end < 0 {
				b.WriteString(query[i:])
				return b.String()
			}
			b.WriteString(query[i : i+end+1])
			i += end
		case c == '?':
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// queryer is what both *sql.DB and *sql.Tx offer, so helpers run inside or outside a
// transaction.
type queryer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func (s *Store) exec(ctx context.Context, q queryer, query string, args ...any) (sql.Result, error) {
	return q.ExecContext(ctx, s.rebind(query), args...)
}

func (s *Store) query(ctx context.Context, q queryer, query string, args ...any) (*sql.Rows, error) {
	return q.QueryContext(ctx, s.rebind(query), args...)
}

func (s *Store) queryRow(ctx context.Context, q queryer, query string, args ...any) *sql.Row {
	return q.QueryRowContext(ctx, s.rebind(query), args...)
}

// inTx runs fn in a transaction, committing when fn returns nil.
//
// On SQLite the pool has a single connection: fn must use tx, never s.db, or it waits on
// itself forever.
func (s *Store) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("beginning transaction: %w", err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback() // the error from fn is the one worth reporting
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("committing transaction: %w", classify(err))
	}
	return nil
}

// classify maps driver errors the callers may act on to the package's sentinels: unique
// violations become ErrConflict, sql.ErrNoRows becomes ErrNotFound.
func classify(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" { // unique_violation
		return fmt.Errorf("%w (%s)", ErrConflict, pgErr.ConstraintName)
	}
	var liteErr *sqlite.Error
	if errors.As(err, &liteErr) {
		switch liteErr.Code() {
		case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			// The message ends "UNIQUE constraint failed: table.column (2067)".
			detail := liteErr.Error()
			if i := strings.LastIndex(detail, "failed: "); i >= 0 {
				detail = strings.TrimSuffix(detail[i+len("failed: "):], fmt.Sprintf(" (%d)", liteErr.Code()))
			}
			return fmt.Errorf("%w (%s)", ErrConflict, detail)
		}
	}
	return err
}

// now is the time stored for new and updated rows: UTC, at the microsecond precision both
// databases keep, so a value read back equals the value written.
func now() time.Time {
	return time.Now().UTC().Truncate(time.Microsecond)
}

// timeColumn scans a timestamp whichever way the driver reports it: pgx gives time.Time,
// modernc.org/sqlite gives time.Time for TIMESTAMP columns but may give text.
type timeColumn struct{ t *time.Time }

// Scan implements sql.Scanner.
func (c timeColumn) Scan(src any) error {
	switch v := src.(type) {
	case time.Time:
		*c.t = v.UTC()
		return nil
	case string:
		return c.parse(v)
	case []byte:
		return c.parse(string(v))
	default:
		return fmt.Errorf("scanning timestamp: unexpected type %T", src)
	}
}

func (c timeColumn) parse(s string) error {
	for _, layout := range []string{"2006-01-02 15:04:05.999999999-07:00", time.RFC3339Nano, "2006-01-02 15:04:05.999999999"} {
		if t, err := time.Parse(layout, s); err == nil {
			*c.t = t.UTC()
			return nil
		}
	}
	return fmt.Errorf("scanning timestamp: unknown format %q", s)
}
