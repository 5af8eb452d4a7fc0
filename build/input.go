// Package build is the contract every side of Slipway shares about one build: the input a
// build starts from and the result it ends with, the names Temporal knows it by (workflow,
// task queue, search attributes, memo keys, error types), and the checks of an input that need
// nothing but the input. The gateway, the workflow, the activities, the accounts and the
// metrics all speak it, so it stays light: no BuildKit, no registry client, no database.
package build

import "time"

// Input is the one JSON object a build starts from. It holds no secret: credentials are
// looked up by the worker.
type Input struct {
	Namespace      string            `json:"namespace"`
	Repository     string            `json:"repository"`
	RuleID         string            `json:"rule_id"`
	Source         Source            `json:"source"`
	Ref            Ref               `json:"ref"`
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
	// Captures are what the rule's matching branch or tag pattern captured from the ref, by
	// group number ("1".."9") and name, for the tag template.
	Captures map[string]string `json:"captures,omitempty"`
	// Latest adds the tag "latest": the rule tags latest on its default branch and this is it.
	Latest bool `json:"latest,omitempty"`
	// Semver adds the version tags of a Git tag that is a version (SemverTags).
	Semver bool `json:"semver,omitempty"`
	// Paths, when set, asks the clone step to compute the files changed between Before and
	// the commit, because the webhook's payload could not say (more than 20 commits, a
	// forced push, a commit listing no files), and to end the build as skipped when the
	// filter selects none of them.
	Paths *PathFilter `json:"paths,omitempty"`
	// Before is the commit the ref pointed at before the push; empty or all zeros for a new
	// ref. It is set with Paths.
	Before string `json:"before,omitempty"`
	// RunPolicy is the rule's run policy: RunParallel (also when empty), RunSerial or
	// RunLatestOnly. It travels in the input so the workflow needs no database.
	RunPolicy string `json:"run_policy,omitempty"`
	// Secrets names the namespace's build secrets the build hands to BuildKit
	// (RUN --mount=type=secret,id=NAME). Only names: the worker reads the values from the
	// database as the build step starts, so none is in the workflow's history.
	Secrets []string `json:"secrets,omitempty"`
	// Platforms are the platforms to build, in normal form ("linux/arm64"), pushed as one
	// image index; empty builds the worker's own platform and pushes one image.
	Platforms []string `json:"platforms,omitempty"`
}

// Run policies of a rule: how its builds wait for each other.
const (
	// RunParallel lets every build run as soon as a slot of the namespace is free.
	RunParallel = "parallel"
	// RunSerial runs one build of the rule at a time; the others queue in order.
	RunSerial = "serial"
	// RunLatestOnly lets a newer commit of a ref cancel the rule's older builds of that ref
	// still queued or running.
	RunLatestOnly = "latest_only"
)

// CacheOff turns the registry cache off.
const CacheOff = "off"

// CacheRef is the registry cache reference of a build, or "" for none.
func (in Input) CacheRef() string {
	switch in.Cache {
	case "":
		return in.Image + ":buildcache"
	case CacheOff:
		return ""
	}
	return in.Cache
}

// TimeoutOrDefault is how long the build may run: its Timeout, or DefaultTimeout when it names
// none or one that is no duration (Validate refuses those). The starter and the workflow read
// the same value from it.
func (in Input) TimeoutOrDefault() time.Duration {
	if in.Timeout != "" {
		if d, err := time.ParseDuration(in.Timeout); err == nil && d > 0 {
			return d
		}
	}
	return DefaultTimeout
}

// Result is what a successful build returns.
type Result struct {
	Image          string   `json:"image"`
	Tags           []string `json:"tags"`
	Digest         string   `json:"digest"`
	Commit         string   `json:"commit"`
	DockerfilePath string   `json:"dockerfile_path"`
	LogURL         string   `json:"log_url"`
	// Tags above are the tags written; HeldTags the mutable ones left on a newer commit.
	HeldTags []HeldTag `json:"held_tags,omitempty"`
	// Status is empty for a build that pushed, or OutcomeSuperseded or OutcomeSkipped with
	// the Reason.
	Status string `json:"status,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// HeldTag is a mutable tag a push left where it was, with the reason. Build records show them
// beside the tags written.
type HeldTag struct {
	Tag    string `json:"tag"`
	Reason string `json:"reason"`
}

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
