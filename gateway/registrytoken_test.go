package gateway

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/registryauth"
)

// TestRegistryToken asks the token service as each kind of user and reads what the JWT grants.
func TestRegistryToken(t *testing.T) {
	t.Parallel()
	h := mockStack(t)
	key, err := registryauth.LoadOrCreate(filepath.Join(t.TempDir(), registryauth.KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	h.api.registryKey = key
	t.Cleanup(func() { h.api.registryKey = nil })
	team := h.newTeam(t, "rt")
	other := h.foreignTeam(t, "rt-other")
	own := "repository:" + team.ns + "/app:pull,push"
	foreign := "repository:" + other.ns + "/app:pull,push"
	base := "repository:library/busybox:pull,push"

	ask := func(t *testing.T, user, token string, scopes ...string) (int, map[string]string) {
		t.Helper()
		q := url.Values{"service": {registryauth.Service}, "scope": scopes}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, h.srv.URL+registryauth.TokenPath+"?"+q.Encode(), nil)
		if user != "" || token != "" {
			req.SetBasicAuth(user, token)
		}
		resp, err := h.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return resp.StatusCode, nil
		}
		var body registryauth.Response
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
			t.Fatal(err)
		}
		if body.Token == "" || body.Token != body.AccessToken || body.ExpiresIn <= 0 || body.IssuedAt == "" {
			t.Fatalf("answer %+v", body)
		}
		access, subject, err := key.Verify(body.Token)
		if err != nil {
			t.Fatal(err)
		}
		if subject != user {
			t.Errorf("subject %q, want %q", subject, user)
		}
		got := map[string]string{}
		for _, a := range access {
			got[a.Name] = strings.Join(a.Actions, ",")
		}
		return http.StatusOK, got
	}

	tests := []struct {
		name, user, token string
		want              map[string]string // nil: a refusal
		code              int
	}{
		{"read member pulls", "reader", h.reader, map[string]string{team.ns + "/app": "pull", "library/busybox": "pull"}, 200},
		{"write member pushes", "writer", h.writer, map[string]string{team.ns + "/app": "pull,push", "library/busybox": "pull"}, 200},
		{"namespace admin pushes", "owner", h.owner, map[string]string{team.ns + "/app": "pull,push", "library/busybox": "pull"}, 200},
		{"non-member gets the base images only", "outsider", h.outsider, map[string]string{"library/busybox": "pull"}, 200},
		{"site admin gets everything", "admin", h.admin, map[string]string{team.ns + "/app": "pull,push", other.ns + "/app": "pull,push", "library/busybox": "pull,push"}, 200},
		{"no credentials", "", "", nil, 401},
		{"wrong user name for the token", "writer", h.reader, nil, 401},
		{"bad token", "reader", "slw_" + strings.Repeat("x", 43), nil, 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, got := ask(t, tt.user, tt.token, own, foreign, base)
			if code != tt.code {
				t.Fatalf("status %d, want %d", code, tt.code)
			}
			if tt.want == nil {
				return
			}
			if len(got) != len(tt.want) {
				t.Errorf("granted %v, want %v", got, tt.want)
			}
			for repo, actions := range tt.want {
				if got[repo] != actions {
					t.Errorf("%s: granted %q, want %q (all: %v)", repo, got[repo], actions, got)
				}
			}
		})
	}
	t.Run("login without scope grants nothing", func(t *testing.T) {
		code, got := ask(t, "writer", h.writer)
		if code != 200 || len(got) != 0 {
			t.Fatalf("status %d, granted %v", code, got)
		}
	})
	t.Run("the namespace library is reserved", func(t *testing.T) {
		expect(t, h.do(t, "POST", "/api/v1/namespaces", h.writer, map[string]string{"name": "library"}), 400, "creating namespace library")
	})
}
