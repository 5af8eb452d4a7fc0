package providers_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/build"
	"github.com/slipway-dev/slipway/internal/testing/providertest"
	"github.com/slipway-dev/slipway/providers"
)

func TestWhoami(t *testing.T) {
	eachProvider(t, func(t *testing.T, w *world) {
		tests := []struct {
			name    string
			token   string
			want    string
			wantErr error
		}{
			{name: "valid", token: w.octo, want: "octo"},
			{name: "other user", token: w.mallory, want: "mallory"},
			{name: "revoked", token: w.revoked, wantErr: providers.ErrUnauthorized},
			{name: "unknown", token: w.octo + "x", wantErr: providers.ErrUnauthorized},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				got, err := w.client(t, tt.token).Whoami(ctx(t))
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Whoami error = %v, want %v", err, tt.wantErr)
				}
				if got != tt.want {
					t.Errorf("Whoami = %q, want %q", got, tt.want)
				}
			})
		}
	})
}

// TestWhoamiAsksEveryTime: a token revoked after the client first used it
// must show as revoked, not as the cached login.
func TestWhoamiAsksEveryTime(t *testing.T) {
	eachProvider(t, func(t *testing.T, w *world) {
		c := w.client(t, w.octo)
		if _, err := c.Whoami(ctx(t)); err != nil {
			t.Fatalf("Whoami: %v", err)
		}
		before := countRequests(w.requests(), http.MethodGet, "/user")
		if _, err := c.Whoami(ctx(t)); err != nil {
			t.Fatalf("Whoami: %v", err)
		}
		if after := countRequests(w.requests(), http.MethodGet, "/user"); after != before+1 {
			t.Errorf("second Whoami made %d requests to /user, want 1", after-before)
		}
	})
}

func TestOwners(t *testing.T) {
	eachProvider(t, func(t *testing.T, w *world) {
		got, page, err := w.client(t, w.octo).Owners(ctx(t), 0)
		if err != nil {
			t.Fatalf("Owners: %v", err)
		}
		want := []providers.Owner{{Name: "octo", Kind: providers.KindUser}, {Name: "acme", Kind: w.ownerKind}}
		if w.subgroup != "" {
			want = append(want, providers.Owner{Name: w.subgroup, Kind: providers.KindGroup})
		}
		if !reflect.DeepEqual(got, want) || page.Next != 0 {
			t.Errorf("Owners = %v, %+v; want %v, last page", got, page, want)
		}
		if _, _, err := w.client(t, w.revoked).Owners(ctx(t), 1); !errors.Is(err, providers.ErrUnauthorized) {
			t.Errorf("Owners with a revoked token: %v, want ErrUnauthorized", err)
		}
		// mallory belongs to no organization or group.
		got, _, err = w.client(t, w.mallory).Owners(ctx(t), 1)
		if err != nil || !reflect.DeepEqual(got, []providers.Owner{{Name: "mallory", Kind: providers.KindUser}}) {
			t.Errorf("mallory's Owners = %v, %v", got, err)
		}
	})
}

func TestReposPaging(t *testing.T) {
	eachProvider(t, func(t *testing.T, w *world) {
		c := w.client(t, w.octo, providers.WithPageSize(3))
		private := map[string]bool{}
		for _, r := range acmeRepos() {
			private[r.Name] = r.Private
		}
		var names []string
		var pages []int
		for page := 0; ; {
			repos, next, err := c.Repos(ctx(t), "acme", page)
			if err != nil {
				t.Fatalf("Repos page %d: %v", page, err)
			}
			pages = append(pages, len(repos))
			for _, r := range repos {
				names = append(names, r.Name)
				if r.Owner != "acme" || r.Private != private[r.Name] || r.DefaultBranch != "main" ||
					!strings.HasSuffix(r.CloneURL, "/acme/"+r.Name+".git") {
					t.Errorf("repo %+v: want owner acme, private %v, default branch main, clone URL .../acme/%s.git", r, private[r.Name], r.Name)
				}
			}
			if next.Next == 0 {
				break
			}
			if len(pages) > 5 {
				t.Fatal("paging does not end")
			}
			page = next.Next
		}
		want := []string{"app-01", "app-02", "app-03", "app-04", "app-05", "app-06", "app-07", "readonly"}
		if !reflect.DeepEqual(names, want) {
			t.Errorf("repositories = %v, want %v", names, want)
		}
		if !reflect.DeepEqual(pages, []int{3, 3, 2}) {
			t.Errorf("page sizes = %v, want [3 3 2]", pages)
		}
	})
}

func TestReposOfUsers(t *testing.T) {
	eachProvider(t, func(t *testing.T, w *world) {
		tests := []struct {
			name  string
			token string
			owner string
			want  []string
		}{
			{name: "own, with private", token: w.octo, owner: "octo", want: []string{"hello", "notes"}},
			{name: "own, case-insensitive", token: w.octo, owner: "Octo", want: []string{"hello", "notes"}},
			{name: "another user's public", token: w.octo, owner: "mallory", want: []string{"lib"}},
			{name: "mallory's own", token: w.mallory, owner: "mallory", want: []string{"lib", "secret"}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				repos, _, err := w.client(t, tt.token).Repos(ctx(t), tt.owner, 1)
				if err != nil {
					t.Fatalf("Repos: %v", err)
				}
				var names []string
				for _, r := range repos {
					names = append(names, r.Name)
				}
				if !reflect.DeepEqual(names, tt.want) {
					t.Errorf("Repos(%s) = %v, want %v", tt.owner, names, tt.want)
				}
			})
		}
		if _, _, err := w.client(t, w.octo).Repos(ctx(t), "nobody", 1); !errors.Is(err, providers.ErrNotFound) {
			t.Errorf("Repos of an unknown owner: %v, want ErrNotFound", err)
		}
	})
}

func TestBranchesAndTags(t *testing.T) {
	eachProvider(t, func(t *testing.T, w *world) {
		c := w.client(t, w.octo)
		branches, page, err := c.Branches(ctx(t), "octo", "hello", 0)
		if err != nil {
			t.Fatalf("Branches: %v", err)
		}
		if !reflect.DeepEqual(branches, helloBranches()) || page.Next != 0 {
			t.Errorf("Branches = %v, %+v; want %v", branches, page, helloBranches())
		}
		tags, page, err := c.Tags(ctx(t), "octo", "hello", 0)
		if err != nil {
			t.Fatalf("Tags: %v", err)
		}
		if !reflect.DeepEqual(tags, helloTags()) || page.Next != 0 {
			t.Errorf("Tags = %v, %+v; want %v", tags, page, helloTags())
		}

		small := w.client(t, w.octo, providers.WithPageSize(2))
		first, page, err := small.Branches(ctx(t), "octo", "hello", 1)
		if err != nil || len(first) != 2 || page.Next != 2 {
			t.Fatalf("first page of 2 = %v, %+v, %v; want 2 branches and next page 2", first, page, err)
		}
		second, page, err := small.Branches(ctx(t), "octo", "hello", page.Next)
		if err != nil || !reflect.DeepEqual(second, helloBranches()[2:]) || page.Next != 0 {
			t.Errorf("second page = %v, %+v, %v; want %v and no next page", second, page, err, helloBranches()[2:])
		}
	})
}

// TestNotVisible: a private repository the token cannot see is "not found",
// for every call, as both providers answer 404 rather than 403.
func TestNotVisible(t *testing.T) {
	eachProvider(t, func(t *testing.T, w *world) {
		c := w.client(t, w.octo)
		sha := providertest.SHA("secret")
		calls := map[string]func() error{
			"Branches": func() error { _, _, err := c.Branches(ctx(t), "mallory", "secret", 1); return err },
			"Tags":     func() error { _, _, err := c.Tags(ctx(t), "mallory", "secret", 1); return err },
			"EnsureHook": func() error {
				_, err := c.EnsureHook(ctx(t), "mallory", "secret", "https://ci.example/hook", hookSecret)
				return err
			},
			"SetStatus": func() error {
				return c.SetStatus(ctx(t), "mallory", "secret", sha, build.CommitStatus{State: build.StateSuccess})
			},
			"Branches of a missing repository": func() error { _, _, err := c.Branches(ctx(t), "octo", "missing", 1); return err },
		}
		for name, call := range calls {
			t.Run(name, func(t *testing.T) {
				err := call()
				if !errors.Is(err, providers.ErrNotFound) {
					t.Fatalf("error = %v, want ErrNotFound", err)
				}
				var apiErr *providers.APIError
				if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusNotFound || apiErr.Provider != w.provider {
					t.Errorf("error %v does not hold the provider's 404", err)
				}
			})
		}
		// The owner sees it.
		if _, _, err := w.client(t, w.mallory).Branches(ctx(t), "mallory", "secret", 1); err != nil {
			t.Errorf("mallory's own Branches: %v", err)
		}
	})
}

func TestEnsureHook(t *testing.T) {
	eachProvider(t, func(t *testing.T, w *world) {
		c := w.client(t, w.octo)
		const url = "https://slipway.example/webhooks/" + "rule-1"
		first, err := c.EnsureHook(ctx(t), "octo", "hello", url, hookSecret)
		if err != nil {
			t.Fatalf("EnsureHook: %v", err)
		}
		want := []hookView{{ID: first.ID, URL: url, Secret: hookSecret, Active: true, Push: true, Tags: true, JSON: true, SSLVerify: true}}
		if got := w.hooks("octo", "hello"); !reflect.DeepEqual(got, want) {
			t.Fatalf("hooks after the first EnsureHook = %+v, want %+v", got, want)
		}
		if first.URL != url || !first.Active || first.ID == 0 {
			t.Errorf("EnsureHook = %+v, want an active hook to %s", first, url)
		}

		// Another rule's hook on the same repository must stay apart.
		other, err := c.EnsureHook(ctx(t), "octo", "hello", url+"0", otherSecret)
		if err != nil || other.ID == first.ID {
			t.Fatalf("EnsureHook to another URL = %+v, %v; want a second hook", other, err)
		}

		before := len(w.requests())
		second, err := c.EnsureHook(ctx(t), "octo", "hello", url, otherSecret)
		if err != nil {
			t.Fatalf("second EnsureHook: %v", err)
		}
		if second.ID != first.ID {
			t.Errorf("second EnsureHook returned hook %d, want the existing %d", second.ID, first.ID)
		}
		hooks := w.hooks("octo", "hello")
		if len(hooks) != 2 {
			t.Fatalf("%d hooks after EnsureHook twice to one URL and once to another, want 2: %+v", len(hooks), hooks)
		}
		want[0].Secret = otherSecret
		if hooks[0] != want[0] {
			t.Errorf("updated hook = %+v, want %+v", hooks[0], want[0])
		}

		// How each provider got there.
		var calls []string
		for _, r := range w.requests()[before:] {
			calls = append(calls, r.Method)
		}
		wantCalls := map[string][]string{
			build.ProviderGitHub: {"POST", "GET", "PATCH"}, // 422 "Hook already exists", list, update
			build.ProviderGitLab: {"GET", "PUT"},           // list, update: GitLab would take a duplicate
		}[w.provider]
		if !reflect.DeepEqual(calls, wantCalls) {
			t.Errorf("second EnsureHook made %v, want %v", calls, wantCalls)
		}
	})
}

func TestEnsureHookWithoutAdmin(t *testing.T) {
	eachProvider(t, func(t *testing.T, w *world) {
		_, err := w.client(t, w.octo).EnsureHook(ctx(t), "acme", "readonly", "https://ci.example/hook", hookSecret)
		if !errors.Is(err, providers.ErrForbidden) {
			t.Fatalf("EnsureHook without admin rights: %v, want ErrForbidden", err)
		}
		if len(w.hooks("acme", "readonly")) != 0 {
			t.Error("a hook was created")
		}
	})
}

func TestDeleteHook(t *testing.T) {
	eachProvider(t, func(t *testing.T, w *world) {
		c := w.client(t, w.octo)
		hook, err := c.EnsureHook(ctx(t), "octo", "hello", "https://ci.example/hook", hookSecret)
		if err != nil {
			t.Fatalf("EnsureHook: %v", err)
		}
		for i, id := range []int64{hook.ID, hook.ID, 999999} {
			if err := c.DeleteHook(ctx(t), "octo", "hello", id); err != nil {
				t.Errorf("DeleteHook #%d (hook %d): %v", i+1, id, err)
			}
		}
		if hooks := w.hooks("octo", "hello"); len(hooks) != 0 {
			t.Errorf("hooks after DeleteHook = %+v", hooks)
		}
		if n := countRequests(w.requests(), http.MethodDelete, fmt.Sprintf("/hooks/%d", hook.ID)); n != 2 {
			t.Errorf("%d DELETE requests for hook %d, want 2", n, hook.ID)
		}
		if err := w.client(t, w.revoked).DeleteHook(ctx(t), "octo", "hello", hook.ID); !errors.Is(err, providers.ErrUnauthorized) {
			t.Errorf("DeleteHook with a revoked token: %v, want ErrUnauthorized", err)
		}
	})
}

func TestSetStatus(t *testing.T) {
	long := strings.Repeat("é", 200)
	tests := []struct {
		name       string
		status     build.CommitStatus
		wantGitHub string
		wantGitLab string
		wantDesc   string
	}{
		{name: "pending", status: build.CommitStatus{State: build.StatePending, Description: "building"}, wantGitHub: "pending", wantGitLab: "pending", wantDesc: "building"},
		{name: "success", status: build.CommitStatus{State: build.StateSuccess, Description: "pushed"}, wantGitHub: "success", wantGitLab: "success", wantDesc: "pushed"},
		{name: "failure", status: build.CommitStatus{State: build.StateFailure, Description: "RUN failed"}, wantGitHub: "failure", wantGitLab: "failed", wantDesc: "RUN failed"},
		{name: "error", status: build.CommitStatus{State: build.StateError, Description: "worker lost"}, wantGitHub: "error", wantGitLab: "failed", wantDesc: "worker lost"},
		{name: "error without description", status: build.CommitStatus{State: build.StateError}, wantGitHub: "error", wantGitLab: "failed", wantDesc: "build errored"},
		{name: "canceled", status: build.CommitStatus{State: build.StateCanceled}, wantGitHub: "error", wantGitLab: "canceled", wantDesc: "build canceled"},
		{name: "long description", status: build.CommitStatus{State: build.StateSuccess, Description: long}, wantGitHub: "success", wantGitLab: "success", wantDesc: strings.Repeat("é", 139) + "…"},
	}
	eachProvider(t, func(t *testing.T, w *world) {
		c := w.client(t, w.octo)
		sha := helloBranches()[0].Commit
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				st := tt.status
				st.Context = "slipway/" + tt.name
				st.TargetURL = "https://slipway.example/builds/" + strings.ReplaceAll(tt.name, " ", "-")
				if err := c.SetStatus(ctx(t), "octo", "hello", sha, st); err != nil {
					t.Fatalf("SetStatus: %v", err)
				}
				wantState := tt.wantGitHub
				if w.provider == build.ProviderGitLab {
					wantState = tt.wantGitLab
				}
				var got []statusView
				for _, s := range w.statuses("octo", "hello", sha) {
					if s.Context == st.Context {
						got = append(got, s)
					}
				}
				want := []statusView{{State: wantState, Context: st.Context, Description: tt.wantDesc, TargetURL: st.TargetURL}}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("statuses = %+v, want %+v", got, want)
				}
			})
		}
		if err := c.SetStatus(ctx(t), "octo", "hello", sha, build.CommitStatus{State: "running"}); err == nil {
			t.Error("SetStatus accepted an unknown state")
		}
		if err := c.SetStatus(ctx(t), "octo", "hello", providertest.SHA("nowhere"), build.CommitStatus{State: build.StateSuccess}); err == nil {
			t.Error("SetStatus on an unknown commit succeeded")
		}
	})
}

// TestSetStatusRepeated: the worker's activity may set the same status twice
// (a retried activity). GitLab refuses a pending status that is already
// pending with 400; that is no error here.
func TestSetStatusRepeated(t *testing.T) {
	eachProvider(t, func(t *testing.T, w *world) {
		c := w.client(t, w.octo)
		sha := helloBranches()[1].Commit
		for _, state := range []string{build.StatePending, build.StatePending, build.StateSuccess} {
			if err := c.SetStatus(ctx(t), "octo", "hello", sha, build.CommitStatus{State: state, Context: "slipway"}); err != nil {
				t.Fatalf("SetStatus %s: %v", state, err)
			}
		}
		got := w.statuses("octo", "hello", sha)
		if len(got) == 0 || got[len(got)-1].State != "success" {
			t.Errorf("statuses = %+v, want the last one success", got)
		}
	})
}

func TestRateLimitRetried(t *testing.T) {
	eachProvider(t, func(t *testing.T, w *world) {
		c := w.client(t, w.octo)
		w.rateLimitOnce(time.Second)
		start := time.Now()
		branches, _, err := c.Branches(ctx(t), "octo", "hello", 1)
		if err != nil {
			t.Fatalf("Branches after a rate limit: %v", err)
		}
		if len(branches) != 3 {
			t.Errorf("Branches = %v", branches)
		}
		if waited := time.Since(start); waited < 900*time.Millisecond {
			t.Errorf("retried after %s, before Retry-After: 1", waited)
		}
		if n := countRequests(w.requests(), http.MethodGet, "/branches"); n != 2 {
			t.Errorf("%d branch requests, want 2 (limited, retried)", n)
		}
	})
}

func TestRateLimitBeyondMaxWait(t *testing.T) {
	eachProvider(t, func(t *testing.T, w *world) {
		tests := []struct {
			name       string
			opts       []providers.Option
			ctx        func(t *testing.T) context.Context
			retryAfter time.Duration
			wantAfter  time.Duration
		}{
			{name: "past the default max wait", ctx: ctx, retryAfter: 120 * time.Second, wantAfter: 120 * time.Second},
			{name: "past WithMaxWait", opts: []providers.Option{providers.WithMaxWait(2 * time.Second)}, ctx: ctx, retryAfter: 5 * time.Second, wantAfter: 5 * time.Second},
			{name: "past the context's deadline", ctx: func(t *testing.T) context.Context {
				c, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				t.Cleanup(cancel)
				return c
			}, retryAfter: 10 * time.Second, wantAfter: 10 * time.Second},
			{name: "retries off", opts: []providers.Option{providers.WithRetry(1)}, ctx: ctx, retryAfter: time.Second, wantAfter: time.Second},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				c := w.client(t, w.octo, tt.opts...)
				w.rateLimitOnce(tt.retryAfter)
				before := countRequests(w.requests(), http.MethodGet, "/tags")
				start := time.Now()
				_, _, err := c.Tags(tt.ctx(t), "octo", "hello", 1)
				var rl *providers.RateLimitError
				if !errors.As(err, &rl) || !errors.Is(err, providers.ErrRateLimited) {
					t.Fatalf("Tags = %v, want a *RateLimitError", err)
				}
				if rl.RetryAfter != tt.wantAfter {
					t.Errorf("RetryAfter = %s, want %s", rl.RetryAfter, tt.wantAfter)
				}
				if took := time.Since(start); took > 500*time.Millisecond {
					t.Errorf("returned after %s; a wait it will not make should not be started", took)
				}
				if n := countRequests(w.requests(), http.MethodGet, "/tags") - before; n != 1 {
					t.Errorf("%d requests, want 1", n)
				}
			})
		}
	})
}

// TestGitHubRateLimitKinds covers GitHub's three ways of saying slow down.
func TestGitHubRateLimitKinds(t *testing.T) {
	tests := []struct {
		name string
		kind providertest.GitHubRateLimit
	}{
		{name: "secondary 403 Retry-After", kind: providertest.SecondaryRateLimit},
		{name: "primary 403 X-RateLimit-Reset", kind: providertest.PrimaryRateLimit},
		{name: "429 Retry-After", kind: providertest.TooManyRequests},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			for _, retryAfter := range []time.Duration{time.Second, 90 * time.Second} {
				w := newGitHubWorld(t)
				w.github.RateLimitOnce(tt.kind, retryAfter)
				_, _, err := w.client(t, w.octo).Branches(ctx(t), "octo", "hello", 1)
				if retryAfter == time.Second {
					if err != nil {
						t.Errorf("Branches after a 1s limit: %v", err)
					}
					continue
				}
				// A reset time is rounded up to the second and given a
				// second to spare.
				var rl *providers.RateLimitError
				if !errors.As(err, &rl) || rl.RetryAfter < retryAfter || rl.RetryAfter > retryAfter+2*time.Second {
					t.Errorf("Branches after a 90s limit: %v, want a RateLimitError of about 90s", err)
				}
			}
		})
	}
}

func TestUnavailableRetried(t *testing.T) {
	eachProvider(t, func(t *testing.T, w *world) {
		c := w.client(t, w.octo)
		w.failOnce(http.StatusBadGateway)
		if _, err := c.Whoami(ctx(t)); err != nil {
			t.Errorf("Whoami after a 502: %v", err)
		}
		w.failOnce(http.StatusInternalServerError)
		_, err := c.Whoami(ctx(t))
		var apiErr *providers.APIError
		if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusInternalServerError {
			t.Errorf("Whoami after a 500: %v, want the 500 without retry", err)
		}
	})
}

func TestGitLabSubgroup(t *testing.T) {
	w := newGitLabWorld(t)
	c := w.client(t, w.octo)
	repos, _, err := c.Repos(ctx(t), "acme/platform", 1)
	if err != nil || len(repos) != 1 || repos[0].Owner != "acme/platform" || repos[0].Name != "svc" || !repos[0].Private {
		t.Fatalf("Repos(acme/platform) = %+v, %v", repos, err)
	}
	branches, _, err := c.Branches(ctx(t), "acme/platform", "svc", 1)
	if err != nil || len(branches) != 1 {
		t.Fatalf("Branches = %v, %v", branches, err)
	}
	if _, err := c.EnsureHook(ctx(t), "acme/platform", "svc", "https://ci.example/hook", hookSecret); err != nil {
		t.Fatalf("EnsureHook: %v", err)
	}
	if n := countRequests(w.requests(), http.MethodPost, "/api/v4/projects/acme%2Fplatform%2Fsvc/hooks"); n != 1 {
		t.Errorf("%d POSTs to the escaped project path, want 1: %v", n, w.requests())
	}
	// A subgroup path that is no group is not retried as a user.
	if _, _, err := c.Repos(ctx(t), "acme/nothing", 1); !errors.Is(err, providers.ErrNotFound) {
		t.Errorf("Repos(acme/nothing) = %v, want ErrNotFound", err)
	}
}

// TestGitHubEnterprise: the /api/v3 base of GitHub Enterprise Server.
func TestGitHubEnterprise(t *testing.T) {
	w := newGitHubWorld(t)
	w.url += "/api/v3"
	login, err := w.client(t, w.octo).Whoami(ctx(t))
	if err != nil || login != "octo" {
		t.Fatalf("Whoami = %q, %v", login, err)
	}
	if reqs := w.requests(); reqs[len(reqs)-1].Path != "/api/v3/user" {
		t.Errorf("request went to %s, want /api/v3/user", reqs[len(reqs)-1].Path)
	}
}

// TestTokenScrubbed: a provider or proxy that echoes the token into an error
// body must not get it into our errors, and the classification survives.
func TestTokenScrubbed(t *testing.T) {
	const token = "tok-ECHOED-0123456789abcdef"
	tests := []struct {
		provider string
		status   int
		body     func(token string) string
		want     error
	}{
		{build.ProviderGitHub, http.StatusUnauthorized, func(tok string) string { return `{"message":"Bad credentials: ` + tok + `"}` }, providers.ErrUnauthorized},
		{build.ProviderGitHub, http.StatusTeapot, func(tok string) string { return `{"message":"proxy saw Bearer ` + tok + `"}` }, nil},
		{build.ProviderGitLab, http.StatusUnauthorized, func(tok string) string { return `{"message":"401 Unauthorized ` + tok + `"}` }, providers.ErrUnauthorized},
		{build.ProviderGitLab, http.StatusTeapot, func(tok string) string { return "PRIVATE-TOKEN " + tok }, nil},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s %d", tt.provider, tt.status), func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(tt.status)
				fmt.Fprint(w, tt.body(strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")))
			}))
			defer srv.Close()
			c, err := providers.New(tt.provider, srv.URL, token)
			if err != nil {
				t.Fatal(err)
			}
			c = checked{Client: c, t: t, secrets: []string{token}}
			_, err = c.Whoami(ctx(t))
			if err == nil {
				t.Fatal("Whoami succeeded")
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("error %v lost its kind %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), "[REDACTED]") {
				t.Errorf("error %q does not show where the token was", err)
			}
		})
	}
}

// TestTokenScrubbedFromTransportErrors: a token pasted into the base URL's
// path shows in a transport error's URL; it is scrubbed there too.
func TestTokenScrubbedFromTransportErrors(t *testing.T) {
	const token = "tok-INPATH-0123456789abcdef"
	srv := httptest.NewServer(http.NotFoundHandler())
	base := srv.URL + "/" + token
	srv.Close() // connection refused from now on
	for _, provider := range []string{build.ProviderGitHub, build.ProviderGitLab} {
		t.Run(provider, func(t *testing.T) {
			c, err := providers.New(provider, base, token, providers.WithRetry(1))
			if err != nil {
				t.Fatal(err)
			}
			_, err = checked{Client: c, t: t, secrets: []string{token}}.Whoami(ctx(t))
			if err == nil || !strings.Contains(err.Error(), "[REDACTED]") {
				t.Errorf("Whoami = %v, want a transport error with the token redacted", err)
			}
		})
	}
}

func TestNew(t *testing.T) {
	const token = "tok-NEW-0123456789"
	tests := []struct {
		name     string
		provider string
		base     string
		token    string
		ok       bool
	}{
		{name: "github default", provider: "github", token: token, ok: true},
		{name: "gitlab default", provider: "gitlab", token: token, ok: true},
		{name: "github enterprise", provider: "github", base: "https://ghe.example/api/v3", token: token, ok: true},
		{name: "unknown provider", provider: "bitbucket", token: token},
		{name: "empty token", provider: "github"},
		{name: "no scheme", provider: "gitlab", base: "gitlab.example", token: token},
		{name: "credentials in URL", provider: "gitlab", base: "https://oauth2:" + token + "@gitlab.example", token: token},
		{name: "token in query", provider: "github", base: "https://ghe.example/api/v3?access_token=" + token, token: token},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := providers.New(tt.provider, tt.base, tt.token)
			if tt.ok != (err == nil) || tt.ok != (c != nil) {
				t.Fatalf("New = %v, %v; want ok %v", c, err, tt.ok)
			}
			if err != nil && strings.Contains(err.Error(), token) {
				t.Errorf("error %q holds the token", err)
			}
		})
	}
}
