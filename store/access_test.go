package store_test

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/store"
)

func TestTokensRotateDisableTouch(t *testing.T) {
	ctx := context.Background()
	forEachBackend(t, func(t *testing.T, s *store.Store) {
		u, first, err := s.CreateUser(ctx, "carol", false)
		if err != nil {
			t.Fatal(err)
		}
		if u.TokenCreatedAt == nil || u.TokenLastUsedAt != nil {
			t.Errorf("new user's token dates: created %v, last used %v; want set, nil", u.TokenCreatedAt, u.TokenLastUsedAt)
		}

		// Uses are recorded at most once a minute.
		t0 := time.Now().UTC()
		for i, tt := range []struct {
			at    time.Time
			wrote bool
		}{
			{t0, true},
			{t0.Add(time.Second), false},
			{t0.Add(59 * time.Second), false},
			{t0.Add(61 * time.Second), true},
			{t0.Add(62 * time.Second), false},
		} {
			wrote, err := s.TouchToken(ctx, u.ID, tt.at, time.Minute)
			if err != nil || wrote != tt.wrote {
				t.Errorf("TouchToken #%d at +%s = %t, %v; want %t", i, tt.at.Sub(t0), wrote, err, tt.wrote)
			}
		}
		got, err := s.UserByToken(ctx, first)
		if err != nil {
			t.Fatal(err)
		}
		if got.TokenLastUsedAt == nil || !got.TokenLastUsedAt.Equal(t0.Add(61*time.Second).Truncate(time.Microsecond)) {
			t.Errorf("last used %v, want %v", got.TokenLastUsedAt, t0.Add(61*time.Second))
		}

		// Rotation: the old token stops at once, the new one works.
		_, second, err := s.RotateToken(ctx, "carol")
		if err != nil || second == first || !strings.HasPrefix(second, store.TokenPrefix) {
			t.Fatalf("RotateToken = %q, %v", second, err)
		}
		if _, err := s.UserByToken(ctx, first); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("old token after rotation: %v, want ErrNotFound", err)
		}
		if got, err := s.UserByToken(ctx, second); err != nil || got.Name != "carol" || got.TokenLastUsedAt != nil {
			t.Errorf("new token: %+v, %v", got, err)
		}

		// Disabling revokes; enabling again revives nothing; a new token needs a rotation.
		if d, err := s.SetDisabled(ctx, "carol", true); err != nil || !d.Disabled {
			t.Fatalf("SetDisabled(true) = %+v, %v", d, err)
		}
		if _, err := s.UserByToken(ctx, second); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("token of a disabled user: %v, want ErrNotFound", err)
		}
		if _, _, err := s.RotateToken(ctx, "carol"); !errors.Is(err, store.ErrDisabled) {
			t.Errorf("RotateToken of a disabled user: %v, want ErrDisabled", err)
		}
		if d, err := s.SetDisabled(ctx, "carol", false); err != nil || d.Disabled {
			t.Fatalf("SetDisabled(false) = %+v, %v", d, err)
		}
		if _, err := s.UserByToken(ctx, second); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("old token after enabling again: %v, want ErrNotFound", err)
		}
		_, third, err := s.RotateToken(ctx, "carol")
		if err != nil {
			t.Fatal(err)
		}
		if got, err := s.UserByToken(ctx, third); err != nil || got.Name != "carol" {
			t.Errorf("token made after enabling: %+v, %v", got, err)
		}

		if _, err := s.SetDisabled(ctx, "nobody", true); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("SetDisabled of a missing user: %v", err)
		}
		if _, _, err := s.RotateToken(ctx, "nobody"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("RotateToken of a missing user: %v", err)
		}
		if _, err := s.EnsureAdmin(ctx, "root", "slw_root-token"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.SetDisabled(ctx, "root", true); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("disabling a site admin: %v, want ErrInvalid", err)
		}
	})
}

func TestMembersAndLastAdmin(t *testing.T) {
	ctx := context.Background()
	forEachBackend(t, func(t *testing.T, s *store.Store) {
		alice, _, _ := s.CreateUser(ctx, "alice", false)
		bob, _, _ := s.CreateUser(ctx, "bob", false)
		if _, err := s.CreateNamespace(ctx, "team", alice.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := s.CreateNamespace(ctx, "solo", bob.ID); err != nil {
			t.Fatal(err)
		}
		if err := s.SetMember(ctx, "team", "bob", store.RoleWrite); err != nil {
			t.Fatal(err)
		}
		members, err := s.ListMembers(ctx, "team")
		if err != nil {
			t.Fatal(err)
		}
		want := []store.Member{{User: "alice", Role: store.RoleAdmin}, {User: "bob", Role: store.RoleWrite}}
		if len(members) != 2 || members[0] != want[0] || members[1] != want[1] {
			t.Errorf("ListMembers = %+v, want %+v", members, want)
		}
		mine, err := s.UserNamespaces(ctx, bob.ID)
		if err != nil || len(mine) != 2 || mine[0].Namespace != "solo" || mine[0].Role != store.RoleAdmin ||
			mine[1].Namespace != "team" || mine[1].Role != store.RoleWrite {
			t.Errorf("UserNamespaces(bob) = %+v, %v", mine, err)
		}
		carol, _, _ := s.CreateUser(ctx, "carol", false)
		all, err := s.AllNamespaces(ctx, carol.ID)
		if err != nil || len(all) != 2 || all[0].Role != "" || all[1].Role != "" {
			t.Errorf("AllNamespaces(carol) = %+v, %v", all, err)
		}

		steps := []struct {
			name string
			do   func() error
			want error
		}{
			{"the last admin is not removed", func() error { return s.RemoveMember(ctx, "team", "alice") }, store.ErrLastAdmin},
			{"nor demoted", func() error { return s.SetMember(ctx, "team", "alice", store.RoleWrite) }, store.ErrLastAdmin},
			{"another admin", func() error { return s.SetMember(ctx, "team", "bob", store.RoleAdmin) }, nil},
			{"then the first goes", func() error { return s.RemoveMember(ctx, "team", "alice") }, nil},
			{"and is gone", func() error { return s.RemoveMember(ctx, "team", "alice") }, store.ErrNotFound},
			{"no such user", func() error { return s.RemoveMember(ctx, "team", "nobody") }, store.ErrNotFound},
			{"no such namespace", func() error { return s.RemoveMember(ctx, "ghost", "bob") }, store.ErrNotFound},
			{"a non-admin goes freely", func() error {
				if err := s.SetMember(ctx, "team", "carol", store.RoleRead); err != nil {
					return err
				}
				return s.RemoveMember(ctx, "team", "carol")
			}, nil},
		}
		for _, st := range steps {
			if err := st.do(); !errors.Is(err, st.want) || (st.want == nil && err != nil) {
				t.Errorf("%s: %v, want %v", st.name, err, st.want)
			}
		}
		if role, err := s.MemberRole(ctx, "team", alice.ID); err != nil || role != "" {
			t.Errorf("alice's role after removal = %q, %v", role, err)
		}
	})
}

// TestRemoveAdminsConcurrently removes every admin of a namespace at once, many times: each
// time exactly one stays.
func TestRemoveAdminsConcurrently(t *testing.T) {
	ctx := context.Background()
	const admins, rounds = 6, 8
	forEachBackend(t, func(t *testing.T, s *store.Store) {
		var names []string
		for i := 0; i < admins; i++ {
			u, _, err := s.CreateUser(ctx, "admin-"+string(rune('a'+i)), false)
			if err != nil {
				t.Fatal(err)
			}
			names = append(names, u.Name)
		}
		first, _ := s.GetUser(ctx, names[0])
		for round := 0; round < rounds; round++ {
			ns := "race-" + string(rune('a'+round))
			if _, err := s.CreateNamespace(ctx, ns, first.ID); err != nil {
				t.Fatal(err)
			}
			for _, n := range names[1:] {
				if err := s.SetMember(ctx, ns, n, store.RoleAdmin); err != nil {
					t.Fatal(err)
				}
			}
			var (
				wg               sync.WaitGroup
				mu               sync.Mutex
				removed, refused int
				unexpected       []error
				start            = make(chan struct{})
			)
			for i, n := range names {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					var err error
					if i%2 == 0 {
						err = s.RemoveMember(ctx, ns, n)
					} else {
						err = s.SetMember(ctx, ns, n, store.RoleRead) // demoting races the same way
					}
					mu.Lock()
					defer mu.Unlock()
					switch {
					case err == nil:
						removed++
					case errors.Is(err, store.ErrLastAdmin):
						refused++
					default:
						unexpected = append(unexpected, err)
					}
				}()
			}
			close(start)
			wg.Wait()
			if len(unexpected) > 0 {
				t.Fatalf("round %d: %v", round, unexpected)
			}
			members, err := s.ListMembers(ctx, ns)
			if err != nil {
				t.Fatal(err)
			}
			left := 0
			for _, m := range members {
				if m.Role == store.RoleAdmin {
					left++
				}
			}
			if removed != admins-1 || refused != 1 || left != 1 {
				t.Fatalf("round %d: %d removed or demoted, %d refused, %d admins left; want %d, 1, 1",
					round, removed, refused, left, admins-1)
			}
		}
	})
}

func TestDeleteRepository(t *testing.T) {
	ctx := context.Background()
	forEachBackend(t, func(t *testing.T, s *store.Store) {
		seedRepository(t, s, "demo", "app")
		if _, err := s.CreateRepository(ctx, "demo", "keep"); err != nil {
			t.Fatal(err)
		}
		src := store.Source{Provider: "github", Owner: "octo", Repository: "hello"}
		var ids []string
		for _, repo := range []string{"app", "app", "keep"} {
			r, err := s.CreateRule(ctx, store.Rule{Namespace: "demo", Repository: repo, Source: src})
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, r.ID)
		}
		if err := s.SetRuleHook(ctx, ids[0], store.RuleHook{ID: 42, State: "active"}); err != nil {
			t.Fatal(err)
		}
		gone, err := s.DeleteRepository(ctx, "demo", "app")
		if err != nil {
			t.Fatal(err)
		}
		if len(gone) != 2 || gone[0].ID != ids[0] || gone[1].ID != ids[1] || gone[0].Hook.ID != 42 {
			t.Errorf("DeleteRepository returned %+v, want rules %v with the first's hook", gone, ids[:2])
		}
		for _, id := range ids[:2] {
			if _, err := s.GetRule(ctx, id); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("rule %s after its repository's deletion: %v", id, err)
			}
		}
		if _, err := s.GetRule(ctx, ids[2]); err != nil {
			t.Errorf("the other repository's rule: %v", err)
		}
		if _, err := s.GetRepository(ctx, "demo", "app"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("repository after deletion: %v", err)
		}
		if _, err := s.DeleteRepository(ctx, "demo", "app"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("deleting again: %v", err)
		}
		// The name can be used again, empty.
		if _, err := s.CreateRepository(ctx, "demo", "app"); err != nil {
			t.Fatal(err)
		}
		if rs, err := s.ListRules(ctx, "demo", "app"); err != nil || len(rs) != 0 {
			t.Errorf("rules of the new repository of the same name: %v, %v", rs, err)
		}
	})
}

// rawSecret reads a rule's webhook_secret column as stored.
func rawSecret(t *testing.T, url, id string) string {
	t.Helper()
	db, err := sql.Open(driverFor(url))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	q := "SELECT webhook_secret FROM rules WHERE id = ?"
	if strings.HasPrefix(url, "postgres") {
		q = "SELECT webhook_secret FROM rules WHERE id = $1"
	}
	var v string
	if err := db.QueryRow(q, id).Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestWebhookSecretsSealed(t *testing.T) {
	ctx := context.Background()
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			url := b.url(t)
			s := openStore(t, url)
			seedRepository(t, s, "demo", "app")
			r, err := s.CreateRule(ctx, store.Rule{Namespace: "demo", Repository: "app",
				Source: store.Source{Provider: "github", Owner: "octo", Repository: "hello"}})
			if err != nil {
				t.Fatal(err)
			}
			raw := rawSecret(t, url, r.ID)
			if !strings.HasPrefix(raw, "v1:") || strings.Contains(raw, r.WebhookSecret) {
				t.Errorf("stored webhook secret %q is not sealed", raw)
			}
			if got, err := s.GetRule(ctx, r.ID); err != nil || got.WebhookSecret != r.WebhookSecret {
				t.Errorf("GetRule's secret = %q, %v; want the one made", got.WebhookSecret, err)
			}

			rotated, err := s.RotateWebhookSecret(ctx, r.ID)
			if err != nil || rotated.WebhookSecret == r.WebhookSecret || !secretPattern.MatchString(rotated.WebhookSecret) {
				t.Fatalf("RotateWebhookSecret = %q, %v", rotated.WebhookSecret, err)
			}
			if got, _ := s.GetRule(ctx, r.ID); got.WebhookSecret != rotated.WebhookSecret {
				t.Errorf("after rotation GetRule's secret is %q, want the new one", got.WebhookSecret)
			}
			if _, err := s.RotateWebhookSecret(ctx, "r-aaaaaaaaaaaa"); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("rotating a missing rule's secret: %v", err)
			}

			// A store without the box reads no secret and writes none.
			bare := openStore(t, url, func(*store.Store) {})
			if got, err := bare.GetRule(ctx, r.ID); err != nil || got.WebhookSecret != "" {
				t.Errorf("without the box GetRule's secret = %q, %v; want empty", got.WebhookSecret, err)
			}
			if _, err := bare.CreateRule(ctx, store.Rule{Namespace: "demo", Repository: "app", Source: r.Source}); err == nil {
				t.Error("a store without the box created a rule")
			}
			// Another key opens nothing, and says so.
			other := openStore(t, url, store.WithSecretBox(testBox(t, 9)))
			if _, err := other.GetRule(ctx, r.ID); err == nil || strings.Contains(err.Error(), rotated.WebhookSecret) {
				t.Errorf("GetRule under another key: %v", err)
			}

			// Migration 5 seals a plain-text secret of before it, at the first Open with the box.
			const plain = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
			db, err := sql.Open(driverFor(url))
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			q1, q2 := "UPDATE rules SET webhook_secret = ? WHERE id = ?", "DELETE FROM schema_migrations WHERE version = 5"
			if strings.HasPrefix(url, "postgres") {
				q1 = "UPDATE rules SET webhook_secret = $1 WHERE id = $2"
			}
			if _, err := db.Exec(q1, plain, r.ID); err != nil {
				t.Fatal(err)
			}
			if _, err := db.Exec(q2); err != nil {
				t.Fatal(err)
			}
			// Without the box the step waits, and the plain value still verifies deliveries.
			if got, err := openStore(t, url, func(*store.Store) {}).GetRule(ctx, r.ID); err != nil || got.WebhookSecret != plain {
				t.Errorf("plain secret read without the box: %q, %v", got.WebhookSecret, err)
			}
			if raw := rawSecret(t, url, r.ID); raw != plain {
				t.Errorf("an Open without the box changed the stored secret to %q", raw)
			}
			s2 := openStore(t, url)
			raw = rawSecret(t, url, r.ID)
			if !strings.HasPrefix(raw, "v1:") || strings.Contains(raw, plain) {
				t.Errorf("after migration the stored secret is %q, want sealed", raw)
			}
			if got, err := s2.GetRule(ctx, r.ID); err != nil || got.WebhookSecret != plain {
				t.Errorf("after migration GetRule's secret = %q, %v; want the old plain one", got.WebhookSecret, err)
			}
			if v, _ := s2.SchemaVersion(ctx); v < 5 {
				t.Errorf("schema version %d after the sealing migration", v)
			}
		})
	}
}

func TestOrphanedHooks(t *testing.T) {
	ctx := context.Background()
	forEachBackend(t, func(t *testing.T, s *store.Store) {
		seedRepository(t, s, "demo", "app")
		r, err := s.CreateRule(ctx, store.Rule{Namespace: "demo", Repository: "app",
			Source: store.Source{Provider: "github", Owner: "octo", Repository: "hello"}})
		if err != nil {
			t.Fatal(err)
		}
		if r.OrphanedHooks == nil || len(r.OrphanedHooks) != 0 {
			t.Errorf("a new rule's orphaned hooks = %#v, want []", r.OrphanedHooks)
		}
		want := []store.OrphanedHook{{Source: r.Source, AccountID: "a-x", HookID: 7, Error: "forbidden"}}
		if err := s.SetOrphanedHooks(ctx, r.ID, want); err != nil {
			t.Fatal(err)
		}
		got, err := s.GetRule(ctx, r.ID)
		if err != nil || len(got.OrphanedHooks) != 1 || got.OrphanedHooks[0] != want[0] {
			t.Errorf("orphaned hooks read back: %+v, %v", got.OrphanedHooks, err)
		}
		// An update of the rule keeps them.
		got.TagTemplate = "latest"
		if u, err := s.UpdateRule(ctx, got); err != nil || len(u.OrphanedHooks) != 1 {
			t.Errorf("after UpdateRule: %+v, %v", u.OrphanedHooks, err)
		}
		if err := s.SetOrphanedHooks(ctx, r.ID, nil); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.GetRule(ctx, r.ID); len(got.OrphanedHooks) != 0 {
			t.Errorf("after clearing: %+v", got.OrphanedHooks)
		}
		if err := s.SetOrphanedHooks(ctx, "r-aaaaaaaaaaaa", nil); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("missing rule: %v", err)
		}
	})
}
