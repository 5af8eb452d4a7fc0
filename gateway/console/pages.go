package console

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/slipway-dev/slipway/build"
	"github.com/slipway-dev/slipway/store"
)

// me is GET /user: who is signed in and the role held in each namespace.
type me struct {
	User struct {
		Name      string `json:"name"`
		SiteAdmin bool   `json:"site_admin"`
	} `json:"user"`
	Namespaces []store.Membership `json:"namespaces"`
}

// role is the signed-in user's role in ns; an API error (404 for a namespace the user is not
// in) when there is none.
func (cn *Console) role(c *gin.Context, ns string) (store.Role, error) {
	var m me
	if err := cn.call(c, http.MethodGet, "/user", nil, nil, &m); err != nil {
		return "", err
	}
	for _, n := range m.Namespaces {
		if n.Namespace == ns {
			return n.Role, nil
		}
	}
	return "", &apiError{Status: http.StatusNotFound, Message: fmt.Sprintf("namespace %q not found", ns)}
}

// access is what a page may show: the role, and whether it writes or administers.
type access struct {
	Role  store.Role
	Write bool
	Admin bool
}

// requireRole answers the page itself (404 outside the namespace, 403 below want) unless the
// signed-in user holds want in ns, and returns their access when they do.
func (cn *Console) requireRole(c *gin.Context, ns string, want store.Role) (access, bool) {
	r, err := cn.role(c, ns)
	if err != nil {
		cn.fail(c, err)
		return access{}, false
	}
	if !r.Allows(want) {
		cn.renderError(c, http.StatusForbidden, cn.lang(c).T("error.forbidden"))
		return access{}, false
	}
	return accessOf(r), true
}

func accessOf(r store.Role) access {
	return access{Role: r, Write: r.Allows(store.RoleWrite), Admin: r.Allows(store.RoleAdmin)}
}

func nsCrumbs(ns string) []crumb {
	return []crumb{{"nav.namespaces", "/"}, {ns, "/ns/" + esc(ns)}}
}

func repoCrumbs(ns, repo string) []crumb {
	return append(nsCrumbs(ns), crumb{repo, "/ns/" + esc(ns) + "/repos/" + esc(repo)})
}

type namespacesData struct {
	Namespaces []store.Membership
	// Link are the providers whose user the signed-in user may link, to sign in with it.
	Link      []string
	CanCreate bool
	Error     string
	Name      string
}

func (cn *Console) namespacesPage(c *gin.Context) {
	var m me
	if err := cn.call(c, http.MethodGet, "/user", nil, nil, &m); err != nil {
		cn.fail(c, err)
		return
	}
	cn.render(c, http.StatusOK, "namespaces", page{Title: "nav.namespaces", Crumbs: []crumb{{"nav.namespaces", "/"}},
		Data: namespacesData{Namespaces: m.Namespaces, CanCreate: m.User.SiteAdmin, Link: cn.signInProviders()}})
}

func (cn *Console) createNamespace(c *gin.Context) {
	name := strings.TrimSpace(c.PostForm("name"))
	err := cn.call(c, http.MethodPost, "/namespaces", nil, map[string]string{"name": name}, nil)
	var ae *apiError
	if errors.As(err, &ae) && ae.Status == http.StatusBadRequest || errors.As(err, &ae) && ae.Status == http.StatusConflict {
		var m me
		if err := cn.call(c, http.MethodGet, "/user", nil, nil, &m); err != nil {
			cn.fail(c, err)
			return
		}
		cn.render(c, ae.Status, "namespaces", page{Title: "nav.namespaces", Crumbs: []crumb{{"nav.namespaces", "/"}},
			Data: namespacesData{Namespaces: m.Namespaces, CanCreate: m.User.SiteAdmin, Error: ae.Message, Name: name}})
		return
	}
	if err != nil {
		cn.fail(c, err)
		return
	}
	c.Redirect(http.StatusSeeOther, "/ns/"+esc(name))
}

type repository struct {
	Namespace string    `json:"namespace"`
	Name      string    `json:"name"`
	Image     string    `json:"image"`
	CreatedAt time.Time `json:"created_at"`
}

type repositoriesData struct {
	NS           string
	Access       access
	Repositories []repository
	Error, Name  string
}

func (cn *Console) repositories(c *gin.Context, ns string) (repositoriesData, error) {
	r, err := cn.role(c, ns)
	if err != nil {
		return repositoriesData{}, err
	}
	var out struct {
		Repositories []repository `json:"repositories"`
	}
	if err := cn.call(c, http.MethodGet, "/namespaces/"+esc(ns)+"/repositories", nil, nil, &out); err != nil {
		return repositoriesData{}, err
	}
	return repositoriesData{NS: ns, Access: accessOf(r), Repositories: out.Repositories}, nil
}

func (cn *Console) repositoriesPage(c *gin.Context) {
	ns := c.Param("ns")
	d, err := cn.repositories(c, ns)
	if err != nil {
		cn.fail(c, err)
		return
	}
	cn.render(c, http.StatusOK, "repositories", page{Title: "nav.repositories", Crumbs: nsCrumbs(ns), Tab: "repositories", Data: d})
}

func (cn *Console) createRepository(c *gin.Context) {
	ns, name := c.Param("ns"), strings.TrimSpace(c.PostForm("name"))
	err := cn.call(c, http.MethodPost, "/namespaces/"+esc(ns)+"/repositories", nil, map[string]string{"name": name}, nil)
	var ae *apiError
	if errors.As(err, &ae) && (ae.Status == http.StatusBadRequest || ae.Status == http.StatusConflict) {
		d, err := cn.repositories(c, ns)
		if err != nil {
			cn.fail(c, err)
			return
		}
		d.Error, d.Name = ae.Message, name
		cn.render(c, ae.Status, "repositories", page{Title: "nav.repositories", Crumbs: nsCrumbs(ns), Tab: "repositories", Data: d})
		return
	}
	if err != nil {
		cn.fail(c, err)
		return
	}
	c.Redirect(http.StatusSeeOther, "/ns/"+esc(ns)+"/repos/"+esc(name))
}

// record is a build record as the API lists it.
type record struct {
	ID         string             `json:"id"`
	Namespace  string             `json:"namespace"`
	Repository string             `json:"repository"`
	RuleID     string             `json:"rule_id"`
	Status     string             `json:"status"`
	Reason     string             `json:"reason"`
	Trigger    string             `json:"trigger"`
	Ref        string             `json:"ref"`
	Commit     string             `json:"commit"`
	Tags       []string           `json:"tags"`
	Image      string             `json:"image"`
	Digest     string             `json:"digest"`
	Error      string             `json:"error"`
	StartedAt  time.Time          `json:"started_at"`
	FinishedAt *time.Time         `json:"finished_at"`
	UIURL      string             `json:"ui_url"`
	Steps      []build.StepStatus `json:"steps"`
	Params     *struct {
		Source         build.Source      `json:"source"`
		Ref            build.Ref         `json:"ref"`
		Commit         string            `json:"commit"`
		DockerfilePath string            `json:"dockerfile_path"`
		ContextPath    string            `json:"context_path"`
		TagTemplate    string            `json:"tag_template"`
		BuildArgs      map[string]string `json:"build_args"`
		Timeout        string            `json:"timeout"`
		Image          string            `json:"image"`
	} `json:"params"`
}

// Running reports whether the build may still change: its log follows and it can be canceled.
func (r record) Running() bool { return r.Status == "running" || r.Status == "queued" }

type rulesData struct {
	NS, Repo string
	Access   access
	Rules    []ruleRow
	// Last is the status of each rule's latest build among the recent ones.
	Last map[string]string
}

func (cn *Console) rulesPage(c *gin.Context) {
	ns, repo := c.Param("ns"), c.Param("repo")
	r, err := cn.role(c, ns)
	if err != nil {
		cn.fail(c, err)
		return
	}
	base := "/namespaces/" + esc(ns) + "/repositories/" + esc(repo)
	var rules struct {
		Rules []ruleRow `json:"build_rules"`
	}
	if err := cn.call(c, http.MethodGet, base+"/build-rules", nil, nil, &rules); err != nil {
		cn.fail(c, err)
		return
	}
	last := map[string]string{}
	var recs struct {
		Builds []record `json:"builds"`
	}
	// One page of recent builds gives most rules their latest status; Temporal being away
	// leaves the column empty rather than the page broken.
	if err := cn.call(c, http.MethodGet, base+"/builds", url.Values{"limit": {"100"}}, nil, &recs); err == nil {
		for _, b := range recs.Builds {
			if _, seen := last[b.RuleID]; !seen {
				last[b.RuleID] = b.Status
			}
		}
	}
	cn.render(c, http.StatusOK, "rules", page{Title: "tab.rules", Crumbs: repoCrumbs(ns, repo), Tab: "rules",
		Data: rulesData{NS: ns, Repo: repo, Access: accessOf(r), Rules: rules.Rules, Last: last}})
}

// ruleRow is a rule as the rules page lists it: with its public status badge.
type ruleRow struct {
	store.Rule
	Badge struct {
		URL string `json:"url"`
	} `json:"badge"`
}

// BadgePath is the badge's path on the gateway, which the page loads from its own origin.
func (r ruleRow) BadgePath() string {
	if i := strings.Index(r.Badge.URL, "/badges/"); i >= 0 {
		return r.Badge.URL[i:]
	}
	return ""
}

type recordsData struct {
	NS, Repo  string
	Rule      string
	Status    string
	Ref       string
	Builds    []record
	Next      string
	Statuses  []string
	Rules     []store.Rule
	FilterErr string
}

// statuses are the filter's choices, as the API names them.
var statuses = []string{"running", "succeeded", "superseded", "failed", "canceled", "timed_out", "terminated"}

func (cn *Console) recordsPage(c *gin.Context) {
	ns, repo := c.Param("ns"), c.Param("repo")
	base := "/namespaces/" + esc(ns) + "/repositories/" + esc(repo)
	d := recordsData{NS: ns, Repo: repo, Rule: c.Query("rule"), Status: c.Query("status"), Ref: c.Query("ref"), Statuses: statuses}
	var rules struct {
		Rules []store.Rule `json:"build_rules"`
	}
	if err := cn.call(c, http.MethodGet, base+"/build-rules", nil, nil, &rules); err != nil {
		cn.fail(c, err)
		return
	}
	d.Rules = rules.Rules
	q := url.Values{"limit": {"20"}}
	for _, k := range []string{"rule", "status", "ref", "page_token"} {
		if v := c.Query(k); v != "" {
			q.Set(k, v)
		}
	}
	var out struct {
		Builds []record `json:"builds"`
		Next   string   `json:"next_page_token"`
	}
	err := cn.call(c, http.MethodGet, base+"/builds", q, nil, &out)
	var ae *apiError
	switch {
	case errors.As(err, &ae) && ae.Status == http.StatusBadRequest:
		d.FilterErr = ae.Message
	case err != nil:
		cn.fail(c, err)
		return
	}
	d.Builds = out.Builds
	if out.Next != "" {
		nq := url.Values{}
		for _, k := range []string{"rule", "status", "ref"} {
			if v := c.Query(k); v != "" {
				nq.Set(k, v)
			}
		}
		nq.Set("page_token", out.Next)
		d.Next = "?" + nq.Encode()
	}
	cn.render(c, http.StatusOK, "records", page{Title: "tab.builds", Crumbs: repoCrumbs(ns, repo), Tab: "builds", Data: d})
}

type buildData struct {
	Build  record
	Access access
	Params [][2]string
}

func (cn *Console) buildPage(c *gin.Context) {
	id := c.Param("id")
	var b record
	if err := cn.call(c, http.MethodGet, "/builds/"+esc(id), nil, nil, &b); err != nil {
		cn.fail(c, err)
		return
	}
	r, err := cn.role(c, b.Namespace)
	if err != nil {
		cn.fail(c, err)
		return
	}
	d := buildData{Build: b, Access: accessOf(r)}
	if p := b.Params; p != nil {
		d.Params = [][2]string{
			{"param.source", p.Source.Provider + ":" + p.Source.Owner + "/" + p.Source.Repository},
			{"param.ref", p.Ref.Type + " " + p.Ref.Name},
			{"param.commit", p.Commit},
			{"param.dockerfile", p.DockerfilePath},
			{"param.context", p.ContextPath},
			{"param.tag_template", p.TagTemplate},
			{"param.image", p.Image},
			{"param.timeout", p.Timeout},
		}
		keys := make([]string, 0, len(p.BuildArgs))
		for k := range p.BuildArgs {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			d.Params = append(d.Params, [2]string{"param.build_arg", k + "=" + p.BuildArgs[k]})
		}
	}
	crumbs := append(repoCrumbs(b.Namespace, b.Repository), crumb{"tab.builds", "/ns/" + esc(b.Namespace) + "/repos/" + esc(b.Repository) + "/builds"})
	cn.render(c, http.StatusOK, "build", page{Title: "build.title", Crumbs: crumbs, Tab: "builds", Data: d})
}

// buildLog streams the build's log as the API serves it, following while ?follow=1.
func (cn *Console) buildLog(c *gin.Context) {
	q := url.Values{}
	if c.Query("follow") == "1" {
		q.Set("follow", "1")
	}
	req, err := cn.apiRequest(c, http.MethodGet, "/builds/"+esc(c.Param("id"))+"/logs", q, nil)
	if err != nil {
		cn.fail(c, err)
		return
	}
	c.Header("X-Content-Type-Options", "nosniff")
	cn.d.API.ServeHTTP(c.Writer, req)
}

// rebuild builds the build's commit again, with its parameters (the API's rebuild), and shows
// the new build.
func (cn *Console) rebuild(c *gin.Context) {
	var out struct {
		ID string `json:"id"`
	}
	if err := cn.call(c, http.MethodPost, "/builds/"+esc(c.Param("id"))+"/rebuild", nil, nil, &out); err != nil {
		cn.fail(c, err)
		return
	}
	c.Redirect(http.StatusSeeOther, "/builds/"+esc(out.ID))
}

func (cn *Console) cancelBuild(c *gin.Context) {
	id := c.Param("id")
	if err := cn.call(c, http.MethodPost, "/builds/"+esc(id)+"/cancel", nil, nil, nil); err != nil {
		cn.fail(c, err)
		return
	}
	c.Redirect(http.StatusSeeOther, "/builds/"+esc(id))
}
