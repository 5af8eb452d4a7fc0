package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/store"
)

func TestSessions(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		u, _, err := s.CreateUser(ctx, "alice", false)
		if err != nil {
			t.Fatal(err)
		}
		id, err := s.CreateSession(ctx, u.ID, time.Now().Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		sess, err := s.SessionByID(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if sess.User.Name != "alice" || sess.CSRFToken == "" || id == "" || id == sess.CSRFToken {
			t.Fatalf("session = %+v, id %q", sess, id)
		}
		if _, err := s.SessionByID(ctx, id+"x"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("wrong id: %v", err)
		}
		if err := s.SetSessionOAuth(ctx, id, "st", "ver", "team/github"); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.SessionByID(ctx, id); got.OAuthState != "st" || got.OAuthVerifier != "ver" || got.OAuthTarget != "team/github" {
			t.Fatalf("oauth = %+v", got)
		}

		t.Run("token rotated", func(t *testing.T) {
			v, _, err := s.CreateUser(ctx, "victor", false)
			if err != nil {
				t.Fatal(err)
			}
			before, err := s.CreateSession(ctx, v.ID, time.Now().Add(time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.SessionByID(ctx, before); err != nil {
				t.Fatalf("session before the rotation: %v", err)
			}
			if _, _, err := s.RotateToken(ctx, "victor"); err != nil {
				t.Fatal(err)
			}
			if _, err := s.SessionByID(ctx, before); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("session begun before the rotation still works: %v", err)
			}
			after, err := s.CreateSession(ctx, v.ID, time.Now().Add(time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.SessionByID(ctx, after); err != nil {
				t.Fatalf("session begun after the rotation: %v", err)
			}
		})

		t.Run("expired", func(t *testing.T) {
			old, err := s.CreateSession(ctx, u.ID, time.Now().Add(-time.Second))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.SessionByID(ctx, old); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("expired session: %v", err)
			}
		})
		t.Run("disabled user", func(t *testing.T) {
			if _, err := s.SetDisabled(ctx, "alice", true); err != nil {
				t.Fatal(err)
			}
			if _, err := s.SessionByID(ctx, id); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("disabled user's session: %v", err)
			}
			if _, err := s.SetDisabled(ctx, "alice", false); err != nil {
				t.Fatal(err)
			}
		})
		t.Run("sign out", func(t *testing.T) {
			if err := s.DeleteSession(ctx, id); err != nil {
				t.Fatal(err)
			}
			if _, err := s.SessionByID(ctx, id); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("after sign out: %v", err)
			}
			if err := s.DeleteSession(ctx, id); err != nil {
				t.Fatalf("second sign out: %v", err)
			}
		})
	})
}

func TestIdentities(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		alice, _, err := s.CreateUser(ctx, "alice", false)
		if err != nil {
			t.Fatal(err)
		}
		bob, _, err := s.CreateUser(ctx, "bob", false)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.UserByIdentity(ctx, "github", "42"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("unlinked: %v", err)
		}
		if err := s.LinkIdentity(ctx, alice.ID, "github", "42", "octo"); err != nil {
			t.Fatal(err)
		}
		if u, err := s.UserByIdentity(ctx, "github", "42"); err != nil || u.Name != "alice" {
			t.Fatalf("linked: %+v, %v", u, err)
		}
		if _, err := s.UserByIdentity(ctx, "gitlab", "42"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("another provider's 42: %v", err)
		}
		// Linking again moves the identity.
		if err := s.LinkIdentity(ctx, bob.ID, "github", "42", "octo"); err != nil {
			t.Fatal(err)
		}
		if u, _ := s.UserByIdentity(ctx, "github", "42"); u.Name != "bob" {
			t.Fatalf("relinked to %q", u.Name)
		}
		if _, err := s.SetDisabled(ctx, "bob", true); err != nil {
			t.Fatal(err)
		}
		if _, err := s.UserByIdentity(ctx, "github", "42"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("disabled user: %v", err)
		}
	})
}
