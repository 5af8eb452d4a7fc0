package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"

	"github.com/slipway-dev/slipway/build"
	"github.com/slipway-dev/slipway/internal/testing/gitserver"
)

// TestFullShapeBuild runs one build that takes every branch of workflow_docker_builder at
// once: a push build of a serial rule with a path filter, build secrets and a notification
// listening, on a worker with limits. Its history must hold every change id the workflow
// asks (each at version 1), the started and succeeded events must reach the receiver, and
// it is recorded for workflows/testdata/replay as v4-full (SLIPWAY_RECORD_HISTORIES).
func TestFullShapeBuild(t *testing.T) {
	key := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{5}, 32))
	g := startGateway(t, "SLIPWAY_SECRET_KEY="+key)
	w := startWorker(t, "SLIPWAY_SECRET_KEY="+key, "SLIPWAY_DATABASE_URL="+g.db, "SLIPWAY_NOTIFY_PRIVATE=allow")
	t.Cleanup(w.stop)

	owner := "e2e-fullshape"
	srv := &gitserver.Server{Root: env.gitRoot, URL: env.gitURL}
	repo := srv.NewRepo(t, owner, "hello")
	before := repo.Commit("main", map[string]string{
		"Dockerfile":  "FROM busybox\nCOPY src /src\nRUN --mount=type=secret,id=TOKEN test -s /run/secrets/TOKEN\n",
		"src/app.txt": "app\n",
	})
	head := repo.Commit("main", map[string]string{"src/app.txt": "app 2\n"})

	var alice struct{ Token string }
	g.call(t, "POST", "/api/v1/users", g.admin, map[string]string{"name": "alice-full"}, &alice)
	ns := "full-" + time.Now().Format("150405")
	if code := g.call(t, "POST", "/api/v1/namespaces", alice.Token, map[string]string{"name": ns}, nil); code != http.StatusCreated {
		t.Fatalf("namespace: %d", code)
	}
	g.call(t, "POST", "/api/v1/namespaces/"+ns+"/repositories", alice.Token, map[string]string{"name": "app"}, nil)
	if code := g.call(t, "PUT", "/api/v1/namespaces/"+ns+"/secrets/TOKEN", alice.Token, map[string]string{"value": "full-" + randomHex(t, 8)}, nil); code != http.StatusCreated {
		t.Fatalf("secret: %d", code)
	}
	answering := &receiver{}
	hook := httptest.NewServer(answering)
	t.Cleanup(hook.Close)
	var n struct{ ID string }
	notifications := "/api/v1/namespaces/" + ns + "/notifications"
	if code := g.call(t, "POST", notifications, alice.Token, map[string]any{
		"url": hook.URL + "/hook", "events": []string{"started", "succeeded", "failed"},
	}, &n); code != http.StatusCreated {
		t.Fatalf("notification: %d", code)
	}
	t.Cleanup(func() { g.call(t, "DELETE", notifications+"/"+n.ID, alice.Token, nil, nil) })

	in := build.Input{
		Namespace: ns, Repository: "app", RuleID: "r-full",
		Source: build.Source{Provider: "github", Owner: owner, Repository: "hello"},
		Ref:    build.Ref{Type: build.RefBranch, Name: "main"},
		Commit: head, Before: before, Paths: &build.PathFilter{Include: []string{"src/**"}},
		RunPolicy: build.RunSerial, Secrets: []string{"TOKEN"},
		TagTemplate: "{short_commit}",
		Image:       env.stack.Registry + "/" + ns + "/app",
		Trigger:     build.TriggerPush,
	}
	id := fmt.Sprintf("e2e-fullshape-%d", time.Now().UnixNano())
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var res build.Result
	if err := startBuild(t, id, in).Get(ctx, &res); err != nil {
		t.Fatalf("build: %v\nlog:\n%s", err, readLogQuiet(id, ""))
	}
	if res.Status != "" || res.Digest == "" || !slices.Equal(res.Tags, []string{head[:7]}) {
		t.Fatalf("result %+v, want the image built and tagged %s", res, head[:7])
	}
	waitFor(t, "the succeeded event", time.Minute, func() bool { return len(answering.events("succeeded")) > 0 })
	if len(answering.events("started")) == 0 {
		t.Errorf("no started event")
	}

	// Every change id the workflow asks, each at its newest version.
	want := []string{"tenant-limits", "run-policy", "notify", "skipped", "fold-resolve-tag", "tag-order", "build-secrets", "early-release"}
	got := map[string]bool{}
	for _, ev := range readHistory(t, id) {
		if ev.GetEventType() != enumspb.EVENT_TYPE_MARKER_RECORDED || ev.GetMarkerRecordedEventAttributes().GetMarkerName() != "Version" {
			continue
		}
		d := ev.GetMarkerRecordedEventAttributes().GetDetails()
		var change string
		var version int
		if p := d["change-id"]; p != nil && len(p.GetPayloads()) > 0 {
			_ = json.Unmarshal(p.GetPayloads()[0].GetData(), &change)
		}
		if p := d["version"]; p != nil && len(p.GetPayloads()) > 0 {
			_ = json.Unmarshal(p.GetPayloads()[0].GetData(), &version)
		}
		if version != 1 {
			t.Errorf("change %q at version %d, want 1", change, version)
		}
		got[change] = true
	}
	for _, c := range want {
		if !got[c] {
			t.Errorf("history has no version marker of %q; it has %v", c, got)
		}
	}
	recordHistory(t, id, "v4-full")
}
