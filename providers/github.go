package providers

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/go-github/v62/github"

	"github.com/slipway-dev/slipway/build"
)

// githubSecondaryWait is how long GitHub asks to wait after a secondary rate
// limit that names no time: "wait for at least one minute".
const githubSecondaryWait = time.Minute

// githubEvents are the webhook events a build rule needs: push (branches and
// tags) and create (a new tag, sent besides its push; the gateway builds it
// once).
func githubEvents() []string { return []string{"push", "create"} }

type githubClient struct {
	gh    *github.Client
	token string
	retry retrier
	page  int

	mu    sync.Mutex
	login string // cached Whoami, to tell the user's own repositories apart
}

func newGitHub(base *url.URL, token string, cfg config) *githubClient {
	gh := github.NewClient(cfg.httpClient).WithAuthToken(token)
	gh.BaseURL = base
	gh.UploadURL = base
	return &githubClient{
		gh:    gh,
		token: token,
		retry: retrier{maxAttempts: cfg.maxAttempts, maxWait: cfg.maxWait},
		page:  cfg.pageSize,
	}
}

// call runs one go-github call with retries and classified errors.
func (c *githubClient) call(ctx context.Context, fn func() (*github.Response, error)) (*github.Response, error) {
	var resp *github.Response
	err := c.retry.do(ctx, func() error {
		var err error
		resp, err = fn()
		return c.classify(err)
	})
	return resp, err
}

// fail wraps err with what was being done and makes sure the token is not in
// it.
func (c *githubClient) fail(err error, format string, args ...any) error {
	return scrub(fmt.Errorf(format+": %w", append(args, err)...), c.token)
}

// classify maps go-github's errors onto this package's. go-github already
// turns a 403 with X-RateLimit-Remaining: 0 into *RateLimitError (and
// answers it locally until the reset) and a secondary rate limit into
// *AbuseRateLimitError; a 429, or a 403 with Retry-After that go-github did
// not recognise, is read from the headers here.
func (c *githubClient) classify(err error) error {
	if err == nil {
		return nil
	}
	now := time.Now()
	var primary *github.RateLimitError
	if errors.As(err, &primary) {
		return &RateLimitError{RetryAfter: untilReset(primary.Rate.Reset.Time, now)}
	}
	var secondary *github.AbuseRateLimitError
	if errors.As(err, &secondary) {
		if secondary.RetryAfter != nil {
			return &RateLimitError{RetryAfter: max(0, *secondary.RetryAfter)}
		}
		return &RateLimitError{RetryAfter: githubSecondaryWait}
	}
	var twoFactor *github.TwoFactorAuthError
	if errors.As(err, &twoFactor) {
		return c.apiError(http.StatusUnauthorized, "two-factor authentication code required")
	}
	var resp *github.ErrorResponse
	if !errors.As(err, &resp) || resp.Response == nil {
		return err
	}
	code := resp.Response.StatusCode
	h := resp.Response.Header
	if code == http.StatusTooManyRequests || code == http.StatusForbidden {
		if d, ok := retryAfter(h, now); ok {
			return &RateLimitError{RetryAfter: d}
		}
		if h.Get("X-RateLimit-Remaining") == "0" {
			if d, ok := resetAfter(h, "X-RateLimit-Reset", now); ok {
				return &RateLimitError{RetryAfter: d}
			}
		}
		if code == http.StatusTooManyRequests || strings.Contains(strings.ToLower(resp.Message), "rate limit") {
			return &RateLimitError{RetryAfter: githubSecondaryWait}
		}
	}
	msg := resp.Message
	for _, e := range resp.Errors {
		if e.Message != "" {
			msg += ": " + e.Message
		} else if e.Code != "" {
			msg += fmt.Sprintf(": %s %s %s", e.Resource, e.Field, e.Code)
		}
	}
	return c.apiError(code, msg)
}

func (c *githubClient) apiError(code int, msg string) *APIError {
	return newAPIError(build.ProviderGitHub, code, msg, c.token)
}

// Whoami asks GET /user every time: it is how a connection is checked.
func (c *githubClient) Whoami(ctx context.Context) (string, error) {
	login, err := c.whoami(ctx, true)
	if err != nil {
		return "", c.fail(err, "checking the github token")
	}
	return login, nil
}

// Identity asks GET /user for the user's id and login.
func (c *githubClient) Identity(ctx context.Context) (Identity, error) {
	var user *github.User
	_, err := c.call(ctx, func() (resp *github.Response, err error) {
		user, resp, err = c.gh.Users.Get(ctx, "")
		return resp, err
	})
	if err != nil {
		return Identity{}, c.fail(err, "reading the github user")
	}
	if user.GetID() == 0 || user.GetLogin() == "" {
		return Identity{}, errors.New("github answered GET /user without an id or login")
	}
	return Identity{ID: strconv.FormatInt(user.GetID(), 10), Login: user.GetLogin()}, nil
}

// whoami answers from the cache unless fresh: Owners and Repos need the
// login on every call, Whoami must ask the provider.
func (c *githubClient) whoami(ctx context.Context, fresh bool) (string, error) {
	c.mu.Lock()
	login := c.login
	c.mu.Unlock()
	if login != "" && !fresh {
		return login, nil
	}
	var user *github.User
	_, err := c.call(ctx, func() (resp *github.Response, err error) {
		user, resp, err = c.gh.Users.Get(ctx, "")
		return resp, err
	})
	if err != nil {
		return "", err
	}
	login = user.GetLogin()
	if login == "" {
		return "", errors.New("github answered GET /user without a login")
	}
	c.mu.Lock()
	c.login = login
	c.mu.Unlock()
	return login, nil
}

func (c *githubClient) listOptions(page int) github.ListOptions {
	return github.ListOptions{Page: firstPage(page), PerPage: c.page}
}

// Owners gives the user, then the organizations of GET /user/orgs.
func (c *githubClient) Owners(ctx context.Context, page int) ([]Owner, Page, error) {
	var owners []Owner
	if firstPage(page) == 1 {
		login, err := c.whoami(ctx, false)
		if err != nil {
			return nil, Page{}, c.fail(err, "listing github owners")
		}
		owners = append(owners, Owner{Name: login, Kind: KindUser})
	}
	opts := c.listOptions(page)
	orgs, next, err := githubList(ctx, c, "github organizations", func() ([]*github.Organization, *github.Response, error) {
		return c.gh.Organizations.List(ctx, "", &opts)
	}, func(o *github.Organization) Owner { return Owner{Name: o.GetLogin(), Kind: KindOrganization} })
	if err != nil {
		return nil, Page{}, err
	}
	return append(owners, orgs...), next, nil
}

// Repos lists the user's own repositories through /user/repos, which alone
// includes the private ones; an organization's through /orgs/{org}/repos; and
// another user's public ones through /users/{user}/repos when the owner is no
// organization.
func (c *githubClient) Repos(ctx context.Context, owner string, page int) ([]Repo, Page, error) {
	login, err := c.whoami(ctx, false)
	if err != nil {
		return nil, Page{}, c.fail(err, "listing repositories of %s", owner)
	}
	opts := c.listOptions(page)
	var repos []*github.Repository
	var resp *github.Response
	switch {
	case strings.EqualFold(owner, login):
		resp, err = c.call(ctx, func() (resp *github.Response, err error) {
			repos, resp, err = c.gh.Repositories.ListByAuthenticatedUser(ctx, &github.RepositoryListByAuthenticatedUserOptions{
				Affiliation: "owner", Sort: "full_name", ListOptions: opts,
			})
			return resp, err
		})
	default:
		resp, err = c.call(ctx, func() (resp *github.Response, err error) {
			repos, resp, err = c.gh.Repositories.ListByOrg(ctx, owner, &github.RepositoryListByOrgOptions{
				Type: "all", Sort: "full_name", ListOptions: opts,
			})
			return resp, err
		})
		if errors.Is(err, ErrNotFound) {
			resp, err = c.call(ctx, func() (resp *github.Response, err error) {
				repos, resp, err = c.gh.Repositories.ListByUser(ctx, owner, &github.RepositoryListByUserOptions{
					Type: "owner", Sort: "full_name", ListOptions: opts,
				})
				return resp, err
			})
		}
	}
	if err != nil {
		return nil, Page{}, c.fail(err, "listing repositories of %s", owner)
	}
	out := make([]Repo, 0, len(repos))
	for _, r := range repos {
		out = append(out, Repo{
			Owner:         r.GetOwner().GetLogin(),
			Name:          r.GetName(),
			Private:       r.GetPrivate(),
			DefaultBranch: r.GetDefaultBranch(),
			CloneURL:      r.GetCloneURL(),
		})
	}
	return out, Page{Next: resp.NextPage}, nil
}

// Branches lists GET /repos/{owner}/{repo}/branches.
func (c *githubClient) Branches(ctx context.Context, owner, repo string, page int) ([]RefHead, Page, error) {
	opts := &github.BranchListOptions{ListOptions: c.listOptions(page)}
	return githubList(ctx, c, "branches of "+owner+"/"+repo, func() ([]*github.Branch, *github.Response, error) {
		return c.gh.Repositories.ListBranches(ctx, owner, repo, opts)
	}, func(b *github.Branch) RefHead { return RefHead{Name: b.GetName(), Commit: b.GetCommit().GetSHA()} })
}

// Tags lists GET /repos/{owner}/{repo}/tags.
func (c *githubClient) Tags(ctx context.Context, owner, repo string, page int) ([]RefHead, Page, error) {
	opts := c.listOptions(page)
	return githubList(ctx, c, "tags of "+owner+"/"+repo, func() ([]*github.RepositoryTag, *github.Response, error) {
		return c.gh.Repositories.ListTags(ctx, owner, repo, &opts)
	}, func(t *github.RepositoryTag) RefHead {
		return RefHead{Name: t.GetName(), Commit: t.GetCommit().GetSHA()}
	})
}

// githubList runs one page of a go-github list call with the client's retries and maps each
// item it returned; a failure says "listing WHAT".
func githubList[T, R any](ctx context.Context, c *githubClient, what string,
	list func() ([]T, *github.Response, error), item func(T) R) ([]R, Page, error) {
	var items []T
	resp, err := c.call(ctx, func() (resp *github.Response, err error) {
		items, resp, err = list()
		return resp, err
	})
	if err != nil {
		return nil, Page{}, c.fail(err, "listing %s", what)
	}
	return mapItems(items, item), Page{Next: resp.NextPage}, nil
}

// EnsureHook creates the hook and, when GitHub answers 422 "Hook already
// exists on this repository" (a hook with the same URL), finds that hook and
// updates its events, secret and TLS setting instead.
func (c *githubClient) EnsureHook(ctx context.Context, owner, repo, hookURL, secret string) (Hook, error) {
	want := &github.Hook{
		Events: githubEvents(),
		Active: github.Bool(true),
		Config: &github.HookConfig{
			URL:         github.String(hookURL),
			ContentType: github.String("json"),
			InsecureSSL: github.String("0"),
			Secret:      github.String(secret),
		},
	}
	var hook *github.Hook
	_, err := c.call(ctx, func() (resp *github.Response, err error) {
		hook, resp, err = c.gh.Repositories.CreateHook(ctx, owner, repo, want)
		return resp, err
	})
	switch {
	case err == nil:
		return githubHook(hook), nil
	case statusOf(err) == http.StatusUnprocessableEntity && strings.Contains(strings.ToLower(err.Error()), "already exists"):
		existing, findErr := c.findHook(ctx, owner, repo, hookURL)
		if findErr != nil {
			return Hook{}, c.fail(findErr, "finding the existing webhook of %s/%s", owner, repo)
		}
		_, err = c.call(ctx, func() (resp *github.Response, err error) {
			hook, resp, err = c.gh.Repositories.EditHook(ctx, owner, repo, existing, want)
			return resp, err
		})
		if err != nil {
			return Hook{}, c.fail(err, "updating webhook %d of %s/%s", existing, owner, repo)
		}
		return githubHook(hook), nil
	case errors.Is(err, ErrNotFound):
		return Hook{}, c.fail(c.hookNotFound(ctx, owner, repo, err), "creating a webhook on %s/%s", owner, repo)
	default:
		return Hook{}, c.fail(err, "creating a webhook on %s/%s", owner, repo)
	}
}

// hookNotFound tells "no such repository" from "no admin rights": GitHub
// answers 404 to both on the hooks endpoints. A repository the token can read
// makes it the latter.
func (c *githubClient) hookNotFound(ctx context.Context, owner, repo string, hookErr error) error {
	var r *github.Repository
	_, err := c.call(ctx, func() (resp *github.Response, err error) {
		r, resp, err = c.gh.Repositories.Get(ctx, owner, repo)
		return resp, err
	})
	if err != nil || r == nil {
		return hookErr
	}
	return fmt.Errorf("%w: managing webhooks needs admin rights on the repository (and the admin:repo_hook scope)", ErrForbidden)
}

func (c *githubClient) findHook(ctx context.Context, owner, repo, hookURL string) (int64, error) {
	for page := 1; page != 0; {
		opts := c.listOptions(page)
		var hooks []*github.Hook
		resp, err := c.call(ctx, func() (resp *github.Response, err error) {
			hooks, resp, err = c.gh.Repositories.ListHooks(ctx, owner, repo, &opts)
			return resp, err
		})
		if err != nil {
			return 0, err
		}
		for _, h := range hooks {
			if h.GetConfig() != nil && h.GetConfig().GetURL() == hookURL {
				return h.GetID(), nil
			}
		}
		page = resp.NextPage
	}
	return 0, fmt.Errorf("github said a hook to that URL exists but lists none: %w", ErrNotFound)
}

func githubHook(h *github.Hook) Hook {
	return Hook{ID: h.GetID(), URL: h.GetConfig().GetURL(), Active: h.GetActive()}
}

// DeleteHook takes a 404 for a hook already gone.
func (c *githubClient) DeleteHook(ctx context.Context, owner, repo string, id int64) error {
	_, err := c.call(ctx, func() (*github.Response, error) {
		return c.gh.Repositories.DeleteHook(ctx, owner, repo, id)
	})
	if err != nil && !errors.Is(err, ErrNotFound) {
		return c.fail(err, "deleting webhook %d of %s/%s", id, owner, repo)
	}
	return nil
}

func githubState(state string) (string, error) {
	switch state {
	case build.StatePending, build.StateSuccess, build.StateFailure, build.StateError:
		return state, nil
	case build.StateCanceled:
		return build.StateError, nil
	}
	return "", fmt.Errorf("unknown status state %q", state)
}

// SetStatus posts to /repos/{owner}/{repo}/statuses/{sha}; canceled shows as
// error, as GitHub has no such state.
func (c *githubClient) SetStatus(ctx context.Context, owner, repo, sha string, st build.CommitStatus) error {
	state, err := githubState(st.State)
	if err != nil {
		return fmt.Errorf("setting the status of %s/%s@%s: %w", owner, repo, sha, err)
	}
	status := &github.RepoStatus{State: github.String(state)}
	if st.TargetURL != "" {
		status.TargetURL = github.String(st.TargetURL)
	}
	if d := describe(st); d != "" {
		status.Description = github.String(d)
	}
	if st.Context != "" {
		status.Context = github.String(st.Context)
	}
	_, err = c.call(ctx, func() (resp *github.Response, err error) {
		_, resp, err = c.gh.Repositories.CreateStatus(ctx, owner, repo, sha, status)
		return resp, err
	})
	if err != nil {
		return c.fail(err, "setting the status of %s/%s@%s", owner, repo, sha)
	}
	return nil
}
