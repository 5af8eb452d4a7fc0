//go:build chaos

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestChaosWebhookBodyFlood sends 200 concurrent unauthenticated 25 MiB bodies to one rule's
// GitHub webhook (a well-formed but wrong signature, so each is read before it is refused)
// while real signed deliveries go to the same rule: the real ones are answered with their
// build (after retrying 503s, as a provider does), and the gateway's peak RSS stays under the
// bound its body gate sets.
func TestChaosWebhookBodyFlood(t *testing.T) {
	const owner, flooders, floodFor, real = "chaos-body-flood", 200, 10 * time.Second, 20
	const bodySize = 25 << 20
	const gateMiB = 64 // SLIPWAY_WEBHOOK_BUFFER_MIB's default
	rep := newReport(t, "200 concurrent 25 MiB unauthenticated webhook bodies",
		fmt.Sprintf("%d senders post 25 MiB bodies with a wrong signature to one rule's GitHub webhook, again and again for %s, while %d real signed pushes go to the same rule (a 503 is retried after 500ms, up to 20 times). Every real push must be answered 202 with its build, and the gateway's peak RSS (VmHWM) must stay under its idle RSS + 2 x the body gate (%d MiB: Go's heap may reach twice what is live) + 64 MiB (200 connections, their goroutines and buffers).", flooders, floodFor, real, gateMiB))
	g := startGateway(t, "SLIPWAY_TASK_QUEUE="+noWorkerQueue)
	token := g.setupTeam(t, "flooder", "bodyflood", "app")
	rule := g.createRule(t, token, "bodyflood", "app", map[string]any{
		"source":   map[string]string{"provider": "github", "owner": owner, "repository": "hello"},
		"triggers": map[string]any{"branches": []string{"main"}},
	})
	t.Cleanup(func() { terminateRule(t, rule.ID) })
	pid := g.Pid()
	idle, _ := procMemory(t, pid)

	big := bytes.Repeat([]byte("x"), bodySize)
	badSig := "sha256=" + strings.Repeat("0", 64)
	floodClient := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{MaxConnsPerHost: 0, MaxIdleConnsPerHost: flooders}}
	ctx, cancel := context.WithTimeout(context.Background(), floodFor)
	defer cancel()
	var mu sync.Mutex
	floodCodes := map[string]int{}
	var sent, bodiesSent atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range flooders {
		wg.Go(func() {
			for ctx.Err() == nil {
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, g.url+"/webhooks/github/"+rule.ID, bytes.NewReader(big))
				req.Header.Set("X-GitHub-Event", "push")
				req.Header.Set("X-Hub-Signature-256", badSig)
				sent.Add(1)
				resp, err := floodClient.Do(req)
				key := "connection error"
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					key = strconv.Itoa(resp.StatusCode)
					if resp.StatusCode == http.StatusUnauthorized {
						bodiesSent.Add(1)
					}
				} else if ctx.Err() != nil {
					return
				}
				mu.Lock()
				floodCodes[key]++
				mu.Unlock()
			}
		})
	}

	// The real deliveries start once the flood is on.
	time.Sleep(time.Second)
	type answer struct {
		tries int
		code  int
		ids   []string
		took  time.Duration
	}
	answers := make([]answer, real)
	events := make([]pushEvent, real)
	var realWG sync.WaitGroup
	for i := range events {
		events[i] = newPushEvent(t, owner, rule.Webhook.Secret)
		realWG.Go(func() {
			began := time.Now()
			for try := 1; try <= 20; try++ {
				code, ids, err := events[i].post(g.url, rule.ID)
				answers[i].tries, answers[i].code, answers[i].ids = try, code, ids
				if err == nil && code != http.StatusServiceUnavailable {
					break
				}
				time.Sleep(500 * time.Millisecond)
			}
			answers[i].took = time.Since(began)
		})
		time.Sleep(200 * time.Millisecond)
	}
	realWG.Wait()
	wg.Wait()
	took := time.Since(start)
	after, peak := procMemory(t, pid)

	var worst time.Duration
	retried, failed := 0, 0
	for i, a := range answers {
		if a.code != http.StatusAccepted || len(a.ids) != 1 || a.ids[0] != events[i].wantID(rule.ID) {
			failed++
			t.Errorf("real delivery %d answered %d %v after %d tries, want 202 with %s", i, a.code, a.ids, a.tries, events[i].wantID(rule.ID))
		}
		if a.tries > 1 {
			retried++
		}
		worst = max(worst, a.took)
	}
	bound := idle + 2*gateMiB<<20 + 64<<20
	if peak > bound {
		t.Errorf("gateway peak RSS %s, over the bound of %s", mib(peak), mib(bound))
	}
	if bodiesSent.Load() == 0 {
		t.Error("no flood body was read and refused: the flood did not reach the gateway")
	}
	var codeList []string
	for c, n := range floodCodes {
		codeList = append(codeList, fmt.Sprintf("%d x %s", n, c))
	}
	sort.Strings(codeList)
	rep.add("flood requests sent (25 MiB each)", sent.Load())
	rep.add("flood answers", strings.Join(codeList, ", "))
	rep.add("flood bodies read whole and refused (401)", bodiesSent.Load())
	rep.add("real deliveries answered 202 with their build", fmt.Sprintf("%d of %d", real-failed, real))
	rep.add("real deliveries that needed a retry after 503", retried)
	rep.add("slowest real delivery (with retries)", worst)
	rep.add("time under flood", took)
	rep.add("gateway RSS idle / after / peak (VmHWM)", fmt.Sprintf("%s / %s / %s", mib(idle), mib(after), mib(peak)))
	rep.add("peak RSS bound asserted", mib(bound))
}

// temporalCalls is the gateway's count of calls to Temporal so far, from its /metrics
// (temporal_request_total, every operation).
func temporalCalls(t *testing.T, g *gateway) float64 {
	t.Helper()
	resp, err := http.Get(g.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var total float64
	found := false
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "temporal_request_total") {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		total += v
		found = true
	}
	if !found {
		t.Fatal("the gateway's /metrics has no temporal_request_total")
	}
	return total
}

// TestChaosLogFollowers follows one running build's log with 1 client, then with 200, and
// measures the gateway's calls to Temporal per second in each case: one watcher per build
// means the same rate, where a poll per follower made it 200 times as much.
func TestChaosLogFollowers(t *testing.T) {
	const many, window = 200, 10 * time.Second
	rep := newReport(t, "200 followers of one build's log",
		fmt.Sprintf("One build that stays running (no worker polls its queue) is followed (GET .../logs?follow=1) by 1 client, then by %d; the gateway's calls to Temporal (temporal_request_total on its /metrics, every operation) are counted over %s in each case, after the followers connected. The %d-follower rate must be at most twice the 1-follower rate + 1/s.", many, window, many))
	g := startGateway(t, "SLIPWAY_TASK_QUEUE="+noWorkerQueue, "SLIPWAY_LOG_FOLLOWERS_PER_USER="+strconv.Itoa(many+10))
	token := g.setupTeam(t, "follower", "followers", "app")
	rule := g.createRule(t, token, "followers", "app", map[string]any{
		"source":   map[string]string{"provider": "github", "owner": "chaos-followers", "repository": "hello"},
		"triggers": map[string]any{"branches": []string{"main"}},
	})
	t.Cleanup(func() { terminateRule(t, rule.ID) })
	id := g.buildNow(t, token, "followers", "app", rule.ID, "main")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: many + 1}}
	var open atomic.Int64
	follow := func() {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, g.url+"/api/v1/builds/"+id+"/logs?follow=1", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := client.Do(req)
		if err != nil {
			if ctx.Err() == nil {
				t.Errorf("following: %v", err)
			}
			return
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("following answered %d", resp.StatusCode)
			return
		}
		open.Add(1)
		io.Copy(io.Discard, resp.Body)
	}
	rate := func(n int64) float64 {
		deadline := time.Now().Add(30 * time.Second)
		for open.Load() < n {
			if time.Now().After(deadline) {
				t.Fatalf("%d of %d followers connected", open.Load(), n)
			}
			time.Sleep(50 * time.Millisecond)
		}
		time.Sleep(time.Second)
		before := temporalCalls(t, g)
		time.Sleep(window)
		return (temporalCalls(t, g) - before) / window.Seconds()
	}
	var wg sync.WaitGroup
	wg.Go(follow)
	one := rate(1)
	for range many - 1 {
		wg.Go(follow)
	}
	all := rate(many)
	cancel()
	wg.Wait()

	if all > 2*one+1 {
		t.Errorf("Temporal calls per second: %.1f with 1 follower, %.1f with %d: the load grows with the followers", one, all, many)
	}
	rep.add("Temporal calls per second, 1 follower", fmt.Sprintf("%.1f", one))
	rep.add(fmt.Sprintf("Temporal calls per second, %d followers", many), fmt.Sprintf("%.1f", all))
	rep.add("the same with one poll per follower (before)", fmt.Sprintf("about %d", many*5))
}
