package gateway

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestConsoleRetention: writers get the policy form, save it and turn it off; readers see the
// policy and no form and cannot post; a form without the session's CSRF token is refused.
func TestConsoleRetention(t *testing.T) {
	hs := devStack(t)
	tm := hs.newTeam(t, "console-retention")
	page := "/ns/" + tm.ns + "/repos/app/retention"

	w := hs.browser(t)
	w.signIn(hs.writer)
	wantPage(t, w.get(page), http.StatusOK, "No policy", `name="tag_pattern"`, "Dry run")
	form := url.Values{"tag_pattern": {"main-*", ""}, "keep_last": {"3", ""}, "keep_younger_than": {"", ""}, "every": {"12h"}}
	// Without the CSRF token.
	wantPage(t, w.send(http.MethodPost, page, form), http.StatusForbidden)
	// A rule that keeps nothing is the API's 400, shown on the page.
	bad := url.Values{"tag_pattern": {"*"}, "keep_last": {""}, "keep_younger_than": {""}, "every": {"24h"}}
	wantPage(t, w.post(page, page, bad), http.StatusBadRequest, "set keep_last or keep_younger_than")
	wantPage(t, w.post(page, page, form), http.StatusOK, "Policy saved.", `value="main-*"`, "slipway-retention-"+tm.ns+"/app")

	r := hs.browser(t)
	r.signIn(hs.reader)
	p := r.get(page)
	wantPage(t, p, http.StatusOK, "<code>main-*</code>")
	if strings.Contains(p.body, `name="tag_pattern"`) {
		t.Fatal("a reader got the policy form")
	}
	wantPage(t, r.post(page, page, form), http.StatusForbidden)
	wantPage(t, r.post(page, page+"/remove", url.Values{}), http.StatusForbidden)

	wantPage(t, w.get("/ns/"+tm.ns+"/repos/nope/retention"), http.StatusNotFound)

	o := hs.browser(t)
	o.signIn(hs.outsider)
	wantPage(t, o.get(page), http.StatusNotFound)

	wantPage(t, w.post(page, page+"/remove", url.Values{}), http.StatusOK, "Retention is off.", "No policy")
}
