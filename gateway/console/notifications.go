package console

import (
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/slipway-dev/slipway/build"
	"github.com/slipway-dev/slipway/store"
)

// notificationForm is a notification as the create and edit forms send it and show it again
// after a 400, so nothing typed is lost.
type notificationForm struct {
	URL    string
	Events []string
	RuleID string
	Format string
}

// Has reports whether the form has event ticked.
func (f notificationForm) Has(event string) bool { return slices.Contains(f.Events, event) }

func formOfNotification(n store.Notification) notificationForm {
	return notificationForm{URL: n.URL, Events: n.Events, RuleID: n.RuleID, Format: n.Format}
}

func notificationFormOfPost(c *gin.Context) notificationForm {
	return notificationForm{URL: strings.TrimSpace(c.PostForm("url")), Events: c.PostFormArray("events"),
		RuleID: strings.TrimSpace(c.PostForm("rule_id")), Format: c.PostForm("format")}
}

func (f notificationForm) body() map[string]any {
	events := f.Events
	if events == nil {
		events = []string{}
	}
	return map[string]any{"url": f.URL, "events": events, "rule_id": f.RuleID, "format": f.Format}
}

// ruleChoice is a rule of the namespace as the scope picker names it.
type ruleChoice struct {
	ID, Repo, Source string
}

// notificationsData is the namespace's notifications page: the list, and the create form for
// writers. Rule, when set, narrows the list to that rule's notifications (the rules list
// links there) and is the form's preselected scope.
type notificationsData struct {
	NS            string
	Access        access
	Rule          string
	Notifications []store.Notification
	Rules         []ruleChoice
	Events        []string
	Formats       []string
	Form          notificationForm
	Error         string
}

// RuleLabel names rule id for people: its repository and source.
func (d notificationsData) RuleLabel(id string) string { return ruleLabel(d.Rules, id) }

func ruleLabel(rules []ruleChoice, id string) string {
	for _, r := range rules {
		if r.ID == id {
			return r.Repo + ": " + r.Source + " (" + r.ID + ")"
		}
	}
	return id
}

// notificationData is one notification's page: what it is, its edit, rotate and remove
// controls for writers, and its delivery log. Secret is set only on the answer that made it
// (creation, rotation), the one time it is shown.
type notificationData struct {
	NS           string
	Access       access
	Notification store.Notification
	Deliveries   []store.NotificationDelivery
	Rules        []ruleChoice
	Events       []string
	Formats      []string
	Form         notificationForm
	Error        string
	Secret       string
	// Created says the page answers the creation, not a rotation.
	Created bool
}

// RuleLabel names rule id for people: its repository and source.
func (d notificationData) RuleLabel(id string) string { return ruleLabel(d.Rules, id) }

// Has reports whether the form has event ticked.
func (d notificationData) Has(event string) bool { return d.Form.Has(event) }

// namespaceRules lists every build rule of ns across its image repositories, for the scope
// picker and the names of rule-scoped notifications.
func (cn *Console) namespaceRules(c *gin.Context, ns string) ([]ruleChoice, error) {
	var repos struct {
		Repositories []repository `json:"repositories"`
	}
	if err := cn.call(c, http.MethodGet, "/namespaces/"+esc(ns)+"/repositories", nil, nil, &repos); err != nil {
		return nil, err
	}
	var out []ruleChoice
	for _, r := range repos.Repositories {
		var rules struct {
			Rules []store.Rule `json:"build_rules"`
		}
		if err := cn.call(c, http.MethodGet, rulesPath(ns, r.Name), nil, nil, &rules); err != nil {
			return nil, err
		}
		for _, rl := range rules.Rules {
			out = append(out, ruleChoice{ID: rl.ID, Repo: r.Name, Source: rl.Source.Owner + "/" + rl.Source.Repository})
		}
	}
	return out, nil
}

func notificationsPath(ns string) string { return "/namespaces/" + esc(ns) + "/notifications" }

func (cn *Console) notificationsPage(c *gin.Context) {
	cn.showNotifications(c, http.StatusOK, notificationsData{Form: notificationForm{
		RuleID: c.Query("rule"), Format: "json", Events: []string{build.EventFailed, build.EventTimedOut}}})
}

// showNotifications is the namespace's notifications: readers see them (a receiver's URL as
// the API shows it to their role), writers also get the create form.
func (cn *Console) showNotifications(c *gin.Context, code int, d notificationsData) {
	ns := c.Param("ns")
	acc, ok := cn.requireRole(c, ns, store.RoleRead)
	if !ok {
		return
	}
	d.NS, d.Access, d.Rule = ns, acc, c.Query("rule")
	d.Events, d.Formats = build.EventNames(), []string{"json", "slack"}
	var list struct {
		Notifications []store.Notification `json:"notifications"`
	}
	if err := cn.call(c, http.MethodGet, notificationsPath(ns), nil, nil, &list); err != nil {
		cn.fail(c, err)
		return
	}
	for _, n := range list.Notifications {
		if d.Rule == "" || n.RuleID == d.Rule {
			d.Notifications = append(d.Notifications, n)
		}
	}
	rules, err := cn.namespaceRules(c, ns)
	if err != nil {
		cn.fail(c, err)
		return
	}
	d.Rules = rules
	cn.render(c, code, "notifications", page{Title: "nav.notifications", Crumbs: nsCrumbs(ns), Tab: "notifications", Data: d})
}

// createNotification creates one and answers its page with the signing secret, shown this
// once: it is in no URL, so the page is the POST's answer, not a redirect.
func (cn *Console) createNotification(c *gin.Context) {
	ns := c.Param("ns")
	f := notificationFormOfPost(c)
	var n struct {
		store.Notification
		Secret string `json:"secret"`
	}
	err := cn.call(c, http.MethodPost, notificationsPath(ns), nil, f.body(), &n)
	var ae *apiError
	if errors.As(err, &ae) && ae.Status == http.StatusBadRequest {
		cn.showNotifications(c, ae.Status, notificationsData{Form: f, Error: ae.Message})
		return
	}
	if err != nil {
		cn.fail(c, err)
		return
	}
	cn.showNotification(c, http.StatusCreated, n.ID, notificationData{Secret: n.Secret, Created: true})
}

func (cn *Console) notificationPage(c *gin.Context) {
	cn.showNotification(c, http.StatusOK, c.Param("nid"), notificationData{})
}

// showNotification is notification id with its delivery log; d carries a form to show again
// after a 400, or the secret just made.
func (cn *Console) showNotification(c *gin.Context, code int, id string, d notificationData) {
	ns := c.Param("ns")
	acc, ok := cn.requireRole(c, ns, store.RoleRead)
	if !ok {
		return
	}
	var out struct {
		Notification store.Notification           `json:"notification"`
		Deliveries   []store.NotificationDelivery `json:"deliveries"`
	}
	if err := cn.call(c, http.MethodGet, notificationsPath(ns)+"/"+esc(id), nil, nil, &out); err != nil {
		cn.fail(c, err)
		return
	}
	rules, err := cn.namespaceRules(c, ns)
	if err != nil {
		cn.fail(c, err)
		return
	}
	d.NS, d.Access, d.Notification, d.Deliveries, d.Rules = ns, acc, out.Notification, out.Deliveries, rules
	d.Events, d.Formats = build.EventNames(), []string{"json", "slack"}
	if d.Form.URL == "" && d.Error == "" {
		d.Form = formOfNotification(out.Notification)
	}
	crumbs := append(nsCrumbs(ns), crumb{"nav.notifications", "/ns/" + esc(ns) + "/notifications"})
	cn.render(c, code, "notification", page{Title: "notify.title", Crumbs: crumbs, Tab: "notifications", Data: d})
}

// updateNotification saves the edit form and goes back to the notification's page.
func (cn *Console) updateNotification(c *gin.Context) {
	ns, id := c.Param("ns"), c.Param("nid")
	f := notificationFormOfPost(c)
	err := cn.call(c, http.MethodPut, notificationsPath(ns)+"/"+esc(id), nil, f.body(), nil)
	var ae *apiError
	if errors.As(err, &ae) && ae.Status == http.StatusBadRequest {
		cn.showNotification(c, ae.Status, id, notificationData{Form: f, Error: ae.Message})
		return
	}
	if err != nil {
		cn.fail(c, err)
		return
	}
	c.Redirect(http.StatusSeeOther, "/ns/"+esc(ns)+"/notifications/"+esc(id))
}

// rotateNotificationSecret makes a new signing secret and answers the page showing it once.
func (cn *Console) rotateNotificationSecret(c *gin.Context) {
	ns, id := c.Param("ns"), c.Param("nid")
	var n struct {
		Secret string `json:"secret"`
	}
	if err := cn.call(c, http.MethodPost, notificationsPath(ns)+"/"+esc(id)+"/secret", nil, nil, &n); err != nil {
		cn.fail(c, err)
		return
	}
	cn.showNotification(c, http.StatusOK, id, notificationData{Secret: n.Secret})
}

func (cn *Console) removeNotification(c *gin.Context) {
	ns, id := c.Param("ns"), c.Param("nid")
	if err := cn.call(c, http.MethodDelete, notificationsPath(ns)+"/"+esc(id), nil, nil, nil); err != nil {
		cn.fail(c, err)
		return
	}
	c.Redirect(http.StatusSeeOther, "/ns/"+esc(ns)+"/notifications")
}
