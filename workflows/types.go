// Package workflows holds workflow_docker_builder, the durable build of one image from one
// Git commit, with its input, result and status types. Only deterministic code lives here;
// everything that touches the world is an activity.
package workflows

import (
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/slipway-dev/slipway/activities"
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
)

// Error types the workflow itself raises (activities raise their own, see package activities).
const (
	ErrTypeInvalidInput = "InvalidInput"
	ErrTypeTimedOut     = "BuildTimedOut"
	ErrTypeHostLost     = "HostLost"
	// ErrTypeNoLimits says the worker could not tell its limits (timeout, build slots).
	ErrTypeNoLimits = "NoLimits"
)

// Search attributes set on every build; build records are visibility queries over them. The
// stack registers them at start (all Keyword).
var (
	AttrNamespace  = temporal.NewSearchAttributeKeyKeyword("SlipwayNamespace")
	AttrRepository = temporal.NewSearchAttributeKeyKeyword("SlipwayRepository")
	AttrRule       = temporal.NewSearchAttributeKeyKeyword("SlipwayRule")
	AttrRef        = temporal.NewSearchAttributeKeyKeyword("GitRef")
	AttrCommit     = temporal.NewSearchAttributeKeyKeyword("GitCommit")
	AttrTrigger    = temporal.NewSearchAttributeKeyKeyword("BuildTrigger")
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
	// MemoHeldTags lists the mutable tags a build left where they were ([]activities.HeldTag).
	MemoHeldTags = "held_tags"
)

// OutcomeSuperseded is the outcome of a push build whose commit was no longer on its branch
// when the build cloned it (the branch was force-pushed): a newer build owns the branch, so
// this one ends without building, and without failing.
const OutcomeSuperseded = "superseded"

// BuildInput is the one JSON object a build starts from, whether the gateway or an operator
// with the temporal CLI starts it, so its JSON names are a contract. It holds no secret:
// credentials are looked up by the worker.
type BuildInput struct {
	Namespace      string            `json:"namespace"`
	Repository     string            `json:"repository"`
	RuleID         string            `json:"rule_id"`
	Source         activities.Source `json:"source"`
	Ref            activities.Ref    `json:"ref"`
	Commit         string            `json:"commit"`
	DockerfilePath string            `json:"dockerfile_path"`
	ContextPath    string            `json:"context_path"`
	TagTemplate    string            `json:"tag_template"`
	BuildArgs      map[string]string `json:"build_args"`
	Image          string            `json:"image"`
	Trigger        string            `json:"trigger"`
	SanitizeRef    bool              `json:"sanitize_ref,omitempty"`
	// Timeout bounds the whole build, as a Go duration ("30m"); empty means DefaultTimeout.
	Timeout string `json:"timeout,omitempty"`
	// Cache is where BuildKit keeps this build's registry cache: empty means IMAGE:buildcache
	// (one cache per image repository), "off" means no registry cache, anything else is an
	// image reference of its own.
	Cache string `json:"cache,omitempty"`
}

// CacheOff turns the registry cache off.
const CacheOff = "off"

// CacheRef is the registry cache reference of a build, or "" for none.
func (in BuildInput) CacheRef() string {
	switch in.Cache {
	case "":
		return in.Image + ":buildcache"
	case CacheOff:
		return ""
	}
	return in.Cache
}

// BuildResult is what a successful build returns.
type BuildResult struct {
	Image          string   `json:"image"`
	Tags           []string `json:"tags"`
	Digest         string   `json:"digest"`
	Commit         string   `json:"commit"`
	DockerfilePath string   `json:"dockerfile_path"`
	LogURL         string   `json:"log_url"`
	// Tags above are the tags written; HeldTags the mutable ones left on a newer commit.
	HeldTags []activities.HeldTag `json:"held_tags,omitempty"`
	// Status is empty for a build that pushed, or OutcomeSuperseded with the Reason.
	Status string `json:"status,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// Step names, in the order a build runs them.
const (
	StepClone   = "clone"
	StepResolve = "resolve_dockerfile"
	StepTag     = "render_tag"
	StepBuild   = "build"
	StepPush    = "push"
)

// StepStatus is one step of one attempt on a host.
type StepStatus struct {
	Name string `json:"name"`
	// HostAttempt counts the hosts the build has run on: 2 means the first host was lost.
	HostAttempt int        `json:"host_attempt"`
	StartedAt   time.Time  `json:"started_at"`
	EndedAt     *time.Time `json:"ended_at,omitempty"`
	Error       string     `json:"error,omitempty"`
}

// Status is the answer to the status query.
type Status struct {
	Step string `json:"step"`
	// Commit is the commit being built, once cloned.
	Commit       string       `json:"commit,omitempty"`
	Steps        []StepStatus `json:"steps"`
	HostAttempts int          `json:"host_attempts"`
	LogURL       string       `json:"log_url,omitempty"`
	// QueuedReason says why the build waits for a slot, while it does.
	QueuedReason string `json:"queued_reason,omitempty"`
}
