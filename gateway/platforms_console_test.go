package gateway

import (
	"net/http"
	"net/url"
	"regexp"
	"testing"
)

// TestConsoleRulePlatforms saves a rule's platforms through the console's form, sees them in
// the rule list and the edit form in normal form, and a bad one next to its field.
func TestConsoleRulePlatforms(t *testing.T) {
	hs := devStack(t)
	tm := hs.newTeam(t, "console-plat")
	b := hs.browser(t)
	b.signIn(hs.writer)
	repo := "/ns/" + tm.ns + "/repos/app"
	form := url.Values{"provider": {"github"}, "owner": {"octo"}, "repository": {"hello"},
		"branches": {"main"}, "tag_template": {"{ref}-{short_commit}"}, "action": {"save"}}

	form.Set("platforms", "linux/amd64, linux")
	wantPage(t, b.post(repo+"/rules/new", repo+"/rules/new", form), http.StatusBadRequest, `id="platforms-err"`, `platform &#34;linux&#34; is not OS/ARCH`)

	form.Set("platforms", "linux/x86_64, linux/aarch64")
	p := b.post(repo+"/rules/new", repo+"/rules/new", form)
	wantPage(t, p, http.StatusCreated)
	rules := b.get(repo + "/rules")
	wantPage(t, rules, http.StatusOK, "<code>linux/amd64</code>, <code>linux/arm64</code>")
	id := regexp.MustCompile(`/rules/(r-[a-z0-9]+)/build"`).FindStringSubmatch(rules.body)
	if id == nil {
		t.Fatalf("no rule in the list:\n%s", rules.body)
	}
	wantPage(t, b.get(repo+"/rules/"+id[1]), http.StatusOK, `name="platforms" value="linux/amd64, linux/arm64"`)
}
