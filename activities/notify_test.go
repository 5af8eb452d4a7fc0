package activities

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/testsuite"

	"github.com/slipway-dev/slipway/build"
	"github.com/slipway-dev/slipway/notify"
	"github.com/slipway-dev/slipway/store"
)

// fakeNotifications is a store of notifications in memory.
type fakeNotifications struct {
	mu         sync.Mutex
	all        []store.Notification
	deliveries map[string]store.NotificationDelivery
}

func (f *fakeNotifications) ListNotifications(_ context.Context, ns string) ([]store.Notification, error) {
	var out []store.Notification
	for _, n := range f.all {
		if n.Namespace == ns {
			out = append(out, n)
		}
	}
	return out, nil
}

func (f *fakeNotifications) GetNotification(_ context.Context, id string) (store.Notification, error) {
	for _, n := range f.all {
		if n.ID == id {
			return n, nil
		}
	}
	return store.Notification{}, store.ErrNotFound
}

func (f *fakeNotifications) RecordNotificationDelivery(_ context.Context, d store.NotificationDelivery) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.deliveries[d.ID] = d
	return nil
}

func (f *fakeNotifications) ListNotificationDeliveries(_ context.Context, id string) ([]store.NotificationDelivery, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []store.NotificationDelivery
	for _, d := range f.deliveries {
		if d.NotificationID == id {
			out = append(out, d)
		}
	}
	return out, nil
}

func TestDeliverNotification(t *testing.T) {
	var mu sync.Mutex
	status := http.StatusServiceUnavailable
	var signatures []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		signatures = append(signatures, r.Header.Get(notify.HeaderSignature))
		w.WriteHeader(status)
		w.Write([]byte("answer"))
	}))
	defer srv.Close()
	f := &fakeNotifications{deliveries: map[string]store.NotificationDelivery{}, all: []store.Notification{
		{ID: "n-1", Namespace: "demo", URL: srv.URL, Events: []string{"failed"}, Format: "json", Secret: "s3cret"},
		{ID: "n-2", Namespace: "demo", RuleID: "r-2", URL: srv.URL, Events: []string{"failed", "started"}, Format: "slack", Secret: "x"},
		{ID: "n-3", Namespace: "other", URL: srv.URL, Events: []string{"failed"}, Format: "json", Secret: "y"},
	}}
	a := &Activities{Notifications: f, BuildPageBase: "http://gw/builds", NotifyClient: notify.NewClient(5*time.Second, true)}
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(a)

	for _, tc := range []struct {
		in   NotifyTargetsInput
		want string
	}{
		{NotifyTargetsInput{Namespace: "demo", RuleID: "r-1", Event: "failed"}, "n-1"},
		{NotifyTargetsInput{Namespace: "demo", RuleID: "r-2", Event: "failed"}, "n-1,n-2"},
		{NotifyTargetsInput{Namespace: "demo", RuleID: "r-1", Event: "started"}, ""},
		{NotifyTargetsInput{Namespace: "nobody", RuleID: "r-1", Event: "failed"}, ""},
	} {
		v, err := env.ExecuteActivity(a.NotifyTargets, tc.in)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		if err := v.Get(&ids); err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(ids, ","); got != tc.want {
			t.Errorf("NotifyTargets(%+v) = %s, want %s", tc.in, got, tc.want)
		}
	}

	ev := build.BuildEvent{Event: "failed", Status: "failed", BuildID: "b-1", Namespace: "demo"}
	in := DeliverInput{NotificationID: "n-1", DeliveryID: "d-1", Event: ev}
	if _, err := env.ExecuteActivity(a.DeliverNotification, in); err == nil || !strings.Contains(err.Error(), "HTTP 503") {
		t.Fatalf("a receiver answering 503: %v", err)
	}
	if d := f.deliveries["d-1"]; d.Status != store.DeliveryPending || d.LastHTTPStatus != 503 || d.LastResponse != "answer" || d.Attempts != 1 {
		t.Fatalf("logged %+v", d)
	}
	mu.Lock()
	status = http.StatusNoContent
	mu.Unlock()
	if _, err := env.ExecuteActivity(a.DeliverNotification, in); err != nil {
		t.Fatal(err)
	}
	if d := f.deliveries["d-1"]; d.Status != store.DeliveryDelivered || d.LastHTTPStatus != 204 || d.LastError != "" {
		t.Fatalf("logged %+v", d)
	}
	body, _ := notify.Body("json", build.BuildEvent{Event: "failed", Status: "failed", BuildID: "b-1", Namespace: "demo", BuildURL: "http://gw/builds/b-1"})
	if signatures[1] != notify.Sign("s3cret", body) {
		t.Errorf("signature %s is not of the body with the build page", signatures[1])
	}

	// Another namespace's notification never gets this build's event.
	cross := DeliverInput{NotificationID: "n-3", DeliveryID: "d-2", Event: ev}
	if _, err := env.ExecuteActivity(a.DeliverNotification, cross); err == nil || !strings.Contains(err.Error(), "not of namespace demo") {
		t.Fatalf("a delivery to another namespace: %v", err)
	}
	// A deleted notification ends its delivery quietly.
	if _, err := env.ExecuteActivity(a.DeliverNotification, DeliverInput{NotificationID: "n-gone", DeliveryID: "d-3", Event: ev}); err != nil {
		t.Fatalf("a deleted notification: %v", err)
	}
	if len(signatures) != 2 {
		t.Fatalf("%d requests, want 2", len(signatures))
	}
	if _, err := env.ExecuteActivity(a.GiveUpDelivery, GiveUpInput{DeliverInput: in, Error: "gave up"}); err != nil {
		t.Fatal(err)
	}
	if d := f.deliveries["d-1"]; d.Status != store.DeliveryFailed || d.LastHTTPStatus != 204 {
		t.Fatalf("given up: %+v", d)
	}
}
