package gateway

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func TestConsoleSecrets(t *testing.T) {
	const value = "console-s3cr3t-value"
	hs := devStack(t)
	tm := hs.newTeam(t, "console-secrets")
	settings := "/ns/" + tm.ns + "/secrets"
	repo := "/ns/" + tm.ns + "/repos/app"
	a := hs.browser(t)
	a.signIn(hs.owner)
	wantPage(t, a.get(settings), http.StatusOK, "No build secrets.", `action="/ns/`+tm.ns+`/secrets"`)

	// A rule naming a secret not set yet: the form says so at its field.
	form := url.Values{"provider": {"github"}, "owner": {"octo"}, "repository": {"hello"},
		"branches": {"main"}, "secrets": {"NPM_TOKEN"}, "action": {"save"}}
	wantPage(t, a.post(repo+"/rules/new", repo+"/rules/new", form), http.StatusBadRequest, `id="secrets-err"`, "NPM_TOKEN")

	p := a.post(settings, "/ns/"+tm.ns+"/secrets", url.Values{"name": {"NPM_TOKEN"}, "value": {value}})
	if p.code != http.StatusSeeOther {
		t.Fatalf("setting a secret: %d\n%s", p.code, p.body)
	}
	page := a.get(settings)
	wantPage(t, page, http.StatusOK, "<code>NPM_TOKEN</code>", `/secrets/NPM_TOKEN/remove`)
	if strings.Contains(page.body, value) {
		t.Fatal("the secrets page shows a secret's value")
	}
	wantPage(t, a.post(settings, "/ns/"+tm.ns+"/secrets", url.Values{"name": {"NOT-A-NAME"}, "value": {value}}),
		http.StatusBadRequest, "not an environment variable name")
	// Without the form's CSRF token nothing is set.
	forged := a.send(http.MethodPost, "/ns/"+tm.ns+"/secrets", url.Values{"name": {"FORGED"}, "value": {"x"}, "csrf": {"forged"}})
	wantPage(t, forged, http.StatusForbidden)

	p = a.post(repo+"/rules/new", repo+"/rules/new", form)
	if p.code != http.StatusCreated {
		t.Fatalf("saving a rule naming a set secret: %d\n%s", p.code, p.body)
	}
	rules, err := hs.store.ListRules(t.Context(), tm.ns, "app")
	if err != nil || len(rules) != 1 || strings.Join(rules[0].Secrets, ",") != "NPM_TOKEN" {
		t.Fatalf("rules = %+v, %v", rules, err)
	}
	wantPage(t, a.get(repo+"/rules/"+rules[0].ID), http.StatusOK, `name="secrets"`, "NPM_TOKEN")

	p = a.post(settings, "/ns/"+tm.ns+"/secrets/NPM_TOKEN/remove", url.Values{})
	if p.code != http.StatusSeeOther {
		t.Fatalf("removing a secret: %d\n%s", p.code, p.body)
	}
	wantPage(t, a.get(settings), http.StatusOK, "No build secrets.")
	if list, _ := hs.store.ListSecrets(t.Context(), tm.ns); len(list) != 0 {
		t.Fatalf("secrets left: %+v", list)
	}
}
