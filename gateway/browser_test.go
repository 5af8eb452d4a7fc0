package gateway

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// The console in a real browser: headless Chromium (Debian's chromium package, which
// scripts/tools.sh installs) driven by chromedp against the shared harness's gateway. With
// SLIPWAY_CONSOLE_SCREENSHOTS set to a folder, the screenshots it takes of the main pages are
// written there (docs/console/ in the repository holds the ones the README shows).

// chromium finds the browser, or fails the test: the console's browser tests are part of
// `make test`, whose tools step installs it.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("the console's browser tests need Chromium: install Debian's chromium package (scripts/tools.sh does)")
	return ""
}

// tab is one signed-in person's browser: a browser context of its own (its own cookies).
type tab struct {
	t   *testing.T
	ctx context.Context
	// base is the console's URL.
	base string
}

func newTab(t *testing.T, browser context.Context, base string) *tab {
	ctx, cancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	// The first action opens the tab, which lives as long as the context of that action:
	// the tab's own, not one of the timeouts of the steps after.
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("opening a tab: %v", err)
	}
	return &tab{t: t, ctx: ctx, base: base}
}

func (tb *tab) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		tb.t.Fatalf("%s: %v", what, err)
	}
}

func run[T any](tb *tab, what string, a chromedp.Action[T]) T {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		tb.t.Fatalf("%s: %v", what, err)
	}
	return v
}

// text is what the page shows.
func (tb *tab) text() string {
	tb.t.Helper()
	return run(tb, "reading the page", chromedp.Evaluate[string]("document.body.innerText"))
}

// checkLabels fails the test for a visible form field of the page without a label.
func (tb *tab) checkLabels(page string) {
	tb.t.Helper()
	unlabeled := run(tb, "checking labels", chromedp.Evaluate[[]string](`Array.from(
		document.querySelectorAll("input:not([type=hidden]), select, textarea"))
		.filter(e => e.labels.length === 0 && !e.getAttribute("aria-label"))
		.map(e => e.outerHTML)`))
	if len(unlabeled) > 0 {
		tb.t.Errorf("%s: fields without a label: %v", page, unlabeled)
	}
}

// waitText waits until the page shows want.
func (tb *tab) waitText(want string) {
	tb.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(tb.ctx, 2*time.Second)
		txt, err := chromedp.Run(ctx, chromedp.Evaluate[string]("document.body ? document.body.innerText : ''"))
		cancel()
		if err == nil && strings.Contains(txt, want) {
			return
		}
		if time.Now().After(deadline) {
			tb.t.Fatalf("the page never showed %q:\n%s", want, txt)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (tb *tab) location() string {
	tb.t.Helper()
	return run(tb, "reading the location", chromedp.Evaluate[string]("location.href"))
}

// signIn signs in from the sign-in page with the keyboard: the token typed, Enter pressed.
func (tb *tab) signIn(token string) {
	tb.t.Helper()
	tb.do("signing in",
		chromedp.Navigate(tb.base+"/"),
		chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), token+"\r"),
		chromedp.WaitVisible(chromedp.CSS("form.logout")),
	)
	if loc := tb.location(); loc != tb.base+"/" {
		tb.t.Fatalf("after sign-in at %s", loc)
	}
}

// shoot takes a screenshot of the page and writes it as name.png where
// SLIPWAY_CONSOLE_SCREENSHOTS says.
func (tb *tab) shoot(name string) {
	tb.t.Helper()
	png := run(tb, "taking a screenshot", chromedp.FullScreenshot(100))
	if !bytes.HasPrefix(png, []byte("\x89PNG")) {
		tb.t.Fatalf("screenshot %s is not a PNG", name)
	}
	if dir := os.Getenv("SLIPWAY_CONSOLE_SCREENSHOTS"); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			tb.t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
			tb.t.Fatal(err)
		}
	}
}

// status is the answer to a POST the page sends with fetch: body is a URL-encoded form, and
// withCSRF adds the page's CSRF token to it.
func (tb *tab) status(path, body string, withCSRF bool) int {
	tb.t.Helper()
	js := `(async () => {
		const form = new URLSearchParams(` + jsString(body) + `);
		if (` + map[bool]string{true: "true", false: "false"}[withCSRF] + `) form.set("csrf", document.querySelector("input[name=csrf]").value);
		const r = await fetch(` + jsString(path) + `, {method: "POST", body: form, redirect: "manual"});
		return r.status;
	})()`
	return run(tb, "posting "+path, chromedp.Evaluate[int](js, chromedp.EvalAwaitPromise))
}

func jsString(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(s) + `"`
}

func TestConsoleInBrowser(t *testing.T) {
	hs := devStack(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium(t)),
		chromedp.NoSandbox, chromedp.DisableGPU, chromedp.WindowSize(1280, 900),
		chromedp.Flag("lang", "en-US"))
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	browser, cancelBrowser := chromedp.NewContext(alloc)
	defer cancelBrowser()
	if err := chromedp.Do(browser, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("starting Chromium: %v", err)
	}

	tm := hs.newTeam(t, "browser")
	repo := hs.srv.URL + "/ns/" + tm.ns + "/repos/app"
	w := newTab(t, browser, hs.srv.URL)
	w.signIn(hs.writer)
	w.shoot("namespaces")

	// A rule through the form: the preview first, then save.
	w.do("opening the rule form",
		chromedp.Navigate(repo+"/rules/new"),
		chromedp.WaitVisible(chromedp.ID("owner")),
		chromedp.SetValue(chromedp.ID("owner"), "octo"),
		chromedp.SetValue(chromedp.ID("repository"), "hello"),
		chromedp.SetValue(chromedp.ID("branches"), "main\nrelease/*"),
		chromedp.SetValue(chromedp.ID("tag_template"), "{ref},{ref}-{short_commit}"),
		chromedp.Click(chromedp.ID("sanitize_ref")),
		chromedp.Click(chromedp.CSS(`button[value="preview"]`)),
	)
	// The form had a preview before the click: wait for the one of the new template.
	w.waitText("release-1.2-0000000")
	if txt := w.text(); !strings.Contains(txt, "release-1.2, release-1.2-0000000") {
		t.Fatalf("preview does not show the sample tags:\n%s", txt)
	}
	if v := run(w, "reading owner", chromedp.Value(chromedp.ID("owner"))); v != "octo" {
		t.Fatalf("the preview lost the form's values: owner %q", v)
	}
	w.checkLabels("rule form")
	w.shoot("rule-form")
	w.do("saving the rule",
		chromedp.Click(chromedp.CSS(`button[value="save"]`)),
		chromedp.WaitVisible(chromedp.CSS("dl")),
	)
	txt := w.text()
	if !strings.Contains(txt, "Webhook secret") {
		t.Fatalf("after saving:\n%s", txt)
	}
	for _, f := range strings.Fields(txt) {
		if len(f) == 64 {
			hs.addSecret(f)
		}
	}

	// 立即构建 from the rules list, then the build page.
	w.do("build now",
		chromedp.Navigate(repo+"/rules"),
		chromedp.WaitVisible(chromedp.CSS("table")),
	)
	w.shoot("rules")
	w.do("build now",
		chromedp.Click(chromedp.CSS(`a[href$="/build"]`)),
		chromedp.WaitVisible(chromedp.ID("ref")),
	)
	w.checkLabels("build now")
	w.do("build now",
		chromedp.SetValue(chromedp.ID("ref"), "main"),
		chromedp.SetValue(chromedp.ID("commit"), strings.Repeat("b", 40)),
		chromedp.Click(chromedp.CSS("button.primary")),
		chromedp.WaitVisible(chromedp.ID("log")),
	)
	buildPage := w.location()
	if !strings.HasPrefix(buildPage, hs.srv.URL+"/builds/") {
		t.Fatalf("build now went to %s", buildPage)
	}
	if txt := w.text(); !strings.Contains(txt, "running") || !strings.Contains(txt, "bbbbbbbbbb") || !strings.Contains(txt, "Cancel build") {
		t.Fatalf("build page:\n%s", txt)
	}

	w.do("build records",
		chromedp.Navigate(repo+"/builds"),
		chromedp.WaitVisible(chromedp.CSS("table.records")),
	)
	if txt := w.text(); !strings.Contains(txt, "bbbbbbb") || !strings.Contains(txt, "View build history") {
		t.Fatalf("records:\n%s", txt)
	}
	w.checkLabels("build records")
	w.shoot("records")
	w.do("opening the record", chromedp.Click(chromedp.CSS(`table.records a[href^="/builds/"]`)), chromedp.WaitVisible(chromedp.ID("log")))
	if loc := w.location(); loc != buildPage {
		t.Fatalf("the record opened %s, want %s", loc, buildPage)
	}

	w.do("images", chromedp.Navigate(repo+"/images"), chromedp.WaitVisible(chromedp.ID("pull")))
	w.checkLabels("images")
	w.do("build page", chromedp.Navigate(buildPage), chromedp.WaitVisible(chromedp.ID("log")))
	w.shoot("build")

	t.Run("cancel", func(t *testing.T) {
		w.do("build page", chromedp.Navigate(buildPage), chromedp.WaitVisible(chromedp.ID("log")))
		ctx, cancel := context.WithTimeout(w.ctx, 30*time.Second)
		defer cancel()
		// The click's navigation: the POST's redirect, back to the build page.
		resp, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(`form[action$="/cancel"] button`)))
		if err != nil {
			t.Fatalf("cancel: %v", err)
		}
		if resp.Status != 200 || resp.URL != buildPage {
			t.Fatalf("cancel ended at %s with %d", resp.URL, resp.Status)
		}
	})
	t.Run("keyboard", func(t *testing.T) {
		// The first Tab reaches the skip link, which leads to the page's content.
		w.do("tab", chromedp.Navigate(repo+"/rules"), chromedp.WaitVisible(chromedp.CSS("main h1")),
			chromedp.KeyEvent("\t"))
		if got := run(w, "focus", chromedp.Evaluate[string]("document.activeElement.getAttribute('href')")); got != "#main" {
			t.Fatalf("the first Tab focuses %q, want the skip link", got)
		}
	})
	t.Run("settings", func(t *testing.T) {
		o := newTab(t, browser, hs.srv.URL)
		o.signIn(hs.owner)
		o.do("settings", chromedp.Navigate(hs.srv.URL+"/ns/"+tm.ns+"/settings"), chromedp.WaitVisible(chromedp.ID("m-user")))
		o.checkLabels("settings")
		o.shoot("settings")
	})
	t.Run("reader", func(t *testing.T) {
		r := newTab(t, browser, hs.srv.URL)
		r.signIn(hs.reader)
		for _, page := range []string{repo + "/rules", buildPage} {
			r.do("opening "+page, chromedp.Navigate(page), chromedp.WaitVisible(chromedp.CSS("main h1")))
			txt := r.text()
			for _, control := range []string{"New build rule", "Build now", "Edit", "Cancel build"} {
				if strings.Contains(txt, control) {
					t.Errorf("%s shows the reader %q", page, control)
				}
			}
		}
		r.do("rules", chromedp.Navigate(repo+"/rules"), chromedp.WaitVisible(chromedp.CSS("main h1")))
		if code := r.status(repo+"/rules/new", "provider=github&owner=octo&repository=hello&action=save", true); code != 403 {
			t.Errorf("a reader's forged rule form answered %d, want 403", code)
		}
		if code := r.status(buildPage+"/cancel", "", true); code != 403 {
			t.Errorf("a reader's forged cancel answered %d, want 403", code)
		}
	})
	t.Run("form without CSRF token", func(t *testing.T) {
		if code := w.status(repo+"/rules/new", "provider=github&owner=octo&repository=hello&action=save", false); code != 403 {
			t.Errorf("a form without CSRF token answered %d, want 403", code)
		}
		if code := w.status(hs.srv.URL+"/logout", "", false); code != 403 {
			t.Errorf("sign-out without CSRF token answered %d, want 403", code)
		}
	})
	t.Run("chinese", func(t *testing.T) {
		w.do("switching to Chinese",
			chromedp.Navigate(repo+"/rules"),
			chromedp.WaitVisible(chromedp.CSS(`a[hreflang="zh"]`)),
			chromedp.Click(chromedp.CSS(`a[hreflang="zh"]`)),
			chromedp.WaitVisible(chromedp.CSS(`html[lang="zh-CN"] main h1`)),
		)
		if txt := w.text(); !strings.Contains(txt, "构建规则") || !strings.Contains(txt, "立即构建") || !strings.Contains(txt, "新建构建规则") {
			t.Fatalf("Chinese rules page:\n%s", txt)
		}
		w.shoot("rules-zh")
		w.do("Chinese records", chromedp.Navigate(repo+"/builds"), chromedp.WaitVisible(chromedp.CSS("table.records")))
		if txt := w.text(); !strings.Contains(txt, "查看构建记录") {
			t.Fatalf("Chinese records page:\n%s", txt)
		}
		w.shoot("records-zh")
	})
}
