// Package builds is Slipway's side of Temporal for the gateway: it starts
// workflow_docker_builder, lists and reads build records from visibility and histories, and
// cancels builds. The HTTP layer parses, authorizes and renders; what a build is to Temporal
// (its options, search attributes, memo, query text and history) is known here only.
package builds

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"time"

	"go.temporal.io/sdk/client"
)

// Timeout bounds each call the service makes to Temporal while a caller waits.
const Timeout = 10 * time.Second

// idPattern is what a build or rule id may look like: what webhook.BuildID and ManualBuildID
// make, and what ops may pick with the CLI. Ids go into visibility queries, so nothing else
// is let through.
var idPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,254}$`)

// ValidID reports whether id can name a build or a rule; anything else names none.
func ValidID(id string) bool { return idPattern.MatchString(id) }

// ErrNotFound is a build that is not there, or not one of Slipway's.
var ErrNotFound = errors.New("build not found")

// Settings are what the service needs besides its client: where builds run and where the
// links of their records point.
type Settings struct {
	// TaskQueue is the queue the workers poll.
	TaskQueue string
	// TemporalNamespace is the Temporal namespace builds run and are listed in.
	TemporalNamespace string
	// Registry is the registry host builds push to; images are Registry/namespace/repository.
	Registry string
	// GatewayURL is where records link their logs.
	GatewayURL string
	// TemporalUIURL is where records link their histories.
	TemporalUIURL string
}

// Service starts, reads and cancels builds. Its zero value is not usable; New makes one.
type Service struct {
	temporal client.Client
	set      Settings
}

// New returns a service over tc, which it does not close.
func New(tc client.Client, set Settings) *Service {
	return &Service{temporal: tc, set: set}
}

// Image is the registry repository builds of ns/repo push to.
func (s *Service) Image(ns, repo string) string {
	return s.set.Registry + "/" + ns + "/" + repo
}

// LogsURL is where the log of build id is read.
func (s *Service) LogsURL(id string) string {
	return s.set.GatewayURL + "/api/v1/builds/" + url.PathEscape(id) + "/logs"
}

// UIURL is the Temporal UI's page of one run's history.
func (s *Service) UIURL(id, runID string) string {
	return fmt.Sprintf("%s/namespaces/%s/workflows/%s/%s/history", s.set.TemporalUIURL,
		url.PathEscape(s.set.TemporalNamespace), url.PathEscape(id), url.PathEscape(runID))
}
