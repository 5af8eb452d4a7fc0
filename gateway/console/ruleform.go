package console

import (
	"errors"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/slipway-dev/slipway/build"
	"github.com/slipway-dev/slipway/store"
)

// ruleForm is the create/edit form of a build rule, as the browser sends it and as the API
// takes it. It holds every field of the API's rule body, so saving an edited rule keeps what
// the form shows and changes nothing else.
type ruleForm struct {
	Provider, AccountID, Owner, Repository string
	Branches                               string
	Tags                                   bool
	TagPatterns                            string
	PathsInclude, PathsIgnore              string
	TagTemplate                            string
	SanitizeRef, Semver, TagLatest         bool
	SkipMarkers                            bool
	DockerfilePath, ContextPath            string
	BuildArgs                              string
	Timeout, Cache                         string
	RunPolicy, ReconcileEvery              string
	// Secrets are the names of the namespace's build secrets the rule's builds get, one a
	// line or comma-separated.
	Secrets string
	// Platforms is the rule's platforms, comma- or line-separated.
	Platforms string
}

// newRuleForm is the form of a new rule: the API's defaults.
func newRuleForm() ruleForm {
	return ruleForm{Provider: build.ProviderGitHub, SkipMarkers: true}
}

func formOfRule(r store.Rule) ruleForm {
	keys := make([]string, 0, len(r.BuildArgs))
	for k := range r.BuildArgs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var args []string
	for _, k := range keys {
		args = append(args, k+"="+r.BuildArgs[k])
	}
	f := ruleForm{Provider: r.Source.Provider, AccountID: r.AccountID, Owner: r.Source.Owner,
		Repository: r.Source.Repository, Branches: strings.Join(r.Triggers.Branches, "\n"), Tags: r.Triggers.Tags,
		TagPatterns: strings.Join(r.Triggers.TagPatterns, "\n"),
		TagTemplate: r.TagTemplate, DockerfilePath: r.DockerfilePath, ContextPath: r.ContextPath,
		BuildArgs: strings.Join(args, "\n"), SanitizeRef: r.SanitizeRef, Timeout: r.Timeout, Cache: r.Cache,
		Semver: r.Semver, TagLatest: r.TagLatest != "", SkipMarkers: r.SkipMarkers, RunPolicy: r.RunPolicy,
		ReconcileEvery: r.ReconcileEvery, Secrets: strings.Join(r.Secrets, "\n"), Platforms: strings.Join(r.Platforms, ", ")}
	if p := r.Triggers.Paths; p != nil {
		f.PathsInclude, f.PathsIgnore = strings.Join(p.Include, "\n"), strings.Join(p.Ignore, "\n")
	}
	return f
}

func formOfPost(c *gin.Context) ruleForm {
	f := func(k string) string { return strings.TrimSpace(c.PostForm(k)) }
	on := func(k string) bool { return c.PostForm(k) == "on" }
	return ruleForm{Provider: f("provider"), AccountID: f("account_id"), Owner: f("owner"), Repository: f("repository"),
		Branches: f("branches"), Tags: on("tags"), TagPatterns: f("tag_patterns"),
		PathsInclude: f("paths_include"), PathsIgnore: f("paths_ignore"), TagTemplate: f("tag_template"),
		DockerfilePath: f("dockerfile_path"), ContextPath: f("context_path"), BuildArgs: c.PostForm("build_args"),
		SanitizeRef: on("sanitize_ref"), Semver: on("semver"), TagLatest: on("tag_latest"), SkipMarkers: on("skip_markers"),
		Timeout: f("timeout"), Cache: f("cache"), RunPolicy: f("run_policy"), ReconcileEvery: f("reconcile_every"),
		Secrets: f("secrets"), Platforms: f("platforms")}
}

// lines splits a textarea into its non-empty lines (or comma-separated items).
func lines(s string) []string {
	out := []string{}
	for _, l := range strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == ',' }) {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// parseArgs reads KEY=VALUE lines; a line without "=" is an error naming build_args.
func parseArgs(s string) (map[string]string, error) {
	out := map[string]string{}
	for _, l := range strings.Split(s, "\n") {
		l = strings.TrimSpace(l)
		if l == "" {
			continue
		}
		k, v, ok := strings.Cut(l, "=")
		if !ok || strings.TrimSpace(k) == "" {
			return nil, errors.New(l)
		}
		out[strings.TrimSpace(k)] = v
	}
	return out, nil
}

// body is the API's rule body of f.
func (f ruleForm) body(args map[string]string) map[string]any {
	triggers := map[string]any{"branches": lines(f.Branches), "tags": f.Tags, "tag_patterns": lines(f.TagPatterns)}
	if inc, ign := lines(f.PathsInclude), lines(f.PathsIgnore); len(inc)+len(ign) > 0 {
		triggers["paths"] = map[string]any{"include": inc, "ignore": ign}
	}
	tagLatest := ""
	if f.TagLatest {
		tagLatest = "default_branch"
	}
	return map[string]any{
		"source":          map[string]string{"provider": f.Provider, "owner": f.Owner, "repository": f.Repository},
		"account_id":      f.AccountID,
		"triggers":        triggers,
		"tag_template":    f.TagTemplate,
		"dockerfile_path": f.DockerfilePath,
		"context_path":    f.ContextPath,
		"build_args":      args,
		"sanitize_ref":    f.SanitizeRef,
		"timeout":         f.Timeout,
		"cache":           f.Cache,
		"tag_latest":      tagLatest,
		"semver":          f.Semver,
		"skip_markers":    f.SkipMarkers,
		"run_policy":      f.RunPolicy,
		"reconcile_every": f.ReconcileEvery,
		"secrets":         lines(f.Secrets),
		"platforms":       lines(f.Platforms),
	}
}

type account struct {
	ID       string `json:"id"`
	Provider string `json:"provider"`
	Login    string `json:"login"`
}

// pick is one choice of a picker, as the browse endpoint lists it.
type pick map[string]any

// Name is what a rule's field takes from the choice: a GitLab group's full path, a GitHub
// login, a repository's name.
func (p pick) Name() string {
	for _, k := range []string{"full_path", "path", "login", "name"} {
		if s, ok := p[k].(string); ok && s != "" {
			return s
		}
	}
	return ""
}

type ruleFormData struct {
	NS, Repo string
	ID       string
	Form     ruleForm
	Accounts []account
	Owners   []pick
	Repos    []pick
	// Errors maps a field to the API's message about it; "" is a message naming no field.
	Errors map[string]string
	// Preview is which refs the rule builds and as which tags, as the API's preview says;
	// PreviewErr is why there is none, Warnings what the API warns of.
	Preview    []previewRow
	PreviewErr string
	Warnings   []string
	Webhook    *webhookShown
	Defaults   map[string]string
	// RunPolicies are the run policy's choices, the default first.
	RunPolicies []string
	// Placeholders are what a tag template may name.
	Placeholders string
	PickerNote   string
}

type previewRow struct {
	Ref    string
	Builds bool
	Reason string
	Tags   string
	Err    string
}

type webhookShown struct{ URL, Secret string }

func (cn *Console) ruleFormPage(c *gin.Context) {
	ns, repo, id := c.Param("ns"), c.Param("repo"), c.Param("id")
	if _, ok := cn.requireRole(c, ns, store.RoleWrite); !ok {
		return
	}
	f := newRuleForm()
	if id != "" {
		var rule store.Rule
		if err := cn.call(c, http.MethodGet, rulesPath(ns, repo)+"/"+esc(id), nil, nil, &rule); err != nil {
			cn.fail(c, err)
			return
		}
		f = formOfRule(rule)
	}
	cn.showRuleForm(c, http.StatusOK, ns, repo, id, f, nil, false, id != "")
}

func rulesPath(ns, repo string) string {
	return "/namespaces/" + esc(ns) + "/repositories/" + esc(repo) + "/build-rules"
}

// showRuleForm renders the form with the account's pickers loaded when load is set.
func (cn *Console) showRuleForm(c *gin.Context, code int, ns, repo, id string, f ruleForm, errs map[string]string, load, showPreview bool) {
	d := ruleFormData{NS: ns, Repo: repo, ID: id, Form: f, Errors: errs,
		Defaults:     map[string]string{"dockerfile_path": build.DefaultDockerfile, "tag_template": build.DefaultTagTemplate},
		RunPolicies:  []string{build.RunParallel, build.RunSerial, build.RunLatestOnly},
		Placeholders: strings.Join(build.Placeholders(), ", ")}
	if d.Errors == nil {
		d.Errors = map[string]string{}
	}
	var accts struct {
		Accounts []account `json:"accounts"`
	}
	if err := cn.call(c, http.MethodGet, "/namespaces/"+esc(ns)+"/accounts", nil, nil, &accts); err != nil {
		cn.fail(c, err)
		return
	}
	d.Accounts = accts.Accounts
	if load && f.AccountID != "" {
		base := "/namespaces/" + esc(ns) + "/accounts/" + esc(f.AccountID)
		var err error
		if d.Owners, err = cn.browse(c, base+"/owners", url.Values{}); err != nil {
			d.Errors["account_id"] = errText(err)
		}
		if f.Owner != "" {
			if d.Repos, err = cn.browse(c, base+"/repositories", url.Values{"owner": {f.Owner}}); err != nil {
				d.Errors["owner"] = errText(err)
			}
		}
	}
	if showPreview {
		d.Preview, d.PreviewErr, d.Warnings = cn.preview(c, ns, repo, f)
	}
	crumbs := append(repoCrumbs(ns, repo), crumb{"tab.rules", "/ns/" + esc(ns) + "/repos/" + esc(repo) + "/rules"})
	title := "rule.new"
	if id != "" {
		title = "rule.edit"
	}
	cn.render(c, code, "ruleform", page{Title: title, Crumbs: crumbs, Tab: "rules", Data: d})
}

// maxPickPages bounds the pages of choices a picker loads from the provider (30 to 100 a
// page): a large organization's repositories are then searched by typing, from the list.
const maxPickPages = 10

// browse loads the choices of a picker from the account, page after page.
func (cn *Console) browse(c *gin.Context, path string, q url.Values) ([]pick, error) {
	var all []pick
	for page := 1; page <= maxPickPages; page++ {
		q.Set("page", strconv.Itoa(page))
		var out struct {
			Items []pick `json:"items"`
			Next  int    `json:"next_page"`
		}
		if err := cn.call(c, http.MethodGet, path, q, nil, &out); err != nil {
			return all, err
		}
		all = append(all, out.Items...)
		if out.Next == 0 {
			break
		}
	}
	return all, nil
}

// sampleRefs are the refs a preview of a rule without an account is shown for.
var sampleRefs = map[string][]string{"branches": {"main", "feature/login", "release/1.2"}, "tags": {"v1.2.3"}}

// preview asks the API which refs the form's rule builds, and as which tags: the account's
// own refs when the rule has an account, else sampleRefs. A rule the API refuses shows why.
func (cn *Console) preview(c *gin.Context, ns, repo string, f ruleForm) ([]previewRow, string, []string) {
	args, err := parseArgs(f.BuildArgs)
	if err != nil {
		return nil, cn.lang(c).T("rule.bad_arg", err.Error()), nil
	}
	body := f.body(args)
	if f.AccountID == "" {
		body["refs"] = sampleRefs
	}
	var out struct {
		Refs []struct {
			Type    string   `json:"type"`
			Name    string   `json:"name"`
			Matches bool     `json:"matches"`
			Reason  string   `json:"reason"`
			Tags    []string `json:"tags"`
			Error   string   `json:"error"`
		} `json:"refs"`
		Warnings []string `json:"warnings"`
	}
	if err := cn.call(c, http.MethodPost, rulesPath(ns, repo)+"/preview", nil, body, &out); err != nil {
		return nil, errText(err), nil
	}
	var rows []previewRow
	for _, r := range out.Refs {
		rows = append(rows, previewRow{Ref: r.Type + " " + r.Name, Builds: r.Matches, Reason: r.Reason,
			Tags: strings.Join(r.Tags, ", "), Err: r.Error})
	}
	return rows, "", out.Warnings
}

func errText(err error) string {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae.Message
	}
	return err.Error()
}

// formFields map the names an API message starts with to the form field it is shown at.
var formFields = []struct{ prefix, field string }{
	{"source.provider", "provider"}, {"source.owner", "owner"}, {"source.repository", "repository"},
	{"account_id", "account_id"}, {"account", "account_id"}, {"triggers", "branches"},
	{"triggers.tag_patterns", "tag_patterns"}, {"triggers.paths", "paths_include"},
	{"tag_template", "tag_template"}, {"the rule's tag_template", "tag_template"}, {"dockerfile_path", "dockerfile_path"},
	{"context_path", "context_path"}, {"build_args", "build_args"}, {"timeout", "timeout"}, {"cache", "cache"},
	{"run_policy", "run_policy"}, {"reconcile_every", "reconcile_every"}, {"tag_latest", "tag_latest"},
	{"secrets", "secrets"},
	{"platforms", "platforms"},
}

// fieldOf is the form field an API error is about: the answer's "field" when it names one,
// else the field the longest name its message starts with is shown at; "" for none.
func fieldOf(ae *apiError) string {
	name := ae.Field
	if name == "" {
		name = ae.Message
	}
	best, field := 0, ""
	for _, f := range formFields {
		if strings.HasPrefix(name, f.prefix) && len(f.prefix) > best {
			best, field = len(f.prefix), f.field
		}
	}
	return field
}

// saveRule creates or updates the rule, or with action=load fills the pickers from the
// account, or with action=preview shows the tags the template renders.
func (cn *Console) saveRule(c *gin.Context) {
	ns, repo, id := c.Param("ns"), c.Param("repo"), c.Param("id")
	f := formOfPost(c)
	switch c.PostForm("action") {
	case "load":
		cn.showRuleForm(c, http.StatusOK, ns, repo, id, f, nil, true, false)
		return
	case "preview":
		cn.showRuleForm(c, http.StatusOK, ns, repo, id, f, nil, false, true)
		return
	}
	args, err := parseArgs(f.BuildArgs)
	if err != nil {
		cn.showRuleForm(c, http.StatusBadRequest, ns, repo, id, f,
			map[string]string{"build_args": cn.lang(c).T("rule.bad_arg", err.Error())}, false, false)
		return
	}
	var saved struct {
		store.Rule
		Webhook struct {
			URL    string `json:"url"`
			Secret string `json:"secret"`
		} `json:"webhook"`
	}
	if id == "" {
		err = cn.call(c, http.MethodPost, rulesPath(ns, repo), nil, f.body(args), &saved)
	} else {
		err = cn.call(c, http.MethodPut, rulesPath(ns, repo)+"/"+esc(id), nil, f.body(args), &saved)
	}
	var ae *apiError
	if errors.As(err, &ae) && ae.Status == http.StatusBadRequest {
		cn.showRuleForm(c, http.StatusBadRequest, ns, repo, id, f, map[string]string{fieldOf(ae): ae.Message}, false, false)
		return
	}
	if err != nil {
		cn.fail(c, err)
		return
	}
	if id == "" && saved.AccountID == "" && saved.Webhook.Secret != "" {
		// A rule without an account has its webhook set up by hand: its secret is shown once.
		d := ruleFormData{NS: ns, Repo: repo, ID: saved.ID, Form: f,
			Webhook: &webhookShown{URL: saved.Webhook.URL, Secret: saved.Webhook.Secret}}
		cn.render(c, http.StatusCreated, "rulecreated", page{Title: "rule.created", Crumbs: repoCrumbs(ns, repo), Tab: "rules", Data: d})
		return
	}
	c.Redirect(http.StatusSeeOther, "/ns/"+esc(ns)+"/repos/"+esc(repo)+"/rules")
}

type buildNowData struct {
	NS, Repo string
	Rule     store.Rule
	Branches []pick
	Tags     []pick
	Kind     string
	Ref      string
	Commit   string
	Args     string
	Error    string
}

func (cn *Console) buildNowPage(c *gin.Context) {
	cn.showBuildNow(c, http.StatusOK, buildNowData{Kind: build.RefBranch})
}

func (cn *Console) showBuildNow(c *gin.Context, code int, d buildNowData) {
	ns, repo, id := c.Param("ns"), c.Param("repo"), c.Param("id")
	d.NS, d.Repo = ns, repo
	if err := cn.call(c, http.MethodGet, rulesPath(ns, repo)+"/"+esc(id), nil, nil, &d.Rule); err != nil {
		cn.fail(c, err)
		return
	}
	if _, ok := cn.requireRole(c, ns, store.RoleWrite); !ok {
		return
	}
	if d.Rule.AccountID != "" {
		base := "/namespaces/" + esc(ns) + "/accounts/" + esc(d.Rule.AccountID)
		q := url.Values{"owner": {d.Rule.Source.Owner}, "repository": {d.Rule.Source.Repository}}
		var out struct {
			Items []pick `json:"items"`
		}
		// The lists help; without them the ref is typed.
		if cn.call(c, http.MethodGet, base+"/branches", q, nil, &out) == nil {
			d.Branches = out.Items
		}
		out.Items = nil
		if cn.call(c, http.MethodGet, base+"/tags", q, nil, &out) == nil {
			d.Tags = out.Items
		}
	}
	crumbs := append(repoCrumbs(ns, repo), crumb{"tab.rules", "/ns/" + esc(ns) + "/repos/" + esc(repo) + "/rules"})
	cn.render(c, code, "buildnow", page{Title: "buildnow.title", Crumbs: crumbs, Tab: "rules", Data: d})
}

func (cn *Console) buildNow(c *gin.Context) {
	ns, repo, id := c.Param("ns"), c.Param("repo"), c.Param("id")
	d := buildNowData{Kind: c.PostForm("kind"), Ref: strings.TrimSpace(c.PostForm("ref")),
		Commit: strings.TrimSpace(c.PostForm("commit")), Args: c.PostForm("build_args")}
	args, err := parseArgs(d.Args)
	if err != nil {
		d.Error = cn.lang(c).T("rule.bad_arg", err.Error())
		cn.showBuildNow(c, http.StatusBadRequest, d)
		return
	}
	body := map[string]any{"commit": d.Commit, "build_args": args}
	if d.Kind == build.RefTag {
		body["tag"] = d.Ref
	} else {
		body["branch"] = d.Ref
	}
	var out struct {
		ID string `json:"id"`
	}
	err = cn.call(c, http.MethodPost, rulesPath(ns, repo)+"/"+esc(id)+"/builds", nil, body, &out)
	var ae *apiError
	if errors.As(err, &ae) && ae.Status == http.StatusBadRequest {
		d.Error = ae.Message
		cn.showBuildNow(c, http.StatusBadRequest, d)
		return
	}
	if err != nil {
		cn.fail(c, err)
		return
	}
	c.Redirect(http.StatusSeeOther, "/builds/"+esc(out.ID))
}
