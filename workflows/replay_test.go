package workflows

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/slipway-dev/slipway/build"
)

// TestReplayRecordedHistories replays histories recorded from real executions against the
// workflow as it is now: a change that would make builds in flight during a deploy fail with
// a nondeterminism error fails here first. testdata/replay/v0-*.json were recorded from the
// e2e tests with the workflow before ResolveDockerfile and RenderTag ran together and before
// Push removed the workspace (commit afac0e6): a built image, a cancellation, a failing RUN,
// a missing branch, a missing Dockerfile and input refused before any activity. v1-*.json
// were recorded by e2e TestRunPoliciesAndSkipped (SLIPWAY_RECORD_HISTORIES=dir): a build that
// waited for its serial rule's slot, a latest_only build a newer one canceled, and a push build
// skipped by its path filter after the clone read its files from git. v2-secrets.json was recorded
// by e2e TestBuildSecrets: a webhook build whose rule names build secrets, which passes their
// names to the build step (versionBuildSecrets). v2-folded-*.json were recorded by e2e
// TestBuildRoundTrips (SLIPWAY_RECORD_HISTORIES=dir) after versionFoldedSteps: a built image
// whose clone resolved the Dockerfile and whose tags the workflow rendered, and a missing
// Dockerfile the clone reported. v3-*.json were recorded by the same test after
// versionEarlyRelease: the built image's slot given back with the session's end, and the
// missing Dockerfile again (a failed build still gives its slot back at the end). v2-notified.json was recorded by e2e
// TestNotificationsAndBadges: a build that sent its started and succeeded events to
// notifications through abandoned slipway_notify children. Record new ones with
// `temporal workflow show -w ID -o json` when the workflow's commands change.
func TestReplayRecordedHistories(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "replay", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no recorded histories in testdata/replay")
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".json"), func(t *testing.T) {
			r := worker.NewWorkflowReplayer()
			r.RegisterWorkflowWithOptions(DockerBuilder, workflow.RegisterOptions{Name: build.WorkflowName})
			if err := r.ReplayWorkflowHistoryWithOptions(nil, loadHistory(t, f), worker.ReplayWorkflowHistoryOptions{
				OriginalExecution: originalExecution(t, f),
			}); err != nil {
				t.Fatalf("replaying %s: %v", f, err)
			}
		})
	}
}

// loadHistory reads a history as `temporal workflow show -o json` wrote it.
func loadHistory(t *testing.T, file string) *historypb.History {
	t.Helper()
	fh, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	h, err := client.HistoryFromJSON(fh, client.HistoryJSONOptions{})
	if err != nil {
		t.Fatalf("reading %s: %v", file, err)
	}
	return h
}

// originalExecution is the workflow id and run id the history was recorded under: a build
// names its notification children after its own id, so a replay under the replayer's made-up
// id would not issue the recorded commands.
func originalExecution(t *testing.T, file string) workflow.Execution {
	t.Helper()
	attrs := loadHistory(t, file).GetEvents()[0].GetWorkflowExecutionStartedEventAttributes()
	return workflow.Execution{ID: attrs.GetWorkflowId(), RunID: attrs.GetOriginalExecutionRunId()}
}

// TestReplayRejectsAlteredHistories replays recorded histories edited so that the workflow's
// commands no longer match them, as a change to the workflow without a GetVersion branch
// would: each must fail with the SDK's nondeterminism error, so that
// TestReplayRecordedHistories can fail at all.
func TestReplayRejectsAlteredHistories(t *testing.T) {
	for _, tc := range []struct {
		name string
		// file is the recorded history altered; v0-built.json when empty.
		file string
		// rename maps the activity type scheduled at an event ID to another name.
		rename map[float64]string
	}{
		{name: "another activity first", rename: map[float64]string{14: "Build"}},
		{name: "resolve and tag swapped", rename: map[float64]string{22: "RenderTag", 28: "ResolveDockerfile"}},
		{name: "push renamed", rename: map[float64]string{40: "PushImage"}},
		{name: "resolve scheduled after a folding clone", file: "v2-folded-built.json", rename: map[float64]string{37: "ResolveDockerfile"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := tc.file
			if file == "" {
				file = "v0-built.json"
			}
			f := alteredHistory(t, filepath.Join("testdata", "replay", file), tc.rename)
			r := worker.NewWorkflowReplayer()
			r.RegisterWorkflowWithOptions(DockerBuilder, workflow.RegisterOptions{Name: build.WorkflowName})
			err := r.ReplayWorkflowHistoryFromJSONFile(nil, f)
			// TMPRL1100 is the SDK's code for a nondeterminism error.
			if err == nil || !strings.Contains(err.Error(), "[TMPRL1100] nondeterministic workflow") {
				t.Fatalf("replaying an altered history: got %v, want a nondeterminism error", err)
			}
		})
	}
}

// alteredHistory writes a copy of the history in file whose ActivityTaskScheduled events
// named in rename schedule another activity type, and returns the copy's path.
func alteredHistory(t *testing.T, file string, rename map[float64]string) string {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var h struct {
		Events []map[string]any `json:"events"`
	}
	if err := json.Unmarshal(data, &h); err != nil {
		t.Fatal(err)
	}
	renamed := 0
	for _, e := range h.Events {
		id, _ := strconv.ParseFloat(fmt.Sprint(e["eventId"]), 64)
		to, ok := rename[id]
		if !ok {
			continue
		}
		attrs, ok := e["activityTaskScheduledEventAttributes"].(map[string]any)
		if !ok {
			t.Fatalf("event %v of %s schedules no activity", id, file)
		}
		attrs["activityType"] = map[string]any{"name": to}
		renamed++
	}
	if renamed != len(rename) {
		t.Fatalf("renamed %d activities of %s, want %d", renamed, file, len(rename))
	}
	out, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), filepath.Base(file))
	if err := os.WriteFile(p, out, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
