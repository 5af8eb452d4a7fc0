package store_test

import (
	"context"
	"slices"
	"testing"

	"github.com/slipway-dev/slipway/store"
)

// TestRulePlatformsRoundTrip checks a rule's platforms read back as written, through creation,
// update and listing, and that a rule without any reads back an empty list, not null.
func TestRulePlatformsRoundTrip(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		seedRepository(t, s, "team", "app")
		want := []string{"linux/amd64", "linux/arm64"}
		r, err := s.CreateRule(ctx, store.Rule{Namespace: "team", Repository: "app",
			Source: store.Source{Provider: "github", Owner: "octo", Repository: "hello"}, Platforms: want})
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.GetRule(ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got.Platforms, want) {
			t.Fatalf("platforms read back %q, want %q", got.Platforms, want)
		}
		got.Platforms = nil
		if _, err := s.UpdateRule(ctx, got); err != nil {
			t.Fatal(err)
		}
		rules, err := s.ListRules(ctx, "team", "app")
		if err != nil {
			t.Fatal(err)
		}
		if len(rules) != 1 || rules[0].Platforms == nil || len(rules[0].Platforms) != 0 {
			t.Fatalf("after clearing, listed %+v, want one rule with platforms []", rules)
		}
		rules[0].Platforms = []string{"linux/arm/v7"}
		if _, err := s.UpdateRule(ctx, rules[0]); err != nil {
			t.Fatal(err)
		}
		if back, err := s.GetRule(ctx, r.ID); err != nil || !slices.Equal(back.Platforms, []string{"linux/arm/v7"}) {
			t.Fatalf("after update read back %q, %v", back.Platforms, err)
		}
	})
}
