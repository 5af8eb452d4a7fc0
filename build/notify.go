package build

import "time"

// Build events a notification can be sent. A build sends EventStarted once it begins and one
// of the others when it ends.
const (
	EventStarted   = "started"
	EventSucceeded = "succeeded"
	EventFailed    = "failed"
	EventCanceled  = "canceled"
	EventTimedOut  = "timed_out"
)

// EventNames lists every build event, in the order a build sends them.
func EventNames() []string {
	return []string{EventStarted, EventSucceeded, EventFailed, EventCanceled, EventTimedOut}
}

// NotifyWorkflowName is the workflow that delivers one build event to the notifications that
// want it. A build starts it as an abandoned child, so the build never waits for a receiver.
const NotifyWorkflowName = "slipway_notify"

// BuildEvent is the JSON body a notification of format "json" receives: what a receiver needs
// to act on a build without calling the API. Nothing in it is secret.
type BuildEvent struct {
	Event string `json:"event"`
	// Status is the build's record status: the event's, or for a succeeded build that built
	// nothing OutcomeSuperseded or OutcomeSkipped.
	Status     string   `json:"status"`
	BuildID    string   `json:"build_id"`
	Namespace  string   `json:"namespace"`
	Repository string   `json:"repository"`
	RuleID     string   `json:"rule_id"`
	Ref        Ref      `json:"ref"`
	Commit     string   `json:"commit"`
	Trigger    string   `json:"trigger"`
	Image      string   `json:"image"`
	Tags       []string `json:"tags"`
	Digest     string   `json:"digest,omitempty"`
	Error      string   `json:"error,omitempty"`
	// BuildURL is the build's console page on the gateway's public URL.
	BuildURL  string    `json:"build_url"`
	Timestamp time.Time `json:"timestamp"`
}
