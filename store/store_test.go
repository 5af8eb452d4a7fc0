package store_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/build"
	"github.com/slipway-dev/slipway/internal/testing/storetest"
	"github.com/slipway-dev/slipway/secretbox"
	"github.com/slipway-dev/slipway/store"
)

// pg is the PostgreSQL cluster every test of this package creates its databases in.
var pg *storetest.Cluster

func TestMain(m *testing.M) {
	os.Exit(storetest.RunMain(m, &pg))
}

// backend makes the URL of an empty database of one dialect.
type backend struct {
	name string
	url  func(t *testing.T) string
}

func backends() []backend {
	return []backend{
		{"sqlite", func(t *testing.T) string { return filepath.Join(t.TempDir(), "slipway.db") }},
		{"postgres", func(t *testing.T) string { return pg.NewDatabase(t) }},
	}
}

// forEachBackend runs fn once against a fresh SQLite database and once against a fresh
// PostgreSQL database.
func forEachBackend(t *testing.T, fn func(t *testing.T, s *store.Store)) {
	t.Helper()
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			fn(t, openStore(t, b.url(t)))
		})
	}
}

// testBox is the secret box the tests' stores seal webhook secrets with.
func testBox(t testing.TB, fill byte) *secretbox.Box {
	t.Helper()
	box, err := secretbox.New(bytes.Repeat([]byte{fill}, secretbox.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	return box
}

func openStore(t *testing.T, url string, opts ...store.Option) *store.Store {
	t.Helper()
	if len(opts) == 0 {
		opts = []store.Option{store.WithSecretBox(testBox(t, 7))}
	}
	s, err := store.Open(context.Background(), url, opts...)
	if err != nil {
		t.Fatalf("Open(%q): %v", url, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// driverFor is the database/sql driver name and DSN that read url directly, bypassing the
// store.
func driverFor(url string) (string, string) {
	if strings.HasPrefix(url, "postgres") {
		return "pgx", url
	}
	return "sqlite", url
}

type appliedMigration struct {
	Version   int
	AppliedAt string
}

func readMigrations(t *testing.T, url string) []appliedMigration {
	t.Helper()
	db, err := sql.Open(driverFor(url))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query("SELECT version, applied_at FROM schema_migrations ORDER BY version")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var ms []appliedMigration
	for rows.Next() {
		var (
			m  appliedMigration
			at any
		)
		if err := rows.Scan(&m.Version, &at); err != nil {
			t.Fatal(err)
		}
		m.AppliedAt = fmt.Sprint(at)
		ms = append(ms, m)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return ms
}

func TestMigrationsIdempotent(t *testing.T) {
	ctx := context.Background()
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			url := b.url(t)
			s1, err := store.Open(ctx, url, store.WithSecretBox(testBox(t, 7)))
			if err != nil {
				t.Fatalf("first Open: %v", err)
			}
			_, token, err := s1.CreateUser(ctx, "alice", false)
			if err != nil {
				t.Fatal(err)
			}
			v1, err := s1.SchemaVersion(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if v1 < 1 {
				t.Fatalf("SchemaVersion = %d after first Open, want >= 1", v1)
			}
			if err := s1.Close(); err != nil {
				t.Fatal(err)
			}
			before := readMigrations(t, url)
			if len(before) != v1 {
				t.Fatalf("schema_migrations has %d rows, want %d: %v", len(before), v1, before)
			}

			s2 := openStore(t, url) // a restart
			after := readMigrations(t, url)
			if !reflect.DeepEqual(before, after) {
				t.Errorf("second Open changed schema_migrations:\nbefore %v\nafter  %v", before, after)
			}
			v2, err := s2.SchemaVersion(ctx)
			if err != nil || v2 != v1 {
				t.Errorf("SchemaVersion after restart = %d, %v; want %d", v2, err, v1)
			}
			u, err := s2.UserByToken(ctx, token)
			if err != nil || u.Name != "alice" {
				t.Errorf("UserByToken after restart = %+v, %v; want alice", u, err)
			}
		})
	}
}

func TestOpenSQLiteURLForms(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	tests := []struct {
		name string
		url  string
		file string // the file the database must land in
	}{
		{"plain path", filepath.Join(dir, "plain.db"), filepath.Join(dir, "plain.db")},
		{"missing folder", filepath.Join(dir, "a", "b", "nested.db"), filepath.Join(dir, "a", "b", "nested.db")},
		{"sqlite scheme", "sqlite://" + filepath.Join(dir, "scheme.db"), filepath.Join(dir, "scheme.db")},
		{"file URI", "file:" + filepath.Join(dir, "uri.db"), filepath.Join(dir, "uri.db")},
		{"file URI with query", "file:" + filepath.Join(dir, "uriq.db") + "?cache=private", filepath.Join(dir, "uriq.db")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openStore(t, tt.url)
			if _, _, err := s.CreateUser(ctx, "bob", false); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(tt.file); err != nil {
				t.Errorf("database file: %v", err)
			}
			// WAL mode leaves its log beside the database while a connection is open.
			if _, err := os.Stat(tt.file + "-wal"); err != nil {
				t.Errorf("WAL file: %v", err)
			}
		})
	}
	t.Run("unreachable postgres", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if _, err := store.Open(ctx, "postgres://nobody@127.0.0.1:1/none?sslmode=disable&connect_timeout=2"); err == nil {
			t.Error("Open of an unreachable postgres succeeded")
		}
	})
}

func TestValidName(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"a", true},
		{"demo", true},
		{"team-1.images_x", true},
		{"0day", true},
		{strings.Repeat("a", 63), true},
		{strings.Repeat("a", 64), false},
		{"", false},
		{"Demo", false},
		{"-demo", false},
		{".demo", false},
		{"_demo", false},
		{"de mo", false},
		{"de/mo", false},
		{"démo", false},
		{"demo\n", false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q", tt.name), func(t *testing.T) {
			err := store.ValidName(tt.name)
			if (err == nil) != tt.ok {
				t.Fatalf("ValidName(%q) = %v, want ok=%v", tt.name, err, tt.ok)
			}
			if err != nil && !errors.Is(err, store.ErrInvalid) {
				t.Errorf("error %v does not wrap ErrInvalid", err)
			}
		})
	}
}

func TestRoleAllows(t *testing.T) {
	roles := []store.Role{"", store.RoleRead, store.RoleWrite, store.RoleAdmin, "owner"}
	want := map[store.Role]map[store.Role]bool{
		"":              {},
		store.RoleRead:  {store.RoleRead: true},
		store.RoleWrite: {store.RoleRead: true, store.RoleWrite: true},
		store.RoleAdmin: {store.RoleRead: true, store.RoleWrite: true, store.RoleAdmin: true},
		"owner":         {},
	}
	for _, have := range roles {
		for _, need := range roles {
			t.Run(fmt.Sprintf("%q allows %q", have, need), func(t *testing.T) {
				if got := have.Allows(need); got != want[have][need] {
					t.Errorf("Role(%q).Allows(%q) = %v, want %v", have, need, got, want[have][need])
				}
			})
		}
	}
}

var tokenPattern = regexp.MustCompile(`^slw_[A-Za-z0-9_-]{43}$`)

func TestUsers(t *testing.T) {
	ctx := context.Background()
	forEachBackend(t, func(t *testing.T, s *store.Store) {
		alice, token, err := s.CreateUser(ctx, "alice", false)
		if err != nil {
			t.Fatalf("CreateUser: %v", err)
		}
		if !tokenPattern.MatchString(token) {
			t.Errorf("token %q does not match %s", token, tokenPattern)
		}
		if alice.ID == 0 || alice.Name != "alice" || alice.SiteAdmin || alice.CreatedAt.IsZero() {
			t.Errorf("CreateUser returned %+v", alice)
		}
		root, rootToken, err := s.CreateUser(ctx, "root", true)
		if err != nil {
			t.Fatalf("CreateUser(site admin): %v", err)
		}
		if token == rootToken {
			t.Fatal("two users got the same token")
		}

		lookups := []struct {
			name    string
			token   string
			want    store.User
			wantErr error
		}{
			{"alice's token", token, alice, nil},
			{"root's token", rootToken, root, nil},
			{"wrong token", token[:len(token)-1] + "x", store.User{}, store.ErrNotFound},
			{"empty token", "", store.User{}, store.ErrNotFound},
			{"hash is not the token", "slw_", store.User{}, store.ErrNotFound},
		}
		for _, tt := range lookups {
			t.Run(tt.name, func(t *testing.T) {
				got, err := s.UserByToken(ctx, tt.token)
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("UserByToken error = %v, want %v", err, tt.wantErr)
				}
				if !reflect.DeepEqual(got, tt.want) {
					t.Errorf("UserByToken = %+v, want %+v", got, tt.want)
				}
			})
		}

		creates := []struct {
			name    string
			user    string
			wantErr error
		}{
			{"duplicate name", "alice", store.ErrConflict},
			{"invalid name", "Alice", store.ErrInvalid},
			{"empty name", "", store.ErrInvalid},
		}
		for _, tt := range creates {
			t.Run(tt.name, func(t *testing.T) {
				_, _, err := s.CreateUser(ctx, tt.user, false)
				if !errors.Is(err, tt.wantErr) {
					t.Errorf("CreateUser(%q) error = %v, want %v", tt.user, err, tt.wantErr)
				}
			})
		}

		t.Run("GetUser", func(t *testing.T) {
			got, err := s.GetUser(ctx, "alice")
			if err != nil || !reflect.DeepEqual(got, alice) {
				t.Errorf("GetUser = %+v, %v; want %+v", got, err, alice)
			}
			if _, err := s.GetUser(ctx, "nobody"); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("GetUser(nobody) error = %v, want ErrNotFound", err)
			}
		})
	})
}

func TestEnsureAdmin(t *testing.T) {
	ctx := context.Background()
	forEachBackend(t, func(t *testing.T, s *store.Store) {
		first, err := s.EnsureAdmin(ctx, "admin", "first-token")
		if err != nil {
			t.Fatalf("EnsureAdmin: %v", err)
		}
		if !first.SiteAdmin || first.Name != "admin" || first.ID == 0 {
			t.Errorf("EnsureAdmin returned %+v", first)
		}
		again, err := s.EnsureAdmin(ctx, "admin", "second-token")
		if err != nil {
			t.Fatalf("EnsureAdmin again: %v", err)
		}
		if again.ID != first.ID || !again.CreatedAt.Equal(first.CreatedAt) {
			t.Errorf("EnsureAdmin made a new user %+v, want %+v updated", again, first)
		}
		if _, err := s.UserByToken(ctx, "first-token"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("old admin token still works: %v", err)
		}
		if u, err := s.UserByToken(ctx, "second-token"); err != nil || u.ID != first.ID || !u.SiteAdmin {
			t.Errorf("UserByToken(new admin token) = %+v, %v", u, err)
		}

		// An existing ordinary user named like the admin is promoted.
		if _, _, err := s.CreateUser(ctx, "ops", false); err != nil {
			t.Fatal(err)
		}
		ops, err := s.EnsureAdmin(ctx, "ops", "ops-token")
		if err != nil || !ops.SiteAdmin {
			t.Errorf("EnsureAdmin(ops) = %+v, %v; want a site admin", ops, err)
		}

		invalid := []struct {
			name, user, token string
			wantErr           error
		}{
			{"empty token", "admin", "", store.ErrInvalid},
			{"invalid name", "Admin", "x", store.ErrInvalid},
			{"token of another user", "other", "second-token", store.ErrConflict},
		}
		for _, tt := range invalid {
			t.Run(tt.name, func(t *testing.T) {
				if _, err := s.EnsureAdmin(ctx, tt.user, tt.token); !errors.Is(err, tt.wantErr) {
					t.Errorf("EnsureAdmin(%q, %q) error = %v, want %v", tt.user, tt.token, err, tt.wantErr)
				}
			})
		}
	})
}

func TestNamespacesAndMembers(t *testing.T) {
	ctx := context.Background()
	forEachBackend(t, func(t *testing.T, s *store.Store) {
		alice, _, err := s.CreateUser(ctx, "alice", false)
		if err != nil {
			t.Fatal(err)
		}
		bob, _, err := s.CreateUser(ctx, "bob", false)
		if err != nil {
			t.Fatal(err)
		}
		ns, err := s.CreateNamespace(ctx, "demo", alice.ID)
		if err != nil {
			t.Fatalf("CreateNamespace: %v", err)
		}
		got, err := s.GetNamespace(ctx, "demo")
		if err != nil || !reflect.DeepEqual(got, ns) {
			t.Errorf("GetNamespace = %+v, %v; want %+v", got, err, ns)
		}

		errCases := []struct {
			name    string
			call    func() error
			wantErr error
		}{
			{"duplicate namespace", func() error { _, err := s.CreateNamespace(ctx, "demo", bob.ID); return err }, store.ErrConflict},
			{"invalid namespace name", func() error { _, err := s.CreateNamespace(ctx, "De Mo", bob.ID); return err }, store.ErrInvalid},
			{"unknown creator", func() error { _, err := s.CreateNamespace(ctx, "orphan", 987654); return err }, store.ErrNotFound},
			{"unknown namespace", func() error { _, err := s.GetNamespace(ctx, "nope"); return err }, store.ErrNotFound},
			{"role in unknown namespace", func() error { _, err := s.MemberRole(ctx, "nope", alice.ID); return err }, store.ErrNotFound},
			{"member of unknown namespace", func() error { return s.SetMember(ctx, "nope", "bob", store.RoleRead) }, store.ErrNotFound},
			{"unknown member", func() error { return s.SetMember(ctx, "demo", "nobody", store.RoleRead) }, store.ErrNotFound},
			{"unknown role", func() error { return s.SetMember(ctx, "demo", "bob", "owner") }, store.ErrInvalid},
			{"empty role", func() error { return s.SetMember(ctx, "demo", "bob", "") }, store.ErrInvalid},
		}
		for _, tt := range errCases {
			t.Run(tt.name, func(t *testing.T) {
				if err := tt.call(); !errors.Is(err, tt.wantErr) {
					t.Errorf("error = %v, want %v", err, tt.wantErr)
				}
			})
		}
		if _, err := s.GetNamespace(ctx, "orphan"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("a namespace whose creator is unknown was kept: %v", err)
		}

		steps := []struct {
			name   string
			set    store.Role // "" sets nothing
			user   int64
			want   store.Role
			userNm string
		}{
			{"creator is admin", "", alice.ID, store.RoleAdmin, "alice"},
			{"non-member has no role", "", bob.ID, "", "bob"},
			{"grant read", store.RoleRead, bob.ID, store.RoleRead, "bob"},
			{"raise to write", store.RoleWrite, bob.ID, store.RoleWrite, "bob"},
			{"lower to read", store.RoleRead, bob.ID, store.RoleRead, "bob"},
			// The last admin cannot be demoted (TestMembersAndLastAdmin); with another admin
			// the creator can.
			{"raise to admin", store.RoleAdmin, bob.ID, store.RoleAdmin, "bob"},
			{"demote creator", store.RoleWrite, alice.ID, store.RoleWrite, "alice"},
		}
		for _, st := range steps {
			t.Run(st.name, func(t *testing.T) {
				if st.set != "" {
					if err := s.SetMember(ctx, "demo", st.userNm, st.set); err != nil {
						t.Fatalf("SetMember: %v", err)
					}
				}
				got, err := s.MemberRole(ctx, "demo", st.user)
				if err != nil || got != st.want {
					t.Errorf("MemberRole(demo, %s) = %q, %v; want %q", st.userNm, got, err, st.want)
				}
			})
		}

		// Membership is per namespace.
		other, err := s.CreateNamespace(ctx, "other", bob.ID)
		if err != nil {
			t.Fatal(err)
		}
		if other.ID == ns.ID {
			t.Errorf("two namespaces share id %d", ns.ID)
		}
		if r, err := s.MemberRole(ctx, "other", alice.ID); err != nil || r != "" {
			t.Errorf("MemberRole(other, alice) = %q, %v; want no role", r, err)
		}
		if r, err := s.MemberRole(ctx, "other", bob.ID); err != nil || r != store.RoleAdmin {
			t.Errorf("MemberRole(other, bob) = %q, %v; want admin", r, err)
		}
	})
}

func TestRepositories(t *testing.T) {
	ctx := context.Background()
	forEachBackend(t, func(t *testing.T, s *store.Store) {
		u, _, err := s.CreateUser(ctx, "alice", false)
		if err != nil {
			t.Fatal(err)
		}
		for _, ns := range []string{"demo", "empty", "other"} {
			if _, err := s.CreateNamespace(ctx, ns, u.ID); err != nil {
				t.Fatal(err)
			}
		}
		var created []store.Repository
		for _, name := range []string{"web", "app", "worker"} {
			r, err := s.CreateRepository(ctx, "demo", name)
			if err != nil {
				t.Fatalf("CreateRepository(%s): %v", name, err)
			}
			if r.Namespace != "demo" || r.Name != name || r.ID == 0 || r.CreatedAt.IsZero() {
				t.Errorf("CreateRepository returned %+v", r)
			}
			created = append(created, r)
		}
		if _, err := s.CreateRepository(ctx, "other", "app"); err != nil {
			t.Errorf("same repository name in another namespace: %v", err)
		}

		got, err := s.GetRepository(ctx, "demo", "app")
		if err != nil || !reflect.DeepEqual(got, created[1]) {
			t.Errorf("GetRepository = %+v, %v; want %+v", got, err, created[1])
		}
		list, err := s.ListRepositories(ctx, "demo")
		if err != nil {
			t.Fatal(err)
		}
		want := []store.Repository{created[1], created[0], created[2]} // by name
		if !reflect.DeepEqual(list, want) {
			t.Errorf("ListRepositories = %+v, want %+v", list, want)
		}
		if list, err := s.ListRepositories(ctx, "empty"); err != nil || list == nil || len(list) != 0 {
			t.Errorf("ListRepositories(empty) = %#v, %v; want an empty, non-nil list", list, err)
		}

		errCases := []struct {
			name    string
			call    func() error
			wantErr error
		}{
			{"duplicate", func() error { _, err := s.CreateRepository(ctx, "demo", "app"); return err }, store.ErrConflict},
			{"invalid name", func() error { _, err := s.CreateRepository(ctx, "demo", "App"); return err }, store.ErrInvalid},
			{"create in unknown namespace", func() error { _, err := s.CreateRepository(ctx, "nope", "app"); return err }, store.ErrNotFound},
			{"get unknown", func() error { _, err := s.GetRepository(ctx, "demo", "nope"); return err }, store.ErrNotFound},
			{"get in wrong namespace", func() error { _, err := s.GetRepository(ctx, "other", "web"); return err }, store.ErrNotFound},
			{"list unknown namespace", func() error { _, err := s.ListRepositories(ctx, "nope"); return err }, store.ErrNotFound},
		}
		for _, tt := range errCases {
			t.Run(tt.name, func(t *testing.T) {
				if err := tt.call(); !errors.Is(err, tt.wantErr) {
					t.Errorf("error = %v, want %v", err, tt.wantErr)
				}
			})
		}
	})
}

// seedRepository creates a user, the namespace ns and the repository ns/repo.
func seedRepository(t *testing.T, s *store.Store, ns, repo string) {
	t.Helper()
	ctx := context.Background()
	u, _, err := s.CreateUser(ctx, "owner-"+ns, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateNamespace(ctx, ns, u.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateRepository(ctx, ns, repo); err != nil {
		t.Fatal(err)
	}
}

var (
	ruleIDPattern = regexp.MustCompile(`^r-[a-z2-7]{12}$`)
	secretPattern = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

func TestRules(t *testing.T) {
	ctx := context.Background()
	forEachBackend(t, func(t *testing.T, s *store.Store) {
		seedRepository(t, s, "demo", "app")
		seedRepository(t, s, "other", "app")

		full := store.Rule{
			Namespace:      "demo",
			Repository:     "app",
			Source:         store.Source{Provider: "github", Owner: "octo", Repository: "hello"},
			Triggers:       build.Triggers{Branches: []string{"main", "release/*", "feat/ü"}, Tags: true},
			TagTemplate:    "{branch}-{short_commit}",
			DockerfilePath: "build/Dockerfile",
			ContextPath:    "src",
			BuildArgs:      map[string]string{"GREETING": "hi", "EMPTY": "", "QUOTE": `a "b" 'c' ?`},
			SanitizeRef:    true,
			Timeout:        "45m",
			// Ignored by CreateRule: it generates these.
			ID:            "r-chosenbyme0",
			WebhookSecret: "chosen",
			CreatedAt:     time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC),
		}
		minimal := store.Rule{
			Namespace:  "demo",
			Repository: "app",
			Source:     store.Source{Provider: "gitlab", Owner: "group/sub", Repository: "svc"},
		}

		var created []store.Rule
		for i, in := range []store.Rule{full, minimal} {
			before := time.Now().UTC().Add(-time.Second)
			r, err := s.CreateRule(ctx, in)
			if err != nil {
				t.Fatalf("CreateRule #%d: %v", i, err)
			}
			if !ruleIDPattern.MatchString(r.ID) {
				t.Errorf("rule id %q does not match %s", r.ID, ruleIDPattern)
			}
			if !secretPattern.MatchString(r.WebhookSecret) || r.WebhookSecret == in.WebhookSecret {
				t.Errorf("webhook secret %q is not 32 generated bytes in hex", r.WebhookSecret)
			}
			if r.CreatedAt.Before(before) || !r.UpdatedAt.Equal(r.CreatedAt) || r.CreatedAt.Location() != time.UTC {
				t.Errorf("CreatedAt %v, UpdatedAt %v: want now, equal, UTC", r.CreatedAt, r.UpdatedAt)
			}
			// Everything else is kept as given.
			want := in
			want.ID, want.WebhookSecret, want.CreatedAt, want.UpdatedAt = r.ID, r.WebhookSecret, r.CreatedAt, r.UpdatedAt
			if want.Triggers.Branches == nil {
				want.Triggers.Branches = []string{}
			}
			if want.Triggers.TagPatterns == nil {
				want.Triggers.TagPatterns = []string{}
			}
			want.OrphanedHooks = []store.OrphanedHook{}
			if want.Secrets == nil {
				want.Secrets = []string{}
			}
			if want.Platforms == nil {
				want.Platforms = []string{}
			}
			if want.BuildArgs == nil {
				want.BuildArgs = map[string]string{}
			}
			if !reflect.DeepEqual(r, want) {
				t.Errorf("CreateRule = %+v\nwant %+v", r, want)
			}
			got, err := s.GetRule(ctx, r.ID)
			if err != nil {
				t.Fatalf("GetRule: %v", err)
			}
			if !reflect.DeepEqual(got, r) {
				t.Errorf("GetRule = %+v\nwant %+v", got, r)
			}
			created = append(created, r)
		}
		if created[0].ID == created[1].ID || created[0].WebhookSecret == created[1].WebhookSecret {
			t.Error("two rules share an id or a webhook secret")
		}

		t.Run("list in creation order", func(t *testing.T) {
			// More rules than a timestamp can order, created within the same instant.
			all := append([]store.Rule(nil), created...)
			for i := range 5 {
				r, err := s.CreateRule(ctx, store.Rule{Namespace: "demo", Repository: "app", TagTemplate: fmt.Sprint(i)})
				if err != nil {
					t.Fatal(err)
				}
				all = append(all, r)
			}
			list, err := s.ListRules(ctx, "demo", "app")
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(list, all) {
				t.Errorf("ListRules = %+v\nwant %+v", list, all)
			}
			other, err := s.ListRules(ctx, "other", "app")
			if err != nil || other == nil || len(other) != 0 {
				t.Errorf("ListRules(other/app) = %#v, %v; want an empty, non-nil list", other, err)
			}
		})

		t.Run("update keeps id, secret and creation time", func(t *testing.T) {
			orig := created[0]
			edit := store.Rule{
				ID:             orig.ID,
				Namespace:      "demo",
				Repository:     "app",
				Source:         store.Source{Provider: "gitlab", Owner: "team", Repository: "other"},
				Triggers:       build.Triggers{Branches: []string{"develop"}},
				TagTemplate:    "{tag}",
				DockerfilePath: "Dockerfile.prod",
				ContextPath:    "",
				BuildArgs:      map[string]string{"NEW": "1"},
				SanitizeRef:    false,
				Timeout:        "",
				WebhookSecret:  "attacker-chosen",
				CreatedAt:      time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC),
			}
			updated, err := s.UpdateRule(ctx, edit)
			if err != nil {
				t.Fatalf("UpdateRule: %v", err)
			}
			want := edit
			want.WebhookSecret, want.CreatedAt, want.UpdatedAt = orig.WebhookSecret, orig.CreatedAt, updated.UpdatedAt
			want.OrphanedHooks = []store.OrphanedHook{}
			want.Triggers.TagPatterns = []string{}
			want.Secrets = []string{}
			if want.Platforms == nil {
				want.Platforms = []string{}
			}
			if !reflect.DeepEqual(updated, want) {
				t.Errorf("UpdateRule = %+v\nwant %+v", updated, want)
			}
			if !updated.UpdatedAt.After(orig.UpdatedAt) {
				t.Errorf("UpdatedAt %v is not after %v", updated.UpdatedAt, orig.UpdatedAt)
			}
			got, err := s.GetRule(ctx, orig.ID)
			if err != nil || !reflect.DeepEqual(got, updated) {
				t.Errorf("GetRule after update = %+v, %v\nwant %+v", got, err, updated)
			}
			// The second update within the same microsecond still moves UpdatedAt.
			again, err := s.UpdateRule(ctx, edit)
			if err != nil || !again.UpdatedAt.After(updated.UpdatedAt) {
				t.Errorf("second UpdateRule: UpdatedAt %v after %v, %v", again.UpdatedAt, updated.UpdatedAt, err)
			}
		})

		t.Run("JSON", func(t *testing.T) {
			b, err := json.Marshal(created[0])
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(b), created[0].WebhookSecret) {
				t.Errorf("JSON of a rule shows its webhook secret: %s", b)
			}
			var fields map[string]any
			if err := json.Unmarshal(b, &fields); err != nil {
				t.Fatal(err)
			}
			for _, k := range []string{"id", "namespace", "repository", "source", "triggers", "tag_template",
				"dockerfile_path", "context_path", "build_args", "sanitize_ref", "timeout", "created_at", "updated_at"} {
				if _, ok := fields[k]; !ok {
					t.Errorf("JSON of a rule lacks %q: %s", k, b)
				}
			}
			var body store.Rule // the build rule body the gateway's API accepts decodes into Rule
			err = json.Unmarshal([]byte(`{"source": {"provider": "github", "owner": "octo", "repository": "hello"},
				"triggers": {"branches": ["main"], "tags": true}, "tag_template": "{branch}-{short_commit}",
				"dockerfile_path": "build/Dockerfile", "context_path": "", "build_args": {"GREETING": "hi"},
				"sanitize_ref": false}`), &body)
			if err != nil {
				t.Fatal(err)
			}
			want := store.Rule{
				Source:         store.Source{Provider: "github", Owner: "octo", Repository: "hello"},
				Triggers:       build.Triggers{Branches: []string{"main"}, Tags: true},
				TagTemplate:    "{branch}-{short_commit}",
				DockerfilePath: "build/Dockerfile",
				BuildArgs:      map[string]string{"GREETING": "hi"},
			}
			if !reflect.DeepEqual(body, want) {
				t.Errorf("decoded body = %+v, want %+v", body, want)
			}
		})

		t.Run("delete", func(t *testing.T) {
			id := created[1].ID
			if err := s.DeleteRule(ctx, id); err != nil {
				t.Fatalf("DeleteRule: %v", err)
			}
			if _, err := s.GetRule(ctx, id); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("GetRule after delete: error %v, want ErrNotFound", err)
			}
			if err := s.DeleteRule(ctx, id); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("second DeleteRule: error %v, want ErrNotFound", err)
			}
			list, err := s.ListRules(ctx, "demo", "app")
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range list {
				if r.ID == id {
					t.Errorf("ListRules still has deleted rule %s", id)
				}
			}
			if _, err := s.GetRule(ctx, created[0].ID); err != nil {
				t.Errorf("deleting one rule touched another: %v", err)
			}
		})

		errCases := []struct {
			name string
			call func() error
		}{
			{"create in unknown repository", func() error {
				_, err := s.CreateRule(ctx, store.Rule{Namespace: "demo", Repository: "nope"})
				return err
			}},
			{"create in unknown namespace", func() error {
				_, err := s.CreateRule(ctx, store.Rule{Namespace: "nope", Repository: "app"})
				return err
			}},
			{"list unknown repository", func() error { _, err := s.ListRules(ctx, "demo", "nope"); return err }},
			{"list unknown namespace", func() error { _, err := s.ListRules(ctx, "nope", "app"); return err }},
			{"get unknown", func() error { _, err := s.GetRule(ctx, "r-aaaaaaaaaaaa"); return err }},
			{"get empty id", func() error { _, err := s.GetRule(ctx, ""); return err }},
			{"update unknown", func() error {
				_, err := s.UpdateRule(ctx, store.Rule{ID: "r-aaaaaaaaaaaa", Namespace: "demo", Repository: "app"})
				return err
			}},
			{"update through another repository", func() error {
				_, err := s.UpdateRule(ctx, store.Rule{ID: created[0].ID, Namespace: "other", Repository: "app"})
				return err
			}},
			{"delete unknown", func() error { return s.DeleteRule(ctx, "r-aaaaaaaaaaaa") }},
		}
		for _, tt := range errCases {
			t.Run(tt.name, func(t *testing.T) {
				if err := tt.call(); !errors.Is(err, store.ErrNotFound) {
					t.Errorf("error = %v, want ErrNotFound", err)
				}
			})
		}
		if got, err := s.GetRule(ctx, created[0].ID); err != nil || got.Namespace != "demo" || got.Source.Owner != "team" {
			t.Errorf("a refused update changed the rule: %+v, %v", got, err)
		}
	})
}

// TestConcurrentWrites is the webhook and API load of a busy moment: many requests write
// at once and none may fail with SQLITE_BUSY or a lost update.
func TestConcurrentWrites(t *testing.T) {
	ctx := context.Background()
	const n = 50
	forEachBackend(t, func(t *testing.T, s *store.Store) {
		seedRepository(t, s, "demo", "app")
		var (
			wg   sync.WaitGroup
			errs = make(chan error, 2*n)
			ids  = make(chan string, n)
			gate = make(chan struct{})
		)
		for i := range n {
			wg.Go(func() {
				<-gate
				if _, _, err := s.CreateUser(ctx, fmt.Sprintf("user-%d", i), false); err != nil {
					errs <- err
				}
				r, err := s.CreateRule(ctx, store.Rule{Namespace: "demo", Repository: "app",
					Triggers: build.Triggers{Branches: []string{fmt.Sprint(i)}}})
				if err != nil {
					errs <- err
					return
				}
				ids <- r.ID
				if _, err := s.GetRule(ctx, r.ID); err != nil {
					errs <- err
				}
			})
		}
		close(gate)
		wg.Wait()
		close(errs)
		close(ids)
		for err := range errs {
			t.Error(err)
		}
		seen := map[string]bool{}
		for id := range ids {
			seen[id] = true
		}
		list, err := s.ListRules(ctx, "demo", "app")
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != n || len(seen) != n {
			t.Errorf("ListRules has %d rules, %d distinct ids returned; want %d", len(list), len(seen), n)
		}
		for _, r := range list {
			if !seen[r.ID] {
				t.Errorf("unexpected rule %s", r.ID)
			}
		}
	})
}
