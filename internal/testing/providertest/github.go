package providertest

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// GitHubRateLimit is a kind of rate limit the GitHub fake can answer with.
type GitHubRateLimit int

const (
	// SecondaryRateLimit is a 403 with Retry-After and the secondary rate
	// limit's documentation URL, GitHub's answer to bursts.
	SecondaryRateLimit GitHubRateLimit = iota
	// PrimaryRateLimit is a 403 with X-RateLimit-Remaining: 0 and
	// X-RateLimit-Reset, the hourly quota spent.
	PrimaryRateLimit
	// TooManyRequests is a 429 with Retry-After.
	TooManyRequests
)

const (
	githubDocs           = "https://docs.github.com/rest"
	githubSecondaryDocs  = "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits"
	githubPrimaryDocs    = "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-rate-limits"
	githubDefaultPerPage = 30
	githubHourlyLimit    = 5000
	githubMaxDescription = 140
)

// GitHubHook is a repository webhook as the GitHub fake stores it.
type GitHubHook struct {
	ID     int64
	Name   string
	Active bool
	Events []string
	// Config holds url, content_type, secret and insecure_ssl as sent.
	Config map[string]string
}

// GitHubStatus is a commit status as the GitHub fake stores it.
type GitHubStatus struct {
	ID          int64
	State       string
	TargetURL   string
	Description string
	Context     string
	Creator     string
}

type ghOrg struct {
	id      int64
	login   string
	members []string
}

type ghRepo struct {
	Repo
	id       int64
	hooks    []*GitHubHook
	statuses map[string][]GitHubStatus
}

// GitHub is a fake GitHub REST API (api.github.com, or GitHub Enterprise's
// /api/v3, which it also serves). Use its URL as the API base URL.
type GitHub struct {
	*httptest.Server
	fakeAccounts

	used  int
	orgs  map[string]*ghOrg
	repos map[string]*ghRepo // by lowercased "owner/name"
}

// NewGitHub starts a fake GitHub API, closed when the test ends.
func NewGitHub(t testing.TB) *GitHub {
	f := &GitHub{orgs: map[string]*ghOrg{}, repos: map[string]*ghRepo{}}
	f.init(1000)
	mux := http.NewServeMux()
	f.routes(mux)
	f.Server = httptest.NewServer(f.serve(mux))
	t.Cleanup(f.Close)
	return f
}

// AddOrg adds an organization and its members, who can see its private
// repositories (but manage hooks only on those that list them as Admins).
func (f *GitHub) AddOrg(login string, members ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.orgs[strings.ToLower(login)] = &ghOrg{id: f.id(), login: login, members: members}
}

// AddRepo adds a repository to an existing user or organization.
func (f *GitHub) AddRepo(r Repo) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.user(r.Owner) == nil && f.orgs[strings.ToLower(r.Owner)] == nil {
		panic(fmt.Sprintf("providertest: AddRepo: no user or organization %q", r.Owner))
	}
	if r.DefaultBranch == "" {
		r.DefaultBranch = "main"
	}
	f.repos[strings.ToLower(r.Owner+"/"+r.Name)] = &ghRepo{Repo: r, id: f.id(), statuses: map[string][]GitHubStatus{}}
}

// Hooks returns a copy of a repository's hooks.
func (f *GitHub) Hooks(owner, repo string) []GitHubHook {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.repos[strings.ToLower(owner+"/"+repo)]
	if r == nil {
		return nil
	}
	out := make([]GitHubHook, 0, len(r.hooks))
	for _, h := range r.hooks {
		c := *h
		c.Events = slices.Clone(h.Events)
		c.Config = map[string]string{}
		for k, v := range h.Config {
			c.Config[k] = v
		}
		out = append(out, c)
	}
	return out
}

// Statuses returns the statuses set on a commit, oldest first.
func (f *GitHub) Statuses(owner, repo, sha string) []GitHubStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.repos[strings.ToLower(owner+"/"+repo)]
	if r == nil {
		return nil
	}
	return slices.Clone(r.statuses[sha])
}

// RateLimitOnce makes the next request whose token is good answer with a
// rate limit of the given kind that lasts retryAfter.
func (f *GitHub) RateLimitOnce(kind GitHubRateLimit, retryAfter time.Duration) {
	h := http.Header{}
	status := http.StatusForbidden
	body := map[string]any{
		"message":           "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. If you reach out to GitHub Support for help, please include the request ID 0000:0000:0000000:0000000:00000000.",
		"documentation_url": githubSecondaryDocs,
	}
	switch kind {
	case SecondaryRateLimit:
		h.Set("Retry-After", seconds(retryAfter))
	case PrimaryRateLimit:
		reset := time.Now().Add(retryAfter)
		h.Set("X-RateLimit-Remaining", "0")
		h.Set("X-RateLimit-Used", strconv.Itoa(githubHourlyLimit))
		h.Set("X-RateLimit-Reset", strconv.FormatInt(reset.Add(time.Second-1).Unix(), 10))
		body = map[string]any{
			"message":           "API rate limit exceeded for user ID 1. If you reach out to GitHub Support for help, please include the request ID 0000:0000:0000000:0000000:00000000.",
			"documentation_url": githubPrimaryDocs,
		}
	case TooManyRequests:
		status = http.StatusTooManyRequests
		h.Set("Retry-After", seconds(retryAfter))
	}
	f.forceOnce(forced{status: status, header: h, body: body})
}

// FailOnce makes the next request whose token is good answer status, such
// as 502 Bad Gateway, with GitHub's error body.
func (f *GitHub) FailOnce(status int) {
	f.forceOnce(forced{status: status, body: map[string]any{"message": http.StatusText(status)}})
}

type ghLoginKey struct{}

// serve records, authenticates, applies the switches and the rate limit
// headers, then routes. The whole request runs under the lock.
func (f *GitHub) serve(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served := f.record(r)
		defer f.mu.Unlock()

		// GitHub Enterprise Server serves the same API under /api/v3.
		if p, ok := strings.CutPrefix(r.URL.Path, "/api/v3"); ok {
			r.URL.Path = p
			r.URL.RawPath = strings.TrimPrefix(r.URL.RawPath, "/api/v3")
		}
		w.Header().Set("X-GitHub-Media-Type", "github.v3; format=json")
		w.Header().Set("X-GitHub-Api-Version-Selected", "2022-11-28")
		w.Header().Set("X-GitHub-Request-Id", fmt.Sprintf("FAKE:%04X", served))

		login, ok := f.authenticate(bearer(r))
		if !ok {
			writeJSON(w, http.StatusUnauthorized, map[string]any{
				"message": "Bad credentials", "documentation_url": githubDocs, "status": "401",
			})
			return
		}
		f.used++
		w.Header().Set("X-RateLimit-Limit", strconv.Itoa(githubHourlyLimit))
		w.Header().Set("X-RateLimit-Remaining", strconv.Itoa(max(1, githubHourlyLimit-f.used)))
		w.Header().Set("X-RateLimit-Reset", strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10))
		w.Header().Set("X-RateLimit-Used", strconv.Itoa(f.used))
		w.Header().Set("X-RateLimit-Resource", "core")

		if f.answerForced(w) {
			return
		}
		mux.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ghLoginKey{}, login)))
	})
}

func ghLogin(r *http.Request) string {
	s, _ := r.Context().Value(ghLoginKey{}).(string)
	return s
}

func ghError(w http.ResponseWriter, status int, message, docs string) {
	if docs == "" {
		docs = githubDocs
	}
	writeJSON(w, status, map[string]any{"message": message, "documentation_url": docs, "status": strconv.Itoa(status)})
}

func ghNotFound(w http.ResponseWriter, docs string) {
	ghError(w, http.StatusNotFound, "Not Found", docs)
}

func ghValidation(w http.ResponseWriter, docs string, errs ...map[string]any) {
	writeJSON(w, http.StatusUnprocessableEntity, map[string]any{
		"message": "Validation Failed", "errors": errs, "documentation_url": docs, "status": "422",
	})
}

// ghPage writes GitHub's Link header: next and last while there are more
// pages, first and prev after the first.
func ghPage[T any](w http.ResponseWriter, r *http.Request, items []T) {
	out, p := paginate(r, items, githubDefaultPerPage)
	if link := linkHeader(r, p, false); link != "" {
		w.Header().Set("Link", link)
	}
	if out == nil {
		out = []T{}
	}
	writeJSON(w, http.StatusOK, out)
}

func (f *GitHub) routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /user", f.getUser)
	mux.HandleFunc("GET /user/orgs", f.listUserOrgs)
	mux.HandleFunc("GET /user/repos", f.listUserRepos)
	mux.HandleFunc("GET /orgs/{org}/repos", f.listOrgRepos)
	mux.HandleFunc("GET /users/{user}/repos", f.listUsersRepos)
	mux.HandleFunc("GET /repos/{owner}/{repo}", f.getRepo)
	mux.HandleFunc("GET /repos/{owner}/{repo}/branches", f.listBranches)
	mux.HandleFunc("GET /repos/{owner}/{repo}/tags", f.listTags)
	mux.HandleFunc("GET /repos/{owner}/{repo}/hooks", f.listHooks)
	mux.HandleFunc("POST /repos/{owner}/{repo}/hooks", f.createHook)
	mux.HandleFunc("GET /repos/{owner}/{repo}/hooks/{id}", f.getHook)
	mux.HandleFunc("PATCH /repos/{owner}/{repo}/hooks/{id}", f.editHook)
	mux.HandleFunc("DELETE /repos/{owner}/{repo}/hooks/{id}", f.deleteHook)
	mux.HandleFunc("POST /repos/{owner}/{repo}/statuses/{sha}", f.createStatus)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { ghNotFound(w, "") })
}

func (f *GitHub) userJSON(u *fakeUser) map[string]any {
	return map[string]any{
		"login": u.name, "id": u.id, "node_id": fmt.Sprintf("U_%d", u.id),
		"avatar_url": fmt.Sprintf("%s/avatars/u/%d", f.URL, u.id),
		"url":        f.URL + "/users/" + u.name, "html_url": f.URL + "/" + u.name,
		"repos_url": f.URL + "/users/" + u.name + "/repos",
		"type":      "User", "site_admin": false, "name": u.name,
	}
}

func (f *GitHub) getUser(w http.ResponseWriter, r *http.Request) {
	login := ghLogin(r)
	if login == "" {
		ghError(w, http.StatusUnauthorized, "Requires authentication", "https://docs.github.com/rest/users/users#get-the-authenticated-user")
		return
	}
	u := f.user(login)
	body := f.userJSON(u)
	body["created_at"] = "2020-01-01T00:00:00Z"
	writeJSON(w, http.StatusOK, body)
}

func (f *GitHub) member(org *ghOrg, login string) bool {
	return login != "" && slices.ContainsFunc(org.members, func(m string) bool { return strings.EqualFold(m, login) })
}

func (f *GitHub) listUserOrgs(w http.ResponseWriter, r *http.Request) {
	login := ghLogin(r)
	if login == "" {
		ghError(w, http.StatusUnauthorized, "Requires authentication", "https://docs.github.com/rest/orgs/orgs#list-organizations-for-the-authenticated-user")
		return
	}
	var orgs []*ghOrg
	for _, o := range f.orgs {
		if f.member(o, login) {
			orgs = append(orgs, o)
		}
	}
	sort.Slice(orgs, func(i, j int) bool { return strings.ToLower(orgs[i].login) < strings.ToLower(orgs[j].login) })
	out := make([]map[string]any, 0, len(orgs))
	for _, o := range orgs {
		out = append(out, map[string]any{
			"login": o.login, "id": o.id, "node_id": fmt.Sprintf("O_%d", o.id),
			"url": f.URL + "/orgs/" + o.login, "repos_url": f.URL + "/orgs/" + o.login + "/repos",
			"events_url": f.URL + "/orgs/" + o.login + "/events", "hooks_url": f.URL + "/orgs/" + o.login + "/hooks",
			"issues_url": f.URL + "/orgs/" + o.login + "/issues", "members_url": f.URL + "/orgs/" + o.login + "/members{/member}",
			"public_members_url": f.URL + "/orgs/" + o.login + "/public_members{/member}",
			"avatar_url":         fmt.Sprintf("%s/avatars/u/%d", f.URL, o.id), "description": "",
		})
	}
	ghPage(w, r, out)
}

// Access levels of a login on a repository.
const (
	accessNone = iota
	accessRead
	accessAdmin
)

func (f *GitHub) access(login string, r *ghRepo) int {
	eq := func(s string) bool { return login != "" && strings.EqualFold(s, login) }
	switch {
	case eq(r.Owner), slices.ContainsFunc(r.Admins, eq):
		return accessAdmin
	case slices.ContainsFunc(r.Readers, eq):
		return accessRead
	}
	if o := f.orgs[strings.ToLower(r.Owner)]; o != nil && f.member(o, login) {
		return accessRead
	}
	if !r.Private {
		return accessRead
	}
	return accessNone
}

// sortedRepos gives the repositories keep says yes to, by full name, as
// GitHub sorts by default.
func (f *GitHub) sortedRepos(keep func(*ghRepo) bool) []*ghRepo {
	var out []*ghRepo
	for _, r := range f.repos {
		if keep(r) {
			out = append(out, r)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		return strings.ToLower(out[i].Owner+"/"+out[i].Name) < strings.ToLower(out[j].Owner+"/"+out[j].Name)
	})
	return out
}

func (f *GitHub) repoJSON(r *ghRepo, login string) map[string]any {
	owner := map[string]any{"login": r.Owner, "type": "User"}
	if u := f.user(r.Owner); u != nil {
		owner["id"] = u.id
	}
	if o := f.orgs[strings.ToLower(r.Owner)]; o != nil {
		owner["id"], owner["type"] = o.id, "Organization"
	}
	base := f.URL
	visibility := "public"
	if r.Private {
		visibility = "private"
	}
	full := r.Owner + "/" + r.Name
	access := f.access(login, r)
	return map[string]any{
		"id": r.id, "node_id": fmt.Sprintf("R_%d", r.id), "name": r.Name, "full_name": full,
		"private": r.Private, "owner": owner, "html_url": base + "/" + full, "description": nil,
		"fork": false, "url": f.URL + "/repos/" + full, "hooks_url": f.URL + "/repos/" + full + "/hooks",
		"clone_url": base + "/" + full + ".git", "git_url": "git://" + strings.TrimPrefix(strings.TrimPrefix(base, "http://"), "https://") + "/" + full + ".git",
		"default_branch": r.DefaultBranch, "visibility": visibility, "archived": false, "disabled": false,
		"permissions": map[string]any{"admin": access == accessAdmin, "maintain": access == accessAdmin, "push": access == accessAdmin, "triage": access >= accessRead, "pull": access >= accessRead},
	}
}

func (f *GitHub) writeRepos(w http.ResponseWriter, r *http.Request, repos []*ghRepo) {
	login := ghLogin(r)
	out := make([]map[string]any, 0, len(repos))
	for _, repo := range repos {
		out = append(out, f.repoJSON(repo, login))
	}
	ghPage(w, r, out)
}

func (f *GitHub) listUserRepos(w http.ResponseWriter, r *http.Request) {
	login := ghLogin(r)
	if login == "" {
		ghError(w, http.StatusUnauthorized, "Requires authentication", "https://docs.github.com/rest/repos/repos#list-repositories-for-the-authenticated-user")
		return
	}
	affiliation := r.URL.Query().Get("affiliation")
	if affiliation == "" {
		affiliation = "owner,collaborator,organization_member"
	}
	want := strings.Split(affiliation, ",")
	repos := f.sortedRepos(func(repo *ghRepo) bool {
		eq := func(s string) bool { return strings.EqualFold(s, login) }
		switch {
		case slices.Contains(want, "owner") && eq(repo.Owner):
			return true
		case slices.Contains(want, "collaborator") && (slices.ContainsFunc(repo.Admins, eq) || slices.ContainsFunc(repo.Readers, eq)):
			return true
		case slices.Contains(want, "organization_member"):
			o := f.orgs[strings.ToLower(repo.Owner)]
			return o != nil && f.member(o, login)
		}
		return false
	})
	f.writeRepos(w, r, repos)
}

func (f *GitHub) listOrgRepos(w http.ResponseWriter, r *http.Request) {
	org := f.orgs[strings.ToLower(r.PathValue("org"))]
	if org == nil {
		ghNotFound(w, "https://docs.github.com/rest/repos/repos#list-organization-repositories")
		return
	}
	login := ghLogin(r)
	typ := r.URL.Query().Get("type")
	repos := f.sortedRepos(func(repo *ghRepo) bool {
		if !strings.EqualFold(repo.Owner, org.login) || f.access(login, repo) == accessNone {
			return false
		}
		switch typ {
		case "public":
			return !repo.Private
		case "private":
			return repo.Private
		}
		return true
	})
	f.writeRepos(w, r, repos)
}

// listUsersRepos lists public repositories only, as GitHub does for
// /users/{user}/repos even when the user asks for its own.
func (f *GitHub) listUsersRepos(w http.ResponseWriter, r *http.Request) {
	name := strings.ToLower(r.PathValue("user"))
	if f.users[name] == nil && f.orgs[name] == nil {
		ghNotFound(w, "https://docs.github.com/rest/repos/repos#list-repositories-for-a-user")
		return
	}
	repos := f.sortedRepos(func(repo *ghRepo) bool {
		return strings.EqualFold(repo.Owner, name) && !repo.Private
	})
	f.writeRepos(w, r, repos)
}

// repo finds the path's repository if the login may see it; else it answers
// 404, as GitHub does for private repositories.
func (f *GitHub) repo(w http.ResponseWriter, r *http.Request, need int, docs string) *ghRepo {
	repo := f.repos[strings.ToLower(r.PathValue("owner")+"/"+r.PathValue("repo"))]
	if repo == nil || f.access(ghLogin(r), repo) < need {
		ghNotFound(w, docs)
		return nil
	}
	return repo
}

func (f *GitHub) getRepo(w http.ResponseWriter, r *http.Request) {
	repo := f.repo(w, r, accessRead, "https://docs.github.com/rest/repos/repos#get-a-repository")
	if repo == nil {
		return
	}
	writeJSON(w, http.StatusOK, f.repoJSON(repo, ghLogin(r)))
}

func (f *GitHub) refsJSON(r *ghRepo, refs []Ref, tags bool) []map[string]any {
	full := r.Owner + "/" + r.Name
	out := make([]map[string]any, 0, len(refs))
	for _, ref := range refs {
		commit := map[string]any{"sha": ref.Commit, "url": f.URL + "/repos/" + full + "/commits/" + ref.Commit}
		if tags {
			out = append(out, map[string]any{
				"name": ref.Name, "commit": commit, "node_id": "REF_" + ref.Name,
				"zipball_url": f.URL + "/repos/" + full + "/zipball/refs/tags/" + ref.Name,
				"tarball_url": f.URL + "/repos/" + full + "/tarball/refs/tags/" + ref.Name,
			})
			continue
		}
		out = append(out, map[string]any{"name": ref.Name, "commit": commit, "protected": false})
	}
	return out
}

func (f *GitHub) listBranches(w http.ResponseWriter, r *http.Request) {
	repo := f.repo(w, r, accessRead, "https://docs.github.com/rest/branches/branches#list-branches")
	if repo == nil {
		return
	}
	ghPage(w, r, f.refsJSON(repo, repo.Branches, false))
}

func (f *GitHub) listTags(w http.ResponseWriter, r *http.Request) {
	repo := f.repo(w, r, accessRead, "https://docs.github.com/rest/repos/repos#list-repository-tags")
	if repo == nil {
		return
	}
	ghPage(w, r, f.refsJSON(repo, repo.Tags, true))
}

// hookJSON hides the secret, as GitHub does.
func (f *GitHub) hookJSON(r *ghRepo, h *GitHubHook) map[string]any {
	config := map[string]any{}
	for k, v := range h.Config {
		config[k] = v
	}
	if _, ok := config["secret"]; ok {
		config["secret"] = "********"
	}
	u := fmt.Sprintf("%s/repos/%s/%s/hooks/%d", f.URL, r.Owner, r.Name, h.ID)
	return map[string]any{
		"type": "Repository", "id": h.ID, "name": h.Name, "active": h.Active, "events": h.Events,
		"config": config, "updated_at": timestamp(time.Now()), "created_at": timestamp(time.Now()),
		"url": u, "test_url": u + "/test", "ping_url": u + "/pings", "deliveries_url": u + "/deliveries",
		"last_response": map[string]any{"code": nil, "status": "unused", "message": nil},
	}
}

const githubHooksDocs = "https://docs.github.com/rest/repos/webhooks"

func (f *GitHub) listHooks(w http.ResponseWriter, r *http.Request) {
	repo := f.repo(w, r, accessAdmin, githubHooksDocs+"#list-repository-webhooks")
	if repo == nil {
		return
	}
	out := make([]map[string]any, 0, len(repo.hooks))
	for _, h := range repo.hooks {
		out = append(out, f.hookJSON(repo, h))
	}
	ghPage(w, r, out)
}

func (f *GitHub) hook(w http.ResponseWriter, r *http.Request, docs string) (*ghRepo, int, *GitHubHook) {
	repo := f.repo(w, r, accessAdmin, docs)
	if repo == nil {
		return nil, 0, nil
	}
	id, _ := strconv.ParseInt(r.PathValue("id"), 10, 64)
	for i, h := range repo.hooks {
		if h.ID == id {
			return repo, i, h
		}
	}
	ghNotFound(w, docs)
	return nil, 0, nil
}

// applyHook sets what a create or edit body holds; GitHub replaces the whole
// config on edit.
func applyHook(h *GitHubHook, body map[string]any) {
	if events, ok := body["events"].([]any); ok {
		h.Events = nil
		for _, e := range events {
			if s, ok := e.(string); ok {
				h.Events = append(h.Events, s)
			}
		}
	}
	if active, ok := boolean(body, "active"); ok {
		h.Active = active
	}
	if config, ok := body["config"].(map[string]any); ok {
		h.Config = map[string]string{}
		for _, k := range []string{"url", "content_type", "secret", "insecure_ssl"} {
			if v, ok := str(config, k); ok {
				h.Config[k] = v
			}
		}
		if h.Config["content_type"] == "" {
			h.Config["content_type"] = "form"
		}
		if h.Config["insecure_ssl"] == "" {
			h.Config["insecure_ssl"] = "0"
		}
	}
}

func (f *GitHub) createHook(w http.ResponseWriter, r *http.Request) {
	docs := githubHooksDocs + "#create-a-repository-webhook"
	repo := f.repo(w, r, accessAdmin, docs)
	if repo == nil {
		return
	}
	body := decodeBody(r)
	h := &GitHubHook{Name: "web", Active: true, Events: []string{"push"}}
	if name, ok := str(body, "name"); ok && name != "web" {
		ghValidation(w, docs, map[string]any{"resource": "Hook", "code": "custom", "field": "name", "message": "Name must be 'web'"})
		return
	}
	applyHook(h, body)
	if h.Config["url"] == "" {
		ghValidation(w, docs, map[string]any{"resource": "Hook", "code": "custom", "message": "Config must contain URL for webhooks"})
		return
	}
	for _, other := range repo.hooks {
		if other.Config["url"] == h.Config["url"] {
			ghValidation(w, docs, map[string]any{"resource": "Hook", "code": "custom", "message": "Hook already exists on this repository"})
			return
		}
	}
	h.ID = f.id()
	repo.hooks = append(repo.hooks, h)
	writeJSON(w, http.StatusCreated, f.hookJSON(repo, h))
}

func (f *GitHub) getHook(w http.ResponseWriter, r *http.Request) {
	repo, _, h := f.hook(w, r, githubHooksDocs+"#get-a-repository-webhook")
	if h == nil {
		return
	}
	writeJSON(w, http.StatusOK, f.hookJSON(repo, h))
}

func (f *GitHub) editHook(w http.ResponseWriter, r *http.Request) {
	docs := githubHooksDocs + "#update-a-repository-webhook"
	repo, _, h := f.hook(w, r, docs)
	if h == nil {
		return
	}
	updated := *h
	applyHook(&updated, decodeBody(r))
	if updated.Config["url"] == "" {
		ghValidation(w, docs, map[string]any{"resource": "Hook", "code": "custom", "message": "Config must contain URL for webhooks"})
		return
	}
	*h = updated
	writeJSON(w, http.StatusOK, f.hookJSON(repo, h))
}

func (f *GitHub) deleteHook(w http.ResponseWriter, r *http.Request) {
	repo, i, h := f.hook(w, r, githubHooksDocs+"#delete-a-repository-webhook")
	if h == nil {
		return
	}
	repo.hooks = slices.Delete(repo.hooks, i, i+1)
	w.WriteHeader(http.StatusNoContent)
}

// createStatus needs push access, which the fake grants to admins only.
func (f *GitHub) createStatus(w http.ResponseWriter, r *http.Request) {
	docs := "https://docs.github.com/rest/commits/statuses#create-a-commit-status"
	repo := f.repo(w, r, accessAdmin, docs)
	if repo == nil {
		return
	}
	sha := r.PathValue("sha")
	if !repo.hasCommit(sha) {
		ghError(w, http.StatusUnprocessableEntity, "No commit found for SHA: "+sha, docs)
		return
	}
	body := decodeBody(r)
	state, _ := str(body, "state")
	if !slices.Contains([]string{"error", "failure", "pending", "success"}, state) {
		ghValidation(w, docs, map[string]any{"resource": "Status", "code": "custom", "field": "state", "message": "state is not included in the list"})
		return
	}
	st := GitHubStatus{ID: f.id(), State: state, Context: "default", Creator: ghLogin(r)}
	st.TargetURL, _ = str(body, "target_url")
	st.Description, _ = str(body, "description")
	if c, ok := str(body, "context"); ok && c != "" {
		st.Context = c
	}
	if len([]rune(st.Description)) > githubMaxDescription {
		ghValidation(w, docs, map[string]any{"resource": "Status", "code": "custom", "field": "description", "message": "description is too long (maximum is 140 characters)"})
		return
	}
	repo.statuses[sha] = append(repo.statuses[sha], st)
	now := timestamp(time.Now())
	body = map[string]any{
		"url": f.URL + "/repos/" + repo.Owner + "/" + repo.Name + "/statuses/" + sha, "id": st.ID,
		"node_id": fmt.Sprintf("SC_%d", st.ID), "state": st.State, "description": nullable(st.Description),
		"target_url": nullable(st.TargetURL), "context": st.Context, "created_at": now, "updated_at": now,
		"avatar_url": nil,
	}
	if u := f.user(st.Creator); u != nil {
		body["creator"] = f.userJSON(u)
	}
	writeJSON(w, http.StatusCreated, body)
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}
