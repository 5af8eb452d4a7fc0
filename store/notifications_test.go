package store_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/slipway-dev/slipway/store"
)

func TestNotifications(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		seedRepository(t, s, "team", "app")
		seedRepository(t, s, "other", "app")
		n, err := s.CreateNotification(ctx, store.Notification{Namespace: "team", URL: "https://hooks.example/x",
			Events: []string{"failed", "succeeded"}, Format: "json", CreatedBy: "alice"})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(n.ID, "n-") || len(n.Secret) != 64 {
			t.Fatalf("created %+v", n)
		}
		if _, err := s.CreateNotification(ctx, store.Notification{Namespace: "nope", URL: "https://x", Format: "json"}); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("missing namespace: %v", err)
		}
		got, err := s.GetNotification(ctx, n.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Secret != n.Secret || got.Namespace != "team" || got.URL != n.URL || len(got.Events) != 2 || got.CreatedBy != "alice" {
			t.Fatalf("read back %+v", got)
		}
		for _, tc := range []struct {
			rule, event string
			want        bool
		}{
			{"r-any", "failed", true},
			{"r-any", "started", false},
		} {
			if got.Matches(tc.rule, tc.event) != tc.want {
				t.Errorf("Matches(%s, %s) = %v", tc.rule, tc.event, !tc.want)
			}
		}
		rule, err := s.CreateRule(ctx, store.Rule{Namespace: "team", Repository: "app",
			Source: store.Source{Provider: "github", Owner: "octo", Repository: "hello"}})
		if err != nil {
			t.Fatal(err)
		}
		got.RuleID, got.Events, got.Format = rule.ID, []string{"started"}, "slack"
		u, err := s.UpdateNotification(ctx, got)
		if err != nil {
			t.Fatal(err)
		}
		if u.RuleID != rule.ID || u.Format != "slack" || u.Secret != n.Secret || !u.Matches(rule.ID, "started") || u.Matches("r-two", "started") {
			t.Fatalf("updated %+v", u)
		}
		// A rule's own notifications go with the rule.
		own, err := s.CreateNotification(ctx, store.Notification{Namespace: "team", RuleID: rule.ID, URL: "https://x", Events: []string{"failed"}, Format: "json"})
		if err != nil {
			t.Fatal(err)
		}
		if own.RuleID != rule.ID {
			t.Fatalf("created %+v", own)
		}
		if _, err := s.UpdateNotification(ctx, store.Notification{ID: "n-missing"}); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("update of a missing notification: %v", err)
		}
		r, err := s.RotateNotificationSecret(ctx, n.ID)
		if err != nil {
			t.Fatal(err)
		}
		if r.Secret == n.Secret || len(r.Secret) != 64 {
			t.Fatalf("rotated secret %q", r.Secret)
		}
		if back, _ := s.GetNotification(ctx, n.ID); back.Secret != r.Secret {
			t.Fatalf("rotated secret not kept")
		}
		if list, err := s.ListNotifications(ctx, "team"); err != nil || len(list) != 2 || list[0].ID != n.ID || list[1].ID != own.ID {
			t.Fatalf("list = %+v, %v", list, err)
		}
		if list, err := s.ListNotifications(ctx, "other"); err != nil || len(list) != 0 {
			t.Fatalf("other namespace lists %+v, %v", list, err)
		}

		// The delivery log: one row per delivery, updated per attempt, the newest first, and
		// no more than the last 50.
		d := store.NotificationDelivery{ID: "d-1", NotificationID: n.ID, Event: "failed", BuildID: "b-1",
			Status: store.DeliveryPending, Attempts: 1, LastHTTPStatus: 503, LastResponse: "down"}
		if err := s.RecordNotificationDelivery(ctx, d); err != nil {
			t.Fatal(err)
		}
		d.Status, d.Attempts, d.LastHTTPStatus, d.LastResponse = store.DeliveryDelivered, 2, 200, "ok"
		if err := s.RecordNotificationDelivery(ctx, d); err != nil {
			t.Fatal(err)
		}
		ds, err := s.ListNotificationDeliveries(ctx, n.ID)
		if err != nil || len(ds) != 1 {
			t.Fatalf("deliveries = %+v, %v", ds, err)
		}
		if ds[0].Attempts != 2 || ds[0].Status != store.DeliveryDelivered || ds[0].LastHTTPStatus != 200 || ds[0].LastResponse != "ok" || ds[0].BuildID != "b-1" {
			t.Fatalf("delivery = %+v", ds[0])
		}
		for i := 2; i <= 60; i++ {
			if err := s.RecordNotificationDelivery(ctx, store.NotificationDelivery{ID: fmt.Sprintf("d-%d", i), NotificationID: n.ID,
				Event: "started", BuildID: "b", Status: store.DeliveryDelivered, Attempts: 1}); err != nil {
				t.Fatal(err)
			}
		}
		ds, err = s.ListNotificationDeliveries(ctx, n.ID)
		if err != nil || len(ds) != 50 || ds[0].ID != "d-60" || ds[49].ID != "d-11" {
			t.Fatalf("kept %d deliveries (first %v), %v", len(ds), ds[0].ID, err)
		}
		if err := s.RecordNotificationDelivery(ctx, store.NotificationDelivery{ID: "d-x", NotificationID: "n-missing", Status: "pending"}); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("delivery of a missing notification: %v", err)
		}

		u.RuleID = ""
		if back, err := s.UpdateNotification(ctx, u); err != nil || back.RuleID != "" || !back.Matches("r-any", "started") {
			t.Fatalf("back to every rule: %+v, %v", back, err)
		}
		if err := s.DeleteRule(ctx, rule.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := s.GetNotification(ctx, own.ID); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("a deleted rule's notification: %v", err)
		}
		if err := s.DeleteNotification(ctx, n.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := s.GetNotification(ctx, n.ID); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("deleted notification: %v", err)
		}
		if ds, err := s.ListNotificationDeliveries(ctx, n.ID); err != nil || len(ds) != 0 {
			t.Fatalf("deliveries outlived their notification: %d, %v", len(ds), err)
		}
		if err := s.DeleteNotification(ctx, n.ID); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("second delete: %v", err)
		}
	})
}

func TestNotificationSecretSealed(t *testing.T) {
	ctx := context.Background()
	url := backends()[0].url(t)
	s := openStore(t, url)
	seedRepository(t, s, "team", "app")
	n, err := s.CreateNotification(ctx, store.Notification{Namespace: "team", URL: "https://x", Events: []string{"failed"}, Format: "json"})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	other := openStore(t, url, store.WithSecretBox(testBox(t, 9)))
	if _, err := other.GetNotification(ctx, n.ID); err == nil {
		t.Fatal("a store with another key opened the notification's secret")
	}
}

func TestBadgeTokens(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		seedRepository(t, s, "team", "app")
		r, err := s.CreateRule(ctx, store.Rule{Namespace: "team", Repository: "app",
			Source: store.Source{Provider: "github", Owner: "octo", Repository: "hello"}})
		if err != nil {
			t.Fatal(err)
		}
		tok, err := s.BadgeToken(ctx, r.ID)
		if err != nil || len(tok) != 32 {
			t.Fatalf("token %q, %v", tok, err)
		}
		if again, err := s.BadgeToken(ctx, r.ID); err != nil || again != tok {
			t.Fatalf("second read %q, %v; want %q", again, err, tok)
		}
		if got, err := s.RuleByBadgeToken(ctx, tok); err != nil || got.ID != r.ID {
			t.Fatalf("rule by token: %+v, %v", got, err)
		}
		if _, err := s.BadgeToken(ctx, "r-missing"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("token of a missing rule: %v", err)
		}
		rot, err := s.RotateBadgeToken(ctx, r.ID)
		if err != nil || rot == tok {
			t.Fatalf("rotated %q, %v", rot, err)
		}
		if _, err := s.RuleByBadgeToken(ctx, tok); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("old token still finds the rule: %v", err)
		}
		if err := s.DeleteRule(ctx, r.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := s.RuleByBadgeToken(ctx, rot); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("deleted rule's badge: %v", err)
		}
	})
}
