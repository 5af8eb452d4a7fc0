package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/store"
)

func TestDeliveries(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		day := 24 * time.Hour
		start := time.Now().UTC().Truncate(time.Microsecond)
		old := store.Delivery{RuleID: "r-1", EventKey: "build-r-1-branch-main-x", BuildID: "build-old", CreatedAt: start.Add(-100 * day)}
		if err := s.RecordDelivery(ctx, old, start.Add(-200*day)); err != nil {
			t.Fatal(err)
		}
		tests := []struct {
			name    string
			rule    string
			key     string
			since   time.Time
			want    string
			missing bool
		}{
			{"within retention", "r-1", old.EventKey, start.Add(-101 * day), "build-old", false},
			{"past retention", "r-1", old.EventKey, start.Add(-90 * day), "", true},
			{"other rule", "r-2", old.EventKey, start.Add(-101 * day), "", true},
			{"other event", "r-1", "build-r-1-branch-main-y", start.Add(-101 * day), "", true},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				d, err := s.FindDelivery(ctx, tt.rule, tt.key, tt.since)
				if tt.missing {
					if !errors.Is(err, store.ErrNotFound) {
						t.Fatalf("FindDelivery = %+v, %v; want not found", d, err)
					}
					return
				}
				if err != nil || d.BuildID != tt.want || !d.CreatedAt.Equal(old.CreatedAt) {
					t.Fatalf("FindDelivery = %+v, %v; want %s at %s", d, err, tt.want, old.CreatedAt)
				}
			})
		}

		// A second record of the same event keeps the first build as the answer.
		dup := old
		dup.BuildID, dup.CreatedAt = "build-second", start
		if err := s.RecordDelivery(ctx, dup, start.Add(-200*day)); err != nil {
			t.Fatal(err)
		}
		if d, err := s.FindDelivery(ctx, "r-1", old.EventKey, start.Add(-200*day)); err != nil || d.BuildID != "build-old" {
			t.Fatalf("after a second record: %+v, %v; want build-old", d, err)
		}

		// Recording with a retention of 90 days forgets the 100-day-old record; the event can
		// then start a build again.
		other := store.Delivery{RuleID: "r-1", EventKey: "build-r-1-branch-main-z", BuildID: "build-new"}
		if err := s.RecordDelivery(ctx, other, start.Add(-90*day)); err != nil {
			t.Fatal(err)
		}
		if _, err := s.FindDelivery(ctx, "r-1", old.EventKey, time.Time{}); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("expired delivery still found: %v", err)
		}
		if d, err := s.FindDelivery(ctx, "r-1", other.EventKey, start.Add(-time.Minute)); err != nil || d.BuildID != "build-new" {
			t.Fatalf("new delivery: %+v, %v", d, err)
		}
	})
}

// TestRecordTagDeletion checks a later deletion of a tag replaces the generation an earlier
// one left, on both backends (an upsert), and that it reads back as a delivery.
func TestRecordTagDeletion(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		since := time.Now().Add(-time.Hour)
		for _, gen := range []string{"delete-1", "delete-2"} {
			if err := s.RecordTagDeletion(ctx, "r-1", "tag-deleted-v1-x", gen); err != nil {
				t.Fatal(err)
			}
			d, err := s.FindDelivery(ctx, "r-1", "tag-deleted-v1-x", since)
			if err != nil || d.BuildID != gen {
				t.Fatalf("after deletion %s: %+v, %v", gen, d, err)
			}
		}
		if _, err := s.FindDelivery(ctx, "r-2", "tag-deleted-v1-x", since); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("another rule's deletion: %v", err)
		}
	})
}
