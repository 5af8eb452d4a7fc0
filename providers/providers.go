// Package providers is Slipway's one interface over the Git hosting providers
// it builds from: GitHub (and GitHub Enterprise) through go-github, GitLab
// (gitlab.com and self-managed) through client-go.
//
// A Client acts for one connected account, with that account's token. It
// lists what the account can build from (owners, repositories, branches,
// tags), installs the push and tag webhook of a build rule, and reports build
// results as commit statuses. Every method honours the providers' rate limits
// (waiting and retrying within bounds) and maps their errors onto
// ErrUnauthorized, ErrForbidden, ErrNotFound and ErrRateLimited, so the
// gateway and the worker need not know which provider answered.
//
// No error this package returns holds the token.
package providers

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/slipway-dev/slipway/build"
)

// Owner kinds.
const (
	KindUser         = "user"
	KindOrganization = "organization"
	KindGroup        = "group"
)

// Page tells where a listing goes on. Pages are numbered from 1 as the
// providers number them; a page argument of 0 also means the first.
type Page struct {
	// Next is the page to ask for next, or 0 after the last page.
	Next int `json:"next"`
}

// Owner is an account that owns repositories: on GitHub a user or an
// organization, on GitLab a user namespace or a group.
type Owner struct {
	// Name is the login, or on GitLab a group's full path ("group/sub").
	Name string `json:"name"`
	// Kind is KindUser, KindOrganization or KindGroup.
	Kind string `json:"kind"`
}

// Repo is a repository (a GitLab project).
type Repo struct {
	// Owner is the owner's login or, on GitLab, the namespace's full path.
	Owner string `json:"owner"`
	// Name is the repository's name in URLs (a GitLab project's path).
	Name          string `json:"name"`
	Private       bool   `json:"private"`
	DefaultBranch string `json:"default_branch"`
	// CloneURL is the HTTPS clone URL the provider gives.
	CloneURL string `json:"clone_url"`
}

// RefHead is a branch or a tag as a listing shows it: its name and the commit it points at
// (the ref a build starts from is build.Ref).
type RefHead struct {
	Name string `json:"name"`
	// Commit is the full SHA of the commit (for an annotated tag, the commit
	// it tags, not the tag object).
	Commit string `json:"commit"`
}

// Hook is a repository webhook.
type Hook struct {
	ID     int64  `json:"id"`
	URL    string `json:"url"`
	Active bool   `json:"active"`
}

// Identity is a provider's user as its token says.
type Identity struct {
	// ID is the user's id on the provider, in decimal.
	ID    string
	Login string
}

// Client acts on a provider for one account. Implementations are safe for
// concurrent use.
type Client interface {
	// Whoami checks the token and returns the account's login.
	Whoami(ctx context.Context) (string, error)
	// Identity returns who the token acts as: the provider's numeric user id, which stays
	// when the user is renamed (and is never given to another user), and the login.
	Identity(ctx context.Context) (Identity, error)
	// Owners lists the accounts whose repositories the token may build from:
	// on GitHub the user and its organizations, on GitLab the user namespace
	// and the groups where the user is at least a Reporter. The user comes
	// first, on page 1.
	Owners(ctx context.Context, page int) ([]Owner, Page, error)
	// Repos lists an owner's repositories that the token can see.
	Repos(ctx context.Context, owner string, page int) ([]Repo, Page, error)
	// Branches lists a repository's branches.
	Branches(ctx context.Context, owner, repo string, page int) ([]RefHead, Page, error)
	// Tags lists a repository's tags.
	Tags(ctx context.Context, owner, repo string, page int) ([]RefHead, Page, error)
	// EnsureHook creates the push and tag webhook (JSON, TLS verification on)
	// that delivers to url signed with secret, or updates the repository's
	// existing hook with that URL, so calling it again never duplicates it.
	EnsureHook(ctx context.Context, owner, repo, url, secret string) (Hook, error)
	// DeleteHook deletes a webhook; one that is already gone is no error.
	DeleteHook(ctx context.Context, owner, repo string, id int64) error
	// SetStatus sets the status of a commit for st.Context.
	SetStatus(ctx context.Context, owner, repo, sha string, st build.CommitStatus) error
}

// Defaults of the options.
const (
	DefaultMaxAttempts = 3
	DefaultMaxWait     = 30 * time.Second
	DefaultPageSize    = 100
	// DefaultTimeout bounds one HTTP request.
	DefaultTimeout = 30 * time.Second
)

// Option configures New.
type Option func(*config)

type config struct {
	httpClient  *http.Client
	maxAttempts int
	maxWait     time.Duration
	pageSize    int
}

// WithRetry sets how many times in all a call is tried when the provider
// answers that it is rate limited or briefly unavailable (502, 503, 504).
// 1 turns retries off. The default is DefaultMaxAttempts.
func WithRetry(maxAttempts int) Option {
	return func(cfg *config) { cfg.maxAttempts = max(1, maxAttempts) }
}

// WithMaxWait sets the longest wait before a retry. When a provider asks for a
// longer one, or the context would expire first, the call returns a
// *RateLimitError at once instead of holding the caller. The default is
// DefaultMaxWait; a gateway request may want less.
func WithMaxWait(d time.Duration) Option {
	return func(cfg *config) { cfg.maxWait = max(0, d) }
}

// WithPageSize sets how many items a listing asks for per page (1 to 100; the
// providers cap it at 100). The default is DefaultPageSize.
func WithPageSize(n int) Option {
	return func(cfg *config) { cfg.pageSize = min(max(1, n), 100) }
}

// New returns a Client for provider (GitHub or GitLab) at apiBaseURL, acting
// with token. For GitHub apiBaseURL is the REST API root: https://api.github.com
// (the default when empty) or https://HOST/api/v3 for GitHub Enterprise Server.
// For GitLab it is the instance's root, such as https://gitlab.com (the
// default when empty); the client adds /api/v4. The token is sent as a
// bearer token, which GitHub takes for every kind of token and GitLab for
// personal, group, project and OAuth access tokens alike.
func New(provider, apiBaseURL, token string, opts ...Option) (Client, error) {
	cfg := config{
		maxAttempts: DefaultMaxAttempts,
		maxWait:     DefaultMaxWait,
		pageSize:    DefaultPageSize,
	}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.httpClient == nil {
		cfg.httpClient = &http.Client{Timeout: DefaultTimeout}
	}
	if token == "" {
		return nil, fmt.Errorf("creating %s client: token is empty", provider)
	}
	switch provider {
	case build.ProviderGitHub:
		base, err := parseBaseURL(apiBaseURL, "https://api.github.com/")
		if err != nil {
			return nil, fmt.Errorf("creating github client: %w", err)
		}
		return newGitHub(base, token, cfg), nil
	case build.ProviderGitLab:
		base, err := parseBaseURL(apiBaseURL, "https://gitlab.com/")
		if err != nil {
			return nil, fmt.Errorf("creating gitlab client: %w", err)
		}
		return newGitLab(base, token, cfg)
	default:
		return nil, fmt.Errorf("unknown provider %q: want %q or %q", provider, build.ProviderGitHub, build.ProviderGitLab)
	}
}

// parseBaseURL refuses what would put a credential or a surprise into every
// request URL, and so into error messages.
func parseBaseURL(s, def string) (*url.URL, error) {
	if s == "" {
		s = def
	}
	u, err := url.Parse(s)
	if err != nil {
		// url.Parse's error quotes the URL.
		return nil, errors.New("API base URL is not a URL")
	}
	// The URL is not echoed: a mistaken one may hold a token (in its user
	// info or its query), and these errors reach logs.
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, errors.New("API base URL: scheme must be http or https")
	case u.Host == "":
		return nil, errors.New("API base URL has no host")
	case u.User != nil:
		return nil, errors.New("API base URL holds credentials; pass the token instead")
	case u.RawQuery != "" || u.Fragment != "":
		return nil, errors.New("API base URL has a query or fragment")
	}
	if !strings.HasSuffix(u.Path, "/") {
		u.Path += "/"
	}
	u.RawPath = ""
	return u, nil
}

// firstPage maps the callers' 0 to the providers' 1.
func firstPage(page int) int {
	return max(1, page)
}

// maxDescription is GitHub's limit on a status description; longer ones are
// refused with 422. GitLab allows more, but one limit keeps both the same.
const maxDescription = 140

// mapItems maps the items of one page of a provider's list into this package's type.
func mapItems[T, R any](items []T, item func(T) R) []R {
	out := make([]R, 0, len(items))
	for _, it := range items {
		out = append(out, item(it))
	}
	return out
}

// describe gives the status's description, cut to maxDescription, and names
// a state the provider has no word for when the caller left it empty.
func describe(st build.CommitStatus) string {
	d := st.Description
	if d == "" {
		switch st.State {
		case build.StateCanceled:
			d = "build canceled"
		case build.StateError:
			d = "build errored"
		}
	}
	return truncateDescription(d)
}

func truncateDescription(s string) string {
	r := []rune(s)
	if len(r) <= maxDescription {
		return s
	}
	return string(r[:maxDescription-1]) + "…"
}
