package activities

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/slipway-dev/slipway/build"
)

// statusPost is one PostStatus call a fakeAccounts received.
type statusPost struct {
	ref    build.AccountRef
	src    build.Source
	commit string
	st     build.CommitStatus
}

// fakeAccounts records the statuses posted through it and answers each with err.
type fakeAccounts struct {
	posts []statusPost
	err   error
}

func (f *fakeAccounts) Token(context.Context, build.AccountRef) (string, error) {
	return "", errors.New("no token in this test")
}

func (f *fakeAccounts) PostStatus(_ context.Context, ref build.AccountRef, src build.Source, commit string, st build.CommitStatus) error {
	f.posts = append(f.posts, statusPost{ref, src, commit, st})
	return f.err
}

func TestSetCommitStatus(t *testing.T) {
	const commit = "0123456789abcdef0123456789abcdef01234567"
	src := build.Source{Provider: "github", Owner: "octo", Repository: "hello", AccountID: "acct-1"}
	long := strings.Repeat("x", 200)
	tests := []struct {
		name    string
		in      StatusInput
		postErr error
		noAccts bool
		want    *statusPost // the call expected; nil means none
		errType string      // a non-retryable error's type; "" with wantErr means retryable
		wantErr bool
		// pageBase is the console's builds URL the worker knows; "" links to the API's record.
		pageBase string
	}{
		{name: "posted with the default context", in: StatusInput{Namespace: "team", Source: src, Commit: commit, State: build.StateSuccess, Description: "built"},
			want: &statusPost{build.AccountRef{ID: "acct-1", Namespace: "team", Provider: "github"}, src, commit,
				build.CommitStatus{State: build.StateSuccess, Description: "built", TargetURL: "http://gw/api/v1/builds/default-test-workflow-id", Context: "slipway"}}},
		{name: "the image repository's context and a long description cut", in: StatusInput{Namespace: "team", Source: src, Commit: commit,
			State: build.StateFailure, Description: long, Context: StatusContext("team", "app")},
			want: &statusPost{build.AccountRef{ID: "acct-1", Namespace: "team", Provider: "github"}, src, commit,
				build.CommitStatus{State: build.StateFailure, Description: long[:137] + "...", TargetURL: "http://gw/api/v1/builds/default-test-workflow-id",
					Context: "slipway/team/app"}}},
		{name: "linked to the console's build page", pageBase: "http://gw/builds/",
			in: StatusInput{Namespace: "team", Source: src, Commit: commit, State: build.StateSuccess, Description: "built"},
			want: &statusPost{build.AccountRef{ID: "acct-1", Namespace: "team", Provider: "github"}, src, commit,
				build.CommitStatus{State: build.StateSuccess, Description: "built", TargetURL: "http://gw/builds/default-test-workflow-id", Context: "slipway"}}},
		{name: "public source", in: StatusInput{Namespace: "team", Source: build.Source{Provider: "github", Owner: "octo", Repository: "hello"},
			Commit: commit, State: build.StatePending}},
		{name: "no accounts on the worker", noAccts: true, in: StatusInput{Namespace: "team", Source: src, Commit: commit, State: build.StatePending}},
		{name: "account of another namespace", postErr: fmt.Errorf("account acct-1: %w", build.ErrAccountNotBound),
			in: StatusInput{Namespace: "team", Source: src, Commit: commit, State: build.StateError}, errType: build.ErrTypeInvalidSource, wantErr: true},
		{name: "unknown account", postErr: fmt.Errorf("account acct-1: %w", build.ErrUnknownAccount),
			in: StatusInput{Namespace: "team", Source: src, Commit: commit, State: build.StateError}, errType: build.ErrTypeInvalidSource, wantErr: true},
		{name: "provider unavailable", postErr: errors.New("503 Service Unavailable"),
			in: StatusInput{Namespace: "team", Source: src, Commit: commit, State: build.StateSuccess}, wantErr: true},
	}
	var suite testsuite.WorkflowTestSuite
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			accts := &fakeAccounts{err: tt.postErr}
			act := &Activities{LogURLBase: "http://gw/api/v1/builds/", BuildPageBase: tt.pageBase, Accounts: accts}
			if tt.noAccts {
				act.Accounts = nil
			}
			env := suite.NewTestActivityEnvironment()
			env.RegisterActivity(act)
			_, err := env.ExecuteActivity(act.SetCommitStatus, tt.in)
			var appErr *temporal.ApplicationError
			switch {
			case !tt.wantErr && err != nil:
				t.Fatal(err)
			case tt.wantErr && err == nil:
				t.Fatal("no error")
			case tt.wantErr && tt.errType != "" && (!errors.As(err, &appErr) || appErr.Type() != tt.errType || !appErr.NonRetryable()):
				t.Fatalf("error = %v, want non-retryable %s", err, tt.errType)
			case tt.wantErr && tt.errType == "" && errors.As(err, &appErr) && appErr.NonRetryable():
				t.Fatalf("error = %v, want a retryable one", err)
			}
			if tt.want == nil {
				if len(accts.posts) != 0 && !tt.wantErr {
					t.Fatalf("posted %+v, want nothing", accts.posts)
				}
				return
			}
			if len(accts.posts) != 1 || accts.posts[0] != *tt.want {
				t.Fatalf("posted %+v, want %+v", accts.posts, *tt.want)
			}
		})
	}
}
