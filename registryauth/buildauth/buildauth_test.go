package buildauth_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moby/buildkit/session/auth"
	"golang.org/x/crypto/nacl/sign"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/slipway-dev/slipway/registryauth"
	"github.com/slipway-dev/slipway/registryauth/buildauth"
)

func TestProvider(t *testing.T) {
	ctx := context.Background()
	key, err := registryauth.LoadOrCreate(filepath.Join(t.TempDir(), registryauth.KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	const host = "127.0.0.1:5000"
	newProvider := func() *buildauth.Provider {
		p, err := buildauth.New(key, []string{host}, "build b-1", registryauth.BuildRules("team-b", "app"), nil)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	p := newProvider()

	tests := []struct {
		name    string
		host    string
		scopes  []string
		granted string // "" for a refusal
		denied  string // what the refusal must name
	}{
		{"own repository and its cache", host, []string{"repository:team-b/app:pull,push"}, "team-b/app:pull,push", ""},
		{"base image and own namespace", host, []string{"repository:library/busybox:pull", "repository:team-b/base:pull"}, "library/busybox:pull team-b/base:pull", ""},
		{"another namespace", host, []string{"repository:team-a/secret:pull"}, "", "may not pull 127.0.0.1:5000/team-a/secret"},
		{"push to a sibling repository", host, []string{"repository:team-b/other:pull,push"}, "", "may not push 127.0.0.1:5000/team-b/other"},
		{"push mounting a blob from another namespace", host, []string{"repository:team-b/app:pull,push", "repository:team-a/secret:pull"}, "team-b/app:pull,push", ""},
		{"push mounting from a sibling repository", host, []string{"repository:team-b/app:pull,push", "repository:team-b/other:pull"}, "team-b/app:pull,push team-b/other:pull", ""},
		{"pull of another namespace beside a pull of its own", host, []string{"repository:team-b/app:pull", "repository:team-a/secret:pull"}, "", "may not pull 127.0.0.1:5000/team-a/secret"},
		{"push to a sibling repository beside its own", host, []string{"repository:team-b/app:pull,push", "repository:team-b/other:pull,push"}, "", "may not push 127.0.0.1:5000/team-b/other"},
		{"another registry without a fallback", "registry.example:443", []string{"repository:team-b/app:pull"}, "", "no credentials"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := p.FetchToken(ctx, &auth.FetchTokenRequest{Host: tt.host, Scopes: tt.scopes})
			if tt.granted == "" {
				if status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), tt.denied) {
					t.Fatalf("got %v, want PermissionDenied naming %q", err, tt.denied)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			access, subject, err := key.Verify(resp.Token)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, a := range access {
				got = append(got, a.Name+":"+strings.Join(a.Actions, ","))
			}
			if strings.Join(got, " ") != tt.granted || subject != "build b-1" || resp.ExpiresIn <= 0 {
				t.Fatalf("granted %v to %q for %ds, want %s", got, subject, resp.ExpiresIn, tt.granted)
			}
		})
	}

	// BuildKit links another session to a fetcher (and its cached tokens) only when that session
	// proves the fetcher's authority: each build's must be its own.
	t.Run("each build has its own token authority", func(t *testing.T) {
		q := newProvider()
		pk, err := p.GetTokenAuthority(ctx, &auth.GetTokenAuthorityRequest{Host: host})
		if err != nil || len(pk.PublicKey) != 32 {
			t.Fatalf("authority: %v %v", pk, err)
		}
		var pub [32]byte
		copy(pub[:], pk.PublicKey)
		payload := []byte("buildkit's challenge")
		own, err := p.VerifyTokenAuthority(ctx, &auth.VerifyTokenAuthorityRequest{Host: host, Payload: payload})
		if err != nil {
			t.Fatal(err)
		}
		if got, ok := sign.Open(nil, own.Signed, &pub); !ok || string(got) != string(payload) {
			t.Fatal("the provider does not prove its own authority")
		}
		other, err := q.VerifyTokenAuthority(ctx, &auth.VerifyTokenAuthorityRequest{Host: host, Payload: payload})
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := sign.Open(nil, other.Signed, &pub); ok {
			t.Fatal("another build's session proves this build's authority: it would share its tokens")
		}
	})
}
