package store_test

import (
	"context"
	"errors"
	"reflect"
	"testing"

	"github.com/slipway-dev/slipway/build"
	"github.com/slipway-dev/slipway/store"
)

func TestRetentionPolicies(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		u, _, err := s.CreateUser(ctx, "alice", false)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.CreateNamespace(ctx, "demo", u.ID); err != nil {
			t.Fatal(err)
		}
		for _, r := range []string{"app", "web"} {
			if _, err := s.CreateRepository(ctx, "demo", r); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := s.GetRetention(ctx, "demo", "app"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("GetRetention before any = %v, want not found", err)
		}
		if _, err := s.SetRetention(ctx, "demo", "nope", build.RetentionPolicy{}); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("SetRetention of a missing repository = %v, want not found", err)
		}
		p := build.RetentionPolicy{Every: "24h", Rules: []build.RetentionRule{
			{TagPattern: "main-*", KeepLast: 3}, {TagPattern: "/^pr-/", KeepYoungerThan: "72h"}}}
		if _, err := s.SetRetention(ctx, "demo", "app", p); err != nil {
			t.Fatal(err)
		}
		got, err := s.GetRetention(ctx, "demo", "app")
		if err != nil || !reflect.DeepEqual(got.RetentionPolicy, p) || got.UpdatedAt.IsZero() {
			t.Fatalf("GetRetention = %+v, %v; want %+v", got, err, p)
		}
		// Replacing it keeps one row.
		p2 := build.RetentionPolicy{Every: "1h", Rules: []build.RetentionRule{{TagPattern: "*", KeepLast: 1}}}
		if _, err := s.SetRetention(ctx, "demo", "app", p2); err != nil {
			t.Fatal(err)
		}
		if _, err := s.SetRetention(ctx, "demo", "web", p); err != nil {
			t.Fatal(err)
		}
		all, err := s.ListRetention(ctx)
		if err != nil || len(all) != 2 || all[0].Repository != "app" || !reflect.DeepEqual(all[0].RetentionPolicy, p2) || all[1].Repository != "web" {
			t.Fatalf("ListRetention = %+v, %v", all, err)
		}
		if err := s.DeleteRetention(ctx, "demo", "app"); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteRetention(ctx, "demo", "app"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("second DeleteRetention = %v, want not found", err)
		}
		// The rules' tagging, read without the secret box.
		src := store.Source{Provider: "github", Owner: "octo", Repository: "hello"}
		r1, err := s.CreateRule(ctx, store.Rule{Namespace: "demo", Repository: "app", Source: src, TagLatest: "default_branch"})
		if err != nil {
			t.Fatal(err)
		}
		r2, err := s.CreateRule(ctx, store.Rule{Namespace: "demo", Repository: "app", Source: src, Semver: true, Cache: "mycache"})
		if err != nil {
			t.Fatal(err)
		}
		want := []store.RuleTags{{ID: r1.ID, TagLatest: "default_branch"}, {ID: r2.ID, Semver: true, Cache: "mycache"}}
		if got, err := s.RetentionRules(ctx, "demo", "app"); err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("RetentionRules = %+v, %v; want %+v", got, err, want)
		}
		if got, err := s.RetentionRules(ctx, "demo", "web"); err != nil || len(got) != 0 {
			t.Fatalf("RetentionRules of a repository without rules = %+v, %v", got, err)
		}

		// The policy goes with its repository.
		if _, err := s.DeleteRepository(ctx, "demo", "web"); err != nil {
			t.Fatal(err)
		}
		if all, err := s.ListRetention(ctx); err != nil || len(all) != 0 {
			t.Fatalf("ListRetention after the deletions = %+v, %v", all, err)
		}
	})
}
