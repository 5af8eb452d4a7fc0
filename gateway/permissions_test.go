package gateway

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/slipway-dev/slipway/build"
	"github.com/slipway-dev/slipway/config"
	"github.com/slipway-dev/slipway/store"
)

// access is who may call an endpoint.
type access int

const (
	// public endpoints answer anyone.
	public access = iota
	// hook endpoints are authenticated by the delivery's signature or token; a bearer token,
	// even the site admin's, counts for nothing.
	hook
	// anyUser endpoints need a valid token.
	anyUser
	// siteOnly endpoints need the site admin.
	siteOnly
	// inNamespace endpoints need a role in the namespace of the URL or of the build.
	inNamespace
)

// scope says whose resources a request reaches.
type scope string

const (
	// own: the caller's namespace and its resources.
	own scope = "own"
	// other: another namespace's resources through their own URL.
	other scope = "other"
	// cross: a rule of another namespace through the caller's namespace's URL.
	cross scope = "cross"
)

// matrix is the world the permission matrix runs in: a namespace the fixed users belong to,
// one they do not, a GitHub and a GitLab rule and a build in each.
type matrix struct {
	teams  map[scope]team
	rules  map[scope]store.Rule
	gitlab map[scope]store.Rule
	builds map[scope]string
	// accounts are a connected account in each namespace.
	accounts map[scope]store.Account
	// member is the user the matrix grants roles to; none of the callers.
	member string
}

// team is the namespace a scope's URL names.
func (mx *matrix) team(sc scope) team {
	if sc == other {
		return mx.teams[other]
	}
	return mx.teams[own]
}

// resourceScope is the scope whose resources a scope reaches.
func (mx *matrix) resourceScope(sc scope) scope {
	if sc == own {
		return own
	}
	return other
}

// ruleTeam is the namespace of the resources a scope reaches.
func (mx *matrix) ruleTeam(sc scope) team {
	if sc == own {
		return mx.teams[own]
	}
	return mx.teams[other]
}

// request is what one cell of the matrix sends. hidden, when set, is the name or id the
// request reaches that the caller may not see: a 404 for it must read exactly like the 404
// for a name that never existed.
type request struct {
	path   string
	body   any
	header []string
	hidden string
}

type endpoint struct {
	method, route string
	access        access
	need          store.Role
	// ok is the answer when access is granted.
	ok int
	// cross adds the cross scope: the URL names a rule by id.
	cross bool
	// fresh calls with a new user holding the caller's role instead of the caller, for
	// routes that revoke the caller's own token.
	fresh bool
	// site, when set, is the site admin's answer where it differs from ok.
	site int
	call func(t *testing.T, mx *matrix, sc scope) request
}

// endpoints is every route of the router, with who may call it. TestPermissionMatrix fails
// when a route has no row here.
func endpoints() []endpoint {
	ruleURL := func(mx *matrix, sc scope) (string, string) {
		r := mx.rules[sc]
		if sc == cross {
			r = mx.rules[other]
		}
		hidden := ""
		switch sc {
		case other:
			hidden = mx.teams[other].ns
		case cross:
			hidden = r.ID
		}
		return mx.team(sc).rule(r.ID), hidden
	}
	nsHidden := func(mx *matrix, sc scope) string {
		if sc == other {
			return mx.teams[other].ns
		}
		return ""
	}
	buildHidden := func(sc scope, id string) string {
		if sc == other {
			return id
		}
		return ""
	}
	return []endpoint{
		{method: "GET", route: "/healthz", access: public, ok: 200,
			call: func(*testing.T, *matrix, scope) request { return request{path: "/healthz"} }},
		{method: "GET", route: "/readyz", access: public, ok: 200,
			call: func(*testing.T, *matrix, scope) request { return request{path: "/readyz"} }},
		{method: "GET", route: "/metrics", access: public, ok: 200,
			call: func(*testing.T, *matrix, scope) request { return request{path: "/metrics"} }},
		{method: "GET", route: "/api/v1/openapi.json", access: public, ok: 200,
			call: func(*testing.T, *matrix, scope) request { return request{path: "/api/v1/openapi.json"} }},
		{method: "POST", route: "/api/v1/users", access: siteOnly, ok: 201,
			call: func(*testing.T, *matrix, scope) request {
				return request{path: "/api/v1/users", body: map[string]string{"name": h.name("user")}}
			}},
		{method: "GET", route: "/api/v1/user", access: anyUser, ok: 200,
			call: func(*testing.T, *matrix, scope) request { return request{path: "/api/v1/user"} }},
		// The site admin's token is the stack's (SLIPWAY_ADMIN_TOKEN): it rotates there.
		{method: "POST", route: "/api/v1/user/token", access: anyUser, ok: 201, fresh: true, site: 409,
			call: func(*testing.T, *matrix, scope) request { return request{path: "/api/v1/user/token"} }},
		{method: "PATCH", route: "/api/v1/users/:user", access: siteOnly, ok: 200,
			call: func(t *testing.T, _ *matrix, _ scope) request {
				return request{path: "/api/v1/users/" + freshUser(t, "", ""), body: map[string]bool{"disabled": true}}
			}},
		{method: "POST", route: "/api/v1/users/:user/token", access: siteOnly, ok: 201,
			call: func(t *testing.T, _ *matrix, _ scope) request {
				return request{path: "/api/v1/users/" + freshUser(t, "", "") + "/token"}
			}},
		{method: "GET", route: "/api/v1/namespaces", access: anyUser, ok: 200,
			call: func(*testing.T, *matrix, scope) request { return request{path: "/api/v1/namespaces"} }},
		{method: "GET", route: "/api/v1/namespaces/:ns/members", access: inNamespace, need: store.RoleRead, ok: 200,
			call: func(_ *testing.T, mx *matrix, sc scope) request {
				return request{path: "/api/v1/namespaces/" + mx.team(sc).ns + "/members", hidden: nsHidden(mx, sc)}
			}},
		{method: "DELETE", route: "/api/v1/namespaces/:ns/members/:user", access: inNamespace, need: store.RoleAdmin, ok: 204,
			call: func(t *testing.T, mx *matrix, sc scope) request {
				// Each cell removes a member of its own.
				return request{path: "/api/v1/namespaces/" + mx.team(sc).ns + "/members/" + freshUser(t, mx.team(sc).ns, store.RoleRead),
					hidden: nsHidden(mx, sc)}
			}},
		{method: "DELETE", route: "/api/v1/namespaces/:ns/repositories/:repo", access: inNamespace, need: store.RoleAdmin, ok: 200,
			call: func(t *testing.T, mx *matrix, sc scope) request {
				// Each cell deletes a repository of its own.
				repo := h.name("gone")
				if _, err := h.store.CreateRepository(context.Background(), mx.team(sc).ns, repo); err != nil {
					t.Fatal(err)
				}
				return request{path: "/api/v1/namespaces/" + mx.team(sc).ns + "/repositories/" + repo, hidden: nsHidden(mx, sc)}
			}},
		{method: "POST", route: "/api/v1/namespaces/:ns/repositories/:repo/build-rules/:id/webhook-secret", access: inNamespace, need: store.RoleWrite, ok: 200, cross: true,
			call: func(_ *testing.T, mx *matrix, sc scope) request {
				p, hidden := ruleURL(mx, sc)
				return request{path: p + "/webhook-secret", hidden: hidden}
			}},
		{method: "POST", route: "/api/v1/namespaces", access: anyUser, ok: 201,
			call: func(*testing.T, *matrix, scope) request {
				return request{path: "/api/v1/namespaces", body: map[string]string{"name": h.name("ns")}}
			}},
		{method: "PUT", route: "/api/v1/namespaces/:ns/members/:user", access: inNamespace, need: store.RoleAdmin, ok: 200,
			call: func(_ *testing.T, mx *matrix, sc scope) request {
				return request{path: "/api/v1/namespaces/" + mx.team(sc).ns + "/members/" + mx.member,
					body: map[string]string{"role": "read"}, hidden: nsHidden(mx, sc)}
			}},
		{method: "POST", route: "/api/v1/namespaces/:ns/repositories", access: inNamespace, need: store.RoleWrite, ok: 201,
			call: func(_ *testing.T, mx *matrix, sc scope) request {
				return request{path: "/api/v1/namespaces/" + mx.team(sc).ns + "/repositories",
					body: map[string]string{"name": h.name("repo")}, hidden: nsHidden(mx, sc)}
			}},
		{method: "GET", route: "/api/v1/namespaces/:ns/repositories", access: inNamespace, need: store.RoleRead, ok: 200,
			call: func(_ *testing.T, mx *matrix, sc scope) request {
				return request{path: "/api/v1/namespaces/" + mx.team(sc).ns + "/repositories", hidden: nsHidden(mx, sc)}
			}},
		// The gateway under test has no secret key to seal provider tokens with, so a granted
		// call that needs one ends at the 503 saying accounts are off.
		{method: "POST", route: "/api/v1/namespaces/:ns/accounts", access: inNamespace, need: store.RoleWrite, ok: 503,
			call: func(_ *testing.T, mx *matrix, sc scope) request {
				return request{path: "/api/v1/namespaces/" + mx.team(sc).ns + "/accounts",
					body: map[string]string{"provider": "github", "token": providerToken}, hidden: nsHidden(mx, sc)}
			}},
		{method: "GET", route: "/api/v1/namespaces/:ns/accounts", access: inNamespace, need: store.RoleRead, ok: 200,
			call: func(_ *testing.T, mx *matrix, sc scope) request {
				return request{path: "/api/v1/namespaces/" + mx.team(sc).ns + "/accounts", hidden: nsHidden(mx, sc)}
			}},
		{method: "DELETE", route: "/api/v1/namespaces/:ns/accounts/:account", access: inNamespace, need: store.RoleAdmin, ok: 204, cross: true,
			call: func(t *testing.T, mx *matrix, sc scope) request {
				// Each cell deletes an account of its own.
				acct := storeAccount(t, mx.ruleTeam(sc).ns)
				hidden := nsHidden(mx, sc)
				if sc == cross {
					hidden = acct.ID
				}
				return request{path: "/api/v1/namespaces/" + mx.team(sc).ns + "/accounts/" + acct.ID, hidden: hidden}
			}},
		{method: "PUT", route: "/api/v1/namespaces/:ns/accounts/:account", access: inNamespace, need: store.RoleAdmin, ok: 503, cross: true,
			call: func(_ *testing.T, mx *matrix, sc scope) request {
				acct := mx.accounts[mx.resourceScope(sc)]
				hidden := nsHidden(mx, sc)
				if sc == cross {
					hidden = acct.ID
				}
				return request{path: "/api/v1/namespaces/" + mx.team(sc).ns + "/accounts/" + acct.ID,
					body: map[string]string{"token": providerToken}, hidden: hidden}
			}},
		{method: "GET", route: "/api/v1/namespaces/:ns/accounts/:account/:what", access: inNamespace, need: store.RoleWrite, ok: 503, cross: true,
			call: func(_ *testing.T, mx *matrix, sc scope) request {
				acct := mx.accounts[mx.resourceScope(sc)]
				hidden := nsHidden(mx, sc)
				if sc == cross {
					hidden = acct.ID
				}
				return request{path: "/api/v1/namespaces/" + mx.team(sc).ns + "/accounts/" + acct.ID + "/owners", hidden: hidden}
			}},
		{method: "PUT", route: "/api/v1/namespaces/:ns/secrets/:name", access: inNamespace, need: store.RoleWrite, ok: 201,
			call: func(_ *testing.T, mx *matrix, sc scope) request {
				return request{path: "/api/v1/namespaces/" + mx.team(sc).ns + "/secrets/" + secretName(),
					body: map[string]string{"value": matrixSecretValue}, hidden: nsHidden(mx, sc)}
			}},
		{method: "GET", route: "/api/v1/namespaces/:ns/secrets", access: inNamespace, need: store.RoleRead, ok: 200,
			call: func(_ *testing.T, mx *matrix, sc scope) request {
				return request{path: "/api/v1/namespaces/" + mx.team(sc).ns + "/secrets", hidden: nsHidden(mx, sc)}
			}},
		{method: "DELETE", route: "/api/v1/namespaces/:ns/secrets/:name", access: inNamespace, need: store.RoleAdmin, ok: 204,
			call: func(t *testing.T, mx *matrix, sc scope) request {
				// Each cell deletes a secret of its own.
				return request{path: "/api/v1/namespaces/" + mx.team(sc).ns + "/secrets/" + storeSecret(t, mx.team(sc).ns),
					hidden: nsHidden(mx, sc)}
			}},
		{method: "POST", route: "/api/v1/namespaces/:ns/repositories/:repo/build-rules", access: inNamespace, need: store.RoleWrite, ok: 201,
			call: func(_ *testing.T, mx *matrix, sc scope) request {
				return request{path: mx.team(sc).rules(), body: githubRule(), hidden: nsHidden(mx, sc)}
			}},
		{method: "GET", route: "/api/v1/namespaces/:ns/repositories/:repo/build-rules", access: inNamespace, need: store.RoleRead, ok: 200,
			call: func(_ *testing.T, mx *matrix, sc scope) request {
				return request{path: mx.team(sc).rules(), hidden: nsHidden(mx, sc)}
			}},
		{method: "GET", route: "/api/v1/namespaces/:ns/repositories/:repo/build-rules/:id", access: inNamespace, need: store.RoleRead, ok: 200, cross: true,
			call: func(_ *testing.T, mx *matrix, sc scope) request {
				p, hidden := ruleURL(mx, sc)
				return request{path: p, hidden: hidden}
			}},
		{method: "PUT", route: "/api/v1/namespaces/:ns/repositories/:repo/build-rules/:id", access: inNamespace, need: store.RoleWrite, ok: 200, cross: true,
			call: func(_ *testing.T, mx *matrix, sc scope) request {
				p, hidden := ruleURL(mx, sc)
				return request{path: p, body: githubRule(), hidden: hidden}
			}},
		{method: "DELETE", route: "/api/v1/namespaces/:ns/repositories/:repo/build-rules/:id", access: inNamespace, need: store.RoleWrite, ok: 204, cross: true,
			call: func(t *testing.T, mx *matrix, sc scope) request {
				// Each cell deletes a rule of its own.
				r := h.storeRule(t, mx.ruleTeam(sc).ns, "github")
				hidden := nsHidden(mx, sc)
				if sc == cross {
					hidden = r.ID
				}
				return request{path: mx.team(sc).rule(r.ID), hidden: hidden}
			}},
		// Write, as saving a rule: without refs a preview reads the source through the account.
		{method: "POST", route: "/api/v1/namespaces/:ns/repositories/:repo/build-rules/preview", access: inNamespace, need: store.RoleWrite, ok: 200,
			call: func(_ *testing.T, mx *matrix, sc scope) request {
				body := githubRule()
				body["refs"] = map[string]any{"branches": []string{"main"}}
				return request{path: mx.team(sc).rules() + "/preview", body: body, hidden: nsHidden(mx, sc)}
			}},
		{method: "POST", route: "/api/v1/namespaces/:ns/repositories/:repo/build-rules/:id/builds", access: inNamespace, need: store.RoleWrite, ok: 202, cross: true,
			call: func(_ *testing.T, mx *matrix, sc scope) request {
				p, hidden := ruleURL(mx, sc)
				return request{path: p + "/builds", body: map[string]string{"branch": "main"}, hidden: hidden}
			}},
		{method: "GET", route: "/api/v1/namespaces/:ns/repositories/:repo/retention", access: inNamespace, need: store.RoleRead, ok: 200,
			call: func(t *testing.T, mx *matrix, sc scope) request {
				return request{path: retentionURL(t, mx, sc, true), hidden: nsHidden(mx, sc)}
			}},
		{method: "PUT", route: "/api/v1/namespaces/:ns/repositories/:repo/retention", access: inNamespace, need: store.RoleWrite, ok: 200,
			call: func(t *testing.T, mx *matrix, sc scope) request {
				return request{path: retentionURL(t, mx, sc, false), body: matrixRetention, hidden: nsHidden(mx, sc)}
			}},
		{method: "DELETE", route: "/api/v1/namespaces/:ns/repositories/:repo/retention", access: inNamespace, need: store.RoleWrite, ok: 204,
			call: func(t *testing.T, mx *matrix, sc scope) request {
				return request{path: retentionURL(t, mx, sc, true), hidden: nsHidden(mx, sc)}
			}},
		// Granted, the dry run asks the registry, which does not answer in these tests (as the
		// console's images tab shows): 502 is the answer past the role check.
		{method: "POST", route: "/api/v1/namespaces/:ns/repositories/:repo/retention/dry-run", access: inNamespace, need: store.RoleRead, ok: 502,
			call: func(t *testing.T, mx *matrix, sc scope) request {
				return request{path: retentionURL(t, mx, sc, false) + "/dry-run", body: matrixRetention, hidden: nsHidden(mx, sc)}
			}},
		{method: "GET", route: "/api/v1/namespaces/:ns/repositories/:repo/builds", access: inNamespace, need: store.RoleRead, ok: 200,
			call: func(_ *testing.T, mx *matrix, sc scope) request {
				return request{path: mx.team(sc).builds(), hidden: nsHidden(mx, sc)}
			}},
		{method: "GET", route: "/api/v1/builds/:id", access: inNamespace, need: store.RoleRead, ok: 200,
			call: func(_ *testing.T, mx *matrix, sc scope) request {
				return request{path: "/api/v1/builds/" + mx.builds[sc], hidden: buildHidden(sc, mx.builds[sc])}
			}},
		{method: "GET", route: "/api/v1/builds/:id/logs", access: inNamespace, need: store.RoleRead, ok: 200,
			call: func(_ *testing.T, mx *matrix, sc scope) request {
				return request{path: "/api/v1/builds/" + mx.builds[sc] + "/logs", hidden: buildHidden(sc, mx.builds[sc])}
			}},
		{method: "POST", route: "/api/v1/builds/:id/cancel", access: inNamespace, need: store.RoleWrite, ok: 202,
			call: func(t *testing.T, mx *matrix, sc scope) request {
				// Each cell cancels a build of its own.
				id := startBuild(t, mx.rules[sc])
				return request{path: "/api/v1/builds/" + id + "/cancel", hidden: buildHidden(sc, id)}
			}},
		{method: "POST", route: "/api/v1/builds/:id/rebuild", access: inNamespace, need: store.RoleWrite, ok: 202,
			call: func(_ *testing.T, mx *matrix, sc scope) request {
				return request{path: "/api/v1/builds/" + mx.builds[sc] + "/rebuild", hidden: buildHidden(sc, mx.builds[sc])}
			}},
		{method: "POST", route: "/api/v1/namespaces/:ns/notifications", access: inNamespace, need: store.RoleWrite, ok: 201,
			call: func(_ *testing.T, mx *matrix, sc scope) request {
				return request{path: "/api/v1/namespaces/" + mx.team(sc).ns + "/notifications",
					body: map[string]any{"url": "https://hooks.example/x", "events": []string{"failed"}}, hidden: nsHidden(mx, sc)}
			}},
		{method: "GET", route: "/api/v1/namespaces/:ns/notifications", access: inNamespace, need: store.RoleRead, ok: 200,
			call: func(_ *testing.T, mx *matrix, sc scope) request {
				return request{path: "/api/v1/namespaces/" + mx.team(sc).ns + "/notifications", hidden: nsHidden(mx, sc)}
			}},
		{method: "GET", route: "/api/v1/namespaces/:ns/notifications/:nid", access: inNamespace, need: store.RoleRead, ok: 200,
			call: func(t *testing.T, mx *matrix, sc scope) request {
				return request{path: "/api/v1/namespaces/" + mx.team(sc).ns + "/notifications/" + storeNotification(t, mx.team(sc).ns), hidden: nsHidden(mx, sc)}
			}},
		{method: "PUT", route: "/api/v1/namespaces/:ns/notifications/:nid", access: inNamespace, need: store.RoleWrite, ok: 200,
			call: func(t *testing.T, mx *matrix, sc scope) request {
				return request{path: "/api/v1/namespaces/" + mx.team(sc).ns + "/notifications/" + storeNotification(t, mx.team(sc).ns),
					body: map[string]any{"url": "https://hooks.example/y", "events": []string{"started"}, "format": "slack"}, hidden: nsHidden(mx, sc)}
			}},
		{method: "DELETE", route: "/api/v1/namespaces/:ns/notifications/:nid", access: inNamespace, need: store.RoleWrite, ok: 204,
			call: func(t *testing.T, mx *matrix, sc scope) request {
				return request{path: "/api/v1/namespaces/" + mx.team(sc).ns + "/notifications/" + storeNotification(t, mx.team(sc).ns), hidden: nsHidden(mx, sc)}
			}},
		{method: "POST", route: "/api/v1/namespaces/:ns/notifications/:nid/secret", access: inNamespace, need: store.RoleWrite, ok: 200,
			call: func(t *testing.T, mx *matrix, sc scope) request {
				return request{path: "/api/v1/namespaces/" + mx.team(sc).ns + "/notifications/" + storeNotification(t, mx.team(sc).ns) + "/secret", hidden: nsHidden(mx, sc)}
			}},
		{method: "POST", route: "/api/v1/namespaces/:ns/repositories/:repo/build-rules/:id/badge-token", access: inNamespace, need: store.RoleWrite, ok: 200, cross: true,
			call: func(_ *testing.T, mx *matrix, sc scope) request {
				p, hidden := ruleURL(mx, sc)
				return request{path: p + "/badge-token", hidden: hidden}
			}},
		// The token in the URL is the capability: anyone holding it reads the badge.
		{method: "GET", route: "/badges/:file", access: public, ok: 200,
			call: func(t *testing.T, mx *matrix, _ scope) request {
				token, err := h.store.BadgeToken(context.Background(), mx.rules[own].ID)
				if err != nil {
					t.Fatal(err)
				}
				return request{path: "/badges/" + token + ".svg"}
			}},
		{method: "POST", route: "/webhooks/github/:rule_id", access: hook,
			call: func(_ *testing.T, mx *matrix, sc scope) request {
				return request{path: "/webhooks/github/" + mx.rules[sc].ID, body: "{}", header: []string{"X-GitHub-Event", "push"}}
			}},
		// Basic auth only: a bearer token, even the site admin's, gets no registry token.
		{method: "GET", route: "/auth/registry/token", access: hook,
			call: func(_ *testing.T, mx *matrix, sc scope) request {
				return request{path: "/auth/registry/token?service=slipway-registry&scope=repository:" + mx.team(sc).ns + "/app:pull"}
			}},
		{method: "POST", route: "/webhooks/gitlab/:rule_id", access: hook,
			call: func(_ *testing.T, mx *matrix, sc scope) request {
				return request{path: "/webhooks/gitlab/" + mx.gitlab[sc].ID, body: "{}", header: []string{"X-Gitlab-Event", "Push Hook"}}
			}},
	}
}

// storeNotification adds a notification to namespace ns straight to the store and returns its
// id.
func storeNotification(t testing.TB, ns string) string {
	t.Helper()
	n, err := h.store.CreateNotification(context.Background(), store.Notification{Namespace: ns, URL: "https://hooks.example/n",
		Events: []string{"failed"}, Format: "json"})
	if err != nil {
		t.Fatal(err)
	}
	return n.ID
}

// providerToken is the provider token the matrix tries to connect; like every token, it must
// never reach the log.
const providerToken = "ghp_matrixTokenThatMustNeverBeLogged0000"

// storeAccount adds a connected account to namespace ns straight to the store.
func storeAccount(t testing.TB, ns string) store.Account {
	t.Helper()
	id, err := store.NewAccountID()
	if err != nil {
		t.Fatal(err)
	}
	a, err := h.store.CreateAccount(context.Background(), store.Account{
		ID: id, Namespace: ns, Provider: "github", Login: "octo", CreatedBy: "owner", TokenSealed: "sealed"})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// startBuild starts a build of branch main of rule r on the dev server's stack.
func startBuild(t testing.TB, r store.Rule) string {
	t.Helper()
	return h.startBuild(t, r)
}

type caller struct {
	name  string
	token string
	// role is the caller's role in the own namespace; site marks the site admin.
	role   store.Role
	site   bool
	authed bool
}

func callers() []caller {
	return []caller{
		{name: "no token"},
		{name: "bad token", token: "slw_" + strings.Repeat("x", 43)},
		{name: "non-member", token: h.outsider, authed: true},
		{name: "read", token: h.reader, role: store.RoleRead, authed: true},
		{name: "write", token: h.writer, role: store.RoleWrite, authed: true},
		{name: "admin", token: h.owner, role: store.RoleAdmin, authed: true},
		{name: "site admin", token: h.admin, site: true, authed: true},
		// An admin of the own namespace whom the site admin disabled.
		{name: "disabled", token: h.disabled},
	}
}

// freshUser makes a user, a member of ns with role when ns is set, and returns its name.
func freshUser(t testing.TB, ns string, role store.Role) string {
	t.Helper()
	name, _ := freshUserToken(t, ns, role)
	return name
}

func freshUserToken(t testing.TB, ns string, role store.Role) (string, string) {
	t.Helper()
	return h.freshUserToken(t, ns, role)
}

// want is the answer c must get from e in scope sc: 401 without a valid
// token, 404 where the caller has no role (names do not leak), 403 where the role is too weak.
func (e endpoint) want(c caller, sc scope) int {
	switch e.access {
	case public:
		return e.ok
	case hook:
		return 401
	}
	if !c.authed {
		return 401
	}
	if c.site && e.site != 0 {
		return e.site
	}
	switch e.access {
	case anyUser:
		return e.ok
	case siteOnly:
		if c.site {
			return e.ok
		}
		return 403
	}
	if c.site {
		if sc == cross {
			return 404
		}
		return e.ok
	}
	role := c.role
	if sc == other {
		role = ""
	}
	if role == "" {
		return 404
	}
	if !role.Allows(e.need) {
		return 403
	}
	if sc == cross {
		return 404
	}
	return e.ok
}

func (e endpoint) scopes() []scope {
	switch e.access {
	case public, anyUser, siteOnly:
		return []scope{own}
	}
	if e.cross {
		return []scope{own, other, cross}
	}
	return []scope{own, other}
}

// TestPermissionMatrix calls every route as every kind of caller, on its own namespace's
// resources and on another's.
func TestPermissionMatrix(t *testing.T) {
	h := devStack(t)
	eps := endpoints()

	// Every route has a row, and every row a route.
	rows := map[string]bool{}
	for _, e := range eps {
		rows[e.method+" "+e.route] = true
	}
	routes := map[string]bool{}
	for _, r := range apiRoutes(testServer(config.Config{}, nil, nil, nil, slog.New(slog.NewTextHandler(io.Discard, nil))).engine) {
		routes[r.Method+" "+r.Path] = true
		if !rows[r.Method+" "+r.Path] {
			t.Errorf("route %s %s has no row in the permission matrix", r.Method, r.Path)
		}
	}
	for k := range rows {
		if !routes[k] {
			t.Errorf("the permission matrix has a row for %s, which the router does not serve", k)
		}
	}

	mx := &matrix{
		teams:    map[scope]team{own: h.newTeam(t, "mx"), other: h.foreignTeam(t, "mx-other")},
		rules:    map[scope]store.Rule{},
		gitlab:   map[scope]store.Rule{},
		builds:   map[scope]string{},
		accounts: map[scope]store.Account{},
		member:   h.name("member"),
	}
	if _, _, err := h.store.CreateUser(context.Background(), mx.member, false); err != nil {
		t.Fatal(err)
	}
	// The disabled caller was an admin of the own namespace: disabling alone shuts it out.
	if err := h.store.SetMember(context.Background(), mx.teams[own].ns, "disabled", store.RoleAdmin); err != nil {
		t.Fatal(err)
	}
	if _, err := h.store.SetDisabled(context.Background(), "disabled", true); err != nil {
		t.Fatal(err)
	}
	for _, sc := range []scope{own, other} {
		mx.rules[sc] = h.storeRule(t, mx.teams[sc].ns, "github")
		mx.gitlab[sc] = h.storeRule(t, mx.teams[sc].ns, "gitlab")
		mx.builds[sc] = startBuild(t, mx.rules[sc])
		mx.accounts[sc] = storeAccount(t, mx.teams[sc].ns)
	}

	for _, e := range eps {
		t.Run(e.method+" "+e.route, func(t *testing.T) {
			for _, sc := range e.scopes() {
				for _, c := range callers() {
					t.Run(fmt.Sprintf("%s/%s", c.name, sc), func(t *testing.T) {
						req := e.call(t, mx, sc)
						token := c.token
						if e.fresh && c.authed && !c.site {
							ns := ""
							if c.role != "" {
								ns = mx.teams[own].ns
							}
							_, token = freshUserToken(t, ns, c.role)
						}
						r := h.do(t, e.method, req.path, token, req.body, req.header...)
						want := e.want(c, sc)
						if r.code != want {
							t.Fatalf("%s %s as %s: got %s, want %d", e.method, req.path, c.name, r, want)
						}
						if want >= 400 {
							msg := r.errorMessage(t)
							if want == 401 && e.access != hook && r.header.Get("WWW-Authenticate") == "" {
								t.Error("401 without WWW-Authenticate")
							}
							if want == 404 && req.hidden != "" {
								sameAsMissing(t, e, c, req, msg)
							}
						}
					})
				}
			}
		})
	}
}

// sameAsMissing checks a 404 for something the caller may not see reads exactly like the 404
// for something that does not exist.
func sameAsMissing(t *testing.T, e endpoint, c caller, req request, msg string) {
	t.Helper()
	ghost := "ghost-" + randomHex(4)
	if strings.HasPrefix(req.hidden, "r-") || strings.HasPrefix(req.hidden, "a-") {
		ghost = req.hidden[:2] + randomHex(6)
	}
	r := h.do(t, e.method, strings.ReplaceAll(req.path, req.hidden, ghost), c.token, req.body, req.header...)
	if r.code != 404 {
		t.Fatalf("with %s in place of %s: got %s, want 404", ghost, req.hidden, r)
	}
	if missing := strings.ReplaceAll(r.errorMessage(t), ghost, req.hidden); missing != msg {
		t.Errorf("the 404 for what the caller may not see differs from the 404 for what does not exist:\n%q\n%q", msg, missing)
	}
}

// matrixRetention is the retention policy the matrix saves and tries.
var matrixRetention = build.RetentionPolicy{Rules: []build.RetentionRule{{TagPattern: "*", KeepLast: 5}}}

// retentionURL is the retention URL of the "app" repository a scope reaches, with a saved
// policy when saved is set.
func retentionURL(t *testing.T, mx *matrix, sc scope, saved bool) string {
	t.Helper()
	ns := mx.team(sc).ns
	if saved {
		if _, err := h.store.SetRetention(context.Background(), ns, "app", matrixRetention); err != nil {
			t.Fatal(err)
		}
	}
	return "/api/v1/namespaces/" + ns + "/repositories/app/retention"
}
