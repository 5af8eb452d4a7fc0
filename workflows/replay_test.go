package workflows

import (
	"path/filepath"
	"strings"
	"testing"

	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/slipway-dev/slipway/build"
)

// TestReplayRecordedHistories replays histories recorded from real executions against the
// workflow as it is now: a change that would make builds in flight during a deploy fail with
// a nondeterminism error fails here first. testdata/replay/v0-*.json were recorded from the
// e2e tests with the workflow before ResolveDockerfile and RenderTag ran together and before
// Push removed the workspace (commit afac0e6): a built image, a cancellation, a failing RUN,
// a missing branch, a missing Dockerfile and input refused before any activity. Record new
// ones with `temporal workflow show -w ID -o json` when the workflow's commands change.
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
			if err := r.ReplayWorkflowHistoryFromJSONFile(nil, f); err != nil {
				t.Fatalf("replaying %s: %v", f, err)
			}
		})
	}
}
