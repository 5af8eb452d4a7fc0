//go:build chaos

package e2e

// The chaos tests (make chaos) break the real stack while builds run and feed it bad input,
// then check what a user would check: the build finished, once; nothing leaked; nothing was
// left running. Each test logs what it measured as "reliability: {json}" lines; make chaos
// pipes `go test -json` into cmd/reliability-report, which renders docs/reliability.md.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"

	"github.com/slipway-dev/slipway/build"
)

// report logs one test's figures in the form cmd/reliability-report reads: a line per
// scenario, figure and note, each "reliability: " and a JSON object.
type report struct {
	t *testing.T
}

// newReport starts the section of t: title is the scenario, what says what the test does.
func newReport(t *testing.T, title, what string) *report {
	r := &report{t: t}
	r.log(map[string]string{"title": title, "what": what})
	return r
}

// add records one figure.
func (r *report) add(name string, value any) {
	r.t.Helper()
	v := fmt.Sprint(value)
	if d, ok := value.(time.Duration); ok {
		v = d.Round(10 * time.Millisecond).String()
	}
	r.log(map[string]string{"figure": name, "value": v})
}

// note adds a sentence under the figures.
func (r *report) note(format string, args ...any) {
	r.log(map[string]string{"note": fmt.Sprintf(format, args...)})
}

func (r *report) log(fields map[string]string) {
	r.t.Helper()
	b, err := json.Marshal(fields)
	if err != nil {
		r.t.Fatalf("encoding report line: %v", err)
	}
	r.t.Logf("reliability: %s", b)
}

// activityRun is one activity of a build as its history tells it: the last attempt's start
// and the end of the activity.
type activityRun struct {
	Type, ID    string
	Attempt     int32
	Scheduled   time.Time
	Started     time.Time
	Ended       time.Time
	Outcome     string // completed, failed, timed_out, canceled, or "" while open
	LastFailure string
}

// activityRuns reads a build's history and lists its activities in the order they were
// scheduled.
func activityRuns(t *testing.T, id string) []activityRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var runs []*activityRun
	bySched := map[int64]*activityRun{}
	it := env.temporal.GetWorkflowHistory(ctx, id, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			t.Fatalf("reading history of %s: %v", id, err)
		}
		at := ev.GetEventTime().AsTime()
		switch ev.GetEventType() {
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
			a := ev.GetActivityTaskScheduledEventAttributes()
			r := &activityRun{Type: a.GetActivityType().GetName(), ID: a.GetActivityId(), Scheduled: at}
			bySched[ev.GetEventId()] = r
			runs = append(runs, r)
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_STARTED:
			a := ev.GetActivityTaskStartedEventAttributes()
			if r := bySched[a.GetScheduledEventId()]; r != nil {
				r.Attempt, r.Started = a.GetAttempt(), at
				if f := a.GetLastFailure(); f != nil {
					r.LastFailure = f.GetMessage()
				}
			}
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
			end(bySched[ev.GetActivityTaskCompletedEventAttributes().GetScheduledEventId()], at, "completed")
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_FAILED:
			end(bySched[ev.GetActivityTaskFailedEventAttributes().GetScheduledEventId()], at, "failed")
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT:
			end(bySched[ev.GetActivityTaskTimedOutEventAttributes().GetScheduledEventId()], at, "timed_out")
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_CANCELED:
			end(bySched[ev.GetActivityTaskCanceledEventAttributes().GetScheduledEventId()], at, "canceled")
		}
	}
	out := make([]activityRun, 0, len(runs))
	for _, r := range runs {
		out = append(out, *r)
	}
	return out
}

func end(r *activityRun, at time.Time, outcome string) {
	if r != nil {
		r.Ended, r.Outcome = at, outcome
	}
}

// ofType keeps the runs of one activity type (Clone, Build, Push, ...).
func ofType(runs []activityRun, typ string) []activityRun {
	var out []activityRun
	for _, r := range runs {
		if r.Type == typ {
			out = append(out, r)
		}
	}
	return out
}

// waitClosed waits until build id has closed, riding out a Temporal that is away for a while,
// and returns its final status.
func waitClosed(t *testing.T, id string, timeout time.Duration) enumspb.WorkflowExecutionStatus {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var lastErr error
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		d, err := env.temporal.DescribeWorkflowExecution(ctx, id, "")
		cancel()
		if err == nil {
			if s := d.GetWorkflowExecutionInfo().GetStatus(); s != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
				return s
			}
		} else {
			var nf *serviceerror.NotFound
			if errors.As(err, &nf) {
				t.Fatalf("build %s does not exist", id)
			}
			lastErr = err
		}
		time.Sleep(300 * time.Millisecond)
	}
	t.Fatalf("build %s still running after %s (last error: %v)", id, timeout, lastErr)
	return 0
}

// buildResult reads the result of a closed build.
func buildResult(t *testing.T, id string) (build.Result, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var res build.Result
	err := env.temporal.GetWorkflow(ctx, id, "").Get(ctx, &res)
	return res, err
}

// buildStatus asks a running or closed build for its status query.
func buildStatus(t *testing.T, id string) build.Status {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	v, err := env.temporal.QueryWorkflow(ctx, id, "", build.StatusQuery)
	if err != nil {
		t.Fatalf("querying %s: %v", id, err)
	}
	var st build.Status
	if err := v.Get(&st); err != nil {
		t.Fatal(err)
	}
	return st
}

// waitLog waits until the log of build id holds want, and returns how long that took.
func waitLog(t *testing.T, id, runID, want string, timeout time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for !strings.Contains(readLogQuiet(id, runID), want) {
		if time.Since(start) > timeout {
			t.Fatalf("log of %s never showed %q; log:\n%s", id, want, readLogQuiet(id, runID))
		}
		time.Sleep(50 * time.Millisecond)
	}
	return time.Since(start)
}

// procMemory reads VmRSS and VmHWM (peak RSS) of a process, in bytes.
func procMemory(t *testing.T, pid int) (rss, peak int64) {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatalf("reading memory of pid %d: %v", pid, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || (k != "VmRSS" && k != "VmHWM") {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if err != nil {
			t.Fatalf("parsing %s of pid %d: %q", k, pid, v)
		}
		if k == "VmRSS" {
			rss = n << 10
		} else {
			peak = n << 10
		}
	}
	if rss == 0 {
		t.Fatalf("no VmRSS for pid %d", pid)
	}
	return rss, peak
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// restart starts a gateway again on the same home, database and address.
func (g *gateway) restart(t *testing.T) *gateway {
	t.Helper()
	return startGatewayAt(t, g.home, g.addr, g.extra...)
}

// admin sets up a user, a namespace and an image repository in it, and returns the user's
// token.
func (g *gateway) setupTeam(t *testing.T, user, ns, repo string) string {
	t.Helper()
	var u struct{ Token string }
	if code := g.call(t, http.MethodPost, "/api/v1/users", g.admin, map[string]string{"name": user}, &u); code != http.StatusCreated {
		t.Fatalf("creating user %s: %d", user, code)
	}
	if code := g.call(t, http.MethodPost, "/api/v1/namespaces", u.Token, map[string]string{"name": ns}, nil); code != http.StatusCreated {
		t.Fatalf("creating namespace %s: %d", ns, code)
	}
	if code := g.call(t, http.MethodPost, "/api/v1/namespaces/"+ns+"/repositories", u.Token, map[string]string{"name": repo}, nil); code != http.StatusCreated {
		t.Fatalf("creating repository %s: %d", repo, code)
	}
	return u.Token
}

// chaosRule is a build rule as the API answers it.
type chaosRule struct {
	ID      string `json:"id"`
	Webhook struct {
		URL    string `json:"url"`
		Secret string `json:"secret"`
	} `json:"webhook"`
}

// createRule creates a build rule of ns/repo.
func (g *gateway) createRule(t *testing.T, token, ns, repo string, body map[string]any) chaosRule {
	t.Helper()
	var rule chaosRule
	if code := g.call(t, http.MethodPost, "/api/v1/namespaces/"+ns+"/repositories/"+repo+"/build-rules", token, body, &rule); code != http.StatusCreated {
		t.Fatalf("creating rule: %d %+v", code, rule)
	}
	return rule
}

// buildNow starts a build of branch through the API and returns its id.
func (g *gateway) buildNow(t *testing.T, token, ns, repo, ruleID, branch string) string {
	t.Helper()
	var started struct{ ID string }
	if code := g.call(t, http.MethodPost, "/api/v1/namespaces/"+ns+"/repositories/"+repo+"/build-rules/"+ruleID+"/builds",
		token, map[string]string{"branch": branch}, &started); code != http.StatusAccepted {
		t.Fatalf("build now: %d", code)
	}
	return started.ID
}

// fullRecord is GET /api/v1/builds/{id}, with the steps' host attempts.
type fullRecord struct {
	ID     string             `json:"id"`
	RunID  string             `json:"run_id"`
	Status string             `json:"status"`
	Error  string             `json:"error"`
	Commit string             `json:"commit"`
	Tags   []string           `json:"tags"`
	Digest string             `json:"digest"`
	Steps  []build.StepStatus `json:"steps"`
}

// record reads one build record.
func (g *gateway) record(t *testing.T, token, id string) fullRecord {
	t.Helper()
	var rec fullRecord
	if code := g.call(t, http.MethodGet, "/api/v1/builds/"+id, token, nil, &rec); code != http.StatusOK {
		t.Fatalf("GET /api/v1/builds/%s: %d", id, code)
	}
	return rec
}

// maxOverlap is the most intervals open at one instant; an interval ending exactly when
// another starts does not overlap it.
func maxOverlap(intervals [][2]time.Time) int {
	most := 0
	for _, a := range intervals {
		n := 0
		for _, b := range intervals {
			if b[0].Compare(a[0]) <= 0 && b[1].After(a[0]) {
				n++
			}
		}
		most = max(most, n)
	}
	return most
}
