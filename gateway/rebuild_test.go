package gateway

import (
	"context"
	"strings"
	"testing"

	"github.com/slipway-dev/slipway/build"
)

func TestRebuild(t *testing.T) {
	tm := h.newTeam(t, "rebuild")
	rule := h.createRule(t, tm, githubRule())
	const commit = "0123456789abcdef0123456789abcdef01234567"
	r := h.do(t, "POST", tm.rule(rule.ID)+"/builds", h.writer, map[string]any{
		"branch": "main", "commit": commit, "build_args": map[string]string{"EXTRA": "1"},
	})
	expect(t, r, 202, "build now")
	var started struct {
		ID string `json:"id"`
	}
	r.decode(t, &started)
	// Without a worker the build never ends: a rebuild needs no ended build.
	path := "/api/v1/builds/" + started.ID + "/rebuild"

	r = h.do(t, "POST", path, h.reader, nil)
	expect(t, r, 403, "rebuild by a reader")
	r.errorMessage(t)
	expect(t, h.do(t, "POST", "/api/v1/builds/build-nosuch/rebuild", h.writer, nil), 404, "rebuild of a missing build")
	r = h.do(t, "POST", path, h.writer, map[string]string{"commit": "main"})
	expect(t, r, 400, "rebuild of a commit other than latest")
	if msg := r.errorMessage(t); !strings.Contains(msg, `"latest"`) {
		t.Errorf("message %q does not name latest", msg)
	}

	type answer struct {
		ID        string `json:"id"`
		RunID     string `json:"run_id"`
		RebuildOf string `json:"rebuild_of"`
	}
	rebuild := func(body any, headers ...string) answer {
		t.Helper()
		r := h.do(t, "POST", path, h.writer, body, headers...)
		expect(t, r, 202, "rebuild")
		var a answer
		r.decode(t, &a)
		if a.ID == "" || a.ID == started.ID || a.RunID == "" || a.RebuildOf != started.ID {
			t.Fatalf("rebuild answered %+v", a)
		}
		return a
	}
	for _, tt := range []struct {
		name       string
		body       any
		wantCommit string
	}{
		{"no body: the same commit", nil, commit},
		{"empty object: the same commit", map[string]any{}, commit},
		{"latest: the ref's head", map[string]string{"commit": "latest"}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a := rebuild(tt.body)
			var rec struct {
				RebuildOf string `json:"rebuild_of"`
				Trigger   string `json:"trigger"`
				Commit    string `json:"commit"`
				Params    struct {
					Commit    string            `json:"commit"`
					Ref       build.Ref         `json:"ref"`
					BuildArgs map[string]string `json:"build_args"`
				} `json:"params"`
			}
			r := h.do(t, "GET", "/api/v1/builds/"+a.ID, h.reader, nil)
			expect(t, r, 200, "getting the rebuild")
			r.decode(t, &rec)
			if rec.RebuildOf != started.ID || rec.Trigger != build.TriggerManual {
				t.Errorf("rebuild record: rebuild_of %q trigger %q", rec.RebuildOf, rec.Trigger)
			}
			if rec.Params.Commit != tt.wantCommit || rec.Params.Ref.Name != "main" || rec.Params.BuildArgs["EXTRA"] != "1" || rec.Params.BuildArgs["GREETING"] != "hi" {
				t.Errorf("rebuild params %+v, want the build's with commit %q", rec.Params, tt.wantCommit)
			}
			if err := h.temporal.TerminateWorkflow(context.Background(), a.ID, "", "test"); err != nil {
				t.Fatal(err)
			}
		})
	}
	// A repeated Idempotency-Key starts nothing new.
	first := rebuild(nil, "Idempotency-Key", "k1")
	if again := rebuild(nil, "Idempotency-Key", "k1"); again.ID != first.ID || again.RunID != first.RunID {
		t.Errorf("a repeated Idempotency-Key started %s, first %s", again.ID, first.ID)
	}
	// The record lists of the repository show it too.
	r = h.do(t, "GET", tm.builds(), h.reader, nil)
	expect(t, r, 200, "listing builds")
	if !strings.Contains(string(r.body), `"rebuild_of":"`+started.ID+`"`) {
		t.Errorf("the list shows no rebuild_of: %s", r.body)
	}
}
