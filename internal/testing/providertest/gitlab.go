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

// GitLab access levels, as the API numbers them.
const (
	GuestAccess      = 10
	ReporterAccess   = 20
	DeveloperAccess  = 30
	MaintainerAccess = 40
	OwnerAccess      = 50
)

const (
	gitlabDefaultPerPage = 20
	gitlabRateLimit      = 2000 // requests a minute, gitlab.com's authenticated API limit
)

// GitLabHook is a project webhook as the GitLab fake stores it.
type GitLabHook struct {
	ID                    int64
	URL                   string
	Token                 string
	PushEvents            bool
	TagPushEvents         bool
	MergeRequestsEvents   bool
	EnableSSLVerification bool
}

// GitLabStatus is a commit status as the GitLab fake stores it.
type GitLabStatus struct {
	ID  int64
	SHA string
	Ref string
	// Status is GitLab's state: pending, running, success, failed, canceled
	// or skipped.
	Status      string
	Name        string
	TargetURL   string
	Description string
}

type glGroup struct {
	id       int64
	fullPath string
	members  map[string]int // by lowercased username
}

type glProject struct {
	Repo
	id       int64
	nsID     int64
	hooks    []*GitLabHook
	statuses []*GitLabStatus
}

// GitLab is a fake GitLab REST API (v4). Use its URL as the instance URL;
// it serves the API under /api/v4.
type GitLab struct {
	*httptest.Server
	fakeAccounts

	groups   map[string]*glGroup   // by lowercased full path
	projects map[string]*glProject // by lowercased "namespace/path"
}

// NewGitLab starts a fake GitLab, closed when the test ends.
func NewGitLab(t testing.TB) *GitLab {
	f := &GitLab{groups: map[string]*glGroup{}, projects: map[string]*glProject{}}
	f.init(100)
	mux := http.NewServeMux()
	f.routes(mux)
	f.Server = httptest.NewServer(f.serve(mux))
	t.Cleanup(f.Close)
	return f
}

// AddGroup adds a group by full path ("group/sub": the parent must exist)
// with its members' access levels; members of a group are members of its
// subgroups too.
func (f *GitLab) AddGroup(fullPath string, members map[string]int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if parent, _, ok := cutLast(fullPath); ok && f.groups[strings.ToLower(parent)] == nil {
		panic(fmt.Sprintf("providertest: AddGroup: no parent group %q", parent))
	}
	g := &glGroup{id: f.id(), fullPath: fullPath, members: map[string]int{}}
	for u, level := range members {
		g.members[strings.ToLower(u)] = level
	}
	f.groups[strings.ToLower(fullPath)] = g
}

// AddRepo adds a project to an existing user's namespace or group.
func (f *GitLab) AddRepo(r Repo) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var nsID int64
	if u := f.user(r.Owner); u != nil {
		nsID = u.id
	} else if g := f.groups[strings.ToLower(r.Owner)]; g != nil {
		nsID = g.id
	} else {
		panic(fmt.Sprintf("providertest: AddRepo: no user or group %q", r.Owner))
	}
	if r.DefaultBranch == "" {
		r.DefaultBranch = "main"
	}
	f.projects[strings.ToLower(r.Owner+"/"+r.Name)] = &glProject{Repo: r, id: f.id(), nsID: nsID}
}

// Hooks returns a copy of a project's hooks.
func (f *GitLab) Hooks(owner, repo string) []GitLabHook {
	f.mu.Lock()
	defer f.mu.Unlock()
	p := f.projects[strings.ToLower(owner+"/"+repo)]
	if p == nil {
		return nil
	}
	out := make([]GitLabHook, 0, len(p.hooks))
	for _, h := range p.hooks {
		out = append(out, *h)
	}
	return out
}

// Statuses returns the statuses of a commit, oldest first; a status that
// moved from pending to running to success is one status.
func (f *GitLab) Statuses(owner, repo, sha string) []GitLabStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	p := f.projects[strings.ToLower(owner+"/"+repo)]
	if p == nil {
		return nil
	}
	var out []GitLabStatus
	for _, s := range p.statuses {
		if s.SHA == sha {
			out = append(out, *s)
		}
	}
	return out
}

// RateLimitOnce makes the next request whose token is good answer 429 Too
// Many Requests with Retry-After and the RateLimit-* headers, as GitLab's
// Rack::Attack throttle does.
func (f *GitLab) RateLimitOnce(retryAfter time.Duration) {
	reset := time.Now().Add(retryAfter)
	h := http.Header{}
	h.Set("Retry-After", seconds(retryAfter))
	h.Set("RateLimit-Name", "throttle_authenticated_api")
	h.Set("RateLimit-Limit", strconv.Itoa(gitlabRateLimit))
	h.Set("RateLimit-Observed", strconv.Itoa(gitlabRateLimit+1))
	h.Set("RateLimit-Remaining", "0")
	h.Set("RateLimit-Reset", strconv.FormatInt(reset.Add(time.Second-1).Unix(), 10))
	h.Set("RateLimit-ResetTime", reset.UTC().Format(http.TimeFormat))
	f.forceOnce(forced{status: http.StatusTooManyRequests, header: h, body: "Retry later\n"})
}

// FailOnce makes the next request whose token is good answer status, such
// as 502 Bad Gateway, with a page from GitLab's front proxy.
func (f *GitLab) FailOnce(status int) {
	text := strconv.Itoa(status) + " " + http.StatusText(status)
	f.forceOnce(forced{status: status, header: http.Header{"Content-Type": {"text/html"}},
		body: "<html><head><title>" + text + "</title></head><body><h1>" + text + "</h1></body></html>\n"})
}

type glUserKey struct{}

const gitlabAPI = "/api/v4"

func (f *GitLab) serve(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served := f.record(r)
		defer f.mu.Unlock()
		w.Header().Set("X-Request-Id", fmt.Sprintf("fake%06d", served))

		tok := r.Header.Get("PRIVATE-TOKEN")
		if tok == "" {
			tok = bearer(r)
		}
		username, ok := f.authenticate(tok)
		if !ok {
			writeJSON(w, http.StatusUnauthorized, map[string]any{"message": "401 Unauthorized"})
			return
		}
		if f.answerForced(w) {
			return
		}
		mux.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), glUserKey{}, username)))
	})
}

func glUsername(r *http.Request) string {
	s, _ := r.Context().Value(glUserKey{}).(string)
	return s
}

func glMessage(w http.ResponseWriter, status int, message string) {
	writeJSON(w, status, map[string]any{"message": message})
}

// glPage writes GitLab's offset pagination headers and Link.
func glPage[T any](w http.ResponseWriter, r *http.Request, items []T) {
	out, p := paginate(r, items, gitlabDefaultPerPage)
	h := w.Header()
	h.Set("X-Page", strconv.Itoa(p.number))
	h.Set("X-Per-Page", strconv.Itoa(p.perPage))
	h.Set("X-Total", strconv.Itoa(p.total))
	h.Set("X-Total-Pages", strconv.Itoa(p.last))
	h.Set("X-Next-Page", "")
	h.Set("X-Prev-Page", "")
	if p.number < p.last {
		h.Set("X-Next-Page", strconv.Itoa(p.number+1))
	}
	if p.number > 1 {
		h.Set("X-Prev-Page", strconv.Itoa(p.number-1))
	}
	h.Set("Link", linkHeader(r, p, true))
	if out == nil {
		out = []T{}
	}
	writeJSON(w, http.StatusOK, out)
}

func (f *GitLab) routes(mux *http.ServeMux) {
	api := func(pattern string, h http.HandlerFunc) {
		method, path, _ := strings.Cut(pattern, " ")
		mux.HandleFunc(method+" "+gitlabAPI+path, h)
	}
	api("GET /user", f.getUser)
	api("GET /groups", f.listGroups)
	api("GET /groups/{id}/projects", f.listGroupProjects)
	api("GET /users/{id}/projects", f.listUserProjects)
	api("GET /projects/{id}", f.getProject)
	api("GET /projects/{id}/repository/branches", f.listBranches)
	api("GET /projects/{id}/repository/tags", f.listTags)
	api("GET /projects/{id}/hooks", f.listHooks)
	api("POST /projects/{id}/hooks", f.addHook)
	api("GET /projects/{id}/hooks/{hook}", f.getHook)
	api("PUT /projects/{id}/hooks/{hook}", f.editHook)
	api("DELETE /projects/{id}/hooks/{hook}", f.deleteHook)
	api("POST /projects/{id}/statuses/{sha}", f.setStatus)
	api("GET /projects/{id}/repository/commits/{sha}/statuses", f.listStatuses)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, map[string]any{"error": "404 Not Found"})
	})
}

func (f *GitLab) webURL(path string) string {
	return f.URL + "/" + path
}

func (f *GitLab) getUser(w http.ResponseWriter, r *http.Request) {
	u := f.user(glUsername(r))
	if u == nil {
		glMessage(w, http.StatusUnauthorized, "401 Unauthorized")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"id": u.id, "username": u.name, "name": u.name, "state": "active", "locked": false,
		"avatar_url": f.webURL("uploads/-/avatar/" + strconv.FormatInt(u.id, 10)), "web_url": f.webURL(u.name),
		"created_at": "2020-01-01T00:00:00.000Z", "bio": "", "public_email": nil, "bot": false,
		"email": u.name + "@example.com", "two_factor_enabled": false, "is_admin": false,
	})
}

// cutLast splits "a/b/c" into "a/b" and "c".
func cutLast(path string) (parent, last string, ok bool) {
	i := strings.LastIndex(path, "/")
	if i < 0 {
		return "", path, false
	}
	return path[:i], path[i+1:], true
}

// groupLevel is a user's access to a group, inherited from its ancestors.
func (f *GitLab) groupLevel(username, fullPath string) int {
	level := 0
	for path := strings.ToLower(fullPath); path != ""; {
		if g := f.groups[path]; g != nil {
			level = max(level, g.members[strings.ToLower(username)])
		}
		parent, _, ok := cutLast(path)
		if !ok {
			break
		}
		path = parent
	}
	return level
}

func (f *GitLab) level(username string, p *glProject) int {
	if username == "" {
		return 0
	}
	eq := func(s string) bool { return strings.EqualFold(s, username) }
	level := f.groupLevel(username, p.Owner)
	switch {
	case eq(p.Owner):
		level = OwnerAccess
	case slices.ContainsFunc(p.Admins, eq):
		level = max(level, MaintainerAccess)
	case slices.ContainsFunc(p.Readers, eq):
		level = max(level, ReporterAccess)
	}
	return level
}

func (f *GitLab) visible(username string, p *glProject) bool {
	return !p.Private || f.level(username, p) >= GuestAccess
}

func (f *GitLab) groupVisible(username string, g *glGroup) bool {
	if f.groupLevel(username, g.fullPath) > 0 {
		return true
	}
	for _, p := range f.projects {
		if strings.EqualFold(p.Owner, g.fullPath) && f.visible(username, p) {
			return true
		}
	}
	return false
}

func (f *GitLab) groupJSON(g *glGroup) map[string]any {
	parent, path, _ := cutLast(g.fullPath)
	var parentID any
	if pg := f.groups[strings.ToLower(parent)]; pg != nil {
		parentID = pg.id
	}
	return map[string]any{
		"id": g.id, "web_url": f.webURL("groups/" + g.fullPath), "name": path, "path": path,
		"description": "", "visibility": "private", "share_with_group_lock": false,
		"require_two_factor_authentication": false, "project_creation_level": "developer",
		"subgroup_creation_level": "maintainer", "lfs_enabled": true, "avatar_url": nil,
		"request_access_enabled": true, "full_name": strings.ReplaceAll(g.fullPath, "/", " / "),
		"full_path": g.fullPath, "parent_id": parentID, "created_at": "2020-01-01T00:00:00.000Z",
	}
}

func (f *GitLab) listGroups(w http.ResponseWriter, r *http.Request) {
	username := glUsername(r)
	q := r.URL.Query()
	minLevel, _ := strconv.Atoi(q.Get("min_access_level"))
	var groups []*glGroup
	for _, g := range f.groups {
		switch {
		case minLevel > 0 && f.groupLevel(username, g.fullPath) >= minLevel:
			groups = append(groups, g)
		case minLevel == 0 && f.groupVisible(username, g):
			groups = append(groups, g)
		}
	}
	sort.Slice(groups, func(i, j int) bool {
		less := strings.ToLower(groups[i].fullPath) < strings.ToLower(groups[j].fullPath)
		if q.Get("sort") == "desc" {
			return !less
		}
		return less
	})
	out := make([]map[string]any, 0, len(groups))
	for _, g := range groups {
		out = append(out, f.groupJSON(g))
	}
	glPage(w, r, out)
}

func (f *GitLab) projectJSON(p *glProject) map[string]any {
	full := p.Owner + "/" + p.Name
	base := f.URL
	host := strings.TrimPrefix(strings.TrimPrefix(f.URL, "http://"), "https://")
	kind := "user"
	var parentID any
	if g := f.groups[strings.ToLower(p.Owner)]; g != nil {
		kind = "group"
		if parent, _, ok := cutLast(g.fullPath); ok {
			parentID = f.groups[strings.ToLower(parent)].id
		}
	}
	_, nsPath, _ := cutLast(p.Owner)
	visibility := "public"
	if p.Private {
		visibility = "private"
	}
	return map[string]any{
		"id": p.id, "description": nil, "name": p.Name, "name_with_namespace": strings.ReplaceAll(full, "/", " / "),
		"path": p.Name, "path_with_namespace": full, "created_at": "2020-01-01T00:00:00.000Z",
		"default_branch": p.DefaultBranch, "tag_list": []string{}, "topics": []string{},
		"ssh_url_to_repo": "git@" + host + ":" + full + ".git", "http_url_to_repo": base + "/" + full + ".git",
		"web_url": f.webURL(full), "readme_url": nil, "avatar_url": nil, "forks_count": 0, "star_count": 0,
		"last_activity_at": "2020-01-01T00:00:00.000Z", "visibility": visibility, "empty_repo": len(p.Branches) == 0,
		"archived": false,
		"namespace": map[string]any{
			"id": p.nsID, "name": nsPath, "path": nsPath, "kind": kind, "full_path": p.Owner,
			"parent_id": parentID, "avatar_url": nil, "web_url": f.webURL(p.Owner),
		},
	}
}

// sortedProjects gives the projects keep says yes to, by path, or as
// order_by=id asks.
func (f *GitLab) sortedProjects(r *http.Request, keep func(*glProject) bool) []map[string]any {
	var ps []*glProject
	for _, p := range f.projects {
		if keep(p) {
			ps = append(ps, p)
		}
	}
	q := r.URL.Query()
	sort.Slice(ps, func(i, j int) bool {
		less := strings.ToLower(ps[i].Owner+"/"+ps[i].Name) < strings.ToLower(ps[j].Owner+"/"+ps[j].Name)
		if q.Get("order_by") == "" || q.Get("order_by") == "id" {
			less = ps[i].id > ps[j].id // GitLab's default: newest first
		}
		if q.Get("sort") == "desc" {
			return !less
		}
		return less
	})
	out := make([]map[string]any, 0, len(ps))
	for _, p := range ps {
		out = append(out, f.projectJSON(p))
	}
	return out
}

func (f *GitLab) findGroup(id string) *glGroup {
	for _, g := range f.groups {
		if strconv.FormatInt(g.id, 10) == id {
			return g
		}
	}
	return f.groups[strings.ToLower(id)]
}

func (f *GitLab) listGroupProjects(w http.ResponseWriter, r *http.Request) {
	username := glUsername(r)
	g := f.findGroup(r.PathValue("id"))
	if g == nil || !f.groupVisible(username, g) {
		glMessage(w, http.StatusNotFound, "404 Group Not Found")
		return
	}
	subgroups := r.URL.Query().Get("include_subgroups") == "true"
	glPage(w, r, f.sortedProjects(r, func(p *glProject) bool {
		in := strings.EqualFold(p.Owner, g.fullPath) ||
			subgroups && strings.HasPrefix(strings.ToLower(p.Owner), strings.ToLower(g.fullPath)+"/")
		return in && f.visible(username, p)
	}))
}

func (f *GitLab) listUserProjects(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	var u *fakeUser
	for _, cand := range f.users {
		if strings.EqualFold(cand.name, id) || strconv.FormatInt(cand.id, 10) == id {
			u = cand
		}
	}
	if u == nil {
		glMessage(w, http.StatusNotFound, "404 User Not Found")
		return
	}
	username := glUsername(r)
	glPage(w, r, f.sortedProjects(r, func(p *glProject) bool {
		return strings.EqualFold(p.Owner, u.name) && f.visible(username, p)
	}))
}

// project finds the path's project ("ns/path", escaped, or a numeric ID) if
// the user may see it, else answers 404; with too little access it answers
// 403, as GitLab does once a project is visible.
func (f *GitLab) project(w http.ResponseWriter, r *http.Request, need int) *glProject {
	id := r.PathValue("id")
	p := f.projects[strings.ToLower(id)]
	if p == nil {
		for _, cand := range f.projects {
			if strconv.FormatInt(cand.id, 10) == id {
				p = cand
			}
		}
	}
	username := glUsername(r)
	if p == nil || !f.visible(username, p) {
		glMessage(w, http.StatusNotFound, "404 Project Not Found")
		return nil
	}
	if (p.Private || need > ReporterAccess) && f.level(username, p) < need {
		glMessage(w, http.StatusForbidden, "403 Forbidden")
		return nil
	}
	return p
}

func (f *GitLab) getProject(w http.ResponseWriter, r *http.Request) {
	if p := f.project(w, r, GuestAccess); p != nil {
		writeJSON(w, http.StatusOK, f.projectJSON(p))
	}
}

func commitJSON(sha, title string) map[string]any {
	return map[string]any{
		"id": sha, "short_id": sha[:min(8, len(sha))], "created_at": "2020-01-01T00:00:00.000+00:00",
		"parent_ids": []string{}, "title": title, "message": title + "\n",
		"author_name": "Fixture", "author_email": "fixture@example.com", "authored_date": "2020-01-01T00:00:00.000+00:00",
		"committer_name": "Fixture", "committer_email": "fixture@example.com", "committed_date": "2020-01-01T00:00:00.000+00:00",
	}
}

func (f *GitLab) listBranches(w http.ResponseWriter, r *http.Request) {
	p := f.project(w, r, ReporterAccess)
	if p == nil {
		return
	}
	out := make([]map[string]any, 0, len(p.Branches))
	for _, b := range p.Branches {
		out = append(out, map[string]any{
			"name": b.Name, "merged": false, "protected": b.Name == p.DefaultBranch, "default": b.Name == p.DefaultBranch,
			"developers_can_push": false, "developers_can_merge": false, "can_push": true,
			"web_url": f.webURL(p.Owner + "/" + p.Name + "/-/tree/" + b.Name), "commit": commitJSON(b.Commit, "commit on "+b.Name),
		})
	}
	glPage(w, r, out)
}

func (f *GitLab) listTags(w http.ResponseWriter, r *http.Request) {
	p := f.project(w, r, ReporterAccess)
	if p == nil {
		return
	}
	out := make([]map[string]any, 0, len(p.Tags))
	for _, t := range p.Tags {
		out = append(out, map[string]any{
			"name": t.Name, "message": "", "target": t.Commit, "release": nil, "protected": false,
			"created_at": nil, "commit": commitJSON(t.Commit, "tagged "+t.Name),
		})
	}
	glPage(w, r, out)
}

// hookJSON leaves the token out, as GitLab does.
func hookJSON(p *glProject, h *GitLabHook) map[string]any {
	return map[string]any{
		"id": h.ID, "url": h.URL, "name": "", "description": "", "project_id": p.id,
		"push_events": h.PushEvents, "push_events_branch_filter": "", "branch_filter_strategy": "wildcard",
		"issues_events": false, "confidential_issues_events": false, "merge_requests_events": h.MergeRequestsEvents,
		"tag_push_events": h.TagPushEvents, "note_events": false, "confidential_note_events": false,
		"job_events": false, "pipeline_events": false, "wiki_page_events": false, "deployment_events": false,
		"feature_flag_events": false, "releases_events": false, "emoji_events": false,
		"resource_access_token_events": false, "enable_ssl_verification": h.EnableSSLVerification,
		"repository_update_events": false, "alert_status": "executable", "disabled_until": nil,
		"url_variables": []any{}, "custom_headers": []any{}, "custom_webhook_template": "",
		"created_at": "2020-01-01T00:00:00.000Z",
	}
}

func (f *GitLab) listHooks(w http.ResponseWriter, r *http.Request) {
	p := f.project(w, r, MaintainerAccess)
	if p == nil {
		return
	}
	out := make([]map[string]any, 0, len(p.hooks))
	for _, h := range p.hooks {
		out = append(out, hookJSON(p, h))
	}
	glPage(w, r, out)
}

// applyGitLabHook sets the fields a body holds.
func applyGitLabHook(h *GitLabHook, body map[string]any) {
	if v, ok := str(body, "url"); ok {
		h.URL = v
	}
	if v, ok := str(body, "token"); ok {
		h.Token = v
	}
	if v, ok := boolean(body, "push_events"); ok {
		h.PushEvents = v
	}
	if v, ok := boolean(body, "tag_push_events"); ok {
		h.TagPushEvents = v
	}
	if v, ok := boolean(body, "merge_requests_events"); ok {
		h.MergeRequestsEvents = v
	}
	if v, ok := boolean(body, "enable_ssl_verification"); ok {
		h.EnableSSLVerification = v
	}
}

// addHook takes GitLab's defaults: push events on, TLS verification on, and
// no check for another hook to the same URL (GitLab has none).
func (f *GitLab) addHook(w http.ResponseWriter, r *http.Request) {
	p := f.project(w, r, MaintainerAccess)
	if p == nil {
		return
	}
	h := &GitLabHook{PushEvents: true, EnableSSLVerification: true}
	applyGitLabHook(h, decodeBody(r))
	if h.URL == "" {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "url is missing"})
		return
	}
	h.ID = f.id()
	p.hooks = append(p.hooks, h)
	writeJSON(w, http.StatusCreated, hookJSON(p, h))
}

func (f *GitLab) hook(w http.ResponseWriter, r *http.Request) (*glProject, int, *GitLabHook) {
	p := f.project(w, r, MaintainerAccess)
	if p == nil {
		return nil, 0, nil
	}
	id, _ := strconv.ParseInt(r.PathValue("hook"), 10, 64)
	for i, h := range p.hooks {
		if h.ID == id {
			return p, i, h
		}
	}
	glMessage(w, http.StatusNotFound, "404 Not found")
	return nil, 0, nil
}

func (f *GitLab) getHook(w http.ResponseWriter, r *http.Request) {
	if p, _, h := f.hook(w, r); h != nil {
		writeJSON(w, http.StatusOK, hookJSON(p, h))
	}
}

func (f *GitLab) editHook(w http.ResponseWriter, r *http.Request) {
	p, _, h := f.hook(w, r)
	if h == nil {
		return
	}
	updated := *h
	applyGitLabHook(&updated, decodeBody(r))
	if updated.URL == "" {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "url is missing"})
		return
	}
	*h = updated
	writeJSON(w, http.StatusOK, hookJSON(p, h))
}

func (f *GitLab) deleteHook(w http.ResponseWriter, r *http.Request) {
	p, i, h := f.hook(w, r)
	if h == nil {
		return
	}
	p.hooks = slices.Delete(p.hooks, i, i+1)
	w.WriteHeader(http.StatusNoContent)
}

// gitlabEvent names the state machine's event that leads to a state, for
// the error GitLab gives when a status is already there; ok is false for a
// state GitLab does not have.
func gitlabEvent(state string) (event string, ok bool) {
	switch state {
	case "pending":
		return "enqueue", true
	case "running":
		return "run", true
	case "success":
		return "succeed", true
	case "failed":
		return "drop", true
	case "canceled":
		return "cancel", true
	case "skipped":
		return "skip", true
	}
	return "", false
}

func statusJSON(s *GitLabStatus, author *fakeUser) map[string]any {
	body := map[string]any{
		"id": s.ID, "sha": s.SHA, "ref": nullable(s.Ref), "status": s.Status, "name": s.Name,
		"target_url": nullable(s.TargetURL), "description": nullable(s.Description),
		"created_at": timestamp(time.Now()), "started_at": nil, "finished_at": nil,
		"allow_failure": false, "coverage": nil, "pipeline_id": s.ID + 1,
	}
	if author != nil {
		body["author"] = map[string]any{"id": author.id, "username": author.name, "name": author.name, "state": "active"}
	}
	return body
}

// setStatus follows GitLab: a pending or running status of the same commit,
// name and ref moves to the new state; setting the state it already has is a
// 400; otherwise a new status starts.
func (f *GitLab) setStatus(w http.ResponseWriter, r *http.Request) {
	p := f.project(w, r, DeveloperAccess)
	if p == nil {
		return
	}
	sha := r.PathValue("sha")
	if !p.hasCommit(sha) {
		glMessage(w, http.StatusNotFound, "404 Commit Not Found")
		return
	}
	body := decodeBody(r)
	state, _ := str(body, "state")
	event, ok := gitlabEvent(state)
	if !ok {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "state does not have a valid value"})
		return
	}
	name, _ := str(body, "name")
	if name == "" {
		name, _ = str(body, "context")
	}
	if name == "" {
		name = "default"
	}
	ref, _ := str(body, "ref")
	author := f.user(glUsername(r))
	for i := len(p.statuses) - 1; i >= 0; i-- {
		s := p.statuses[i]
		if s.SHA != sha || s.Name != name || (ref != "" && s.Ref != ref) || (s.Status != "pending" && s.Status != "running") {
			continue
		}
		if s.Status == state {
			glMessage(w, http.StatusBadRequest, fmt.Sprintf("Cannot transition status via :%s from :%s (Reason(s): Status cannot transition via %q)", event, s.Status, event))
			return
		}
		s.Status = state
		if v, ok := str(body, "target_url"); ok {
			s.TargetURL = v
		}
		if v, ok := str(body, "description"); ok {
			s.Description = v
		}
		writeJSON(w, http.StatusCreated, statusJSON(s, author))
		return
	}
	if ref == "" {
		ref = p.DefaultBranch
	}
	s := &GitLabStatus{ID: f.id(), SHA: sha, Ref: ref, Status: state, Name: name}
	s.TargetURL, _ = str(body, "target_url")
	s.Description, _ = str(body, "description")
	p.statuses = append(p.statuses, s)
	writeJSON(w, http.StatusCreated, statusJSON(s, author))
}

func (f *GitLab) listStatuses(w http.ResponseWriter, r *http.Request) {
	p := f.project(w, r, ReporterAccess)
	if p == nil {
		return
	}
	sha := r.PathValue("sha")
	out := []map[string]any{}
	for _, s := range p.statuses {
		if s.SHA == sha {
			out = append(out, statusJSON(s, nil))
		}
	}
	glPage(w, r, out)
}
