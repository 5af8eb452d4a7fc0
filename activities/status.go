package activities

import (
	"context"
	"fmt"
	"net/url"
	"strings"
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
	if err := a.Accounts.PostStatus(ctx, in.Source.AccountID, in.Source, in.Commit, st); err != nil {
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
