package e2e

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/devstack"
	"github.com/slipway-dev/slipway/internal/testing/gitserver"
	"github.com/slipway-dev/slipway/notify"
)

// receiver is a notification receiver on loopback that keeps what it got.
type receiver struct {
	mu   sync.Mutex
	got  []delivery
	hang chan struct{} // when set, requests wait on it: a receiver that hangs
	// inFlight counts requests being answered (held, for a hanging receiver).
	inFlight int
}

type delivery struct {
	header http.Header
	body   []byte
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	rc.got = append(rc.got, delivery{header: r.Header.Clone(), body: body})
	rc.inFlight++
	hang := rc.hang
	rc.mu.Unlock()
	defer func() {
		rc.mu.Lock()
		rc.inFlight--
		rc.mu.Unlock()
	}()
	if hang != nil {
		select {
		case <-hang:
		case <-r.Context().Done():
		}
		return
	}
	io.WriteString(w, "thanks")
}

// events returns the bodies received for event, decoded, with their headers.
func (rc *receiver) events(event string) []delivery {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	var out []delivery
	for _, d := range rc.got {
		if d.header.Get(notify.HeaderEvent) == event {
			out = append(out, d)
		}
	}
	return out
}

func (rc *receiver) holding() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.inFlight
}

// waitFor polls cond every 300 ms until it holds or timeout passes.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(timeout); !cond(); time.Sleep(300 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %s", what, timeout)
		}
	}
}

// TestNotificationsAndBadges runs real builds of a rule with three notifications, each to a
// receiver on loopback: one that answers (the payload and its signature are checked for a
// succeeded and a failed build), one that is down and comes back (delivered after retries,
// the log shows the attempts) and one that hangs (the build ends while it still holds the
// request). The rule's badge goes from unknown to passing to failing with the builds.
func TestNotificationsAndBadges(t *testing.T) {
	key := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{9}, 32))
	g := startGateway(t, "SLIPWAY_SECRET_KEY="+key)
	// The receivers are on loopback, which notifications reach only when the operator says so.
	w := startWorker(t, "SLIPWAY_SECRET_KEY="+key, "SLIPWAY_DATABASE_URL="+g.db, "SLIPWAY_NOTIFY_PRIVATE=allow")
	t.Cleanup(w.stop)

	owner := "e2e-notify"
	srv := &gitserver.Server{Root: env.gitRoot, URL: env.gitURL}
	repo := srv.NewRepo(t, owner, "hello")
	good := repo.Commit("main", map[string]string{"Dockerfile": "FROM busybox\nRUN echo notified > /n\n"})

	var alice struct{ Token string }
	g.call(t, "POST", "/api/v1/users", g.admin, map[string]string{"name": "alice"}, &alice)
	ns := "notify-" + time.Now().Format("150405")
	g.call(t, "POST", "/api/v1/namespaces", alice.Token, map[string]string{"name": ns}, nil)
	g.call(t, "POST", "/api/v1/namespaces/"+ns+"/repositories", alice.Token, map[string]string{"name": "app"}, nil)
	rules := "/api/v1/namespaces/" + ns + "/repositories/app/build-rules"
	var rule struct {
		ID    string
		Badge struct{ URL string }
	}
	if code := g.call(t, "POST", rules, alice.Token, map[string]any{
		"source":       map[string]any{"provider": "github", "owner": owner, "repository": "hello"},
		"triggers":     map[string]any{"branches": []string{"main"}},
		"tag_template": "{short_commit}",
	}, &rule); code != http.StatusCreated || rule.Badge.URL == "" {
		t.Fatalf("creating the rule: %d %+v", code, rule)
	}
	badgePath := rule.Badge.URL[strings.Index(rule.Badge.URL, "/badges/"):]
	badge := func(branch string) string {
		resp, err := http.Get(g.url + badgePath + "?branch=" + branch)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		for _, s := range []string{"passing", "failing", "canceled", "unknown"} {
			if strings.Contains(string(b), ">"+s+"</text>") {
				return s
			}
		}
		t.Fatalf("badge answered %d: %s", resp.StatusCode, b)
		return ""
	}
	if got := badge("main"); got != "unknown" {
		t.Fatalf("badge before any build: %s", got)
	}

	answering := &receiver{}
	answeringSrv := httptest.NewServer(answering)
	t.Cleanup(answeringSrv.Close)
	hanging := &receiver{hang: make(chan struct{})}
	hangingSrv := httptest.NewServer(hanging)
	t.Cleanup(hangingSrv.Close)
	t.Cleanup(func() { close(hanging.hang) })
	// The receiver that is down: an address nothing listens on yet.
	downAddr, err := devstack.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	down := &receiver{}

	notifications := "/api/v1/namespaces/" + ns + "/notifications"
	type created struct{ ID, Secret string }
	var a, d, h created
	for _, n := range []struct {
		body map[string]any
		out  *created
	}{
		{map[string]any{"url": answeringSrv.URL + "/hook", "events": []string{"started", "succeeded", "failed", "canceled", "timed_out"}, "rule_id": rule.ID}, &a},
		{map[string]any{"url": "http://" + downAddr + "/hook", "events": []string{"succeeded"}}, &d},
		{map[string]any{"url": hangingSrv.URL + "/slack", "events": []string{"started", "succeeded", "failed"}, "format": "slack"}, &h},
	} {
		if code := g.call(t, "POST", notifications, alice.Token, n.body, n.out); code != http.StatusCreated || n.out.Secret == "" {
			t.Fatalf("creating notification %v: %d", n.body, code)
		}
	}
	// Deleting them ends the deliveries still being retried once the test is over.
	t.Cleanup(func() {
		for _, id := range []string{a.ID, d.ID, h.ID} {
			g.call(t, "DELETE", notifications+"/"+id, alice.Token, nil, nil)
		}
	})

	buildNow := func() string {
		var started struct{ ID string }
		if code := g.call(t, "POST", rules+"/"+rule.ID+"/builds", alice.Token, map[string]string{"branch": "main"}, &started); code != http.StatusAccepted {
			t.Fatalf("build now: %d", code)
		}
		return started.ID
	}
	// check verifies a delivery's signature and reads its body.
	check := func(dl delivery, secret string) map[string]any {
		t.Helper()
		if !notify.Verify(secret, dl.body, dl.header.Get(notify.HeaderSignature)) {
			t.Fatalf("signature %q does not verify the body %s", dl.header.Get(notify.HeaderSignature), dl.body)
		}
		if dl.header.Get(notify.HeaderDelivery) == "" {
			t.Errorf("no delivery id")
		}
		var m map[string]any
		if err := json.Unmarshal(dl.body, &m); err != nil {
			t.Fatal(err)
		}
		return m
	}

	// A build that succeeds.
	ok := buildNow()
	waitFor(t, "the hanging receiver holding the started event", 3*time.Minute, func() bool { return hanging.holding() > 0 })
	rec := g.waitBuild(t, alice.Token, ok)
	if rec.Status != "succeeded" {
		t.Fatalf("build %s: %+v", ok, rec)
	}
	// The build ended while the hanging receiver still held its request: nothing waited.
	if hanging.holding() == 0 {
		t.Errorf("the hanging receiver let go before the build ended")
	}
	status, closed, _ := waitEnded(t, ok, time.Minute)
	t.Logf("build %s %s at %s; hanging receiver holds %d request(s)", ok, status, closed.Format(time.RFC3339Nano), hanging.holding())
	waitFor(t, "the succeeded event", time.Minute, func() bool { return len(answering.events("succeeded")) > 0 })
	startedEv := check(answering.events("started")[0], a.Secret)
	succeeded := check(answering.events("succeeded")[0], a.Secret)
	if startedEv["build_id"] != ok || startedEv["status"] != "started" {
		t.Errorf("started event %v", startedEv)
	}
	tags, _ := succeeded["tags"].([]any)
	ref, _ := succeeded["ref"].(map[string]any)
	if succeeded["build_id"] != ok || succeeded["namespace"] != ns || succeeded["repository"] != "app" || succeeded["rule_id"] != rule.ID ||
		succeeded["commit"] != good || ref["name"] != "main" || len(tags) != 1 || tags[0] != good[:7] ||
		!strings.HasPrefix(succeeded["digest"].(string), "sha256:") || succeeded["status"] != "succeeded" ||
		!strings.HasSuffix(succeeded["build_url"].(string), "/builds/"+ok) || succeeded["timestamp"] == "" {
		t.Errorf("succeeded event %v", succeeded)
	}
	waitFor(t, "the badge saying passing", time.Minute, func() bool { return badge("main") == "passing" })
	if got := badge(""); got != "passing" {
		t.Errorf("badge of every branch: %s", got)
	}
	if got := badge("other"); got != "unknown" {
		t.Errorf("badge of a branch never built: %s", got)
	}
	recordHistory(t, ok, "v2-notified")

	// The receiver that was down: the log shows the failed attempt, then it comes back and
	// the delivery goes through on a later attempt.
	type entry struct {
		Event          string `json:"event"`
		BuildID        string `json:"build_id"`
		Status         string `json:"status"`
		LastError      string `json:"last_error"`
		Attempts       int    `json:"attempts"`
		LastHTTPStatus int    `json:"last_http_status"`
	}
	var dl struct {
		Deliveries []entry `json:"deliveries"`
	}
	readLog := func() {
		dl.Deliveries = nil
		g.call(t, "GET", notifications+"/"+d.ID, alice.Token, nil, &dl)
	}
	waitFor(t, "a failed attempt in the log", time.Minute, func() bool {
		readLog()
		return len(dl.Deliveries) == 1 && dl.Deliveries[0].Status == "pending" && dl.Deliveries[0].LastError != ""
	})
	t.Logf("while down: %+v", dl.Deliveries[0])
	ln, err := net.Listen("tcp", downAddr)
	if err != nil {
		t.Fatal(err)
	}
	back := &http.Server{Handler: down}
	go back.Serve(ln)
	t.Cleanup(func() { back.Close() })
	waitFor(t, "the delivery to the receiver back up", 2*time.Minute, func() bool {
		readLog()
		return len(dl.Deliveries) == 1 && dl.Deliveries[0].Status == "delivered"
	})
	if x := dl.Deliveries[0]; x.Attempts < 2 || x.LastHTTPStatus != 200 || x.BuildID != ok || x.Event != "succeeded" {
		t.Errorf("delivery after coming back: %+v", x)
	}
	if got := down.events("succeeded"); len(got) != 1 || check(got[0], d.Secret)["build_id"] != ok {
		t.Errorf("the receiver back up got %d deliveries", len(got))
	}

	// A build that fails.
	repo.Commit("main", map[string]string{"Dockerfile": "FROM busybox\nRUN exit 3\n"})
	bad := buildNow()
	if rec := g.waitBuild(t, alice.Token, bad); rec.Status != "failed" {
		t.Fatalf("build %s: %+v", bad, rec)
	}
	waitFor(t, "the failed event", time.Minute, func() bool { return len(answering.events("failed")) > 0 })
	failed := check(answering.events("failed")[0], a.Secret)
	if failed["build_id"] != bad || failed["status"] != "failed" || failed["error"] == "" || failed["error"] == nil {
		t.Errorf("failed event %v", failed)
	}
	waitFor(t, "the badge saying failing", time.Minute, func() bool { return badge("main") == "failing" })

	// A build canceled through the API says so, and so does the badge.
	repo.Commit("main", map[string]string{"Dockerfile": "FROM busybox\nRUN sleep 60\n"})
	slow := buildNow()
	waitFor(t, "the slow build's started event", time.Minute, func() bool {
		for _, x := range answering.events("started") {
			if strings.Contains(string(x.body), slow) {
				return true
			}
		}
		return false
	})
	if code := g.call(t, "POST", "/api/v1/builds/"+slow+"/cancel", alice.Token, nil, nil); code != http.StatusAccepted && code != http.StatusOK {
		t.Fatalf("cancel: %d", code)
	}
	waitFor(t, "the canceled event", time.Minute, func() bool { return len(answering.events("canceled")) > 0 })
	if ev := check(answering.events("canceled")[0], a.Secret); ev["build_id"] != slow || ev["status"] != "canceled" {
		t.Errorf("canceled event %v", ev)
	}
	waitFor(t, "the badge saying canceled", time.Minute, func() bool { return badge("main") == "canceled" })

	// A build that reaches its timeout ends itself and says timed_out.
	var full map[string]any
	g.call(t, "GET", rules+"/"+rule.ID, alice.Token, nil, &full)
	if code := g.call(t, "PUT", rules+"/"+rule.ID, alice.Token, map[string]any{
		"source": full["source"], "triggers": full["triggers"], "tag_template": "{short_commit}", "timeout": "5s",
	}, nil); code != http.StatusOK {
		t.Fatalf("setting the rule's timeout: %d", code)
	}
	late := buildNow()
	waitFor(t, "the timed_out event", 2*time.Minute, func() bool { return len(answering.events("timed_out")) > 0 })
	if ev := check(answering.events("timed_out")[0], a.Secret); ev["build_id"] != late || ev["status"] != "timed_out" || !strings.Contains(str(ev["error"]), "timeout") {
		t.Errorf("timed_out event %v", ev)
	}
	waitFor(t, "the badge saying failing after a timeout", time.Minute, func() bool { return badge("main") == "failing" })

	// The Slack receiver got {"text"} bodies, signed too.
	waitFor(t, "the slack receiver's started events", time.Minute, func() bool { return len(hanging.events("started")) >= 2 })
	for _, x := range hanging.events("started") {
		var m map[string]string
		if err := json.Unmarshal(x.body, &m); err != nil || len(m) != 1 || !strings.Contains(m["text"], ns+"/app") {
			t.Errorf("slack body %s", x.body)
		}
		if !notify.Verify(h.Secret, x.body, x.header.Get(notify.HeaderSignature)) {
			t.Errorf("slack body not signed")
		}
	}
}

func str(v any) string {
	s, _ := v.(string)
	return s
}
