package registryauth_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/slipway-dev/slipway/registryauth"
)

func TestRules(t *testing.T) {
	roles := map[string]string{"reading": "read", "writing": "write", "owning": "admin"}
	user := registryauth.UserRules(false, func(ns string) string { return roles[ns] })
	admin := registryauth.UserRules(true, func(string) string { return "" })
	build := registryauth.BuildRules("team-b", "app")
	tests := []struct {
		name  string
		rules registryauth.Rules
		scope string
		want  string // granted actions, comma-joined; "" for nothing
	}{
		{"read member pulls", user, "repository:reading/app:pull,push", "pull"},
		{"write member pushes", user, "repository:writing/app:pull,push", "pull,push"},
		{"admin member pushes, no delete", user, "repository:owning/app:pull,push,delete", "pull,push"},
		{"non-member gets nothing", user, "repository:other/app:pull", ""},
		{"base images pull for anyone", user, "repository:library/busybox:pull,push", "pull"},
		{"a one-segment name is nobody's", user, "repository:busybox:pull", ""},
		{"catalog is not for users", user, "registry:catalog:*", ""},
		{"site admin gets all", admin, "repository:other/app:pull,push,delete", "pull,push,delete"},
		{"site admin reads the catalog", admin, "registry:catalog:*", "*"},
		{"build pushes its own repository", build, "repository:team-b/app:pull,push", "pull,push"},
		{"build pushes its cache below its repository", build, "repository:team-b/app/cache:pull,push", "pull,push"},
		{"build pulls in its namespace", build, "repository:team-b/base:pull,push", "pull"},
		{"build pulls base images", build, "repository:library/busybox:pull,push", "pull"},
		{"build of team-b cannot pull team-a", build, "repository:team-a/app:pull", ""},
		{"prefix is no namespace", build, "repository:team-bx/app:pull", ""},
		{"prefix is no repository", build, "repository:team-b/app2:push", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := registryauth.ParseScopes([]string{tt.scope})
			if err != nil {
				t.Fatal(err)
			}
			granted := registryauth.Grant(req, tt.rules)
			got := ""
			if len(granted) == 1 {
				got = strings.Join(granted[0].Actions, ",")
			} else if len(granted) > 1 {
				t.Fatalf("granted %v for one scope", granted)
			}
			if got != tt.want {
				t.Errorf("%s: granted %q, want %q", tt.scope, got, tt.want)
			}
			if denied := registryauth.Denied(req, granted); (len(denied) == 0) != (got == strings.Join(req[0].Actions, ",")) {
				t.Errorf("Denied(%v, %v) = %v", req, granted, denied)
			}
		})
	}
}

func TestParseScopes(t *testing.T) {
	got, err := registryauth.ParseScopes([]string{"repository:a/b:pull repository:a/b:push", "repository:host:5000/x:pull"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Name != "a/b" || !slices.Equal(got[0].Actions, []string{"pull", "push"}) || got[1].Name != "host:5000/x" {
		t.Fatalf("got %+v", got)
	}
	for _, bad := range []string{"repository", "repository:a/b", ":a:pull", "repository::pull"} {
		if _, err := registryauth.ParseScopes([]string{bad}); err == nil {
			t.Errorf("ParseScopes(%q) took it", bad)
		}
	}
}
