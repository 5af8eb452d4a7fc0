package providers_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/build"
	"github.com/slipway-dev/slipway/internal/testing/providertest"
	"github.com/slipway-dev/slipway/providers"
)

// A world is one provider's fake with the same fixtures as the other's, so
// each test runs unchanged against both:
//
//   - octo (tokens octo and revoked) owns octo/hello (public; branches main,
//     dev, feature/x; tags v1.0.0, v1.1.0) and octo/notes (private);
//   - mallory (token mallory) owns mallory/secret (private) and mallory/lib;
//   - the acme organization (GitLab: group) has octo as a member and eight
//     repositories, app-01 to app-07 and readonly, some private; octo may not
//     manage acme's hooks;
//   - on GitLab, the subgroup acme/platform has project svc, which octo
//     maintains.
type world struct {
	provider string
	url      string
	octo     string // token
	revoked  string
	mallory  string

	// ownerKind is the kind of acme.
	ownerKind string
	// subgroup is acme/platform on GitLab, empty on GitHub.
	subgroup string
	// github is the fake of a GitHub world, for what only GitHub has.
	github *providertest.GitHub

	rateLimitOnce func(retryAfter time.Duration)
	failOnce      func(status int)
	requests      func() []providertest.Request
	hooks         func(owner, repo string) []hookView
	statuses      func(owner, repo, sha string) []statusView
}

// hookView is a hook in the fake's terms, read the same way for both.
type hookView struct {
	ID        int64
	URL       string
	Secret    string
	Active    bool
	Push      bool
	Tags      bool
	JSON      bool
	SSLVerify bool
}

type statusView struct {
	State, Context, Description, TargetURL string
}

func helloBranches() []providers.RefHead {
	return []providers.RefHead{
		{Name: "main", Commit: providertest.SHA("hello main")},
		{Name: "dev", Commit: providertest.SHA("hello dev")},
		{Name: "feature/x", Commit: providertest.SHA("hello feature/x")},
	}
}

func helloTags() []providers.RefHead {
	return []providers.RefHead{
		{Name: "v1.0.0", Commit: providertest.SHA("hello v1.0.0")},
		{Name: "v1.1.0", Commit: providertest.SHA("hello v1.1.0")},
	}
}

func fakeRefs(refs []providers.RefHead) []providertest.Ref {
	out := make([]providertest.Ref, 0, len(refs))
	for _, r := range refs {
		out = append(out, providertest.Ref{Name: r.Name, Commit: r.Commit})
	}
	return out
}

// acmeRepos are acme's repositories in name order; even ones are private.
func acmeRepos() []providertest.Repo {
	var repos []providertest.Repo
	for i := 1; i <= 7; i++ {
		name := fmt.Sprintf("app-%02d", i)
		repos = append(repos, providertest.Repo{
			Owner: "acme", Name: name, Private: i%2 == 0,
			Branches: []providertest.Ref{{Name: "main", Commit: providertest.SHA(name)}},
		})
	}
	return append(repos, providertest.Repo{
		Owner: "acme", Name: "readonly", Private: true,
		Branches: []providertest.Ref{{Name: "main", Commit: providertest.SHA("readonly")}},
	})
}

func commonRepos() []providertest.Repo {
	return []providertest.Repo{
		{Owner: "octo", Name: "hello", Branches: fakeRefs(helloBranches()), Tags: fakeRefs(helloTags())},
		{Owner: "octo", Name: "notes", Private: true, Branches: []providertest.Ref{{Name: "main", Commit: providertest.SHA("notes")}}},
		{Owner: "mallory", Name: "secret", Private: true, Branches: []providertest.Ref{{Name: "main", Commit: providertest.SHA("secret")}}},
		{Owner: "mallory", Name: "lib", Branches: []providertest.Ref{{Name: "main", Commit: providertest.SHA("lib")}}},
	}
}

func newGitHubWorld(t *testing.T) *world {
	f := providertest.NewGitHub(t)
	w := &world{
		provider: build.ProviderGitHub, url: f.URL, ownerKind: providers.KindOrganization, github: f,
		octo: "ghp_octoSECRETtoken000000000000000001", revoked: "ghp_revokedSECRETtoken00000000000002",
		mallory: "ghp_mallorySECRETtoken0000000000003",
	}
	f.AddUser("octo", w.octo, w.revoked)
	f.RevokeToken(w.revoked)
	f.AddUser("mallory", w.mallory)
	f.AddOrg("acme", "octo")
	for _, r := range append(commonRepos(), acmeRepos()...) {
		f.AddRepo(r)
	}
	w.rateLimitOnce = func(d time.Duration) { f.RateLimitOnce(providertest.SecondaryRateLimit, d) }
	w.failOnce = f.FailOnce
	w.requests = f.Requests
	w.hooks = func(owner, repo string) []hookView {
		var out []hookView
		for _, h := range f.Hooks(owner, repo) {
			out = append(out, hookView{
				ID: h.ID, URL: h.Config["url"], Secret: h.Config["secret"],
				// On GitHub push covers tags too; create is the tag's own event.
				Active:    h.Active,
				Push:      slices.Contains(h.Events, "push"),
				Tags:      slices.Contains(h.Events, "push") && slices.Contains(h.Events, "create"),
				JSON:      h.Config["content_type"] == "json",
				SSLVerify: h.Config["insecure_ssl"] == "0",
			})
		}
		return out
	}
	w.statuses = func(owner, repo, sha string) []statusView {
		var out []statusView
		for _, s := range f.Statuses(owner, repo, sha) {
			out = append(out, statusView{State: s.State, Context: s.Context, Description: s.Description, TargetURL: s.TargetURL})
		}
		return out
	}
	return w
}

func newGitLabWorld(t *testing.T) *world {
	f := providertest.NewGitLab(t)
	w := &world{
		provider: build.ProviderGitLab, url: f.URL, ownerKind: providers.KindGroup, subgroup: "acme/platform",
		octo: "glpat-octoSECRETtoken000001", revoked: "glpat-revokedSECRETtoken02",
		mallory: "glpat-mallorySECRETtoken03",
	}
	f.AddUser("octo", w.octo, w.revoked)
	f.RevokeToken(w.revoked)
	f.AddUser("mallory", w.mallory)
	f.AddGroup("acme", map[string]int{"octo": providertest.DeveloperAccess})
	f.AddGroup("acme/platform", nil)
	for _, r := range append(commonRepos(), acmeRepos()...) {
		f.AddRepo(r)
	}
	f.AddRepo(providertest.Repo{
		Owner: "acme/platform", Name: "svc", Private: true, Admins: []string{"octo"},
		Branches: []providertest.Ref{{Name: "main", Commit: providertest.SHA("svc")}},
	})
	w.rateLimitOnce = f.RateLimitOnce
	w.failOnce = f.FailOnce
	w.requests = f.Requests
	w.hooks = func(owner, repo string) []hookView {
		var out []hookView
		for _, h := range f.Hooks(owner, repo) {
			out = append(out, hookView{
				ID: h.ID, URL: h.URL, Secret: h.Token, Active: true, Push: h.PushEvents, Tags: h.TagPushEvents,
				JSON: true, SSLVerify: h.EnableSSLVerification,
			})
		}
		return out
	}
	w.statuses = func(owner, repo, sha string) []statusView {
		var out []statusView
		for _, s := range f.Statuses(owner, repo, sha) {
			out = append(out, statusView{State: s.Status, Context: s.Name, Description: s.Description, TargetURL: s.TargetURL})
		}
		return out
	}
	return w
}

// eachProvider runs test once per provider, each with a world of its own.
func eachProvider(t *testing.T, test func(t *testing.T, w *world)) {
	for _, p := range []struct {
		name string
		mk   func(*testing.T) *world
	}{
		{build.ProviderGitHub, newGitHubWorld},
		{build.ProviderGitLab, newGitLabWorld},
	} {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			test(t, p.mk(t))
		})
	}
}

// client returns a Client for token whose every error is checked for the
// world's tokens and the test's webhook secrets.
func (w *world) client(t *testing.T, token string, opts ...providers.Option) providers.Client {
	t.Helper()
	c, err := providers.New(w.provider, w.url, token, opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return checked{Client: c, t: t, secrets: []string{w.octo, w.revoked, w.mallory, hookSecret, otherSecret}}
}

const (
	hookSecret  = "whsec-FIRST-0123456789"
	otherSecret = "whsec-SECOND-9876543210"
)

// checked fails the test when any error a Client returns holds a secret,
// in its message or in its wrapped chain's %+v.
type checked struct {
	providers.Client
	t       *testing.T
	secrets []string
}

func (c checked) check(err error) error {
	if err == nil {
		return nil
	}
	c.t.Helper()
	for _, text := range []string{err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err)} {
		for _, s := range c.secrets {
			if strings.Contains(text, s) {
				c.t.Errorf("error holds a secret: %s", text)
			}
		}
	}
	return err
}

func (c checked) Whoami(ctx context.Context) (string, error) {
	s, err := c.Client.Whoami(ctx)
	return s, c.check(err)
}

func (c checked) Owners(ctx context.Context, page int) ([]providers.Owner, providers.Page, error) {
	o, p, err := c.Client.Owners(ctx, page)
	return o, p, c.check(err)
}

func (c checked) Repos(ctx context.Context, owner string, page int) ([]providers.Repo, providers.Page, error) {
	r, p, err := c.Client.Repos(ctx, owner, page)
	return r, p, c.check(err)
}

func (c checked) Branches(ctx context.Context, owner, repo string, page int) ([]providers.RefHead, providers.Page, error) {
	r, p, err := c.Client.Branches(ctx, owner, repo, page)
	return r, p, c.check(err)
}

func (c checked) Tags(ctx context.Context, owner, repo string, page int) ([]providers.RefHead, providers.Page, error) {
	r, p, err := c.Client.Tags(ctx, owner, repo, page)
	return r, p, c.check(err)
}

func (c checked) EnsureHook(ctx context.Context, owner, repo, url, secret string) (providers.Hook, error) {
	h, err := c.Client.EnsureHook(ctx, owner, repo, url, secret)
	return h, c.check(err)
}

func (c checked) DeleteHook(ctx context.Context, owner, repo string, id int64) error {
	return c.check(c.Client.DeleteHook(ctx, owner, repo, id))
}

func (c checked) SetStatus(ctx context.Context, owner, repo, sha string, st build.CommitStatus) error {
	return c.check(c.Client.SetStatus(ctx, owner, repo, sha, st))
}

// countRequests counts the recorded requests whose "METHOD path" ends with
// suffix.
func countRequests(reqs []providertest.Request, method, pathSuffix string) int {
	n := 0
	for _, r := range reqs {
		if r.Method == method && strings.HasSuffix(r.Path, pathSuffix) {
			n++
		}
	}
	return n
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return c
}
