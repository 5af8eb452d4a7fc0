package build

import (
	"time"

	"go.temporal.io/sdk/temporal"
)

// WorkflowName is the workflow type ops start with the temporal CLI.
const WorkflowName = "workflow_docker_builder"

// DefaultTaskQueue is the task queue workers poll unless configured otherwise.
const DefaultTaskQueue = "docker-builder"

// StatusQuery is the query that returns a build's Status.
const StatusQuery = "status"

// DefaultTimeout bounds a build that names no timeout of its own.
const DefaultTimeout = 60 * time.Minute

// Triggers of a build, as recorded in the BuildTrigger search attribute.
const (
	TriggerPush   = "push"
	TriggerTag    = "tag"
	TriggerManual = "manual"
	// TriggerReconcile is a build a rule's reconciliation started for a head no delivery
	// brought.
	TriggerReconcile = "reconcile"
)

// TriggerNames lists every trigger, for metrics that export each at zero.
func TriggerNames() []string {
	return []string{TriggerPush, TriggerTag, TriggerManual, TriggerReconcile}
}

// Provider names, as in a source's provider and a webhook's URL.
const (
	ProviderGitHub = "github"
	ProviderGitLab = "gitlab"
)

// ProviderNames lists every provider Slipway builds from.
func ProviderNames() []string {
	return []string{ProviderGitHub, ProviderGitLab}
}

// Step names, in the order a build runs them.
const (
	StepClone   = "clone"
	StepResolve = "resolve_dockerfile"
	StepTag     = "render_tag"
	StepBuild   = "build"
	StepPush    = "push"
)

// Memo keys. The starter sets MemoImage; the workflow sets the log URL once the build has a
// log, and the outcome when it ends.
const (
	MemoLogURL    = "log_url"
	MemoImage     = "image"
	MemoTags      = "tags"
	MemoDigest    = "digest"
	MemoCommit    = "commit"
	MemoError     = "error"
	MemoErrorType = "error_type"
	// MemoOutcome is set when a build ended without error but did not build: OutcomeSuperseded.
	MemoOutcome = "outcome"
	// MemoReason says why, beside MemoOutcome.
	MemoReason = "reason"
	// MemoHeldTags lists the mutable tags a build left where they were ([]HeldTag).
	MemoHeldTags = "held_tags"
	// MemoQueued holds why a build waits for a build slot (empty once it runs); the gateway
	// reports such a build as queued, with that reason.
	MemoQueued = "queued_reason"
	// MemoRebuildOf names the build a rebuild repeats; the starter sets it.
	MemoRebuildOf = "rebuild_of"
)

// OutcomeSuperseded is the outcome of a push build whose commit was no longer on its branch
// when the build cloned it (the branch was force-pushed): a newer build owns the branch, so
// this one ends without building, and without failing.
const OutcomeSuperseded = "superseded"

// OutcomeSkipped is the outcome of a push build whose changed files, read from git because
// the payload's lists were incomplete, hold nothing the rule's path filter wants.
const OutcomeSkipped = "skipped"

// Search attributes set on every build; build records are visibility queries over them. The
// stack registers them at start (all Keyword, see AttributeNames).
var (
	AttrNamespace  = temporal.NewSearchAttributeKeyKeyword("SlipwayNamespace")
	AttrRepository = temporal.NewSearchAttributeKeyKeyword("SlipwayRepository")
	AttrRule       = temporal.NewSearchAttributeKeyKeyword("SlipwayRule")
	AttrRef        = temporal.NewSearchAttributeKeyKeyword("GitRef")
	AttrCommit     = temporal.NewSearchAttributeKeyKeyword("GitCommit")
	AttrTrigger    = temporal.NewSearchAttributeKeyKeyword("BuildTrigger")
)

// AttributeNames are the names of the search attributes a build carries, all of type Keyword:
// what a Temporal server must register before the first build starts.
func AttributeNames() []string {
	keys := []temporal.SearchAttributeKeyKeyword{AttrNamespace, AttrRepository, AttrRule, AttrRef, AttrCommit, AttrTrigger}
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = k.GetName()
	}
	return out
}

// SearchAttributes are the attributes a build of in carries from its start: the starter sets
// them and the workflow sets them again for builds started with the CLI. The commit is left
// out while in names none; the workflow sets it once cloned.
func SearchAttributes(in Input) []temporal.SearchAttributeUpdate {
	attrs := []temporal.SearchAttributeUpdate{
		AttrNamespace.ValueSet(in.Namespace),
		AttrRepository.ValueSet(in.Repository),
		AttrRule.ValueSet(in.RuleID),
		AttrRef.ValueSet(in.Ref.Name),
		AttrTrigger.ValueSet(in.Trigger),
	}
	if in.Commit != "" {
		attrs = append(attrs, AttrCommit.ValueSet(in.Commit))
	}
	return attrs
}

// Error types a build fails with. Non-retryable ones say the input is wrong and no retry can
// mend it; the workflow, the gateway and the commit statuses match on them.
const (
	// ErrTypeInvalidInput is an input the workflow refuses before taking a host.
	ErrTypeInvalidInput = "InvalidInput"
	ErrTypeTimedOut     = "BuildTimedOut"
	ErrTypeHostLost     = "HostLost"
	// ErrTypeNoLimits says the worker could not tell its limits (timeout, build slots).
	ErrTypeNoLimits = "NoLimits"

	ErrTypeRefNotFound        = "RefNotFound"
	ErrTypeCommitNotOnRef     = "CommitNotOnRef"
	ErrTypeInvalidSource      = "InvalidSource"
	ErrTypeInvalidPath        = "InvalidPath"
	ErrTypeDockerfileNotFound = "DockerfileNotFound"
	ErrTypeInvalidTag         = "InvalidTag"
	ErrTypeInvalidImage       = "InvalidImage"
	ErrTypeBuildFailed        = "BuildFailed"
	// ErrTypeWorkspaceLost says a step found no checkout where its session's clone put one:
	// the session's host is not the one that cloned (a reset of the workflow to a later step,
	// or a host replaced under the same queue). The workflow starts over on a new session.
	ErrTypeWorkspaceLost = "WorkspaceLost"
	// ErrTypeInvalidBuildArg says a build arg may not be passed to BuildKit.
	ErrTypeInvalidBuildArg = "InvalidBuildArg"
	// ErrTypeIsolationMissing says the worker refused a build because RUN steps would not run
	// isolated from the service: buildkitd networks them on the host, or the build network's
	// bridge or egress filter is missing.
	ErrTypeIsolationMissing = "BuildIsolationMissing"
	// ErrTypeFrontendRefused says a Dockerfile's `# syntax=` names a frontend outside the
	// operator's allow-list.
	ErrTypeFrontendRefused = "FrontendRefused"
)
