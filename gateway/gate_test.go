package gateway

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestBodyGate(t *testing.T) {
	for _, tc := range []struct {
		name     string
		max      int
		maxBytes int64
		held     []int64 // sizes holding places
		size     int64
		want     bool
	}{
		{"empty gate", 2, 100, nil, 100, true},
		{"count full", 2, 100, []int64{1, 1}, 1, false},
		{"bytes full", 4, 100, []int64{60}, 41, false},
		{"bytes fit exactly", 4, 100, []int64{60}, 40, true},
		{"too big for the gate at all", 4, 100, nil, 101, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := newBodyGate(tc.max, tc.maxBytes)
			for _, s := range tc.held {
				if _, ok := g.acquire(context.Background(), s, 0); !ok {
					t.Fatalf("could not hold %d", s)
				}
			}
			_, ok := g.acquire(context.Background(), tc.size, 10*time.Millisecond)
			if ok != tc.want {
				t.Errorf("acquire(%d) = %v, want %v", tc.size, ok, tc.want)
			}
		})
	}
	t.Run("a waiter gets the place given back", func(t *testing.T) {
		g := newBodyGate(1, 100)
		release, _ := g.acquire(context.Background(), 100, 0)
		go func() { time.Sleep(50 * time.Millisecond); release(); release() }()
		if _, ok := g.acquire(context.Background(), 100, 2*time.Second); !ok {
			t.Fatal("the waiter did not get the place given back")
		}
		if g.n != 1 || g.bytes != 100 {
			t.Errorf("gate holds %d bodies, %d bytes after a double release", g.n, g.bytes)
		}
	})
}

// countingBody counts the bytes a handler reads of a request body.
type countingBody struct {
	r    io.Reader
	read *atomic.Int64
}

func (b countingBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.read.Add(int64(n))
	return n, err
}

func (countingBody) Close() error { return nil }

// TestWebhookBodyNotRead: what the headers can refuse is refused before one byte of the body
// is read, and a full gate answers 503 with Retry-After, also without reading.
func TestWebhookBodyNotRead(t *testing.T) {
	t.Parallel()
	h := mockStack(t)
	tm := h.newTeam(t, "unread")
	gh := h.createRule(t, tm, githubRule())
	gl := h.createRule(t, tm, map[string]any{
		"source":   map[string]any{"provider": "gitlab", "owner": "mike", "repository": "diaspora"},
		"triggers": map[string]any{"branches": []string{"master"}},
	})
	full := testServer(h.cfg, h.store, h.temporal, h.logs, h.api.logger)
	hold, _ := full.bodies.acquire(context.Background(), full.bodies.maxBytes, 0)
	defer hold()
	sig := "sha256=" + strings.Repeat("ab", 32)
	for _, tc := range []struct {
		name    string
		a       *Server
		path    string
		headers map[string]string
		want    int
	}{
		{"github without signature", h.api, "/webhooks/github/" + gh.ID, map[string]string{"X-GitHub-Event": "push"}, 401},
		{"github with sha1 only", h.api, "/webhooks/github/" + gh.ID, map[string]string{"X-Hub-Signature": "sha1=" + strings.Repeat("ab", 20)}, 401},
		{"github malformed signature", h.api, "/webhooks/github/" + gh.ID, map[string]string{"X-Hub-Signature-256": "sha256=zz"}, 401},
		{"gitlab without token", h.api, "/webhooks/gitlab/" + gl.ID, map[string]string{"X-Gitlab-Event": "Push Hook"}, 401},
		{"gitlab wrong token", h.api, "/webhooks/gitlab/" + gl.ID, map[string]string{"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": "guess"}, 401},
		{"unknown rule", h.api, "/webhooks/github/r-nosuch", map[string]string{"X-Hub-Signature-256": sig}, 404},
		{"declared over the cap", h.api, "/webhooks/github/" + gh.ID, map[string]string{"X-Hub-Signature-256": sig, "Content-Length": "26214401"}, 413},
		{"gate full", full, "/webhooks/github/" + gh.ID, map[string]string{"X-Hub-Signature-256": sig}, 503},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var read atomic.Int64
			req := httptest.NewRequest("POST", tc.path, nil)
			req.Body = countingBody{r: strings.NewReader(strings.Repeat("x", 1<<20)), read: &read}
			req.ContentLength = 1 << 20
			for k, v := range tc.headers {
				if k == "Content-Length" {
					req.ContentLength = 26214401
					continue
				}
				req.Header.Set(k, v)
			}
			rec := httptest.NewRecorder()
			start := time.Now()
			tc.a.Handler().ServeHTTP(rec, req)
			if rec.Code != tc.want {
				t.Fatalf("answered %d %s, want %d", rec.Code, rec.Body, tc.want)
			}
			if n := read.Load(); n != 0 {
				t.Errorf("%d bytes of the body were read", n)
			}
			if tc.want == http.StatusServiceUnavailable {
				if rec.Header().Get("Retry-After") == "" {
					t.Error("503 without Retry-After")
				}
				if d := time.Since(start); d < bodyWait/2 || d > 3*bodyWait {
					t.Errorf("a full gate answered after %s, want after waiting about %s", d, bodyWait)
				}
			}
		})
	}
}
