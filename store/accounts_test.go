package store_test

import (
	"context"
	"errors"
	"testing"

	"github.com/slipway-dev/slipway/store"
)

func TestAccountsAndRuleHooks(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		seedRepository(t, s, "team", "app")
		id, err := store.NewAccountID()
		if err != nil {
			t.Fatal(err)
		}
		a, err := s.CreateAccount(ctx, store.Account{ID: id, Namespace: "team", Provider: "github", Login: "octo", CreatedBy: "alice", TokenSealed: "v1:sealed"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.CreateAccount(ctx, store.Account{ID: id, Namespace: "team", Provider: "github", Login: "x", TokenSealed: "v1:x"}); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("duplicate id: %v", err)
		}
		if _, err := s.CreateAccount(ctx, store.Account{ID: "a-other", Namespace: "nope", Provider: "github", TokenSealed: "x"}); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("missing namespace: %v", err)
		}
		got, err := s.GetAccount(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if got.Namespace != "team" || got.Login != "octo" || got.TokenSealed != "v1:sealed" || got.CreatedBy != "alice" || !got.CreatedAt.Equal(a.CreatedAt) {
			t.Fatalf("account = %+v", got)
		}
		list, err := s.ListAccounts(ctx, "team")
		if err != nil || len(list) != 1 || list[0].ID != id {
			t.Fatalf("list = %+v, %v", list, err)
		}

		r, err := s.CreateRule(ctx, store.Rule{Namespace: "team", Repository: "app", AccountID: id,
			Source: store.Source{Provider: "github", Owner: "octo", Repository: "hello"}, Hook: store.RuleHook{ID: 99, State: "forged"}, Cache: "off"})
		if err != nil {
			t.Fatal(err)
		}
		if r.AccountID != id || r.Hook != (store.RuleHook{}) {
			t.Fatalf("created rule: account %q hook %+v", r.AccountID, r.Hook)
		}
		if err := s.SetRuleHook(ctx, r.ID, store.RuleHook{ID: 42, State: "active"}); err != nil {
			t.Fatal(err)
		}
		r.TagTemplate = "{ref}"
		u, err := s.UpdateRule(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		if u.Hook != (store.RuleHook{ID: 42, State: "active"}) || u.AccountID != id {
			t.Fatalf("update lost the hook or account: %+v", u)
		}
		back, err := s.GetRule(ctx, r.ID)
		if err != nil || back.Hook.ID != 42 || back.AccountID != id || back.Cache != "off" {
			t.Fatalf("read back %+v, %v", back, err)
		}
		if err := s.SetRuleHook(ctx, "r-missing", store.RuleHook{}); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("hook of a missing rule: %v", err)
		}
		if err := s.DeleteAccount(ctx, id); err != nil {
			t.Fatal(err)
		}
		if _, err := s.GetAccount(ctx, id); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("deleted account: %v", err)
		}
		if err := s.DeleteAccount(ctx, id); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("second delete: %v", err)
		}
	})
}
