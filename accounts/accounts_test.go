package accounts_test

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slipway-dev/slipway/accounts"
	"github.com/slipway-dev/slipway/build"
	"github.com/slipway-dev/slipway/internal/testing/providertest"
	"github.com/slipway-dev/slipway/secretbox"
	"github.com/slipway-dev/slipway/store"
)

// TestResolverKeepsAccountsBound connects a GitHub account to namespace "team" and uses it as
// builds of other namespaces and providers would: only the team's own GitHub build gets the
// token, and only its statuses reach the configured API.
func TestResolverKeepsAccountsBound(t *testing.T) {
	ctx := context.Background()
	const token = "ghp_RESOLVERtoken0123456789abcdef"
	const sha = "0123456789abcdef0123456789abcdef01234567"
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "slipway.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	alice, _, err := st.CreateUser(ctx, "alice", false)
	if err != nil {
		t.Fatal(err)
	}
	for _, ns := range []string{"team", "other"} {
		if _, err := st.CreateNamespace(ctx, ns, alice.ID); err != nil {
			t.Fatal(err)
		}
	}
	box, err := secretbox.New(bytes.Repeat([]byte{3}, secretbox.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	api := providertest.NewGitHub(t)
	api.AddUser("octo", token)
	api.AddRepo(providertest.Repo{Owner: "octo", Name: "app", Private: true,
		Branches: []providertest.Ref{{Name: "main", Commit: sha}}})
	r := accounts.New(st, box, map[string]string{"github": api.URL, "gitlab": "http://127.0.0.1:1"})
	acct, err := r.Connect(ctx, "team", "github", token, "alice")
	if err != nil {
		t.Fatal(err)
	}

	src := build.Source{Provider: "github", Owner: "octo", Repository: "app", AccountID: acct.ID}
	tests := []struct {
		name string
		ref  build.AccountRef
		src  build.Source
		// wantToken and wantStatus are the errors Token and PostStatus wrap; nil means the
		// token is handed out or the status posted.
		wantToken, wantStatus error
	}{
		{"the account's own namespace and provider", build.AccountRef{ID: acct.ID, Namespace: "team", Provider: "github"}, src, nil, nil},
		{"a build of another namespace", build.AccountRef{ID: acct.ID, Namespace: "other", Provider: "github"}, src,
			build.ErrAccountNotBound, build.ErrAccountNotBound},
		{"a build without a namespace", build.AccountRef{ID: acct.ID, Provider: "github"}, src,
			build.ErrAccountNotBound, build.ErrAccountNotBound},
		{"a source on another provider", build.AccountRef{ID: acct.ID, Namespace: "team", Provider: "gitlab"},
			build.Source{Provider: "gitlab", Owner: "octo", Repository: "app"}, build.ErrAccountNotBound, build.ErrAccountNotBound},
		{"a status for another provider's source", build.AccountRef{ID: acct.ID, Namespace: "team", Provider: "github"},
			build.Source{Provider: "gitlab", Owner: "octo", Repository: "app"}, nil, build.ErrAccountNotBound},
		{"an unknown account", build.AccountRef{ID: "a-gone", Namespace: "team", Provider: "github"}, src,
			build.ErrUnknownAccount, build.ErrUnknownAccount},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(api.Statuses("octo", "app", sha))
			got, terr := r.Token(ctx, tt.ref)
			serr := r.PostStatus(ctx, tt.ref, tt.src, sha, build.CommitStatus{State: "success", Context: "slipway"})
			after := len(api.Statuses("octo", "app", sha))
			if tt.wantToken == nil && (terr != nil || got != token) {
				t.Fatalf("Token: %v", terr)
			}
			if tt.wantToken != nil && (got != "" || !errors.Is(terr, tt.wantToken)) {
				t.Fatalf("Token = %q, %v; want an error wrapping %v", got, terr, tt.wantToken)
			}
			if tt.wantStatus == nil && (serr != nil || after != before+1) {
				t.Fatalf("PostStatus: %v; statuses %d -> %d", serr, before, after)
			}
			if tt.wantStatus != nil && (!errors.Is(serr, tt.wantStatus) || after != before) {
				t.Fatalf("PostStatus = %v, want an error wrapping %v; statuses %d -> %d", serr, tt.wantStatus, before, after)
			}
			for _, err := range []error{terr, serr} {
				if err != nil && strings.Contains(err.Error(), token) {
					t.Fatalf("error shows the token: %v", err)
				}
			}
		})
	}
}
