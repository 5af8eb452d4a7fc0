package providers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	gitlab "gitlab.com/gitlab-org/api/client-go"
	"golang.org/x/oauth2"

	"github.com/slipway-dev/slipway/build"
)

// gitlabRateLimitWait is the wait after a 429 that names no time; older
// GitLab versions send neither Retry-After nor RateLimit-Reset.
const gitlabRateLimitWait = 10 * time.Second

// gitlabMinAccess is the least group role whose groups Owners lists: a
// Reporter can read the code of the group's private projects, so can build
// them. Installing a webhook needs a Maintainer; EnsureHook answers
// ErrForbidden to less.
const gitlabMinAccess = gitlab.ReporterPermissions

type gitlabClient struct {
	gl    *gitlab.Client
	token string
	retry retrier
	page  int

	mu       sync.Mutex
	username string // cached Whoami
}

func newGitLab(base *url.URL, token string, cfg config) (*gitlabClient, error) {
	gl, err := gitlab.NewAuthSourceClient(
		gitlab.OAuthTokenSource{TokenSource: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: token})},
		gitlab.WithBaseURL(base.String()),
		gitlab.WithHTTPClient(cfg.httpClient),
		// Rate limits and outages are retried by this package, the same way
		// for both providers, honouring Retry-After.
		gitlab.WithoutRetries(),
		gitlab.WithURLWarningLogger(slog.New(slog.DiscardHandler)),
	)
	if err != nil {
		return nil, fmt.Errorf("creating gitlab client: %w", err)
	}
	return &gitlabClient{
		gl:    gl,
		token: token,
		retry: retrier{maxAttempts: cfg.maxAttempts, maxWait: cfg.maxWait},
		page:  cfg.pageSize,
	}, nil
}

// call runs one client-go call with retries and classified errors.
func (c *gitlabClient) call(ctx context.Context, fn func(opts ...gitlab.RequestOptionFunc) (*gitlab.Response, error)) (*gitlab.Response, error) {
	var resp *gitlab.Response
	err := c.retry.do(ctx, func() error {
		var err error
		resp, err = fn(gitlab.WithContext(ctx))
		return c.classify(resp, err)
	})
	return resp, err
}

func (c *gitlabClient) fail(err error, format string, args ...any) error {
	return scrub(fmt.Errorf(format+": %w", append(args, err)...), c.token)
}

// classify maps client-go's errors onto this package's. client-go answers a
// 404 with its own gitlab.ErrNotFound, having discarded the body, and other
// error statuses with *gitlab.ErrorResponse holding the body.
func (c *gitlabClient) classify(resp *gitlab.Response, err error) error {
	if err == nil {
		return nil
	}
	var code int
	var header http.Header
	if resp != nil && resp.Response != nil {
		code, header = resp.StatusCode, resp.Header
	}
	msg := ""
	var errResp *gitlab.ErrorResponse
	switch {
	case errors.As(err, &errResp) && errResp.Response != nil:
		code, header = errResp.Response.StatusCode, errResp.Response.Header
		msg = gitlabMessage(errResp)
	case errors.Is(err, gitlab.ErrNotFound):
		code, msg = http.StatusNotFound, "404 Not Found"
	}
	if code == 0 {
		return err
	}
	if code == http.StatusTooManyRequests {
		now := time.Now()
		if d, ok := retryAfter(header, now); ok {
			return &RateLimitError{RetryAfter: d}
		}
		if d, ok := resetAfter(header, "RateLimit-Reset", now); ok {
			return &RateLimitError{RetryAfter: d}
		}
		return &RateLimitError{RetryAfter: gitlabRateLimitWait}
	}
	return newAPIError(build.ProviderGitLab, code, msg, c.token)
}

// gitlabMessage reads GitLab's error bodies: {"message": "..."}, {"message":
// {"field": ["..."]}} for validation errors, or {"error": "..."}.
func gitlabMessage(e *gitlab.ErrorResponse) string {
	var body struct {
		Message json.RawMessage `json:"message"`
		Error   string          `json:"error"`
	}
	if json.Unmarshal(e.Body, &body) != nil {
		text := strings.TrimSpace(string(e.Body))
		if strings.HasPrefix(text, "<") {
			return "" // a proxy's HTML page says no more than the status
		}
		return text
	}
	var s string
	switch {
	case len(body.Message) > 0 && json.Unmarshal(body.Message, &s) == nil:
		return s
	case len(body.Message) > 0:
		return string(body.Message)
	case body.Error != "":
		return body.Error
	}
	return e.Message
}

// Whoami asks GET /user every time: it is how a connection is checked.
func (c *gitlabClient) Whoami(ctx context.Context) (string, error) {
	username, err := c.whoami(ctx, true)
	if err != nil {
		return "", c.fail(err, "checking the gitlab token")
	}
	return username, nil
}

// Identity asks GET /user for the user's id and username.
func (c *gitlabClient) Identity(ctx context.Context) (Identity, error) {
	var user *gitlab.User
	_, err := c.call(ctx, func(opts ...gitlab.RequestOptionFunc) (resp *gitlab.Response, err error) {
		user, resp, err = c.gl.Users.CurrentUser(opts...)
		return resp, err
	})
	if err != nil {
		return Identity{}, c.fail(err, "reading the gitlab user")
	}
	if user.ID == 0 || user.Username == "" {
		return Identity{}, errors.New("gitlab answered GET /user without an id or username")
	}
	return Identity{ID: strconv.FormatInt(user.ID, 10), Login: user.Username}, nil
}

// whoami answers from the cache unless fresh: Owners and Repos need the
// login on every call, Whoami must ask the provider.
func (c *gitlabClient) whoami(ctx context.Context, fresh bool) (string, error) {
	c.mu.Lock()
	username := c.username
	c.mu.Unlock()
	if username != "" && !fresh {
		return username, nil
	}
	var user *gitlab.User
	_, err := c.call(ctx, func(opts ...gitlab.RequestOptionFunc) (resp *gitlab.Response, err error) {
		user, resp, err = c.gl.Users.CurrentUser(opts...)
		return resp, err
	})
	if err != nil {
		return "", err
	}
	if user == nil || user.Username == "" {
		return "", errors.New("gitlab answered GET /user without a username")
	}
	c.mu.Lock()
	c.username = user.Username
	c.mu.Unlock()
	return user.Username, nil
}

func (c *gitlabClient) listOptions(page int) gitlab.ListOptions {
	return gitlab.ListOptions{Page: int64(firstPage(page)), PerPage: int64(c.page)}
}

// Owners gives the user namespace, then the groups where the user is at
// least a Reporter, by path.
func (c *gitlabClient) Owners(ctx context.Context, page int) ([]Owner, Page, error) {
	var owners []Owner
	if firstPage(page) == 1 {
		username, err := c.whoami(ctx, false)
		if err != nil {
			return nil, Page{}, c.fail(err, "listing gitlab owners")
		}
		owners = append(owners, Owner{Name: username, Kind: KindUser})
	}
	opt := &gitlab.ListGroupsOptions{
		ListOptions:    c.listOptions(page),
		MinAccessLevel: gitlab.Ptr(gitlabMinAccess),
		OrderBy:        gitlab.Ptr("path"),
	}
	groups, next, err := gitlabList(ctx, c, "gitlab groups", func(opts ...gitlab.RequestOptionFunc) ([]*gitlab.Group, *gitlab.Response, error) {
		return c.gl.Groups.ListGroups(opt, opts...)
	}, func(g *gitlab.Group) Owner { return Owner{Name: g.FullPath, Kind: KindGroup} })
	if err != nil {
		return nil, Page{}, err
	}
	return append(owners, groups...), next, nil
}

// Repos lists a group's own projects (not its subgroups', which are owners of
// their own) or, when no group has that path, a user's projects: all of them
// for the token's own user, the visible ones for another.
func (c *gitlabClient) Repos(ctx context.Context, owner string, page int) ([]Repo, Page, error) {
	var projects []*gitlab.Project
	resp, err := c.call(ctx, func(opts ...gitlab.RequestOptionFunc) (resp *gitlab.Response, err error) {
		projects, resp, err = c.gl.Groups.ListGroupProjects(owner, &gitlab.ListGroupProjectsOptions{
			ListOptions: c.listOptions(page),
			OrderBy:     gitlab.Ptr("path"),
			Sort:        gitlab.Ptr("asc"),
		}, opts...)
		return resp, err
	})
	if errors.Is(err, ErrNotFound) && !strings.Contains(owner, "/") {
		resp, err = c.call(ctx, func(opts ...gitlab.RequestOptionFunc) (resp *gitlab.Response, err error) {
			projects, resp, err = c.gl.Projects.ListUserProjects(owner, &gitlab.ListProjectsOptions{
				ListOptions: c.listOptions(page),
				OrderBy:     gitlab.Ptr("path"),
				Sort:        gitlab.Ptr("asc"),
			}, opts...)
			return resp, err
		})
	}
	if err != nil {
		return nil, Page{}, c.fail(err, "listing repositories of %s", owner)
	}
	repos := make([]Repo, 0, len(projects))
	for _, p := range projects {
		r := Repo{
			Name:          p.Path,
			Private:       p.Visibility != gitlab.PublicVisibility,
			DefaultBranch: p.DefaultBranch,
			CloneURL:      p.HTTPURLToRepo,
		}
		if p.Namespace != nil {
			r.Owner = p.Namespace.FullPath
		} else {
			r.Owner = strings.TrimSuffix(p.PathWithNamespace, "/"+p.Path)
		}
		repos = append(repos, r)
	}
	return repos, nextPage(resp), nil
}

// project is how client-go addresses a project by path; it escapes the
// slashes of the group path itself.
func project(owner, repo string) string {
	return owner + "/" + repo
}

// Branches lists GET /projects/:id/repository/branches.
func (c *gitlabClient) Branches(ctx context.Context, owner, repo string, page int) ([]RefHead, Page, error) {
	opt := &gitlab.ListBranchesOptions{ListOptions: c.listOptions(page)}
	return gitlabList(ctx, c, "branches of "+owner+"/"+repo, func(opts ...gitlab.RequestOptionFunc) ([]*gitlab.Branch, *gitlab.Response, error) {
		return c.gl.Branches.ListBranches(project(owner, repo), opt, opts...)
	}, func(b *gitlab.Branch) RefHead { return RefHead{Name: b.Name, Commit: commitID(b.Commit)} })
}

// Tags lists GET /projects/:id/repository/tags.
func (c *gitlabClient) Tags(ctx context.Context, owner, repo string, page int) ([]RefHead, Page, error) {
	opt := &gitlab.ListTagsOptions{ListOptions: c.listOptions(page)}
	return gitlabList(ctx, c, "tags of "+owner+"/"+repo, func(opts ...gitlab.RequestOptionFunc) ([]*gitlab.Tag, *gitlab.Response, error) {
		return c.gl.Tags.ListTags(project(owner, repo), opt, opts...)
	}, func(t *gitlab.Tag) RefHead { return RefHead{Name: t.Name, Commit: commitID(t.Commit)} })
}

// gitlabList runs one page of a client-go list call with the client's retries and maps each
// item it returned; a failure says "listing WHAT".
func gitlabList[T, R any](ctx context.Context, c *gitlabClient, what string,
	list func(opts ...gitlab.RequestOptionFunc) ([]T, *gitlab.Response, error), item func(T) R) ([]R, Page, error) {
	var items []T
	resp, err := c.call(ctx, func(opts ...gitlab.RequestOptionFunc) (resp *gitlab.Response, err error) {
		items, resp, err = list(opts...)
		return resp, err
	})
	if err != nil {
		return nil, Page{}, c.fail(err, "listing %s", what)
	}
	return mapItems(items, item), nextPage(resp), nil
}

func commitID(c *gitlab.Commit) string {
	if c == nil {
		return ""
	}
	return c.ID
}

func nextPage(resp *gitlab.Response) Page {
	if resp == nil {
		return Page{}
	}
	return Page{Next: int(resp.NextPage)}
}

// EnsureHook looks for a hook with the URL first: GitLab, unlike GitHub,
// accepts any number of hooks to one URL, so creating blindly would duplicate
// it.
func (c *gitlabClient) EnsureHook(ctx context.Context, owner, repo, hookURL, secret string) (Hook, error) {
	pid := project(owner, repo)
	existing, err := c.findHook(ctx, pid, hookURL)
	if err != nil {
		return Hook{}, c.fail(err, "listing the webhooks of %s/%s", owner, repo)
	}
	var hook *gitlab.ProjectHook
	if existing != 0 {
		_, err = c.call(ctx, func(opts ...gitlab.RequestOptionFunc) (resp *gitlab.Response, err error) {
			hook, resp, err = c.gl.Projects.EditProjectHook(pid, existing, &gitlab.EditProjectHookOptions{
				URL:                   gitlab.Ptr(hookURL),
				Token:                 gitlab.Ptr(secret),
				PushEvents:            gitlab.Ptr(true),
				TagPushEvents:         gitlab.Ptr(true),
				EnableSSLVerification: gitlab.Ptr(true),
			}, opts...)
			return resp, err
		})
		if err != nil {
			return Hook{}, c.fail(err, "updating webhook %d of %s/%s", existing, owner, repo)
		}
		return gitlabHook(hook), nil
	}
	_, err = c.call(ctx, func(opts ...gitlab.RequestOptionFunc) (resp *gitlab.Response, err error) {
		hook, resp, err = c.gl.Projects.AddProjectHook(pid, &gitlab.AddProjectHookOptions{
			URL:                   gitlab.Ptr(hookURL),
			Token:                 gitlab.Ptr(secret),
			PushEvents:            gitlab.Ptr(true),
			TagPushEvents:         gitlab.Ptr(true),
			EnableSSLVerification: gitlab.Ptr(true),
		}, opts...)
		return resp, err
	})
	if err != nil {
		return Hook{}, c.fail(err, "creating a webhook on %s/%s", owner, repo)
	}
	return gitlabHook(hook), nil
}

// findHook returns the ID of the project's hook to hookURL, or 0.
func (c *gitlabClient) findHook(ctx context.Context, pid, hookURL string) (int64, error) {
	for page := 1; page != 0; {
		var hooks []*gitlab.ProjectHook
		resp, err := c.call(ctx, func(opts ...gitlab.RequestOptionFunc) (resp *gitlab.Response, err error) {
			hooks, resp, err = c.gl.Projects.ListProjectHooks(pid, &gitlab.ListProjectHooksOptions{
				ListOptions: c.listOptions(page),
			}, opts...)
			return resp, err
		})
		if err != nil {
			return 0, err
		}
		for _, h := range hooks {
			if h.URL == hookURL {
				return h.ID, nil
			}
		}
		page = nextPage(resp).Next
	}
	return 0, nil
}

// gitlabHook reads a hook as active unless GitLab disabled it after failed
// deliveries.
func gitlabHook(h *gitlab.ProjectHook) Hook {
	return Hook{
		ID:     h.ID,
		URL:    h.URL,
		Active: h.AlertStatus == "" || h.AlertStatus == "executable",
	}
}

// DeleteHook takes a 404 for a hook already gone.
func (c *gitlabClient) DeleteHook(ctx context.Context, owner, repo string, id int64) error {
	_, err := c.call(ctx, func(opts ...gitlab.RequestOptionFunc) (*gitlab.Response, error) {
		return c.gl.Projects.DeleteProjectHook(project(owner, repo), id, opts...)
	})
	if err != nil && !errors.Is(err, ErrNotFound) {
		return c.fail(err, "deleting webhook %d of %s/%s", id, owner, repo)
	}
	return nil
}

// gitlabState maps GitHub's states onto GitLab's: GitLab has no "error", so
// an error is "failed" and the description tells which.
func gitlabState(state string) (gitlab.BuildStateValue, error) {
	switch state {
	case build.StatePending:
		return gitlab.Pending, nil
	case build.StateSuccess:
		return gitlab.Success, nil
	case build.StateFailure, build.StateError:
		return gitlab.Failed, nil
	case build.StateCanceled:
		return gitlab.Canceled, nil
	}
	return "", fmt.Errorf("unknown status state %q", state)
}

// SetStatus treats GitLab's 400 "Cannot transition status via :enqueue from
// :pending" as success: it is how GitLab answers a repeat of the state a
// status already has, as after a retried activity.
func (c *gitlabClient) SetStatus(ctx context.Context, owner, repo, sha string, st build.CommitStatus) error {
	state, err := gitlabState(st.State)
	if err != nil {
		return fmt.Errorf("setting the status of %s/%s@%s: %w", owner, repo, sha, err)
	}
	opt := &gitlab.SetCommitStatusOptions{State: state}
	if st.Context != "" {
		opt.Name = gitlab.Ptr(st.Context)
	}
	if st.TargetURL != "" {
		opt.TargetURL = gitlab.Ptr(st.TargetURL)
	}
	if d := describe(st); d != "" {
		opt.Description = gitlab.Ptr(d)
	}
	_, err = c.call(ctx, func(opts ...gitlab.RequestOptionFunc) (resp *gitlab.Response, err error) {
		_, resp, err = c.gl.Commits.SetCommitStatus(project(owner, repo), sha, opt, opts...)
		return resp, err
	})
	if statusOf(err) == http.StatusBadRequest && strings.Contains(err.Error(), "Cannot transition status") {
		return nil
	}
	if err != nil {
		return c.fail(err, "setting the status of %s/%s@%s", owner, repo, sha)
	}
	return nil
}
