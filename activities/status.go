package activities

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"go.temporal.io/sdk/temporal"

	"github.com/slipway-dev/slipway/build"
)

// StatusInput asks for one commit status.
type StatusInput struct {
	// Namespace is the build's namespace: the source's account must belong to it.
	Namespace   string       `json:"namespace"`
	Source      build.Source `json:"source"`
	Commit      string       `json:"commit"`
	State       string       `json:"state"`
	Description string       `json:"description"`
	// Context names the check on the commit (StatusContext); empty, in builds started before
	// it was set, means plain "slipway".
	Context string `json:"context,omitempty"`
}

// StatusContext is the commit status context of builds into image repository ns/repo. Each
// image repository has its own, so two rules on one source (one per image) do not overwrite
// each other's status, and a rule of one repository cannot mark another's check green.
func StatusContext(ns, repo string) string {
	return "slipway/" + ns + "/" + repo
}

// SetCommitStatus posts the build's state on its commit through the rule's account, linking
// to the build record. The workflow never fails a build because of it.
func (a *Activities) SetCommitStatus(ctx context.Context, in StatusInput) error {
	if in.Source.AccountID == "" || a.Accounts == nil {
		return nil
	}
	id := activityWorkflowID(ctx)
	name := in.Context
	if name == "" {
		name = "slipway"
	}
	target := a.BuildPageBase
	if target == "" {
		target = a.LogURLBase
	}
	st := build.CommitStatus{
		State:       in.State,
		Description: truncate(in.Description, 140),
		TargetURL:   strings.TrimSuffix(target, "/") + "/" + url.PathEscape(id),
		Context:     name,
	}
	ref := build.AccountRef{ID: in.Source.AccountID, Namespace: in.Namespace, Provider: in.Source.Provider}
	if err := a.Accounts.PostStatus(ctx, ref, in.Source, in.Commit, st); err != nil {
		if errors.Is(err, build.ErrAccountNotBound) || errors.Is(err, build.ErrUnknownAccount) {
			return temporal.NewNonRetryableApplicationError(
				fmt.Sprintf("posting %s status on %s: %v", in.State, in.Commit, err), build.ErrTypeInvalidSource, nil)
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
