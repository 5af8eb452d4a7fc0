package gateway

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"go.temporal.io/sdk/client"

	"github.com/slipway-dev/slipway/store"
)

func TestHealthz(t *testing.T) {
	t.Parallel()
	h := mockStack(t)
	r := h.do(t, "GET", "/healthz", "", nil)
	expect(t, r, 200, "healthz")
	var v map[string]string
	r.decode(t, &v)
	if v["database"] != "ok" || v["temporal"] != "ok" {
		t.Errorf("healthz %v, want database and temporal ok", v)
	}

	t.Run("database and temporal down", func(t *testing.T) {
		st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "down.db"))
		if err != nil {
			t.Fatal(err)
		}
		st.Close()
		tc, err := client.NewLazyClient(client.Options{HostPort: "127.0.0.1:1"})
		if err != nil {
			t.Fatal(err)
		}
		defer tc.Close()
		var logs strings.Builder
		a := testServer(h.cfg, st, tc, h.logs, slog.New(slog.NewTextHandler(&logs, nil)))
		rec := httptest.NewRecorder()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		a.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/healthz", nil).WithContext(ctx))
		if rec.Code != 503 {
			t.Fatalf("healthz with both down answered %d %s", rec.Code, rec.Body)
		}
		var v map[string]string
		if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
			t.Fatal(err)
		}
		if v["database"] != "unavailable" || v["temporal"] != "unavailable" {
			t.Errorf("healthz with both down answered %v, want both unavailable", v)
		}
		// The answer names the parts; why they are down is in the log only (the database's
		// error names its file, Temporal's its address).
		if strings.Contains(rec.Body.String(), "closed") || strings.Contains(rec.Body.String(), "127.0.0.1") {
			t.Errorf("healthz shows error text: %s", rec.Body)
		}
		if !strings.Contains(logs.String(), "check=database") || !strings.Contains(logs.String(), "check=temporal") {
			t.Errorf("the failed checks were not logged: %s", logs.String())
		}
	})
}

func TestUnknownRoutes(t *testing.T) {
	t.Parallel()
	h := mockStack(t)
	for _, tc := range []struct {
		method, path string
		want         int
	}{
		{"GET", "/nope", 404},
		{"GET", "/api/v1/nope", 404},
		{"GET", "/api/v2/builds/x", 404},
		{"DELETE", "/api/v1/users", 405},
		{"GET", "/webhooks/github/r-x", 405},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			r := h.do(t, tc.method, tc.path, h.admin, nil)
			expect(t, r, tc.want, tc.path)
			r.errorMessage(t)
		})
	}
}

// TestPanic checks a handler's panic becomes a 500 in the API's error shape, with a request id
// the log names, and that the server goes on serving.
func TestPanic(t *testing.T) {
	t.Parallel()
	h := mockStack(t)
	buf := &syncBuffer{}
	a := testServer(h.cfg, h.store, h.temporal, h.logs, slog.New(slog.NewTextHandler(buf, nil)))
	r := a.engine
	r.GET("/test-panic", func(*gin.Context) { panic("boom: something broke") })
	srv := httptest.NewServer(r)
	defer srv.Close()

	for i := 0; i < 2; i++ {
		resp, err := http.Get(srv.URL + "/test-panic")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		ans := response{code: resp.StatusCode, header: resp.Header, body: b}
		expect(t, ans, 500, "panicking handler")
		msg := ans.errorMessage(t)
		if strings.Contains(msg, "boom") {
			t.Errorf("the 500 shows the panic: %q", msg)
		}
		id := regexp.MustCompile(`request ([0-9a-f]+)`).FindStringSubmatch(msg)
		if id == nil {
			t.Fatalf("500 message %q names no request id", msg)
		}
		if log := buf.String(); !strings.Contains(log, "request_id="+id[1]) || !strings.Contains(log, "boom") {
			t.Errorf("the log does not record the panic of request %s:\n%s", id[1], log)
		}
	}
	resp, err := http.Get(srv.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("healthz after a panic answered %d", resp.StatusCode)
	}
}

// TestRequestLogHoldsNoSecrets sends tokens and webhook secrets everywhere a request can carry
// them and checks the gateway's log shows none of them, but does log the requests.
func TestRequestLogHoldsNoSecrets(t *testing.T) {
	t.Parallel()
	h := mockStack(t)
	buf := &syncBuffer{}
	a := testServer(h.cfg, h.store, h.temporal, h.logs, slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	srv := httptest.NewServer(a.Handler())
	defer srv.Close()

	tm := h.newTeam(t, "logs-hygiene")
	gh := h.createRule(t, tm, githubRule())
	gl := h.createRule(t, tm, map[string]any{"source": map[string]any{"provider": "gitlab", "owner": "mike", "repository": "diaspora"},
		"triggers": map[string]any{"branches": []string{"master"}}})
	push := fixture(t, "github/push_branch.json", setCommit(randomCommit()))
	glPush := fixture(t, "gitlab/push.json", nil)
	bad := "slw_" + strings.Repeat("q", 43)
	h.addToken(bad)

	send := func(method, path, token string, body []byte, headers ...string) int {
		t.Helper()
		req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(string(body)))
		if err != nil {
			t.Fatal(err)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		for i := 0; i+1 < len(headers); i += 2 {
			req.Header.Set(headers[i], headers[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		h.checkAnswer(t, method, path, response{code: resp.StatusCode, header: resp.Header, body: b})
		return resp.StatusCode
	}
	codes := []int{
		send("GET", tm.rules(), h.reader, nil),
		send("GET", tm.rules()+"?token="+h.reader+"&secret="+gh.Secret, h.reader, nil),
		send("GET", tm.rules(), bad, nil),
		send("GET", "/nope?token="+h.admin, h.admin, nil),
		send("POST", tm.rules(), h.writer, []byte(`{"source":{"provider":"github","owner":"`+gh.Secret+`","repository":"x"}, "nope": 1}`)),
		send("POST", "/api/v1/users", h.admin, []byte(`{"name":"`+h.admin+`"}`)),
		send("POST", "/webhooks/github/"+gh.ID, "", push, "X-GitHub-Event", "push", "X-Hub-Signature-256", sign(gh.Secret, push)),
		send("POST", "/webhooks/github/"+gh.ID, "", push, "X-GitHub-Event", "push", "X-Hub-Signature-256", "sha256="+gh.Secret),
		send("POST", "/webhooks/github/"+gh.ID, "", []byte(`{"secret":"`+gh.Secret+`"`), "X-GitHub-Event", "push",
			"X-Hub-Signature-256", sign(gh.Secret, []byte(`{"secret":"`+gh.Secret+`"`))),
		send("POST", "/webhooks/gitlab/"+gl.ID, "", glPush, "X-Gitlab-Event", "Push Hook", "X-Gitlab-Token", gl.Secret),
		send("POST", "/webhooks/gitlab/"+gl.ID, "", glPush, "X-Gitlab-Event", "Push Hook", "X-Gitlab-Token", gh.Secret),
		send("POST", "/webhooks/gitlab/"+gl.ID, "", glPush, "X-Gitlab-Event", "Push Hook", "X-Gitlab-Token", h.admin),
	}
	want := []int{200, 200, 401, 404, 400, 400, 202, 401, 400, 202, 401, 401}
	for i := range want {
		if codes[i] != want[i] {
			t.Errorf("request %d answered %d, want %d", i, codes[i], want[i])
		}
	}

	log := buf.String()
	if leak := h.leakIn(log); leak != "" {
		t.Errorf("the log holds %s:\n%s", leak, log)
	}
	for _, want := range []string{
		"route=/api/v1/namespaces/:ns/repositories/:repo/build-rules", "route=/webhooks/github/:rule_id",
		"route=unmatched", "status=401", "status=202", "user=reader",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("the log lacks %q:\n%s", want, log)
		}
	}
}
