package gateway

import (
	"context"
	"regexp"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestNotificationsAndSecretsInBrowser, in Chromium: a writer creates a notification and sees
// its signing secret once, then sets a build secret with the keyboard and no page (nor the
// address bar) ever shows the value again.
func TestNotificationsAndSecretsInBrowser(t *testing.T) {
	hs := mockStack(t)
	noBuilds(hs)
	const value = "browser-s3cret-value-5f2a"
	hs.addSecret(value)
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium(t)),
		chromedp.NoSandbox, chromedp.DisableGPU, chromedp.WindowSize(1280, 900), chromedp.Flag("lang", "en-US"))
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	browser, cancelBrowser := chromedp.NewContext(alloc)
	defer cancelBrowser()
	if err := chromedp.Do(browser, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("starting Chromium: %v", err)
	}
	tm := hs.newTeam(t, "browser-notify")
	base := hs.srv.URL + "/ns/" + tm.ns
	w := newTab(t, browser, hs.srv.URL)
	w.signIn(hs.writer)
	html := func() string {
		return run(w, "reading the page's HTML", chromedp.Evaluate[string]("document.documentElement.outerHTML"))
	}

	// From the namespace's navigation to its notifications.
	w.do("opening the namespace", chromedp.Navigate(base), chromedp.WaitVisible(chromedp.CSS("main h1")),
		chromedp.Click(chromedp.CSS(`nav a[href$="/notifications"]`)), chromedp.WaitVisible(chromedp.ID("n-url")))
	w.checkLabels("notifications")
	w.do("filling the notification",
		chromedp.SetValue(chromedp.ID("n-url"), "https://hooks.example/ci?channel=builds"),
		chromedp.Click(chromedp.ID("n-event-succeeded")),
		chromedp.SetValue(chromedp.ID("n-format"), "slack"),
		chromedp.Click(chromedp.CSS("button.primary")),
		chromedp.WaitVisible(chromedp.ID("n-secret")),
	)
	secret := run(w, "reading the secret", chromedp.Text(chromedp.ID("n-secret")))
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(secret) {
		t.Fatalf("the secret shown is %q", secret)
	}
	hs.addSecret(secret)
	if n := strings.Count(html(), secret); n != 1 {
		t.Fatalf("the signing secret is %d times in the page, want once", n)
	}
	if txt := w.text(); !strings.Contains(txt, "Copy the signing secret now") || !strings.Contains(txt, "succeeded, failed, timed out") {
		t.Fatalf("after creating:\n%s", txt)
	}
	if loc := w.location(); strings.Contains(loc, secret) {
		t.Fatalf("the secret is in the address %s", loc)
	}
	w.checkLabels("notification")
	w.shoot("notification-created")
	// Reloading the list, then the notification itself: the secret is gone for good.
	w.do("the list", chromedp.Navigate(base+"/notifications"), chromedp.WaitVisible(chromedp.CSS("table.notifications")))
	w.shoot("notifications")
	w.do("the notification", chromedp.Click(chromedp.CSS(`table.notifications a`)), chromedp.WaitVisible(chromedp.ID("n-url")))
	if strings.Contains(html(), secret) {
		t.Fatal("the notification's page shows its secret again")
	}

	// A build secret set with the keyboard: the name, Tab to the value, Enter.
	w.do("the secrets page", chromedp.Click(chromedp.CSS(`nav a[href$="/secrets"]`)), chromedp.WaitVisible(chromedp.ID("s-name")))
	w.checkLabels("build secrets")
	if typ := run(w, "the value's type", chromedp.Evaluate[string](`document.getElementById("s-value").type`)); typ != "password" {
		t.Fatalf("the value field is of type %q", typ)
	}
	w.do("typing the secret",
		chromedp.Focus(chromedp.ID("s-name")),
		chromedp.KeyEvent("NPM_TOKEN"),
		chromedp.KeyEvent("\t"),
	)
	if got := run(w, "focus", chromedp.Evaluate[string]("document.activeElement.id")); got != "s-value" {
		t.Fatalf("Tab from the name focuses %q, want the value", got)
	}
	w.do("submitting the secret", chromedp.KeyEvent(value+"\r"))
	w.waitText("Secret NPM_TOKEN set.")
	for _, where := range []string{w.location(), html()} {
		if strings.Contains(where, value) {
			t.Fatal("the page shows the secret's value after setting it")
		}
	}
	if v := run(w, "the value field", chromedp.Value(chromedp.ID("s-value"))); v != "" {
		t.Fatalf("the value field holds %q after setting", v)
	}
	w.shoot("secrets")
	for _, page := range []string{base, base + "/notifications", base + "/secrets", base + "/repos/app/rules"} {
		w.do("opening "+page, chromedp.Navigate(page), chromedp.WaitVisible(chromedp.CSS("main h1")))
		if strings.Contains(html(), value) {
			t.Fatalf("%s shows the secret's value", page)
		}
	}
	vals, err := hs.store.SecretValues(t.Context(), tm.ns, []string{"NPM_TOKEN"})
	if err != nil || string(vals["NPM_TOKEN"]) != value {
		t.Fatalf("stored %q, %v", vals["NPM_TOKEN"], err)
	}
}
