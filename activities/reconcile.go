package activities

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"sort"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/slipway-dev/slipway/build"
	"github.com/slipway-dev/slipway/webhook"
)

// Reconciliation: a rule with reconcile_every has a Temporal Schedule that runs the reconcile
// workflow, which compares the heads of the rule's refs with the commits its builds built and
// starts a build, with trigger reconcile, for each head no webhook delivery brought. A ref the
// rule never built counts only once a run has seen the ref elsewhere before (or not at all):
// turning reconciliation on must not build every old branch and tag of a repository, while a
// tag pushed since the last run, whose delivery was lost, is built.

// maxReconciled bounds the builds one reconciliation starts; the next one starts the rest.
const maxReconciled = 20

// MissedHeadsInput is one reconciliation's question: the rule's, and the heads of its refs
// the previous run saw (nil on the first run).
type MissedHeadsInput struct {
	build.ReconcileInput
	Seen map[string]string `json:"seen,omitempty"`
}

// MissedHeads answers the heads to build, and every head of the rule's refs seen now (by
// RefKey), for the next run to compare with.
type MissedHeads struct {
	Missed []MissedHead      `json:"missed"`
	Seen   map[string]string `json:"seen"`
}

// RefKey names a ref in MissedHeads.Seen.
func RefKey(r build.Ref) string { return r.FullName() }

// MissedHead is a head of one of the rule's refs that no build of the rule built.
type MissedHead struct {
	Ref      build.Ref         `json:"ref"`
	Commit   string            `json:"commit"`
	Captures map[string]string `json:"captures,omitempty"`
	// Default says the ref is the repository's default branch.
	Default bool `json:"default,omitempty"`
}

// StartReconciledInput is one missed head to build under the rule of Reconcile.
type StartReconciledInput struct {
	Reconcile build.ReconcileInput `json:"reconcile"`
	Head      MissedHead           `json:"head"`
}

// remoteHeads are the refs of a repository as git ls-remote lists them.
type remoteHeads struct {
	defaultBranch string
	heads         []MissedHead
}

// MissedHeads lists the heads of the rule's refs (read with git ls-remote, with the rule's
// account when it has one) that no build of the rule built: on refs it built before, and on
// refs that are new or moved since the previous run saw them.
func (a *Activities) MissedHeads(ctx context.Context, in MissedHeadsInput) (MissedHeads, error) {
	out := MissedHeads{Missed: []MissedHead{}, Seen: map[string]string{}}
	if a.Temporal == nil {
		return out, errors.New("worker has no temporal client for reconciliation")
	}
	remote, err := a.cloneURL(in.Template.Source)
	if err != nil {
		return out, err
	}
	rh, err := a.lsRemote(ctx, in.Template.Namespace, in.Template.Source, remote)
	if err != nil {
		return out, err
	}
	for _, h := range rh.heads {
		d, ok := webhook.MatchRef(in.Triggers, h.Ref)
		if !ok || build.CheckCommit(h.Commit) != nil || !literalSafe(h.Ref.Name) {
			continue
		}
		if len(out.Missed) == maxReconciled {
			// The next run looks at the rest as if this one had not.
			if prev, ok := in.Seen[RefKey(h.Ref)]; ok {
				out.Seen[RefKey(h.Ref)] = prev
			}
			continue
		}
		out.Seen[RefKey(h.Ref)] = h.Commit
		q := fmt.Sprintf("WorkflowType = '%s' AND %s = '%s' AND %s = '%s'", build.WorkflowName,
			build.AttrRule.GetName(), in.Template.RuleID, build.AttrRef.GetName(), h.Ref.Name)
		built, err := a.countBuilds(ctx, q+fmt.Sprintf(" AND %s = '%s'", build.AttrCommit.GetName(), h.Commit))
		if err != nil {
			return out, err
		}
		if built > 0 {
			continue
		}
		if prev, seen := in.Seen[RefKey(h.Ref)]; in.Seen == nil || seen && prev == h.Commit {
			// Not new since the last look: only a ref the rule builds, its earlier builds
			// show, counts as missed.
			all, err := a.countBuilds(ctx, q)
			if err != nil {
				return out, err
			}
			if all == 0 {
				continue
			}
		}
		h.Captures = d.Captures
		h.Default = h.Ref.Type == build.RefBranch && h.Ref.Name == rh.defaultBranch
		out.Missed = append(out.Missed, h)
	}
	return out, nil
}

// literalSafe reports whether s can go into a visibility query between single quotes.
func literalSafe(s string) bool { return !strings.ContainsAny(s, `'\`) }

func (a *Activities) countBuilds(ctx context.Context, query string) (int64, error) {
	resp, err := a.Temporal.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{Query: query})
	if err != nil {
		return 0, fmt.Errorf("counting builds: %w", err)
	}
	return resp.GetCount(), nil
}

// lsRemote lists the branches and tags of remote (tags peeled to their commits) and its
// default branch.
func (a *Activities) lsRemote(ctx context.Context, ns string, src build.Source, remote string) (remoteHeads, error) {
	auth, err := a.gitAuth(ctx, ns, src, remote)
	if err != nil {
		return remoteHeads{}, err
	}
	dir, err := os.MkdirTemp("", "slipway-ls-remote-")
	if err != nil {
		return remoteHeads{}, err
	}
	defer os.RemoveAll(dir)
	g := gitRunner{dir: dir, env: auth}
	out, err := g.output(ctx, "ls-remote", "--symref", remote, "HEAD", "refs/heads/*", "refs/tags/*")
	if err != nil {
		return remoteHeads{}, classifyFetch(err, CloneInput{Source: src}, auth != nil)
	}
	return parseLsRemote(out), nil
}

// parseLsRemote reads git ls-remote --symref's answer.
func parseLsRemote(out string) remoteHeads {
	var rh remoteHeads
	heads := map[build.Ref]string{}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		left, name, ok := strings.Cut(sc.Text(), "\t")
		if !ok {
			continue
		}
		if target, ok := strings.CutPrefix(left, "ref: "); ok && name == "HEAD" {
			rh.defaultBranch = strings.TrimPrefix(target, "refs/heads/")
			continue
		}
		switch {
		case strings.HasPrefix(name, "refs/heads/"):
			heads[build.Ref{Type: build.RefBranch, Name: strings.TrimPrefix(name, "refs/heads/")}] = left
		case strings.HasSuffix(name, "^{}"):
			// The commit an annotated tag points at wins over the tag object.
			heads[build.Ref{Type: build.RefTag, Name: strings.TrimSuffix(strings.TrimPrefix(name, "refs/tags/"), "^{}")}] = left
		case strings.HasPrefix(name, "refs/tags/"):
			ref := build.Ref{Type: build.RefTag, Name: strings.TrimPrefix(name, "refs/tags/")}
			if _, peeled := heads[ref]; !peeled {
				heads[ref] = left
			}
		}
	}
	for ref, commit := range heads {
		rh.heads = append(rh.heads, MissedHead{Ref: ref, Commit: commit})
	}
	sort.Slice(rh.heads, func(i, j int) bool {
		x, y := rh.heads[i].Ref, rh.heads[j].Ref
		return x.Type < y.Type || x.Type == y.Type && x.Name < y.Name
	})
	return rh
}

// StartReconciled starts the build of one missed head under the id a webhook delivery of it
// would have used, so a delivery that arrives late starts nothing more. It returns the id.
func (a *Activities) StartReconciled(ctx context.Context, in StartReconciledInput) (string, error) {
	if a.Temporal == nil {
		return "", errors.New("worker has no temporal client for reconciliation")
	}
	h := in.Head
	b := in.Reconcile.Template
	b.Ref, b.Commit, b.Trigger, b.Captures = h.Ref, h.Commit, build.TriggerReconcile, h.Captures
	b.Latest = h.Default && in.Reconcile.TagLatest == "default_branch"
	if err := b.Validate(); err != nil {
		return "", build.ApplicationError(err)
	}
	kind := webhook.KindBranch
	if h.Ref.Type == build.RefTag {
		kind = webhook.KindTag
	}
	id := webhook.BuildID(b.RuleID, webhook.Event{Kind: kind, Ref: h.Ref.Name, Commit: h.Commit})
	_, err := a.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                       id,
		TaskQueue:                a.TaskQueue,
		WorkflowExecutionTimeout: b.TimeoutOrDefault() + 5*time.Minute,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		TypedSearchAttributes:    temporal.NewSearchAttributes(build.SearchAttributes(b)...),
		Memo: map[string]any{
			build.MemoImage:  b.Image,
			build.MemoLogURL: strings.TrimSuffix(a.LogURLBase, "/") + "/" + url.PathEscape(id) + "/logs",
		},
	}, build.WorkflowName, b)
	var dup *serviceerror.WorkflowExecutionAlreadyStarted
	if err != nil && !errors.As(err, &dup) {
		return "", fmt.Errorf("starting the build of %s %s at %s: %w", h.Ref.Type, h.Ref.Name, h.Commit, err)
	}
	return id, nil
}
