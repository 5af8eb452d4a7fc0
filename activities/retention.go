package activities

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/slipway-dev/slipway/build"
	"github.com/slipway-dev/slipway/registryauth"
	"github.com/slipway-dev/slipway/retention"
)

// ErrNoRetentionPolicy is what a RetentionSource wraps for a repository without a policy
// (removed, or the repository deleted, while its Schedule still ran).
var ErrNoRetentionPolicy = errors.New("no retention policy")

// RetentionTarget is what a retention run applies: the repository's image, its policy and
// its rules as they are when it runs.
type RetentionTarget struct {
	Image  string
	Policy build.RetentionPolicy
	Rules  []retention.RuleView
}

// RetentionSource reads a repository's retention policy and rules. The worker's reads the
// gateway's database; reading at run time rather than from the Schedule's input means a rule
// that starts tagging latest protects it from the next run on.
type RetentionSource interface {
	RetentionTarget(ctx context.Context, namespace, repository string) (RetentionTarget, error)
}

// ErrTypeNoRetentionSource says the worker cannot read retention policies (no database).
const ErrTypeNoRetentionSource = "NoRetentionSource"

// maxRetentionDeletes bounds the tags one run deletes, keeping its result (which lists them)
// far below Temporal's payload limit; the next run deletes the rest.
const maxRetentionDeletes = 1000

// retentionTokenTTL bounds the registry token of a retention run.
const retentionTokenTTL = 30 * time.Minute

// RetentionResult is a retention run's outcome: what it deleted and why, what it planned but
// left (the repository changed since the plan), and how many tags it kept.
type RetentionResult struct {
	Image     string               `json:"image"`
	Policy    bool                 `json:"policy"`
	At        time.Time            `json:"at"`
	Deleted   []retention.Decision `json:"deleted"`
	Manifests []string             `json:"manifests"`
	Skipped   []retention.Decision `json:"skipped"`
	Kept      int                  `json:"kept"`
	// Remaining counts planned deletions left to the next run (over maxRetentionDeletes).
	Remaining int `json:"remaining,omitempty"`
}

// ApplyRetention applies a repository's retention policy: it reads the tags, decides as the
// gateway's dry run does (retention.Evaluate) and deletes. A retry plans again, so it deletes
// nothing twice and nothing pushed since. A repository without a policy deletes nothing.
func (a *Activities) ApplyRetention(ctx context.Context, in build.RetentionInput) (RetentionResult, error) {
	if a.Retention == nil {
		return RetentionResult{}, temporal.NewNonRetryableApplicationError(
			"this worker reads no retention policies: it has no database", ErrTypeNoRetentionSource, nil)
	}
	t, err := a.Retention.RetentionTarget(ctx, in.Namespace, in.Repository)
	if errors.Is(err, ErrNoRetentionPolicy) {
		return RetentionResult{Deleted: []retention.Decision{}, Manifests: []string{}, Skipped: []retention.Decision{}}, nil
	}
	if err != nil {
		return RetentionResult{}, fmt.Errorf("reading the retention policy of %s/%s: %w", in.Namespace, in.Repository, err)
	}
	repo, err := name.NewRepository(t.Image)
	if err != nil {
		return RetentionResult{}, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("image %q: %v", t.Image, err), build.ErrTypeInvalidImage, nil)
	}
	auth, err := a.retentionAuth(repo)
	if err != nil {
		return RetentionResult{}, err
	}
	now := time.Now().UTC()
	plan, err := retention.Evaluate(ctx, repo, t.Policy, t.Rules, now, auth)
	if err != nil {
		return RetentionResult{}, fmt.Errorf("planning the retention of %s: %w", repo, err)
	}
	res := RetentionResult{Image: repo.String(), Policy: true, At: now, Kept: len(plan.Keep)}
	if len(plan.Delete) > maxRetentionDeletes {
		res.Remaining = len(plan.Delete) - maxRetentionDeletes
		plan.Delete = plan.Delete[:maxRetentionDeletes]
	}
	activity.RecordHeartbeat(ctx, len(plan.Delete))
	done, err := retention.Apply(ctx, repo, plan, auth)
	res.Manifests, res.Skipped = done.Manifests, done.Skipped
	deleted := map[string]bool{}
	for _, tag := range done.Tags {
		deleted[tag] = true
	}
	res.Deleted = []retention.Decision{}
	for _, d := range plan.Delete {
		if deleted[d.Name] {
			res.Deleted = append(res.Deleted, d)
		}
	}
	if err != nil {
		return res, fmt.Errorf("deleting from %s: %w", repo, err)
	}
	return res, nil
}

// retentionAuth authenticates a run to repo's registry: on the local registry with a token for
// pull and delete on repo alone (minted by the worker, so no credential is an input), elsewhere
// from the keychain.
func (a *Activities) retentionAuth(repo name.Repository) (remote.Option, error) {
	if !a.localRegistry(repo.RegistryStr()) {
		return remote.WithAuthFromKeychain(a.Keychain), nil
	}
	ra, err := registryauth.RepositoryAuth(a.RegistryKey, "retention "+repo.RepositoryStr(),
		[]registryauth.Access{{Type: "repository", Name: repo.RepositoryStr(), Actions: []string{registryauth.Pull, "delete"}}}, retentionTokenTTL)
	if err != nil {
		return nil, err
	}
	return remote.WithAuth(ra), nil
}
