package providertest_test

import (
	"encoding/json"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/internal/testing/providertest"
)

// call makes one raw request, so these tests see the wire shapes that the
// provider clients hide.
func call(t *testing.T, method, url, token, body string) (*http.Response, map[string]any, []any) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var obj map[string]any
	var arr []any
	if json.Unmarshal(raw, &obj) != nil {
		_ = json.Unmarshal(raw, &arr)
	}
	if obj == nil && arr == nil {
		obj = map[string]any{"raw": string(raw)}
	}
	return resp, obj, arr
}

func TestGitHubShapes(t *testing.T) {
	f := providertest.NewGitHub(t)
	f.AddUser("octo", "good", "bad")
	f.RevokeToken("bad")
	f.AddOrg("acme", "octo")
	for _, name := range []string{"a", "b", "c"} {
		f.AddRepo(providertest.Repo{Owner: "acme", Name: name})
	}

	resp, body, _ := call(t, "GET", f.URL+"/user", "bad", "")
	if resp.StatusCode != 401 || body["message"] != "Bad credentials" || body["documentation_url"] == nil {
		t.Errorf("revoked token: %d %v", resp.StatusCode, body)
	}

	resp, _, repos := call(t, "GET", f.URL+"/orgs/acme/repos?per_page=1", "good", "")
	link := resp.Header.Get("Link")
	if resp.StatusCode != 200 || len(repos) != 1 || !strings.Contains(link, `page=2&per_page=1>; rel="next"`) ||
		!strings.Contains(link, `page=3&per_page=1>; rel="last"`) || strings.Contains(link, `rel="prev"`) {
		t.Errorf("first page: %d, %d repos, Link %q", resp.StatusCode, len(repos), link)
	}
	for _, h := range []string{"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", "X-RateLimit-Used", "X-RateLimit-Resource"} {
		if resp.Header.Get(h) == "" {
			t.Errorf("no %s header", h)
		}
	}
	resp, _, _ = call(t, "GET", f.URL+"/orgs/acme/repos?per_page=1&page=3", "good", "")
	if link := resp.Header.Get("Link"); !strings.Contains(link, `rel="prev"`) || !strings.Contains(link, `rel="first"`) || strings.Contains(link, `rel="next"`) {
		t.Errorf("last page Link %q", link)
	}

	hook := `{"name":"web","active":true,"events":["push"],"config":{"url":"https://ci.example/h","content_type":"json","secret":"s3cr3t","insecure_ssl":"0"}}`
	resp, body, _ = call(t, "POST", f.URL+"/repos/acme/a/hooks", "good", hook)
	if resp.StatusCode != 404 {
		t.Errorf("hook without admin rights: %d %v, want 404", resp.StatusCode, body)
	}
	f.AddRepo(providertest.Repo{Owner: "octo", Name: "hello"})
	resp, body, _ = call(t, "POST", f.URL+"/repos/octo/hello/hooks", "good", hook)
	config, _ := body["config"].(map[string]any)
	if resp.StatusCode != 201 || body["type"] != "Repository" || config["secret"] != "********" || config["url"] != "https://ci.example/h" {
		t.Errorf("create hook: %d %v", resp.StatusCode, body)
	}
	resp, body, _ = call(t, "POST", f.URL+"/repos/octo/hello/hooks", "good", hook)
	want := []any{map[string]any{"resource": "Hook", "code": "custom", "message": "Hook already exists on this repository"}}
	if resp.StatusCode != 422 || body["message"] != "Validation Failed" || !reflect.DeepEqual(body["errors"], want) {
		t.Errorf("duplicate hook: %d %v", resp.StatusCode, body)
	}
	if got := f.Hooks("octo", "hello"); len(got) != 1 || got[0].Config["secret"] != "s3cr3t" {
		t.Errorf("stored hooks = %+v", got)
	}

	f.RateLimitOnce(providertest.SecondaryRateLimit, 3*time.Second)
	resp, body, _ = call(t, "GET", f.URL+"/user", "good", "")
	if resp.StatusCode != 403 || resp.Header.Get("Retry-After") != "3" || !strings.HasSuffix(body["documentation_url"].(string), "secondary-rate-limits") {
		t.Errorf("secondary rate limit: %d %v %v", resp.StatusCode, resp.Header, body)
	}
	f.RateLimitOnce(providertest.PrimaryRateLimit, 3*time.Second)
	resp, _, _ = call(t, "GET", f.URL+"/user", "good", "")
	if resp.StatusCode != 403 || resp.Header.Get("X-RateLimit-Remaining") != "0" || resp.Header.Get("X-RateLimit-Reset") == "" {
		t.Errorf("primary rate limit: %d %v", resp.StatusCode, resp.Header)
	}
	if resp, _, _ = call(t, "GET", f.URL+"/user", "good", ""); resp.StatusCode != 200 {
		t.Errorf("after the limit: %d", resp.StatusCode)
	}

	reqs := f.Requests()
	if len(reqs) != 9 || reqs[3].String() != "POST /repos/acme/a/hooks" || !strings.Contains(string(reqs[3].Body), "s3cr3t") {
		t.Errorf("recorded %d requests: %v", len(reqs), reqs)
	}
}

func TestGitLabShapes(t *testing.T) {
	f := providertest.NewGitLab(t)
	f.AddUser("octo", "good", "bad")
	f.RevokeToken("bad")
	f.AddGroup("acme", map[string]int{"octo": providertest.ReporterAccess})
	f.AddGroup("acme/sub", nil)
	sha := providertest.SHA("main")
	for _, name := range []string{"a", "b", "c"} {
		f.AddRepo(providertest.Repo{Owner: "acme/sub", Name: name, Private: true, Branches: []providertest.Ref{{Name: "main", Commit: sha}}})
	}
	api := f.URL + "/api/v4"

	resp, body, _ := call(t, "GET", api+"/user", "bad", "")
	if resp.StatusCode != 401 || body["message"] != "401 Unauthorized" {
		t.Errorf("revoked token: %d %v", resp.StatusCode, body)
	}
	resp, body, _ = call(t, "GET", api+"/projects/acme%2Fsub%2Fa/repository/branches", "", "")
	if resp.StatusCode != 404 || body["message"] != "404 Project Not Found" {
		t.Errorf("private project, anonymous: %d %v", resp.StatusCode, body)
	}

	resp, _, projects := call(t, "GET", api+"/groups/acme%2Fsub/projects?per_page=2&order_by=path&sort=asc", "good", "")
	h := resp.Header
	if resp.StatusCode != 200 || len(projects) != 2 || h.Get("X-Next-Page") != "2" || h.Get("X-Total-Pages") != "2" ||
		h.Get("X-Total") != "3" || h.Get("X-Page") != "1" || !strings.Contains(h.Get("Link"), `rel="next"`) {
		t.Errorf("first page: %d, %d projects, headers %v", resp.StatusCode, len(projects), h)
	}
	p, _ := projects[0].(map[string]any)
	ns, _ := p["namespace"].(map[string]any)
	if p["path_with_namespace"] != "acme/sub/a" || p["visibility"] != "private" || ns["full_path"] != "acme/sub" || ns["kind"] != "group" {
		t.Errorf("project = %v", p)
	}
	resp, _, _ = call(t, "GET", api+"/groups/acme%2Fsub/projects?per_page=2&page=2", "good", "")
	if resp.Header.Get("X-Next-Page") != "" || resp.Header.Get("X-Prev-Page") != "1" {
		t.Errorf("last page headers %v", resp.Header)
	}

	resp, body, _ = call(t, "POST", api+"/projects/acme%2Fsub%2Fa/hooks", "good", `{"url":"https://ci.example/h","token":"t"}`)
	if resp.StatusCode != 403 || body["message"] != "403 Forbidden" {
		t.Errorf("hook as a Reporter: %d %v", resp.StatusCode, body)
	}

	f.RateLimitOnce(2 * time.Second)
	resp, body, _ = call(t, "GET", api+"/user", "good", "")
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "2" || resp.Header.Get("RateLimit-Reset") == "" || body["raw"] != "Retry later\n" {
		t.Errorf("rate limit: %d %v %v", resp.StatusCode, resp.Header, body)
	}
	if resp, body, _ = call(t, "GET", api+"/user", "good", ""); resp.StatusCode != 200 || body["username"] != "octo" {
		t.Errorf("after the limit: %d %v", resp.StatusCode, body)
	}
}

// TestGitLabStatusTransitions follows GitLab's rules for a status of one
// commit and name.
func TestGitLabStatusTransitions(t *testing.T) {
	f := providertest.NewGitLab(t)
	f.AddUser("octo", "good")
	sha := providertest.SHA("main")
	f.AddRepo(providertest.Repo{Owner: "octo", Name: "hello", Branches: []providertest.Ref{{Name: "main", Commit: sha}}})
	url := f.URL + "/api/v4/projects/octo%2Fhello/statuses/" + sha
	steps := []struct {
		state      string
		wantStatus int
	}{
		{"pending", 201}, {"pending", 400}, {"running", 201}, {"running", 400}, {"success", 201}, {"pending", 201}, {"bogus", 400},
	}
	for _, s := range steps {
		resp, body, _ := call(t, "POST", url, "good", `{"state":"`+s.state+`","name":"slipway"}`)
		if resp.StatusCode != s.wantStatus {
			t.Errorf("%s: %d %v, want %d", s.state, resp.StatusCode, body, s.wantStatus)
		}
		if s.wantStatus == 400 && s.state == "pending" && !strings.HasPrefix(body["message"].(string), "Cannot transition status via :enqueue from :pending") {
			t.Errorf("repeated pending: %v", body)
		}
	}
	got := f.Statuses("octo", "hello", sha)
	if len(got) != 2 || got[0].Status != "success" || got[1].Status != "pending" || got[0].Ref != "main" {
		t.Errorf("statuses = %+v, want one success and a new pending", got)
	}
}
