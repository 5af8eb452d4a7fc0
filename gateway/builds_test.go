package gateway

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/slipway-dev/slipway/build"
	"github.com/slipway-dev/slipway/store"
)

// started is the answer to a build now.
type started struct {
	ID      string `json:"id"`
	RunID   string `json:"run_id"`
	UIURL   string `json:"ui_url"`
	LogsURL string `json:"logs_url"`
}

func TestBuildNow(t *testing.T) {
	t.Parallel()
	h := mockStack(t)
	tm := h.newTeam(t, "now")
	rule := h.createRule(t, tm, githubRule())
	path := tm.rule(rule.ID) + "/builds"

	t.Run("branch", func(t *testing.T) {
		r := h.do(t, "POST", path, h.writer, map[string]any{"branch": "main", "commit": strings.Repeat("ab", 20)})
		expect(t, r, 202, "build now")
		var s started
		r.decode(t, &s)
		if s.ID == "" || s.RunID == "" {
			t.Fatalf("build now answered %s", r)
		}
		if want := testUIURL + "/namespaces/default/workflows/" + s.ID + "/" + s.RunID + "/history"; s.UIURL != want {
			t.Errorf("ui_url %q, want %q", s.UIURL, want)
		}
		if want := h.cfg.GatewayURL + "/api/v1/builds/" + s.ID + "/logs"; s.LogsURL != want {
			t.Errorf("logs_url %q, want %q", s.LogsURL, want)
		}
		attrs, runID := h.searchAttributes(t, s.ID)
		if runID != s.RunID {
			t.Errorf("run %s, answered %s", runID, s.RunID)
		}
		want := map[string]string{"SlipwayNamespace": tm.ns, "SlipwayRepository": "app", "SlipwayRule": rule.ID,
			"GitRef": "main", "GitCommit": strings.Repeat("ab", 20), "BuildTrigger": "manual"}
		for k, v := range want {
			if attrs[k] != v {
				t.Errorf("search attribute %s = %q, want %q", k, attrs[k], v)
			}
		}
	})

	t.Run("tag", func(t *testing.T) {
		r := h.do(t, "POST", path, h.writer, map[string]any{"tag": "v1.0.0"})
		expect(t, r, 202, "build now of a tag")
		var s started
		r.decode(t, &s)
		if attrs, _ := h.searchAttributes(t, s.ID); attrs["GitRef"] != "v1.0.0" || attrs["GitCommit"] != "" {
			t.Errorf("tag build has attributes %v", attrs)
		}
	})

	t.Run("bad requests", func(t *testing.T) {
		branchOnly := h.createRule(t, tm, with(map[string]any{
			"triggers": map[string]any{"branches": []string{"main"}}, "tag_template": "{branch}"}))
		// Rules saved before the checks (or by hand in the database) meet them at build time.
		foreign := h.storedRule(t, tm, func(r *store.Rule) { r.Cache = "127.0.0.1:5000/victim/app:latest" })
		long := h.storedRule(t, tm, func(r *store.Rule) { r.Timeout = "24h" })
		absolute := h.storedRule(t, tm, func(r *store.Rule) { r.DockerfilePath = "/etc/Dockerfile" })
		for _, tc := range []struct {
			name string
			path string
			body any
			want string
		}{
			{"branch and tag", path, map[string]any{"branch": "main", "tag": "v1"}, "not both"},
			{"neither", path, map[string]any{}, "branch or the tag"},
			{"only a commit", path, map[string]any{"commit": strings.Repeat("a", 40)}, "branch or the tag"},
			{"short commit", path, map[string]any{"branch": "main", "commit": "abc1234"}, "commit"},
			{"uppercase commit", path, map[string]any{"branch": "main", "commit": strings.Repeat("A", 40)}, "commit"},
			{"bad build arg", path, map[string]any{"branch": "main", "build_args": map[string]string{"NO-DASH": "x"}}, "build_args"},
			{"BUILDKIT_SYNTAX build arg", path, map[string]any{"branch": "main", "build_args": map[string]string{"BUILDKIT_SYNTAX": "evil.example/frontend"}}, `"BUILDKIT_SYNTAX" is reserved`},
			{"BUILDKIT_CACHE_MOUNT_NS build arg", path, map[string]any{"branch": "main", "build_args": map[string]string{"BUILDKIT_CACHE_MOUNT_NS": "x"}}, `"BUILDKIT_CACHE_MOUNT_NS" is reserved`},
			{"build arg value too long", path, map[string]any{"branch": "main", "build_args": map[string]string{"V": strings.Repeat("v", 5000)}}, "5000 bytes"},
			{"rule with a foreign cache", tm.rule(foreign.ID) + "/builds", map[string]any{"branch": "main"}, "outside the image repository"},
			{"rule with a timeout over the longest", tm.rule(long.ID) + "/builds", map[string]any{"branch": "main"}, "longest this service allows"},
			{"rule with an absolute dockerfile_path", tm.rule(absolute.ID) + "/builds", map[string]any{"branch": "main"}, `the rule's dockerfile_path "/etc/Dockerfile" is absolute`},
			{"slash without sanitize_ref", path, map[string]any{"branch": "feature/login"}, "'/'"},
			{"dollar without sanitize_ref", path, map[string]any{"tag": "v$1"}, "'$'"},
			{"tag on a branch template", tm.rule(branchOnly.ID) + "/builds", map[string]any{"tag": "v1"}, `template "{branch}"`},
			{"unknown field", path, map[string]any{"ref": "main"}, `unknown field "ref"`},
			{"not JSON", path, "branch=main", "bad JSON"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				r := h.do(t, "POST", tc.path, h.writer, tc.body)
				expect(t, r, 400, tc.name)
				if msg := r.errorMessage(t); !strings.Contains(msg, tc.want) {
					t.Errorf("message %q does not mention %q", msg, tc.want)
				}
			})
		}
		for _, id := range []string{branchOnly.ID, foreign.ID, long.ID, absolute.ID} {
			h.expectBuilds(t, ruleQuery(id), 0)
		}
	})

	t.Run("git ref-name rules", func(t *testing.T) {
		// Templates that do not use the name, or sanitise it, let any name through the tag
		// rules; git's rules still hold.
		latest := h.createRule(t, tm, with(map[string]any{"tag_template": "latest"}))
		sane := h.createRule(t, tm, with(map[string]any{"sanitize_ref": true}))
		for _, rule := range []createdRule{latest, sane} {
			p := tm.rule(rule.ID) + "/builds"
			for _, tc := range []struct {
				name string
				body map[string]any
				want string
			}{
				{"dot dot", map[string]any{"branch": "a..b"}, `branch "a..b" is not a valid git ref name: it holds ".."`},
				{"lock", map[string]any{"branch": "x.lock"}, `".lock"`},
				{"leading dash", map[string]any{"branch": "-x"}, `starts with "-"`},
				{"colon", map[string]any{"tag": "a:b"}, `tag "a:b" is not a valid git ref name`},
				{"space", map[string]any{"branch": "a b"}, `' '`},
				{"at brace", map[string]any{"branch": "main@{1}"}, `"@{"`},
				{"5000 bytes", map[string]any{"branch": strings.Repeat("b", 5000)}, "5000 bytes long, more than 255"},
			} {
				t.Run(rule.ID+"/"+tc.name, func(t *testing.T) {
					r := h.do(t, "POST", p, h.writer, tc.body)
					expect(t, r, 400, tc.name)
					msg := r.errorMessage(t)
					if !strings.Contains(msg, tc.want) {
						t.Errorf("message %q does not mention %q", msg, tc.want)
					}
					if len(msg) > 300 {
						t.Errorf("message of %d bytes echoes the whole name", len(msg))
					}
				})
			}
			h.expectBuilds(t, ruleQuery(rule.ID), 0)
		}
	})

	t.Run("Temporal refuses the request", func(t *testing.T) {
		// An InvalidArgument is the request's fault: 400, not a 503 a client retries forever.
		refusing := refusingClient{Client: h.temporal}
		a := testServer(h.cfg, h.store, refusing, h.logs, slog.New(slog.NewTextHandler(io.Discard, nil)))
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("POST", path, strings.NewReader(`{"branch":"main"}`))
		req.Header.Set("Authorization", "Bearer "+h.writer)
		req.Header.Set("Content-Type", "application/json")
		a.Handler().ServeHTTP(rec, req)
		if rec.Code != 400 || !strings.Contains(rec.Body.String(), "search attribute value too long") {
			t.Fatalf("build now refused by Temporal answered %d %s, want 400 with Temporal's reason", rec.Code, rec.Body)
		}
	})

	t.Run("slash with sanitize_ref", func(t *testing.T) {
		sane := h.createRule(t, tm, with(map[string]any{"sanitize_ref": true}))
		r := h.do(t, "POST", tm.rule(sane.ID)+"/builds", h.writer, map[string]any{"branch": "feature/login"})
		expect(t, r, 202, "build now of feature/login with sanitize_ref")
	})

	t.Run("idempotency key", func(t *testing.T) {
		idem := h.createRule(t, tm, githubRule())
		p := tm.rule(idem.ID) + "/builds"
		var first started
		for i := 0; i < 3; i++ {
			r := h.do(t, "POST", p, h.writer, map[string]any{"branch": "main"}, "Idempotency-Key", "deploy-42")
			expect(t, r, 202, "build now with a key")
			var s started
			r.decode(t, &s)
			if i == 0 {
				first = s
			} else if s != first {
				t.Errorf("repeated key answered %+v, want %+v", s, first)
			}
		}
		h.expectBuilds(t, ruleQuery(idem.ID), 1)

		// Another key, or the same key from another user, is another build; no key always is.
		var other started
		r := h.do(t, "POST", p, h.writer, map[string]any{"branch": "main"}, "Idempotency-Key", "deploy-43")
		expect(t, r, 202, "build now with another key")
		r.decode(t, &other)
		r = h.do(t, "POST", p, h.owner, map[string]any{"branch": "main"}, "Idempotency-Key", "deploy-42")
		expect(t, r, 202, "build now with the key of another user")
		var owners started
		r.decode(t, &owners)
		if other.ID == first.ID || owners.ID == first.ID || other.ID == owners.ID {
			t.Errorf("distinct requests shared a build: %s %s %s", first.ID, other.ID, owners.ID)
		}
		for i := 0; i < 2; i++ {
			expect(t, h.do(t, "POST", p, h.writer, map[string]any{"branch": "main"}), 202, "build now without a key")
		}
		h.expectBuilds(t, ruleQuery(idem.ID), 5)
	})
}

// buildList is the answer of GET .../builds.
type buildList struct {
	Builds        []map[string]any `json:"builds"`
	NextPageToken string           `json:"next_page_token"`
}

// listBuilds polls GET path until it lists want builds: visibility is eventually consistent.
func listBuilds(t *testing.T, path, token string, want int) buildList {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := h.do(t, "GET", path, token, nil)
		expect(t, r, 200, "listing builds")
		var l buildList
		r.decode(t, &l)
		if len(l.Builds) == want {
			return l
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s lists %d builds, want %d: %s", path, len(l.Builds), want, r)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestBuildRecords(t *testing.T) {
	h := devStack(t)
	tm := h.newTeam(t, "rec")
	ruleA := h.createRule(t, tm, githubRule())
	ruleB := h.createRule(t, tm, with(map[string]any{"tag_template": "", "dockerfile_path": "", "build_args": map[string]string{}}))
	foreign := h.foreignTeam(t, "rec-other")
	foreignRule := h.storeRule(t, foreign.ns, "github")
	startBuild(t, foreignRule)

	// Three builds, a moment apart so their order is certain: build now, a push, a tag.
	var manual started
	r := h.do(t, "POST", tm.rule(ruleA.ID)+"/builds", h.writer,
		map[string]any{"branch": "main", "build_args": map[string]string{"EXTRA": "1", "GREETING": "hello"}})
	expect(t, r, 202, "build now")
	r.decode(t, &manual)
	time.Sleep(20 * time.Millisecond)
	commit := randomCommit()
	body := fixture(t, "github/push_branch.json", setCommit(commit))
	pushID := oneBuild(t, h.deliverGitHub(t, ruleA.ID, "push", body, sign(ruleA.Secret, body), ""), "push")
	time.Sleep(20 * time.Millisecond)
	var tagged started
	r = h.do(t, "POST", tm.rule(ruleB.ID)+"/builds", h.writer, map[string]any{"tag": "v2.0.0"})
	expect(t, r, 202, "build now of a tag")
	r.decode(t, &tagged)

	all := listBuilds(t, tm.builds(), h.reader, 3)
	wantOrder := []string{tagged.ID, pushID, manual.ID}
	for i, b := range all.Builds {
		if b["id"] != wantOrder[i] {
			t.Fatalf("builds listed as %v, %v, %v; want newest first %v", all.Builds[0]["id"], all.Builds[1]["id"], all.Builds[2]["id"], wantOrder)
		}
	}
	for _, f := range []string{"id", "run_id", "rule_id", "status", "trigger", "ref", "commit", "tags", "image", "digest",
		"started_at", "finished_at", "ui_url", "logs_url"} {
		for _, b := range all.Builds {
			if _, ok := b[f]; !ok {
				t.Errorf("record %v lacks %q", b["id"], f)
			}
		}
	}
	push := all.Builds[1]
	for k, want := range map[string]any{"status": "running", "trigger": "push", "ref": "main", "commit": commit,
		"rule_id": ruleA.ID, "namespace": tm.ns, "repository": "app", "image": "127.0.0.1:5000/" + tm.ns + "/app",
		"finished_at": nil, "logs_url": h.cfg.GatewayURL + "/api/v1/builds/" + pushID + "/logs"} {
		if push[k] != want {
			t.Errorf("push record %s = %v, want %v", k, push[k], want)
		}
	}
	if want := testUIURL + "/namespaces/default/workflows/" + pushID + "/" + push["run_id"].(string) + "/history"; push["ui_url"] != want {
		t.Errorf("ui_url %v, want %s", push["ui_url"], want)
	}
	if all.Builds[0]["trigger"] != "manual" || all.Builds[0]["ref"] != "v2.0.0" || all.Builds[2]["trigger"] != "manual" {
		t.Errorf("records %v", all.Builds)
	}

	t.Run("filters", func(t *testing.T) {
		if l := listBuilds(t, tm.builds()+"?rule="+ruleB.ID, h.reader, 1); l.Builds[0]["id"] != tagged.ID {
			t.Errorf("?rule=%s lists %v", ruleB.ID, l.Builds[0]["id"])
		}
		listBuilds(t, tm.builds()+"?rule="+ruleA.ID, h.reader, 2)
		listBuilds(t, tm.builds()+"?rule="+foreignRule.ID, h.reader, 0)
		listBuilds(t, tm.builds()+"?status=running", h.reader, 3)
		listBuilds(t, tm.builds()+"?status=succeeded", h.reader, 0)
		listBuilds(t, tm.builds()+"?status=running&rule="+ruleA.ID, h.reader, 2)
		for _, q := range []string{"?status=done", "?limit=0", "?limit=101", "?limit=x", "?rule=a'b", "?page_token=***"} {
			r := h.do(t, "GET", tm.builds()+q, h.reader, nil)
			expect(t, r, 400, q)
			r.errorMessage(t)
		}
	})

	t.Run("pages", func(t *testing.T) {
		seen := map[string]bool{}
		var order []string
		token := ""
		for page := 0; page < 4; page++ {
			q := "?limit=1"
			if token != "" {
				q += "&page_token=" + url.QueryEscape(token)
			}
			l := listBuilds(t, tm.builds()+q, h.reader, map[bool]int{true: 0, false: 1}[page == 3])
			if page == 3 {
				if l.NextPageToken != "" {
					t.Errorf("the page after the last has next_page_token %q", l.NextPageToken)
				}
				break
			}
			id := l.Builds[0]["id"].(string)
			if seen[id] {
				t.Fatalf("page %d repeats %s", page, id)
			}
			seen[id] = true
			order = append(order, id)
			if l.NextPageToken == "" {
				if page < 2 {
					t.Fatalf("page %d of 3 has no next_page_token", page)
				}
				break
			}
			token = l.NextPageToken
		}
		if strings.Join(order, " ") != strings.Join(wantOrder, " ") {
			t.Errorf("pages list %v, want %v", order, wantOrder)
		}
	})

	t.Run("one build", func(t *testing.T) {
		begin := time.Now()
		r := h.do(t, "GET", "/api/v1/builds/"+manual.ID, h.reader, nil)
		expect(t, r, 200, "getting a build")
		// No worker took the build up: nothing can answer its status query, and the record
		// must not wait for one.
		if d := time.Since(begin); d > time.Second {
			t.Errorf("getting a build no worker took up took %v", d)
		}
		var rec struct {
			ID     string         `json:"id"`
			Status string         `json:"status"`
			Params map[string]any `json:"params"`
			Steps  []any          `json:"steps"`
		}
		r.decode(t, &rec)
		if rec.ID != manual.ID || rec.Status != "running" || rec.Params == nil {
			t.Fatalf("build %s", r)
		}
		for k, want := range map[string]string{
			"ref":             `{"type":"branch","name":"main"}`,
			"commit":          `""`,
			"dockerfile_path": `"build/Dockerfile"`,
			"context_path":    `""`,
			"tag_template":    `"{ref}-{short_commit}"`,
			"build_args":      `{"EXTRA":"1","GREETING":"hello"}`,
			"sanitize_ref":    "false",
			"image":           fmt.Sprintf("%q", "127.0.0.1:5000/"+tm.ns+"/app"),
			"source":          `{"provider":"github","owner":"octo","repository":"hello"}`,
		} {
			if got := mustJSON(rec.Params[k]); got != canonicalJSON(t, want) {
				t.Errorf("params.%s = %s, want %s", k, got, want)
			}
		}
		if rec.Steps != nil {
			t.Errorf("a build no worker took up shows steps %v", rec.Steps)
		}

		// The defaults a rule leaves empty show as what the build uses.
		r = h.do(t, "GET", "/api/v1/builds/"+tagged.ID, h.reader, nil)
		expect(t, r, 200, "getting the tag build")
		r.decode(t, &rec)
		if rec.Params["dockerfile_path"] != "Dockerfile" || rec.Params["tag_template"] != "{ref}" {
			t.Errorf("defaults shown as %v", rec.Params)
		}

		for _, id := range []string{"build-nosuch", "no%20such", strings.Repeat("x", 300)} {
			r := h.do(t, "GET", "/api/v1/builds/"+id, h.reader, nil)
			expect(t, r, 404, "getting build "+id)
			r.errorMessage(t)
		}
	})
}

// historyHas reports whether the history of build id holds an event of type want.
func historyHas(t *testing.T, id string, want enumspb.EventType) bool {
	t.Helper()
	it := h.temporal.GetWorkflowHistory(context.Background(), id, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		if ev.GetEventType() == want {
			return true
		}
	}
	return false
}

func TestCancel(t *testing.T) {
	h := devStack(t)
	tm := h.newTeam(t, "cancel")
	rule := h.createRule(t, tm, githubRule())
	id, runID := h.buildNow(t, tm, rule.ID)

	r := h.do(t, "POST", "/api/v1/builds/"+id+"/cancel", h.reader, nil)
	expect(t, r, 403, "cancel by a reader")
	r.errorMessage(t)
	if historyHas(t, id, enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_CANCEL_REQUESTED) {
		t.Fatal("a reader's refused cancel reached Temporal")
	}

	r = h.do(t, "POST", "/api/v1/builds/"+id+"/cancel", h.writer, nil)
	expect(t, r, 202, "cancel")
	var v map[string]string
	r.decode(t, &v)
	if v["id"] != id || v["run_id"] != runID || v["status"] != "canceling" {
		t.Errorf("cancel answered %v", v)
	}
	if !historyHas(t, id, enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_CANCEL_REQUESTED) {
		t.Error("no WorkflowExecutionCancelRequested in the history after a cancel")
	}
	// Without a worker the build stays running until one acts on the request.
	var rec map[string]any
	r = h.do(t, "GET", "/api/v1/builds/"+id, h.reader, nil)
	expect(t, r, 200, "getting the canceled build")
	r.decode(t, &rec)
	if rec["status"] != "running" {
		t.Errorf("a build whose cancel no worker saw shows status %v, want running", rec["status"])
	}

	if err := h.temporal.TerminateWorkflow(context.Background(), id, "", "test"); err != nil {
		t.Fatal(err)
	}
	r = h.do(t, "POST", "/api/v1/builds/"+id+"/cancel", h.writer, nil)
	expect(t, r, 409, "cancel of an ended build")
	if msg := r.errorMessage(t); !strings.Contains(msg, "terminated") {
		t.Errorf("message %q does not say how the build ended", msg)
	}
	r = h.do(t, "GET", "/api/v1/builds/"+id, h.reader, nil)
	expect(t, r, 200, "getting the terminated build")
	r.decode(t, &rec)
	if rec["status"] != "terminated" || rec["finished_at"] == nil {
		t.Errorf("terminated build shows status %v finished_at %v", rec["status"], rec["finished_at"])
	}
	expect(t, h.do(t, "POST", "/api/v1/builds/build-nosuch/cancel", h.writer, nil), 404, "cancel of a missing build")
}

func TestBuildLogs(t *testing.T) {
	t.Parallel()
	h := mockStack(t)
	tm := h.newTeam(t, "logs")
	rule := h.createRule(t, tm, githubRule())

	t.Run("stored", func(t *testing.T) {
		id, runID := h.buildNow(t, tm, rule.ID)
		r := h.do(t, "GET", "/api/v1/builds/"+id+"/logs", h.reader, nil)
		expect(t, r, 200, "logs before any")
		if len(r.body) != 0 {
			t.Errorf("a build without a log answered %q", r.body)
		}
		w, err := h.logs.Append(id, runID)
		if err != nil {
			t.Fatal(err)
		}
		const text = "#1 [internal] load build definition from Dockerfile\n#1 DONE 0.0s\n"
		if _, err := io.WriteString(w, text); err != nil {
			t.Fatal(err)
		}
		w.Close()
		r = h.do(t, "GET", "/api/v1/builds/"+id+"/logs", h.reader, nil)
		expect(t, r, 200, "logs")
		if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
			t.Errorf("Content-Type %q, want text/plain", ct)
		}
		if string(r.body) != text {
			t.Errorf("logs %q, want %q", r.body, text)
		}
		// A build that has ended answers its log at once, followed or not.
		if err := h.temporal.TerminateWorkflow(context.Background(), id, "", "test"); err != nil {
			t.Fatal(err)
		}
		r = h.do(t, "GET", "/api/v1/builds/"+id+"/logs?follow=1", h.reader, nil)
		expect(t, r, 200, "followed logs of an ended build")
		if string(r.body) != text {
			t.Errorf("followed logs of an ended build %q, want %q", r.body, text)
		}
	})

	t.Run("follow", func(t *testing.T) {
		id, runID := h.buildNow(t, tm, rule.ID)
		w, err := h.logs.Append(id, runID)
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		if _, err := io.WriteString(w, "line 0\n"); err != nil {
			t.Fatal(err)
		}

		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, "GET", h.srv.URL+"/api/v1/builds/"+id+"/logs?follow=1", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+h.reader)
		resp, err := h.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
			t.Fatalf("follow answered %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		lines := make(chan string)
		ended := make(chan error, 1)
		var got strings.Builder
		go func() {
			sc := bufio.NewScanner(resp.Body)
			for sc.Scan() {
				lines <- sc.Text()
			}
			ended <- sc.Err()
		}()
		next := func() string {
			t.Helper()
			select {
			case l := <-lines:
				got.WriteString(l + "\n")
				return l
			case err := <-ended:
				t.Fatalf("the stream ended (%v) while the build runs", err)
			case <-time.After(5 * time.Second):
				t.Fatal("no line arrived within 5s")
			}
			return ""
		}
		if l := next(); l != "line 0" {
			t.Fatalf("first line %q", l)
		}
		// Each line arrives while the build still runs, before the next is written.
		for i := 1; i <= 3; i++ {
			go func() {
				_, _ = fmt.Fprintf(w, "line %d\n", i)
			}()
			if l := next(); l != fmt.Sprintf("line %d", i) {
				t.Fatalf("line %d arrived as %q", i, l)
			}
		}
		if _, err := io.WriteString(w, "last line\n"); err != nil {
			t.Fatal(err)
		}
		if err := h.temporal.TerminateWorkflow(context.Background(), id, "", "test"); err != nil {
			t.Fatal(err)
		}
		deadline := time.After(5 * time.Second)
		for {
			select {
			case l := <-lines:
				got.WriteString(l + "\n")
				continue
			case err := <-ended:
				if err != nil {
					t.Fatalf("stream broke: %v", err)
				}
			case <-deadline:
				t.Fatal("the stream did not end within 5s of the build's end")
			}
			break
		}
		if want := "line 0\nline 1\nline 2\nline 3\nlast line\n"; got.String() != want {
			t.Errorf("followed %q, want %q", got.String(), want)
		}
		h.checkAnswer(t, "GET", "/api/v1/builds/"+id+"/logs", response{code: 200, body: []byte(got.String())})
	})
}

// TestBuildSteps checks a build a worker has taken up shows the steps its status query
// answers. A stand-in workflow of the same name answers the query on a queue of its own.
func TestBuildSteps(t *testing.T) {
	h := devStack(t)
	cfg := h.cfg
	cfg.TaskQueue = "gateway-test-steps"
	a := testServer(cfg, h.store, h.temporal, h.logs, h.api.logger)
	srv := httptest.NewServer(a.Handler())
	defer srv.Close()

	begun := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	w := worker.New(h.temporal, cfg.TaskQueue, worker.Options{})
	w.RegisterWorkflowWithOptions(func(ctx workflow.Context, in build.Input) error {
		st := build.Status{Step: build.StepClone, HostAttempts: 1,
			Steps: []build.StepStatus{{Name: build.StepClone, HostAttempt: 1, StartedAt: begun}}}
		if err := workflow.SetQueryHandler(ctx, build.StatusQuery, func() (build.Status, error) { return st, nil }); err != nil {
			return err
		}
		return workflow.Await(ctx, func() bool { return false })
	}, workflow.RegisterOptions{Name: build.WorkflowName})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	defer w.Stop()

	tm := h.newTeam(t, "steps")
	rule := h.createRule(t, tm, githubRule())
	var s started
	req, _ := http.NewRequest("POST", srv.URL+tm.rule(rule.ID)+"/builds", strings.NewReader(`{"branch":"main"}`))
	req.Header.Set("Authorization", "Bearer "+h.writer)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r := response{code: resp.StatusCode, header: resp.Header}
	r.body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	h.checkAnswer(t, "POST", tm.rule(rule.ID)+"/builds", r)
	expect(t, r, 202, "build now")
	r.decode(t, &s)
	defer func() { _ = h.temporal.TerminateWorkflow(context.Background(), s.ID, "", "test") }()

	deadline := time.Now().Add(10 * time.Second)
	for {
		r := h.do(t, "GET", "/api/v1/builds/"+s.ID, h.reader, nil)
		expect(t, r, 200, "getting the build")
		var rec struct {
			Steps []build.StepStatus `json:"steps"`
		}
		r.decode(t, &rec)
		if len(rec.Steps) == 1 && rec.Steps[0].Name == build.StepClone && rec.Steps[0].StartedAt.Equal(begun) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the build shows steps %+v, want the clone step its worker reports", rec.Steps)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// canonicalJSON re-encodes JSON text the way mustJSON encodes decoded values (object keys
// sorted), so two spellings of one value compare equal.
func canonicalJSON(t *testing.T, s string) string {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("%s: %v", s, err)
	}
	return mustJSON(v)
}

// storedRule saves a rule straight to the store, past the API's checks, as a rule saved
// before them would be; change sets what the API would refuse.
func (hs *harness) storedRule(t testing.TB, tm team, change func(*store.Rule)) store.Rule {
	t.Helper()
	r := store.Rule{
		Namespace: tm.ns, Repository: "app",
		Source:   store.Source{Provider: "github", Owner: "octo", Repository: "hello"},
		Triggers: build.Triggers{Branches: []string{"main"}},
	}
	change(&r)
	r, err := hs.store.CreateRule(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	hs.addSecret(r.WebhookSecret)
	return r
}

// TestQueuedBuildRecord checks a build waiting for a slot of its namespace reads as queued,
// with the reason, in its record and in the list, and as running once it has its slot. A
// stand-in workflow of the same name sets the memo as the real one does.
func TestQueuedBuildRecord(t *testing.T) {
	h := devStack(t)
	cfg := h.cfg
	cfg.TaskQueue = "gateway-test-queued"
	a := testServer(cfg, h.store, h.temporal, h.logs, h.api.logger)
	srv := httptest.NewServer(a.Handler())
	defer srv.Close()

	const reason = "waiting for a build slot: namespace x runs 4 of 4 builds"
	w := worker.New(h.temporal, cfg.TaskQueue, worker.Options{})
	w.RegisterWorkflowWithOptions(func(ctx workflow.Context, in build.Input) error {
		if err := workflow.UpsertMemo(ctx, map[string]any{build.MemoQueued: reason}); err != nil {
			return err
		}
		workflow.GetSignalChannel(ctx, "granted").Receive(ctx, nil)
		if err := workflow.UpsertMemo(ctx, map[string]any{build.MemoQueued: ""}); err != nil {
			return err
		}
		return workflow.Await(ctx, func() bool { return false })
	}, workflow.RegisterOptions{Name: build.WorkflowName})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	defer w.Stop()

	tm := h.newTeam(t, "queued")
	rule := h.createRule(t, tm, githubRule())
	req, _ := http.NewRequest("POST", srv.URL+tm.rule(rule.ID)+"/builds", strings.NewReader(`{"branch":"main"}`))
	req.Header.Set("Authorization", "Bearer "+h.writer)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var s started
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil || resp.StatusCode != 202 {
		t.Fatalf("build now: %d %v", resp.StatusCode, err)
	}
	resp.Body.Close()
	defer func() { _ = h.temporal.TerminateWorkflow(context.Background(), s.ID, "", "test") }()

	type rec struct {
		ID     string `json:"id"`
		Status string `json:"status"`
		Reason string `json:"reason"`
	}
	wait := func(status, reason string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			r := h.do(t, "GET", "/api/v1/builds/"+s.ID, h.reader, nil)
			expect(t, r, 200, "getting the build")
			h.checkAnswer(t, "GET", "/api/v1/builds/"+s.ID, r)
			var one rec
			r.decode(t, &one)
			var list struct{ Builds []rec }
			h.do(t, "GET", tm.builds()+"?rule="+rule.ID, h.reader, nil).decode(t, &list)
			if one.Status == status && one.Reason == reason && len(list.Builds) == 1 && list.Builds[0] == one {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("build reads %+v, listed %+v; want status %q with reason %q", one, list.Builds, status, reason)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	wait("queued", reason)
	if err := h.temporal.SignalWorkflow(context.Background(), s.ID, "", "granted", nil); err != nil {
		t.Fatal(err)
	}
	wait("running", "")
}

// refusingClient is a Temporal client whose server refuses every start as invalid.
type refusingClient struct{ client.Client }

func (refusingClient) ExecuteWorkflow(context.Context, client.StartWorkflowOptions, any, ...any) (client.WorkflowRun, error) {
	return nil, serviceerror.NewInvalidArgument("search attribute value too long")
}
