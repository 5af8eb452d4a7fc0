package gateway

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
)

// countingClient counts the DescribeWorkflow calls the gateway makes.
type countingClient struct {
	client.Client
	describes atomic.Int64
}

func (c *countingClient) DescribeWorkflow(ctx context.Context, id, runID string) (*client.WorkflowExecutionDescription, error) {
	c.describes.Add(1)
	return c.Client.DescribeWorkflow(ctx, id, runID)
}

// TestFollowHub: followers of one build share one watcher (Temporal calls do not grow with
// them), each user follows at most LogFollowersPerUser logs (429 beyond), and a stream with no
// new bytes for LogFollowIdle ends with a note.
func TestFollowHub(t *testing.T) {
	t.Parallel()
	h := mockStack(t)
	tm := h.newTeam(t, "follow")
	rule := h.createRule(t, tm, githubRule())
	id, _ := h.buildNow(t, tm, rule.ID)

	cfg := h.cfg
	cfg.LogFollowersPerUser = 3
	cfg.LogFollowIdle = 2 * time.Second
	counting := &countingClient{Client: h.temporal}
	a := testServer(cfg, h.store, counting, h.logs, h.api.logger)
	srv := httptest.NewServer(a.Handler())
	defer srv.Close()

	type stream struct {
		code  int
		retry string
		body  string
	}
	follow := func(token string) (chan stream, func()) {
		out := make(chan stream, 1)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/api/v1/builds/"+id+"/logs?follow=1", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		go func() {
			resp, err := srv.Client().Do(req)
			if err != nil {
				out <- stream{code: -1, body: err.Error()}
				return
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			out <- stream{code: resp.StatusCode, retry: resp.Header.Get("Retry-After"), body: string(b)}
		}()
		return out, cancel
	}
	waitFollowers := func(n int) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			_, got, _ := a.follows.Load()
			if got == n {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d followers joined, want %d", got, n)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	var readers []chan stream
	for range 3 {
		s, cancel := follow(h.reader)
		defer cancel()
		readers = append(readers, s)
	}
	waitFollowers(3)
	// One more from the same user is refused; another user may still follow.
	fourth, cancel := follow(h.reader)
	defer cancel()
	if s := <-fourth; s.code != http.StatusTooManyRequests || s.retry == "" || !strings.Contains(s.body, "you follow 3 build logs already") {
		t.Fatalf("a fourth follow of one user answered %d (Retry-After %q) %s, want 429", s.code, s.retry, s.body)
	}
	writer, cancelW := follow(h.writer)
	defer cancelW()
	waitFollowers(4)

	// Four followers of one build, one watcher: about one Describe a second, not 4x5.
	before := counting.describes.Load()
	time.Sleep(1500 * time.Millisecond)
	if calls := counting.describes.Load() - before; calls > 3 {
		t.Errorf("%d Describe calls in 1.5s with 4 followers, want at most 3 (one watcher)", calls)
	}
	watchers, _, _ := a.follows.Load()
	if watchers != 1 {
		t.Errorf("%d watchers for one build, want 1", watchers)
	}

	// Nothing is written to the log: every stream ends after its idle time, with a note.
	var wg sync.WaitGroup
	for _, s := range append(readers, writer) {
		wg.Go(func() {
			select {
			case got := <-s:
				if got.code != 200 || !strings.Contains(got.body, "[slipway] no new log output for 2s: this stream ends here") {
					t.Errorf("idle stream answered %d %q, want 200 ending with the idle note", got.code, got.body)
				}
			case <-time.After(10 * time.Second):
				t.Errorf("an idle stream did not end within 10s")
			}
		})
	}
	wg.Wait()
	// The watcher stops with its last follower, and the user's count is back to zero.
	deadline := time.Now().Add(3 * time.Second)
	for {
		left, _, users := a.follows.Load()
		if left == 0 && users == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after every stream ended: %d watchers, %d users counted", left, users)
		}
		time.Sleep(20 * time.Millisecond)
	}
	after := counting.describes.Load()
	time.Sleep(1500 * time.Millisecond)
	if n := counting.describes.Load() - after; n != 0 {
		t.Errorf("%d Describe calls after every follower left", n)
	}
}
