package activities

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/slipway-dev/slipway/build"
	"github.com/slipway-dev/slipway/notify"
	"github.com/slipway-dev/slipway/store"
)

// Notifications reads a namespace's notifications and writes their delivery log. The worker's
// is the gateway's database, opened with the secret key that opens the signing secrets.
type Notifications interface {
	ListNotifications(ctx context.Context, ns string) ([]store.Notification, error)
	GetNotification(ctx context.Context, id string) (store.Notification, error)
	RecordNotificationDelivery(ctx context.Context, d store.NotificationDelivery) error
	ListNotificationDeliveries(ctx context.Context, id string) ([]store.NotificationDelivery, error)
}

// notifyAttemptTimeout bounds one attempt of a delivery: a receiver that hangs is an attempt
// that failed, retried later.
const notifyAttemptTimeout = 10 * time.Second

// NotifyTargetsInput names a build event; NotifyTargets answers which notifications want it.
type NotifyTargetsInput struct {
	Namespace string `json:"namespace"`
	RuleID    string `json:"rule_id"`
	Event     string `json:"event"`
}

// NotifyTargets lists the ids of the notifications that want in's event, so that a build
// starts no delivery at all when none does. A worker without the database has none. It runs
// as a local activity of the build.
func (a *Activities) NotifyTargets(ctx context.Context, in NotifyTargetsInput) ([]string, error) {
	if a.Notifications == nil {
		return nil, nil
	}
	all, err := a.Notifications.ListNotifications(ctx, in.Namespace)
	if err != nil {
		return nil, fmt.Errorf("listing the notifications of %s: %w", in.Namespace, err)
	}
	var ids []string
	for _, n := range all {
		if n.Matches(in.RuleID, in.Event) {
			ids = append(ids, n.ID)
		}
	}
	return ids, nil
}

// DeliverInput is one delivery: one build event to one notification.
type DeliverInput struct {
	NotificationID string `json:"notification_id"`
	// DeliveryID is the same on every attempt; the receiver gets it in X-Slipway-Delivery.
	DeliveryID string           `json:"delivery_id"`
	Event      build.BuildEvent `json:"event"`
}

// DeliverNotification makes one attempt of a delivery and records it in the delivery log;
// Temporal retries it. The signing secret is read from the database here, so it never enters
// the workflow's history. A notification deleted meanwhile ends the delivery quietly.
func (a *Activities) DeliverNotification(ctx context.Context, in DeliverInput) error {
	if a.Notifications == nil {
		return temporal.NewNonRetryableApplicationError("this worker has no notifications database", "NoNotifications", nil)
	}
	n, err := a.Notifications.GetNotification(ctx, in.NotificationID)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading notification %s: %w", in.NotificationID, err)
	}
	if n.Namespace != in.Event.Namespace {
		// Not the build's own namespace's: never send one namespace's builds to another's hook.
		return temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("notification %s is not of namespace %s", n.ID, in.Event.Namespace), build.ErrTypeInvalidInput, nil)
	}
	ev := in.Event
	ev.BuildURL = a.buildPage(ev.BuildID)
	body, err := notify.Body(n.Format, ev)
	if err != nil {
		return temporal.NewNonRetryableApplicationError(err.Error(), build.ErrTypeInvalidInput, nil)
	}
	client := a.NotifyClient
	if client == nil {
		client = notify.NewClient(notifyAttemptTimeout, false)
	}
	answer, sendErr := notify.Send(ctx, client, notify.Request{
		URL: n.URL, Secret: n.Secret, Event: ev.Event, DeliveryID: in.DeliveryID, Body: body,
	})
	d := store.NotificationDelivery{
		ID: in.DeliveryID, NotificationID: n.ID, Event: ev.Event, BuildID: ev.BuildID,
		Status: store.DeliveryDelivered, Attempts: int(activity.GetInfo(ctx).Attempt),
		LastHTTPStatus: answer.Status, LastResponse: answer.Body,
	}
	if sendErr != nil {
		d.Status, d.LastError = store.DeliveryPending, sendErr.Error()
	}
	if err := a.Notifications.RecordNotificationDelivery(ctx, d); err != nil && !errors.Is(err, store.ErrNotFound) {
		activity.GetLogger(ctx).Warn("recording a notification delivery", "notification", n.ID, "error", err)
	}
	return sendErr
}

// GiveUpInput names a delivery whose attempts ran out.
type GiveUpInput struct {
	DeliverInput
	// Error is the last attempt's.
	Error string `json:"error"`
}

// GiveUpDelivery marks a delivery failed in the log once Temporal stopped retrying it.
func (a *Activities) GiveUpDelivery(ctx context.Context, in GiveUpInput) error {
	if a.Notifications == nil {
		return nil
	}
	// The last attempt's row holds its HTTP status and answer; read it to keep them.
	ds, err := a.Notifications.ListNotificationDeliveries(ctx, in.NotificationID)
	if err != nil {
		return fmt.Errorf("reading the delivery log: %w", err)
	}
	d := store.NotificationDelivery{ID: in.DeliveryID, NotificationID: in.NotificationID, Event: in.Event.Event,
		BuildID: in.Event.BuildID, LastError: in.Error}
	for _, old := range ds {
		if old.ID == in.DeliveryID {
			d = old
		}
	}
	d.Status = store.DeliveryFailed
	if d.LastError == "" {
		d.LastError = in.Error
	}
	if err := a.Notifications.RecordNotificationDelivery(ctx, d); err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("recording a failed delivery: %w", err)
	}
	return nil
}

// buildPage is the console page of build id, as commit statuses link to it.
func (a *Activities) buildPage(id string) string {
	target := a.BuildPageBase
	if target == "" {
		target = a.LogURLBase
	}
	return strings.TrimSuffix(target, "/") + "/" + url.PathEscape(id)
}
