//go:build chaos

package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/converter"

	"github.com/slipway-dev/slipway/build"
	"github.com/slipway-dev/slipway/devstack"
	"github.com/slipway-dev/slipway/webhook"
)

// noWorkerQueue is the task queue of the webhook tests' gateways: no worker polls it, so their
// builds are recorded in Temporal and stay queued, which is all these tests look at.
const noWorkerQueue = "chaos-no-worker"

// pushEvent is one distinct GitHub push: a new commit on main, signed for a rule.
type pushEvent struct {
	commit   string
	delivery string
	body     []byte
	sig      string
}

func newPushEvent(t *testing.T, owner, secret string) pushEvent {
	t.Helper()
	b := make([]byte, 20)
	rand.Read(b)
	commit := hex.EncodeToString(b)
	body := fixturePayload(t, "github/push_branch.json", func(m map[string]any) {
		m["after"], m["ref"] = commit, "refs/heads/main"
		m["head_commit"].(map[string]any)["id"] = commit
		r := m["repository"].(map[string]any)
		r["name"] = "hello"
		r["owner"].(map[string]any)["login"] = owner
		r["owner"].(map[string]any)["name"] = owner
	})
	rand.Read(b[:16])
	return pushEvent{commit: commit, delivery: hex.EncodeToString(b[:16]), body: body, sig: devstack.SignGitHub(secret, body)}
}

// wantID is the build id the gateway must answer for ev under rule: the one derived from
// the event, whichever delivery of it got through.
func (ev pushEvent) wantID(ruleID string) string {
	return webhook.BuildID(ruleID, webhook.Event{Provider: build.ProviderGitHub, Kind: webhook.KindBranch, Ref: "main", Commit: ev.commit})
}

// hookClient posts deliveries without keeping connections to a gateway that may die.
var hookClient = &http.Client{Timeout: 30 * time.Second}

// post delivers ev once to the rule's GitHub webhook at base; err is a connection error.
func (ev pushEvent) post(base, ruleID string) (code int, builds []string, err error) {
	req, err := http.NewRequest(http.MethodPost, base+"/webhooks/github/"+ruleID, bytes.NewReader(ev.body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", "push")
	req.Header.Set("X-GitHub-Delivery", ev.delivery)
	req.Header.Set("X-Hub-Signature-256", ev.sig)
	resp, err := hookClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var ans struct {
		Builds []string `json:"builds"`
	}
	_ = json.Unmarshal(raw, &ans)
	return resp.StatusCode, ans.Builds, nil
}

// ruleBuilds lists every execution of a rule from visibility, as commit -> build ids.
func ruleBuilds(t *testing.T, ruleID string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	var token []byte
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		resp, err := env.temporal.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			PageSize: 200, NextPageToken: token,
			Query: fmt.Sprintf("%s = '%s'", build.AttrRule.GetName(), ruleID),
		})
		cancel()
		if err != nil {
			t.Fatalf("listing builds of %s: %v", ruleID, err)
		}
		for _, info := range resp.GetExecutions() {
			var commit string
			if p := info.GetSearchAttributes().GetIndexedFields()[build.AttrCommit.GetName()]; p != nil {
				_ = converter.GetDefaultDataConverter().FromPayload(p, &commit)
			}
			out[commit] = append(out[commit], info.GetExecution().GetWorkflowId()+"/"+info.GetExecution().GetRunId())
		}
		token = resp.GetNextPageToken()
		if len(token) == 0 {
			return out
		}
	}
}

// waitRuleBuilds waits until visibility lists want commits for the rule (it trails the
// starts by a moment) and returns the listing.
func waitRuleBuilds(t *testing.T, ruleID string, want int) map[string][]string {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		got := ruleBuilds(t, ruleID)
		n := 0
		for _, runs := range got {
			n += len(runs)
		}
		if n >= want || time.Now().After(deadline) {
			return got
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// terminateRule ends the queued builds of a rule, so they weigh on nothing after the test.
func terminateRule(t *testing.T, ruleID string) {
	ids := make(chan string)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for id := range ids {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				_ = env.temporal.TerminateWorkflow(ctx, id, "", "chaos test done")
				cancel()
			}
		})
	}
	for _, runs := range ruleBuilds(t, ruleID) {
		for _, r := range runs {
			id, _, _ := strings.Cut(r, "/")
			ids <- id
		}
	}
	close(ids)
	wg.Wait()
}

// checkOneBuildPerEvent checks that visibility lists exactly one execution for each event and
// none for anything else.
func checkOneBuildPerEvent(t *testing.T, ruleID string, events []pushEvent) {
	t.Helper()
	got := waitRuleBuilds(t, ruleID, len(events))
	want := map[string]bool{}
	for _, ev := range events {
		want[ev.commit] = true
		if runs := got[ev.commit]; len(runs) != 1 {
			t.Errorf("event %s has %d executions, want 1: %v", ev.commit[:7], len(runs), runs)
		}
	}
	for commit, runs := range got {
		if !want[commit] {
			t.Errorf("executions %v of a commit %q no delivery carried", runs, commit)
		}
	}
}

// TestChaosGatewayKilledDuringWebhooks kills the gateway with SIGKILL while a sender keeps
// delivering distinct events, retrying each until it gets a 2xx as a webhook sender would;
// after a restart no accepted event is lost and none is built twice. Then, with Temporal
// stopped, a delivery gets a 5xx, never a 2xx, and its redelivery once Temporal is back
// starts its one build.
func TestChaosGatewayKilledDuringWebhooks(t *testing.T) {
	rep := newReport(t, "Gateway killed while webhooks arrive",
		"A sender posts signed GitHub push deliveries of distinct events one after another, retrying each on a connection error or a non-2xx answer. The gateway is killed with SIGKILL mid-stream and started again on the same address and database. Every accepted delivery's build must exist in Temporal, and each event must have exactly one execution. Then Temporal is stopped: a delivery must get a 5xx, and the same delivery once Temporal is back must start exactly one build.")
	const owner, events = "chaos-hooks", 60
	g := startGateway(t, "SLIPWAY_TASK_QUEUE="+noWorkerQueue)
	token := g.setupTeam(t, "hana", "hooks", "app")
	rule := g.createRule(t, token, "hooks", "app", map[string]any{
		"source":   map[string]string{"provider": "github", "owner": owner, "repository": "hello"},
		"triggers": map[string]any{"branches": []string{"main"}},
	})
	t.Cleanup(func() { terminateRule(t, rule.ID) })

	type result struct {
		ev       pushEvent
		tries    int
		refused  int // connection errors and non-2xx answers
		accepted []string
	}
	results := make([]result, events)
	var mu sync.Mutex
	acceptedN := 0
	senderDone := make(chan struct{})
	go func() {
		defer close(senderDone)
		deadline := time.Now().Add(2 * time.Minute)
		for i := range results {
			ev := newPushEvent(t, owner, rule.Webhook.Secret)
			r := result{ev: ev}
			for time.Now().Before(deadline) {
				r.tries++
				code, ids, err := ev.post(g.url, rule.ID)
				if err == nil && code/100 == 2 {
					r.accepted = ids
					break
				}
				r.refused++
				time.Sleep(100 * time.Millisecond)
			}
			mu.Lock()
			results[i] = r
			if r.accepted != nil {
				acceptedN++
			}
			mu.Unlock()
			time.Sleep(20 * time.Millisecond)
		}
	}()

	// Kill the gateway a third of the way in, and start it again a second later.
	for {
		mu.Lock()
		n := acceptedN
		mu.Unlock()
		if n >= events/3 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	g.Kill()
	killed := time.Now()
	time.Sleep(time.Second)
	g = g.restart(t)
	restarted := time.Since(killed)
	<-senderDone

	tries, refused := 0, 0
	for i, r := range results {
		tries += r.tries
		refused += r.refused
		if len(r.accepted) != 1 || r.accepted[0] != r.ev.wantID(rule.ID) {
			t.Errorf("event %d (%s): accepted %v after %d tries, want build %s", i, r.ev.commit[:7], r.accepted, r.tries, r.ev.wantID(rule.ID))
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := env.temporal.DescribeWorkflow(ctx, r.accepted[0], "")
		cancel()
		if err != nil {
			t.Errorf("event %d: accepted build %s is not in Temporal: %v", i, r.accepted[0], err)
		}
	}
	all := make([]pushEvent, 0, events+1)
	for _, r := range results {
		all = append(all, r.ev)
	}
	if refused == 0 {
		t.Error("no delivery was refused while the gateway was down: the kill proved nothing")
	}

	// Temporal down: a 5xx, never a 2xx.
	if err := env.stack.StopTemporal(); err != nil {
		t.Fatal(err)
	}
	late := newPushEvent(t, owner, rule.Webhook.Secret)
	asked := time.Now()
	code, ids, err := late.post(g.url, rule.ID)
	answered := time.Since(asked)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if serr := env.stack.StartTemporal(ctx); serr != nil {
		t.Fatalf("starting temporal again: %v", serr)
	}
	if err != nil || code/100 != 5 {
		t.Fatalf("delivery with Temporal down: %d %v (%v), want a 5xx", code, ids, err)
	}
	again, againIDs, err := late.post(g.url, rule.ID)
	if err != nil || again != http.StatusAccepted || len(againIDs) != 1 || againIDs[0] != late.wantID(rule.ID) {
		t.Fatalf("redelivery once Temporal is back: %d %v %v", again, againIDs, err)
	}
	all = append(all, late)
	checkOneBuildPerEvent(t, rule.ID, all)

	rep.add("distinct events sent", events)
	rep.add("delivery attempts (with retries)", tries)
	rep.add("attempts refused or unanswered (gateway down)", refused)
	rep.add("events accepted (2xx)", acceptedN)
	rep.add("executions per event in Temporal", "exactly 1 for each")
	rep.add("gateway kill to serving again (1 s wait, then start)", restarted)
	rep.add("answer to a delivery while Temporal was stopped", fmt.Sprintf("%d after %s", code, answered.Round(10*time.Millisecond)))
	rep.add("answer to its redelivery after Temporal came back", again)
}

// TestChaosWebhookFlood delivers 500 webhooks over a few seconds, 10% of them duplicates, up
// to 8 at once: exactly one build per distinct event, every answer a 2xx or a retryable 5xx,
// and the gateway's memory flat.
func TestChaosWebhookFlood(t *testing.T) {
	const owner, total, distinct, senders = "chaos-flood", 500, 450, 8
	rep := newReport(t, "500 webhook deliveries",
		fmt.Sprintf("%d signed deliveries, %d distinct events and %d duplicates (some sent at the same moment as their original), from %d concurrent senders; a 503 is retried. Each distinct event must have exactly one build, every answer must be a 2xx or a 503, and the gateway's resident memory must stay under 3x its idle size + 50 MiB.", total, distinct, total-distinct, senders))
	g := startGateway(t, "SLIPWAY_TASK_QUEUE="+noWorkerQueue)
	token := g.setupTeam(t, "flo", "flood", "app")
	rule := g.createRule(t, token, "flood", "app", map[string]any{
		"source":   map[string]string{"provider": "github", "owner": owner, "repository": "hello"},
		"triggers": map[string]any{"branches": []string{"main"}},
	})
	t.Cleanup(func() { terminateRule(t, rule.ID) })
	pid := g.Pid()
	before, _ := procMemory(t, pid)

	events := make([]pushEvent, distinct)
	for i := range events {
		events[i] = newPushEvent(t, owner, rule.Webhook.Secret)
	}
	// The order of deliveries: every event once, and 50 duplicates; half of them right
	// behind their original so that both are in flight together.
	order := make([]int, 0, total)
	for i := range events {
		order = append(order, i)
	}
	for k := 0; k < total-distinct; k++ {
		n, _ := rand.Int(rand.Reader, big.NewInt(distinct))
		i := int(n.Int64())
		pos := len(order)
		if k%2 == 0 {
			for p, e := range order {
				if e == i {
					pos = p + 1
					break
				}
			}
		}
		order = append(order[:pos], append([]int{i}, order[pos:]...)...)
	}

	type answer struct {
		event int
		codes []int
		ids   []string
		err   error
	}
	jobs := make(chan int)
	answers := make(chan answer, total)
	var wg sync.WaitGroup
	start := time.Now()
	for range senders {
		wg.Go(func() {
			for i := range jobs {
				a := answer{event: i}
				for try := 0; try < 5; try++ {
					code, ids, err := events[i].post(g.url, rule.ID)
					if err != nil {
						a.err = err
						break
					}
					a.codes = append(a.codes, code)
					if code != http.StatusServiceUnavailable {
						a.ids = ids
						break
					}
					time.Sleep(200 * time.Millisecond)
				}
				answers <- a
			}
		})
	}
	for _, i := range order {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	close(answers)
	took := time.Since(start)
	after, peak := procMemory(t, pid)

	codes := map[int]int{}
	ids := map[int]map[string]bool{}
	retried := 0
	for a := range answers {
		if a.err != nil {
			t.Errorf("event %d: %v", a.event, a.err)
			continue
		}
		for _, c := range a.codes {
			codes[c]++
			if c/100 != 2 && c != http.StatusServiceUnavailable {
				t.Errorf("event %d answered %d, want a 2xx or 503", a.event, c)
			}
		}
		if len(a.codes) > 1 {
			retried++
		}
		if ids[a.event] == nil {
			ids[a.event] = map[string]bool{}
		}
		for _, id := range a.ids {
			ids[a.event][id] = true
		}
	}
	for i, ev := range events {
		if len(ids[i]) != 1 || !ids[i][ev.wantID(rule.ID)] {
			t.Errorf("event %d was answered with builds %v, want only %s", i, ids[i], ev.wantID(rule.ID))
		}
	}
	checkOneBuildPerEvent(t, rule.ID, events)
	limit := 3*before + 50<<20
	if after > limit {
		t.Errorf("gateway RSS grew from %s to %s, over the bound of %s", mib(before), mib(after), mib(limit))
	}

	var codeList []string
	for c, n := range codes {
		codeList = append(codeList, fmt.Sprintf("%d x %d", n, c))
	}
	sort.Strings(codeList)
	rep.add("deliveries sent (first tries)", total)
	rep.add("distinct events / duplicates", fmt.Sprintf("%d / %d", distinct, total-distinct))
	rep.add("answers", fmt.Sprint(codeList))
	rep.add("deliveries retried after a 503", retried)
	rep.add("builds started (executions in Temporal)", distinct)
	rep.add("time to deliver all", took)
	rep.add("gateway RSS idle / after / peak", fmt.Sprintf("%s / %s / %s", mib(before), mib(after), mib(peak)))
	rep.add("RSS bound asserted", mib(limit))
}
