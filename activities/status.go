package activities

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"go.temporal.io/sdk/temporal"
)

// Commit status states, as GitHub names them; GitLab's are mapped by the provider client.
const (
	StatusPending = "pending"
	StatusSuccess = "success"
	StatusFailure = "failure"
	StatusError   = "error"
)

// CommitStatus is what a build reports on the commit it built.
type CommitStatus struct {
	State       string `json:"state"`
	Description string `json:"description"`
	// TargetURL links to the build record.
	TargetURL string `json:"target_url"`
	// Context tells Slipway's status apart from other checks on the commit.
	Context string `json:"context"`
}

// StatusInput asks for one commit status.
type StatusInput struct {
	// Namespace is the build's namespace: the source's account must belong to it.
	Namespace   string `json:"namespace"`
	Source      Source `json:"source"`
	Commit      string `json:"commit"`
	State       string `json:"state"`
	Description string `json:"description"`
}

// SetCommitStatus posts the build's state on its commit through the rule's account, linking
// to the build record. The workflow never fails a build because of it.
func (a *Activities) SetCommitStatus(ctx context.Context, in StatusInput) error {
	if in.Source.AccountID == "" || a.Accounts == nil {
		return nil
	}
	id := activityWorkflowID(ctx)
	st := CommitStatus{
		State:       in.State,
		Description: truncate(in.Description, 140),
		TargetURL:   strings.TrimSuffix(a.LogURLBase, "/") + "/" + url.PathEscape(id),
		Context:     "slipway",
	}
	ref := AccountRef{ID: in.Source.AccountID, Namespace: in.Namespace, Provider: in.Source.Provider}
	if err := a.Accounts.PostStatus(ctx, ref, in.Source, in.Commit, st); err != nil {
		if errors.Is(err, ErrAccountNotBound) || errors.Is(err, ErrUnknownAccount) {
			return temporal.NewNonRetryableApplicationError(
				fmt.Sprintf("posting %s status on %s: %v", in.State, in.Commit, err), ErrTypeInvalidSource, nil)
		}
		return fmt.Errorf("posting %s status on %s: %w", in.State, in.Commit, err)
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-3] + "..."
}
