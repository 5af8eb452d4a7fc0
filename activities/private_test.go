package activities

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/slipway-dev/slipway/build"
	"github.com/slipway-dev/slipway/internal/testing/gitserver"
	"github.com/slipway-dev/slipway/logstore"
)

// account is a connected account as a fake store keeps it.
type account struct{ namespace, provider, token string }

// tokens is an Accounts over fixed accounts; it keeps the binding as the real one does.
type tokens map[string]account

func (t tokens) Token(_ context.Context, ref build.AccountRef) (string, error) {
	a, ok := t[ref.ID]
	if !ok {
		return "", fmt.Errorf("account %s: %w", ref.ID, build.ErrUnknownAccount)
	}
	if err := ref.Check(a.namespace, a.provider); err != nil {
		return "", err
	}
	return a.token, nil
}

func (t tokens) PostStatus(context.Context, build.AccountRef, build.Source, string, build.CommitStatus) error {
	return nil
}

func TestClonePrivate(t *testing.T) {
	const secret = "ghp_s3cr3tTOKENvalue0123456789"
	srv := gitserver.StartAuth(t, "x-access-token", secret)
	repo := srv.NewRepo(t, "octo", "private")
	head := repo.Commit("main", map[string]string{"Dockerfile": "FROM busybox\n"})
	logDir := t.TempDir()
	logs, err := logstore.New(logDir)
	if err != nil {
		t.Fatal(err)
	}
	act := &Activities{
		WorkspaceRoot: t.TempDir(), Logs: logs, LogURLBase: "http://gw/api/v1/builds",
		CloneBaseURLs: map[string]string{"github": srv.URL},
		Accounts: tokens{"a-good": {"team", "github", secret}, "a-revoked": {"team", "github", "ghp_revoked"},
			"a-other": {"other", "github", secret}, "a-lab": {"team", "gitlab", secret}},
	}
	var suite testsuite.WorkflowTestSuite
	tests := []struct {
		name, account string
		withAccounts  bool
		wantType      string
		wantMsg       string
	}{
		{"with the account's token", "a-good", true, "", ""},
		{"no account", "", true, build.ErrTypeInvalidSource, "refused access"},
		{"revoked token", "a-revoked", true, build.ErrTypeInvalidSource, "refused access"},
		{"removed account", "a-gone", true, build.ErrTypeInvalidSource, "no longer exists"},
		{"worker without accounts", "a-good", false, build.ErrTypeInvalidSource, "SLIPWAY_SECRET_KEY"},
		{"account of another namespace", "a-other", true, build.ErrTypeInvalidSource, `not an account of namespace "team"`},
		{"account of another provider", "a-lab", true, build.ErrTypeInvalidSource, "is a gitlab account"},
	}
	for _, mode := range cloneModes {
		t.Run(mode.name, func(t *testing.T) {
			act.Sources = mode.sources(t)
			for i, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					a := *act
					if !tt.withAccounts {
						a.Accounts = nil
					}
					env := suite.NewTestActivityEnvironment()
					env.RegisterActivity(&a)
					val, err := env.ExecuteActivity(a.Clone, CloneInput{
						Workspace: fmt.Sprintf("%s-p%d", mode.name, i), Namespace: "team",
						Source: build.Source{Provider: "github", Owner: "octo", Repository: "private", AccountID: tt.account},
						Ref:    build.Ref{Type: build.RefBranch, Name: "main"},
					})
					if err != nil && strings.Contains(err.Error(), secret) {
						t.Fatalf("error shows the token: %v", err)
					}
					if tt.wantType != "" {
						var appErr *temporal.ApplicationError
						if !errors.As(err, &appErr) || appErr.Type() != tt.wantType || !strings.Contains(appErr.Message(), tt.wantMsg) {
							t.Fatalf("error = %v, want %s containing %q", err, tt.wantType, tt.wantMsg)
						}
						return
					}
					if err != nil {
						t.Fatal(err)
					}
					var res CloneResult
					if err := val.Get(&res); err != nil || res.Commit != head {
						t.Fatalf("commit %s, %v; want %s", res.Commit, err, head)
					}
				})
			}
			// The mirror and the slots the clones fetched into hold no token either.
			if act.Sources != nil {
				if hit := grepTree(t, act.Sources.Dir, secret); hit != "" {
					t.Fatalf("token found in %s", hit)
				}
			}
		})
	}
	// Nothing the clones wrote (logs, checkouts with their .git/config) holds the token.
	for _, dir := range []string{logDir, act.WorkspaceRoot} {
		if hit := grepTree(t, dir, secret); hit != "" {
			t.Fatalf("token found in %s", hit)
		}
	}
}

// grepTree returns the first file under dir that contains s.
func grepTree(t *testing.T, dir, s string) string {
	t.Helper()
	var hit string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || hit != "" || !d.Type().IsRegular() {
			return err
		}
		b, err := os.ReadFile(p)
		if err == nil && strings.Contains(string(b), s) {
			hit = p
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return hit
}
