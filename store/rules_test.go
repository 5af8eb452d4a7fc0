package store_test

import (
	"context"
	"reflect"
	"testing"

	"github.com/slipway-dev/slipway/build"
	"github.com/slipway-dev/slipway/store"
)

// TestRuleSemanticsRoundTrip checks every field of migration 7 reads back as written, through
// both creation and update, and that a rule without a path filter reads back without one.
func TestRuleSemanticsRoundTrip(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		seedRepository(t, s, "team", "app")
		r, err := s.CreateRule(ctx, store.Rule{Namespace: "team", Repository: "app",
			Source: store.Source{Provider: "github", Owner: "octo", Repository: "hello"},
			Triggers: build.Triggers{Branches: []string{"/^release-(\\d+)$/"}, Tags: true, TagPatterns: []string{"v*"},
				Paths: &build.PathFilter{Include: []string{"src/**"}, Ignore: []string{"**/*.md"}}},
			TagLatest: "default_branch", Semver: true, SkipMarkers: true, RunPolicy: "serial", ReconcileEvery: "5m"})
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.GetRule(ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got.Triggers, r.Triggers) || got.TagLatest != "default_branch" || !got.Semver ||
			!got.SkipMarkers || got.RunPolicy != "serial" || got.ReconcileEvery != "5m" {
			t.Fatalf("read back %+v, want %+v", got, r)
		}
		got.Triggers.Paths, got.Triggers.TagPatterns = nil, nil
		got.Semver, got.SkipMarkers, got.RunPolicy, got.ReconcileEvery, got.TagLatest = false, false, "latest_only", "", ""
		if _, err := s.UpdateRule(ctx, got); err != nil {
			t.Fatal(err)
		}
		back, err := s.GetRule(ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if back.Triggers.Paths != nil || len(back.Triggers.TagPatterns) != 0 || back.Triggers.TagPatterns == nil ||
			back.Semver || back.SkipMarkers || back.RunPolicy != "latest_only" || back.ReconcileEvery != "" || back.TagLatest != "" {
			t.Fatalf("after update read back %+v", back)
		}
	})
}
