package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/slipway-dev/slipway/build"
)

// TestTemporalUIReadOnly asks the stack's running web UI server for its settings, as the UI
// itself does on load, and then tries, as a browser would (with the CSRF cookie and header),
// to terminate a workflow through the UI's API: the settings say write actions are off and
// the server answers 405, while reading the same workflow works.
func TestTemporalUIReadOnly(t *testing.T) {
	ui := env.stack.TemporalUIURL
	if ui == "" {
		t.Fatal("the stack has no Temporal web UI")
	}
	resp, err := http.Get(ui + "/api/v1/settings")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var settings struct {
		DisableWriteActions *bool
		Version             string
	}
	if err := json.Unmarshal(body, &settings); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("settings: %d %v\n%s", resp.StatusCode, err, body)
	}
	if settings.DisableWriteActions == nil || !*settings.DisableWriteActions {
		t.Fatalf("the web UI (%s) has write actions on: %s", ui, body)
	}
	var csrf *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "_csrf" {
			csrf = c
		}
	}
	if csrf == nil {
		t.Fatalf("the UI set no _csrf cookie: %v", resp.Header["Set-Cookie"])
	}

	// A workflow no worker picks up (its task queue has none) stays running until the test
	// ends it.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	id := fmt.Sprintf("e2e-ui-readonly-%d", time.Now().UnixNano())
	run, err := env.temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: "e2e-ui-no-worker"},
		build.WorkflowName, build.Input{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { env.temporal.TerminateWorkflow(context.Background(), id, run.GetRunID(), "test over") })

	call := func(method, path string) (int, string) {
		req, _ := http.NewRequestWithContext(ctx, method, ui+path, nil)
		req.AddCookie(&http.Cookie{Name: csrf.Name, Value: csrf.Value})
		req.Header.Set("X-CSRF-Token", csrf.Value)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	wf := "/api/v1/namespaces/default/workflows/" + url.PathEscape(id)
	if code, body := call("GET", wf); code != http.StatusOK {
		t.Fatalf("reading the workflow through the UI: %d %s", code, body)
	}
	if code, body := call("POST", wf+"/terminate"); code != http.StatusMethodNotAllowed {
		t.Fatalf("terminate through the UI answered %d, want 405: %s", code, body)
	}
	desc, err := env.temporal.DescribeWorkflow(ctx, id, run.GetRunID())
	if err != nil {
		t.Fatal(err)
	}
	if st := desc.Status; st != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		t.Fatalf("after the refused terminate the workflow is %s, want running", st)
	}
	t.Logf("web UI %s (version %s): write actions off, terminate refused with 405", ui, settings.Version)
}
