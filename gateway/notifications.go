package gateway

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/gin-gonic/gin"

	"github.com/slipway-dev/slipway/builds"
	"github.com/slipway-dev/slipway/notify"
	"github.com/slipway-dev/slipway/store"
)

// notificationBody is a notification as callers send it.
type notificationBody struct {
	URL    string   `json:"url"`
	Events []string `json:"events"`
	// RuleID limits the notification to one rule of the namespace; empty is every rule.
	RuleID string `json:"rule_id"`
	// Format is "json" (the default) or "slack".
	Format string `json:"format"`
}

// notificationView is a notification as the API shows it; Secret only in the answers that
// make one (creation, rotation).
type notificationView struct {
	store.Notification
	Secret string `json:"secret,omitempty"`
}

// check refuses what could never be delivered, naming the field; rule_id must name a rule of
// namespace ns.
func (a *Server) checkNotification(c *gin.Context, ns string, b *notificationBody) bool {
	if b.Format == "" {
		b.Format = notify.FormatJSON
	}
	for _, err := range []error{notify.CheckURL(b.URL), notify.CheckEvents(b.Events), notify.CheckFormat(b.Format)} {
		if err != nil {
			fail(c, http.StatusBadRequest, err.Error())
			return false
		}
	}
	if b.RuleID == "" {
		return true
	}
	var r store.Rule
	err := store.ErrNotFound
	if builds.ValidID(b.RuleID) {
		r, err = a.store.GetRule(c.Request.Context(), b.RuleID)
	}
	switch {
	case errors.Is(err, store.ErrNotFound) || err == nil && r.Namespace != ns:
		fail(c, http.StatusBadRequest, fmt.Sprintf("rule_id %q is not a build rule of namespace %s", b.RuleID, ns))
		return false
	case err != nil:
		a.internal(c, "database error", err)
		return false
	}
	return true
}

func (a *Server) createNotification(c *gin.Context) {
	ns := c.Param("ns")
	var b notificationBody
	if !bindJSON(c, &b) || !a.checkNotification(c, ns, &b) {
		return
	}
	n, err := a.store.CreateNotification(c.Request.Context(), store.Notification{
		Namespace: ns, RuleID: b.RuleID, URL: b.URL, Events: b.Events, Format: b.Format, CreatedBy: user(c).Name,
	})
	if err != nil {
		a.storeError(c, "namespace "+ns, err)
		return
	}
	c.JSON(http.StatusCreated, notificationView{Notification: n, Secret: n.Secret})
}

func (a *Server) listNotifications(c *gin.Context) {
	ns := c.Param("ns")
	list, err := a.store.ListNotifications(c.Request.Context(), ns)
	if err != nil {
		a.storeError(c, "namespace "+ns, err)
		return
	}
	for i := range list {
		list[i] = a.forCaller(c, list[i])
	}
	c.JSON(http.StatusOK, gin.H{"notifications": list})
}

// forCaller is n as the caller may read it: a reader without write sees only the scheme and
// host of its URL, since a receiver's path or query is often its credential (Slack's incoming
// webhook URLs are).
func (a *Server) forCaller(c *gin.Context, n store.Notification) store.Notification {
	if code, _ := a.access(c, n.Namespace, store.RoleWrite); code == 0 {
		return n
	}
	if u, err := url.Parse(n.URL); err == nil {
		n.URL = u.Scheme + "://" + u.Host + "/…"
	} else {
		n.URL = "…"
	}
	return n
}

// nsNotification reads notification :nid of namespace :ns; another namespace's is a 404.
func (a *Server) nsNotification(c *gin.Context) (store.Notification, bool) {
	id := c.Param("nid")
	n, err := a.store.GetNotification(c.Request.Context(), id)
	if err == nil && n.Namespace != c.Param("ns") {
		err = store.ErrNotFound
	}
	if err != nil {
		a.storeError(c, fmt.Sprintf("notification %q", id), err)
		return store.Notification{}, false
	}
	return n, true
}

// getNotification answers the notification and its last deliveries, newest first.
func (a *Server) getNotification(c *gin.Context) {
	n, ok := a.nsNotification(c)
	if !ok {
		return
	}
	ds, err := a.store.ListNotificationDeliveries(c.Request.Context(), n.ID)
	if err != nil {
		a.internal(c, "database error", err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"notification": a.forCaller(c, n), "deliveries": ds})
}

func (a *Server) updateNotification(c *gin.Context) {
	n, ok := a.nsNotification(c)
	if !ok {
		return
	}
	var b notificationBody
	if !bindJSON(c, &b) || !a.checkNotification(c, n.Namespace, &b) {
		return
	}
	n.URL, n.Events, n.RuleID, n.Format = b.URL, b.Events, b.RuleID, b.Format
	updated, err := a.store.UpdateNotification(c.Request.Context(), n)
	if err != nil {
		a.storeError(c, fmt.Sprintf("notification %q", n.ID), err)
		return
	}
	c.JSON(http.StatusOK, updated)
}

func (a *Server) deleteNotification(c *gin.Context) {
	n, ok := a.nsNotification(c)
	if !ok {
		return
	}
	if err := a.store.DeleteNotification(c.Request.Context(), n.ID); err != nil {
		a.storeError(c, fmt.Sprintf("notification %q", n.ID), err)
		return
	}
	c.Status(http.StatusNoContent)
}

// rotateNotificationSecret gives a notification a new signing secret, shown once; deliveries
// attempted from then on are signed with it, retries of older ones included.
func (a *Server) rotateNotificationSecret(c *gin.Context) {
	n, ok := a.nsNotification(c)
	if !ok {
		return
	}
	n, err := a.store.RotateNotificationSecret(c.Request.Context(), n.ID)
	if err != nil {
		a.storeError(c, fmt.Sprintf("notification %q", c.Param("nid")), err)
		return
	}
	c.JSON(http.StatusOK, notificationView{Notification: n, Secret: n.Secret})
}
