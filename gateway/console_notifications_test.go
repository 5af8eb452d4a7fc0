package gateway

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/api/workflowservice/v1"

	"github.com/slipway-dev/slipway/store"
)

// noBuilds makes the mocked Temporal answer every build listing with none, for the pages
// (build rules) that show the latest builds.
func noBuilds(hs *harness) {
	hs.fake.On("ListWorkflow", mock.Anything, mock.Anything).Return(&workflowservice.ListWorkflowExecutionsResponse{}, nil).Maybe()
}

var notificationSecretRE = regexp.MustCompile(`<code id="n-secret">([0-9a-f]{64})</code>`)

// shownSecret is the signing secret a page shows, which must be there exactly once.
func shownSecret(t *testing.T, p page) string {
	t.Helper()
	m := notificationSecretRE.FindStringSubmatch(p.body)
	if m == nil {
		t.Fatalf("the page shows no signing secret:\n%s", p.body)
	}
	if n := strings.Count(p.body, m[1]); n != 1 {
		t.Fatalf("the signing secret is %d times in the page, want once", n)
	}
	return m[1]
}

// TestConsoleNotifications: a writer creates, edits, rotates and deletes a notification in
// the console, each signing secret shown on the answer that made it and on no other page; a
// reader sees the list (the URL's scheme and host only) and the delivery log without a
// control, and is refused a forged post; a form without the CSRF token is refused.
func TestConsoleNotifications(t *testing.T) {
	t.Parallel()
	hs := mockStack(t)
	noBuilds(hs)
	tm := hs.newTeam(t, "console-notify")
	rule := hs.createRule(t, tm, githubRule())
	list := "/ns/" + tm.ns + "/notifications"

	w := hs.browser(t)
	w.signIn(hs.writer)
	wantPage(t, w.get("/ns/"+tm.ns), http.StatusOK, `href="`+list+`"`, `href="/ns/`+tm.ns+`/secrets"`)
	wantPage(t, w.get(list), http.StatusOK, "No notifications.", `id="n-url"`, `id="n-event-failed"`, `id="n-rule"`,
		`<option value="`+rule.ID+`"`, `id="n-format"`)

	form := url.Values{"url": {"https://hooks.example/team/x?token=abc"}, "events": {"failed", "timed_out"}, "rule_id": {""}, "format": {"json"}}
	t.Run("without CSRF token", func(t *testing.T) {
		wantPage(t, w.send(http.MethodPost, list, form), http.StatusForbidden)
		if ns, _ := hs.store.ListNotifications(t.Context(), tm.ns); len(ns) != 0 {
			t.Fatalf("a form without CSRF token made %+v", ns)
		}
	})
	t.Run("refused by the API", func(t *testing.T) {
		bad := url.Values{"url": {"ftp://hooks.example/x"}, "events": {"failed"}, "format": {"json"}}
		wantPage(t, w.post(list, list, bad), http.StatusBadRequest, `role="alert"`, "is not http or https", `value="ftp://hooks.example/x"`)
		none := url.Values{"url": {"https://hooks.example/x"}, "format": {"json"}}
		wantPage(t, w.post(list, list, none), http.StatusBadRequest, "events is empty")
	})

	created := w.post(list, list, form)
	wantPage(t, created, http.StatusCreated, "Copy the signing secret now", "https://hooks.example/team/x?token=abc")
	secret := shownSecret(t, created)
	hs.addSecret(secret)
	ns, err := hs.store.ListNotifications(t.Context(), tm.ns)
	if err != nil || len(ns) != 1 || ns[0].Secret != secret || ns[0].RuleID != "" || strings.Join(ns[0].Events, ",") != "failed,timed_out" {
		t.Fatalf("notifications = %+v, %v", ns, err)
	}
	n := ns[0]
	detail := list + "/" + n.ID
	for _, p := range []string{list, detail, list + "?rule=" + rule.ID} {
		if body := w.get(p).body; strings.Contains(body, secret) {
			t.Fatalf("%s shows the signing secret again", p)
		}
	}
	wantPage(t, w.get(list), http.StatusOK, `href="`+detail+`"`, "https://hooks.example/team/x?token=abc", "Every rule of the namespace")

	// A rule's notifications: reached from the rules list, created with the rule preselected.
	wantPage(t, w.get("/ns/"+tm.ns+"/repos/app/rules"), http.StatusOK, `href="`+list+`?rule=`+rule.ID+`"`)
	scoped := list + "?rule=" + rule.ID
	wantPage(t, w.get(scoped), http.StatusOK, "No notifications.", "Notifications of the build rule",
		`<option value="`+rule.ID+`" selected>`)
	p := w.post(scoped, scoped, url.Values{"url": {"https://chat.example/hook"}, "events": {"succeeded"}, "rule_id": {rule.ID}, "format": {"slack"}})
	wantPage(t, p, http.StatusCreated, "Slack (a text message)", "app: octo/hello")
	ruleSecret := shownSecret(t, p)
	hs.addSecret(ruleSecret)
	sp := w.get(scoped)
	wantPage(t, sp, http.StatusOK, "https://chat.example/hook")
	if strings.Contains(sp.body, "hooks.example") {
		t.Fatal("the rule's notifications list one of the whole namespace")
	}

	t.Run("edit", func(t *testing.T) {
		edit := url.Values{"url": {"https://hooks.example/team/y"}, "events": {"started", "failed"}, "rule_id": {rule.ID}, "format": {"json"}}
		p := w.post(detail, detail, edit)
		if p.code != http.StatusSeeOther || p.location != detail {
			t.Fatalf("saving: %d %q\n%s", p.code, p.location, p.body)
		}
		wantPage(t, w.get(detail), http.StatusOK, "https://hooks.example/team/y", `id="n-event-started" name="events" value="started" checked`,
			`<option value="`+rule.ID+`" selected>`)
		wantPage(t, w.post(detail, detail, url.Values{"url": {"https://u:p@hooks.example/"}, "events": {"failed"}, "format": {"json"}}),
			http.StatusBadRequest, "must not carry credentials")
		got, err := hs.store.GetNotification(t.Context(), n.ID)
		if err != nil || got.URL != "https://hooks.example/team/y" || got.RuleID != rule.ID || got.Secret != secret {
			t.Fatalf("after the edits: %+v, %v", got, err)
		}
	})

	t.Run("delivery log", func(t *testing.T) {
		for _, d := range []store.NotificationDelivery{
			{ID: "d-1", NotificationID: n.ID, Event: "failed", BuildID: "b-console-1", Status: store.DeliveryFailed, Attempts: 5,
				LastHTTPStatus: 503, LastResponse: "receiver is <down> for maintenance"},
			{ID: "d-2", NotificationID: n.ID, Event: "started", BuildID: "b-console-2", Status: store.DeliveryDelivered, Attempts: 1,
				LastHTTPStatus: 204},
		} {
			if err := hs.store.RecordNotificationDelivery(t.Context(), d); err != nil {
				t.Fatal(err)
			}
		}
		wantPage(t, w.get(detail), http.StatusOK, "Delivery log", `href="/builds/b-console-1"`, `href="/builds/b-console-2"`,
			"<td>5</td><td>503</td>", "receiver is &lt;down&gt; for maintenance", "delivered", "timed out")
	})

	t.Run("reader", func(t *testing.T) {
		r := hs.browser(t)
		r.signIn(hs.reader)
		lp := r.get(list)
		wantPage(t, lp, http.StatusOK, "https://hooks.example/…", `href="`+detail+`"`)
		if strings.Contains(lp.body, "/team/y") || strings.Contains(lp.body, "token=abc") {
			t.Fatal("a reader sees a receiver's path")
		}
		dp := r.get(detail)
		wantPage(t, dp, http.StatusOK, "https://hooks.example/…", "Delivery log", `href="/builds/b-console-1"`)
		for _, pg := range []page{lp, dp} {
			for _, control := range []string{`name="url"`, `name="events"`, "/secret\"", "/remove\"", `action="` + list + `"`} {
				if strings.Contains(pg.body, control) {
					t.Fatalf("the reader's page has the control %s", control)
				}
			}
			if strings.Contains(pg.body, secret) {
				t.Fatal("a reader sees the signing secret")
			}
		}
		// Forged posts carrying the reader's own CSRF token: the API's 403.
		for _, path := range []string{list, detail, detail + "/secret", detail + "/remove"} {
			wantPage(t, r.post(list, path, url.Values{"url": {"https://evil.example/"}, "events": {"failed"}, "format": {"json"}}), http.StatusForbidden)
		}
		got, err := hs.store.GetNotification(t.Context(), n.ID)
		if err != nil || got.Secret != secret || got.URL != "https://hooks.example/team/y" {
			t.Fatalf("after the reader's posts: %+v, %v", got, err)
		}
	})

	t.Run("outsider", func(t *testing.T) {
		o := hs.browser(t)
		o.signIn(hs.outsider)
		wantPage(t, o.get(list), http.StatusNotFound)
		wantPage(t, o.get(detail), http.StatusNotFound)
	})

	t.Run("rotate", func(t *testing.T) {
		p := w.post(detail, detail+"/secret", url.Values{})
		wantPage(t, p, http.StatusOK, "New signing secret", "Copy the signing secret now")
		rotated := shownSecret(t, p)
		hs.addSecret(rotated)
		if rotated == secret || strings.Contains(p.body, secret) {
			t.Fatal("rotating shows the old secret")
		}
		if got, _ := hs.store.GetNotification(t.Context(), n.ID); got.Secret != rotated {
			t.Fatal("the page's secret is not the stored one")
		}
		if strings.Contains(w.get(detail).body, rotated) {
			t.Fatal("the notification's page shows the rotated secret again")
		}
	})

	t.Run("delete", func(t *testing.T) {
		p := w.post(detail, detail+"/remove", url.Values{})
		if p.code != http.StatusSeeOther || p.location != list {
			t.Fatalf("deleting: %d %q\n%s", p.code, p.location, p.body)
		}
		wantPage(t, w.get(detail), http.StatusNotFound)
		if ns, _ := hs.store.ListNotifications(t.Context(), tm.ns); len(ns) != 1 || ns[0].RuleID != rule.ID {
			t.Fatalf("left: %+v", ns)
		}
	})

	t.Run("chinese", func(t *testing.T) {
		z := hs.browser(t)
		z.lang = "zh-CN"
		z.signIn(hs.writer)
		wantPage(t, z.get(list), http.StatusOK, `lang="zh-CN"`, "新建通知", "接收方 URL", "构建密钥")
	})
}

// TestConsoleSecretsPage: readers list the build secrets (names, who set them when), writers
// set and replace them, admins remove them; the value typed is in no page, redirect or log.
func TestConsoleSecretsPage(t *testing.T) {
	t.Parallel()
	const value, second = "console-page-v4lue-9c1e", "console-page-r3placed-77a"
	hs := mockStack(t)
	noBuilds(hs)
	hs.addSecret(value)
	hs.addSecret(second)
	tm := hs.newTeam(t, "console-secrets-page")
	secrets := "/ns/" + tm.ns + "/secrets"

	w := hs.browser(t)
	w.signIn(hs.writer)
	wantPage(t, w.get(secrets), http.StatusOK, "No build secrets.", `id="s-name"`, `id="s-value" name="value" type="password"`)
	wantPage(t, w.get("/ns/"+tm.ns+"/settings"), http.StatusForbidden)
	wantPage(t, w.send(http.MethodPost, secrets, url.Values{"name": {"NPM_TOKEN"}, "value": {value}}), http.StatusForbidden)

	p := w.post(secrets, secrets, url.Values{"name": {"NPM_TOKEN"}, "value": {value}})
	if p.code != http.StatusSeeOther || p.location != secrets+"?set=NPM_TOKEN" {
		t.Fatalf("setting: %d %q\n%s", p.code, p.location, p.body)
	}
	wantPage(t, w.get(p.location), http.StatusOK, "Secret NPM_TOKEN set.", "<code>NPM_TOKEN</code>", "writer, ")
	// A name the API refuses: the name comes back, the value does not.
	bad := w.post(secrets, secrets, url.Values{"name": {"NOT-A-NAME"}, "value": {second}})
	wantPage(t, bad, http.StatusBadRequest, "not an environment variable name", `value="NOT-A-NAME"`, `aria-invalid="true"`)
	if strings.Contains(bad.body, second) {
		t.Fatal("the form shows the value typed again")
	}
	p = w.post(secrets, secrets, url.Values{"name": {"NPM_TOKEN"}, "value": {second}})
	if p.code != http.StatusSeeOther || strings.Contains(p.location, second) {
		t.Fatalf("replacing: %d %q", p.code, p.location)
	}
	vals, err := hs.store.SecretValues(t.Context(), tm.ns, []string{"NPM_TOKEN"})
	if err != nil || string(vals["NPM_TOKEN"]) != second {
		t.Fatalf("stored %q, %v", vals["NPM_TOKEN"], err)
	}
	// A writer may not remove: the API's 403, whatever the page offered.
	wantPage(t, w.get(secrets), http.StatusOK)
	if strings.Contains(w.get(secrets).body, "/secrets/NPM_TOKEN/remove") {
		t.Fatal("a writer is offered remove")
	}
	wantPage(t, w.post(secrets, secrets+"/NPM_TOKEN/remove", url.Values{}), http.StatusForbidden)

	r := hs.browser(t)
	r.signIn(hs.reader)
	rp := r.get(secrets)
	wantPage(t, rp, http.StatusOK, "<code>NPM_TOKEN</code>")
	for _, control := range []string{`name="value"`, `name="name"`, "/remove"} {
		if strings.Contains(rp.body, control) {
			t.Fatalf("the reader's page has %s", control)
		}
	}
	wantPage(t, r.post(secrets, secrets, url.Values{"name": {"FORGED"}, "value": {"x"}}), http.StatusForbidden)

	a := hs.browser(t)
	a.signIn(hs.owner)
	wantPage(t, a.get(secrets), http.StatusOK, `action="`+secrets+`/NPM_TOKEN/remove"`, `aria-label="Remove NPM_TOKEN"`)

	// No page of the namespace, for any role, holds either value.
	for who, b := range map[string]*browser{"writer": w, "reader": r, "admin": a} {
		for _, path := range []string{secrets, secrets + "?set=NPM_TOKEN", "/ns/" + tm.ns, "/ns/" + tm.ns + "/notifications",
			"/ns/" + tm.ns + "/settings", "/ns/" + tm.ns + "/repos/app/rules"} {
			body := b.get(path).body
			if strings.Contains(body, value) || strings.Contains(body, second) {
				t.Fatalf("%s's %s shows a secret's value", who, path)
			}
		}
	}

	p = a.post(secrets, secrets+"/NPM_TOKEN/remove", url.Values{})
	if p.code != http.StatusSeeOther || p.location != secrets {
		t.Fatalf("removing: %d %q", p.code, p.location)
	}
	wantPage(t, a.get(secrets), http.StatusOK, "No build secrets.")
	if list, _ := hs.store.ListSecrets(t.Context(), tm.ns); len(list) != 0 {
		t.Fatalf("left: %+v", list)
	}

	o := hs.browser(t)
	o.signIn(hs.outsider)
	wantPage(t, o.get(secrets), http.StatusNotFound)
}
