package gateway

import (
	"context"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestRetentionInBrowser fills the retention form in Chromium: every field is labelled, and
// the saved policy comes back in the form.
func TestRetentionInBrowser(t *testing.T) {
	hs := devStack(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium(t)),
		chromedp.NoSandbox, chromedp.DisableGPU, chromedp.WindowSize(1280, 900), chromedp.Flag("lang", "en-US"))
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	browser, cancelBrowser := chromedp.NewContext(alloc)
	defer cancelBrowser()
	if err := chromedp.Do(browser, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("starting Chromium: %v", err)
	}
	tm := hs.newTeam(t, "browser-retention")
	page := hs.srv.URL + "/ns/" + tm.ns + "/repos/app/retention"
	w := newTab(t, browser, hs.srv.URL)
	w.signIn(hs.writer)
	w.do("opening the retention tab", chromedp.Navigate(page), chromedp.WaitVisible(chromedp.ID("every")))
	w.checkLabels("retention")
	w.do("filling the policy",
		chromedp.SetValue(chromedp.CSS(`input[name="tag_pattern"]`), "main-*"),
		chromedp.SetValue(chromedp.CSS(`input[name="keep_last"]`), "5"),
		chromedp.SetValue(chromedp.ID("every"), "6h"),
		chromedp.Click(chromedp.CSS("button.primary")),
	)
	w.waitText("Policy saved.")
	if txt := w.text(); !strings.Contains(txt, "slipway-retention-"+tm.ns+"/app") {
		t.Fatalf("the page does not name the schedule:\n%s", txt)
	}
	if v := run(w, "reading the pattern", chromedp.Value(chromedp.CSS(`input[name="tag_pattern"]`))); v != "main-*" {
		t.Fatalf("the saved pattern reads %q", v)
	}
	if v := run(w, "reading the period", chromedp.Value(chromedp.ID("every"))); v != "6h" {
		t.Fatalf("the saved period reads %q", v)
	}
}
