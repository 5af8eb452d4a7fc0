package main

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"

	"github.com/slipway-dev/slipway/build"
	"github.com/slipway-dev/slipway/devstack"
	"github.com/slipway-dev/slipway/internal/testing/storetest"
)

// Settings of the webhooks section.
const (
	// webhookDeliveries is how many signed pushes each sender count delivers.
	webhookDeliveries = 1000
	// webhookWarmups are unmeasured deliveries before the first measured level: the gateway's
	// first requests open its database pages, its gRPC connection and the HTTP connections.
	webhookWarmups = 20
	// firstStepRuns is how many deliveries are followed to their Clone activity.
	firstStepRuns = 10
	// webhookGoal is the answer time the 99th percentile should stay under, start included.
	webhookGoal = 50 * time.Millisecond
	// idleTaskQueue is a task queue no worker polls: builds started there are real executions
	// of workflow_docker_builder whose first workflow task waits, so thousands of starts do not
	// each run a build on the bench's one worker.
	idleTaskQueue = "bench-no-worker"
	// gatewayReadyWait bounds how long a started gateway may take to answer /healthz.
	gatewayReadyWait = 30 * time.Second
	// gatewayStopGrace is how long a gateway gets to shut down on SIGTERM.
	gatewayStopGrace = 20 * time.Second
)

// The Temporal servers the webhook levels run against.
const (
	backendDevServer = "dev server (SQLite)"
	backendPostgres  = "server on PostgreSQL"
)

// webhookSenders are the numbers of concurrent senders, in the order they run.
func webhookSenders() []int { return []int{1, 10, 50} }

// webhooksSection measures the gateway's answer to signed GitHub push deliveries, each of
// which starts a real execution, at several sender counts, and the time from a delivery's
// answer to the build's first step on a polling worker.
type webhooksSection struct {
	levels    []webhookLevel
	firstStep []firstStepRun
	// warmups is how many unmeasured deliveries preceded the first level.
	warmups int
}

// newWebhooksSection returns the webhooks section, to be run.
func newWebhooksSection() section { return &webhooksSection{} }

// webhookLevel is the deliveries of one sender count on one Temporal backend.
type webhookLevel struct {
	// backend names the Temporal server the gateway started builds on.
	backend string
	senders int
	results []deliveryResult
	// wall is from the first request sent to the last answer read.
	wall time.Duration
	// server are the gateway's own handling times of the level's deliveries, from its
	// request log (route in, answer out; no network, no client).
	server []time.Duration
	// start is the gateway's Temporal client's StartWorkflowExecution latency over the level,
	// from its /metrics (a histogram: mean and the bucket holding the 99th percentile).
	start histogramDelta
	// executions is how many executions of the rule visibility counted after the level.
	executions int64
}

// firstStepRun is one delivery followed on a polling worker.
type firstStepRun struct {
	id string
	// answer is the delivery's answer time at the client.
	answer time.Duration
	// toClone is from the 202 read by the client to the Clone activity's ActivityTaskStarted
	// event time (one machine, one clock).
	toClone time.Duration
	// startToClone is WorkflowExecutionStarted → Clone ActivityTaskStarted, both from history.
	startToClone time.Duration
}

// key is "webhooks", for -only.
func (s *webhooksSection) key() string { return "webhooks" }

// title heads the section.
func (s *webhooksSection) title() string {
	return "Webhook deliveries: answer time with the workflow start, and delivery → first step"
}

// run starts a gateway whose builds go to a task queue no worker polls, creates a rule,
// delivers signed pushes at each sender count, then restarts the gateway on the workers' task
// queue and follows a few deliveries to their Clone activity. Every execution it started and
// left running is terminated before it returns.
func (s *webhooksSection) run(ctx context.Context, e *env, o options) error {
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	tmpl, err := os.ReadFile(filepath.Join(root, "webhook", "testdata", "github", "push_branch.json"))
	if err != nil {
		return fmt.Errorf("reading the push payload fixture: %w", err)
	}
	fx := smallFixture()
	fx.name = "hooks"
	r, err := e.createRepo(ctx, fx)
	if err != nil {
		return err
	}
	token, err := randomToken()
	if err != nil {
		return err
	}
	gwCfg := gatewayConfig{name: "webhooks", admin: token, taskQueue: idleTaskQueue}
	gw, err := e.launchGateway(ctx, gwCfg)
	if err != nil {
		return err
	}
	var started startedBuilds
	defer func() {
		gw.stop()
		if n, terr := e.terminateAll(context.WithoutCancel(ctx), started.take(), "bench: webhooks section ended"); terr != nil {
			e.logger.Warn("terminating builds the webhooks section left", "error", terr)
		} else if n > 0 {
			e.logger.Info("terminated builds the webhooks section left", "count", n)
		}
	}()

	hook, ruleID, err := createPushRule(ctx, gw, tmpl, fx.name)
	if err != nil {
		return err
	}
	if err := s.measureLevels(ctx, e, gw, hook, ruleID, backendDevServer, &started); err != nil {
		return err
	}
	if err := s.measureOnPostgres(ctx, e, o, tmpl, fx.name); err != nil {
		return err
	}

	// Start to first step: the same rule, on a gateway that starts builds on the workers'
	// task queue, one delivery at a time so no build waits for a free slot.
	gw.stop()
	gwCfg.taskQueue = ""
	if gw, err = e.launchGateway(ctx, gwCfg); err != nil {
		return err
	}
	for i := range firstStepRuns + 1 {
		commit, err := r.change(ctx)
		if err != nil {
			return err
		}
		d, err := hook("main", commit)
		if err != nil {
			return err
		}
		res, _ := gw.send(ctx, []delivery{d}, 1)
		if err := started.add(res, oneBuild()); err != nil {
			return fmt.Errorf("first-step delivery: %w", err)
		}
		fs, err := e.followToClone(ctx, res[0])
		if err != nil {
			return err
		}
		started.take()
		if i == 0 {
			// The first build of the fixture also fills BuildKit's and the registry's caches.
			continue
		}
		e.logger.Info("delivery to first step", "build", fs.id, "answer", fs.answer.Round(10*time.Microsecond),
			"answer_to_clone", fs.toClone.Round(time.Millisecond))
		s.firstStep = append(s.firstStep, fs)
	}
	return nil
}

// createPushRule creates a namespace, an image repository and a build rule with a push
// trigger on main through the gateway's API, and returns a maker of signed deliveries to the
// rule and the rule's id.
func createPushRule(ctx context.Context, gw *benchGateway, tmpl []byte, repoName string) (func(branch, commit string) (delivery, error), string, error) {
	for _, p := range []struct {
		method, path string
		body         any
	}{
		{http.MethodPost, "/api/v1/namespaces", map[string]string{"name": benchOwner}},
		{http.MethodPost, "/api/v1/namespaces/" + benchOwner + "/repositories", map[string]string{"name": repoName}},
	} {
		if err := gw.call(ctx, p.method, p.path, p.body, nil, http.StatusCreated); err != nil {
			return nil, "", err
		}
	}
	var rule struct {
		ID      string `json:"id"`
		Webhook struct {
			Secret string `json:"secret"`
		} `json:"webhook"`
	}
	if err := gw.call(ctx, http.MethodPost, "/api/v1/namespaces/"+benchOwner+"/repositories/"+repoName+"/build-rules", map[string]any{
		"source":   map[string]string{"provider": "github", "owner": benchOwner, "repository": repoName},
		"triggers": map[string]any{"branches": []string{"main"}},
	}, &rule, http.StatusCreated); err != nil {
		return nil, "", err
	}
	push := pushMaker{template: tmpl, owner: benchOwner, repository: repoName}
	hook := func(branch, commit string) (delivery, error) {
		return push.make("/webhooks/github/"+rule.ID, rule.Webhook.Secret, branch, commit)
	}

	return hook, rule.ID, nil
}

// measureLevels delivers the warm-up and then each sender count's pushes through gw, whose
// builds go to a queue no worker polls on the Temporal server e.temporal reaches; it records
// the levels under backend and terminates what each level started.
func (s *webhooksSection) measureLevels(ctx context.Context, e *env, gw *benchGateway, hook func(branch, commit string) (delivery, error), ruleID, backend string, started *startedBuilds) error {
	// Deliveries of commits that do not exist: the builds are real executions on a queue no
	// worker polls, terminated after each level.
	seq := 0
	next := func(n int) ([]delivery, error) {
		ds := make([]delivery, n)
		for i := range ds {
			seq++
			var err error
			if ds[i], err = hook("main", fakeCommit("webhooks", seq)); err != nil {
				return nil, err
			}
		}
		return ds, nil
	}
	warm, err := next(webhookWarmups)
	if err != nil {
		return err
	}
	res, _ := gw.send(ctx, warm, 1)
	if err := started.add(res, oneBuild()); err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}
	s.warmups = len(warm)
	// total counts the builds the rule's deliveries started, for the visibility count.
	total := len(started.ids)
	for _, senders := range webhookSenders() {
		ds, err := next(webhookDeliveries)
		if err != nil {
			return err
		}
		before, err := gw.startLatency(ctx)
		if err != nil {
			return err
		}
		logOff := gw.logSize()
		res, wall := gw.send(ctx, ds, senders)
		after, err := gw.startLatency(ctx)
		if err != nil {
			return err
		}
		lv := webhookLevel{backend: backend, senders: senders, results: res, wall: wall, start: after.minus(before)}
		if lv.server, err = gw.webhookTimes(logOff); err != nil {
			return err
		}
		// Counted before anything is terminated, so the count covers every start.
		n := len(started.ids)
		_ = started.add(res, oneBuild())
		total += len(started.ids) - n
		if lv.executions, err = e.countExecutions(ctx, fmt.Sprintf("%s = '%s'", build.AttrRule.GetName(), ruleID), total); err != nil {
			return err
		}
		sum := nearestRanks(lv.times())
		e.logger.Info("webhook level", "senders", senders, "deliveries", len(res), "p50", sum.p50.Round(10*time.Microsecond),
			"p99", sum.p99.Round(10*time.Microsecond), "max", sum.max.Round(10*time.Microsecond),
			"per_second", fmt.Sprintf("%.0f", lv.rate()), "failures", len(lv.failures()), "executions", lv.executions)
		s.levels = append(s.levels, lv)
		if _, err := e.terminateAll(ctx, started.take(), "bench: webhook level measured"); err != nil {
			return err
		}
	}

	return nil
}

// measureOnPostgres runs the same levels on the production shape's Temporal: a throwaway
// PostgreSQL cluster from Debian's packages and the Temporal server built from
// go.temporal.io/server (scripts/tools.sh prod), schema and namespace by the deploy/ scripts,
// with a gateway of its own pointed at it. Everything it starts is stopped before it returns.
func (s *webhooksSection) measureOnPostgres(ctx context.Context, e *env, o options, tmpl []byte, repoName string) (err error) {
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	begin := time.Now()
	cluster, err := storetest.StartCluster(ctx)
	if err != nil {
		return fmt.Errorf("starting postgres: %w", err)
	}
	defer cluster.Stop()
	addr, user, password, err := cluster.Login()
	if err != nil {
		return err
	}
	srv, err := devstack.StartTemporalServer(ctx, devstack.ServerOptions{
		Home: filepath.Join(e.home, "temporal-postgres"), ToolsDir: o.toolsDir, DeployDir: filepath.Join(root, "deploy"),
		Postgres: addr, User: user, Password: password, Logger: e.logger,
	})
	if err != nil {
		return fmt.Errorf("starting the temporal server on postgres (scripts/tools.sh prod builds it): %w", err)
	}
	defer srv.Close()
	e.logger.Info("temporal server on postgres ready", "address", srv.Address, "took", time.Since(begin).Round(time.Millisecond))
	quiet := slog.New(levelHandler{Handler: e.logger.Handler(), min: slog.LevelWarn})
	tc, err := client.Dial(client.Options{HostPort: srv.Address, Logger: tlog.NewStructuredLogger(quiet)})
	if err != nil {
		return fmt.Errorf("dialing temporal at %s: %w", srv.Address, err)
	}
	defer tc.Close()
	// The same environment, its client on this server.
	pe := *e
	pe.temporal = tc
	token, err := randomToken()
	if err != nil {
		return err
	}
	gw, err := e.launchGateway(ctx, gatewayConfig{name: "webhooks-postgres", admin: token, taskQueue: idleTaskQueue, temporalAddress: srv.Address})
	if err != nil {
		return err
	}
	var started startedBuilds
	defer func() {
		gw.stop()
		if _, terr := pe.terminateAll(context.WithoutCancel(ctx), started.take(), "bench: webhooks section ended"); terr != nil {
			e.logger.Warn("terminating builds the webhooks section left", "error", terr)
		}
	}()
	hook, ruleID, err := createPushRule(ctx, gw, tmpl, repoName)
	if err != nil {
		return err
	}
	return s.measureLevels(ctx, &pe, gw, hook, ruleID, backendPostgres, &started)
}

// followToClone waits for a build a delivery started to end and reads when its Clone
// activity started.
func (e *env) followToClone(ctx context.Context, d deliveryResult) (firstStepRun, error) {
	id := d.builds[0]
	ctx, cancel := context.WithTimeout(ctx, e.timeout)
	defer cancel()
	run := e.temporal.GetWorkflow(ctx, id, "")
	if err := run.Get(ctx, nil); err != nil {
		return firstStepRun{}, fmt.Errorf("build %s started by a delivery: %w; build log:\n%s", id, err, e.buildLog(id, run.GetRunID()))
	}
	tl, err := e.timeline(ctx, id, run.GetRunID())
	if err != nil {
		return firstStepRun{}, err
	}
	clone, ok := tl.activity("Clone")
	if !ok || clone.started.IsZero() {
		return firstStepRun{}, fmt.Errorf("history of build %s has no started Clone activity", id)
	}
	return firstStepRun{id: id, answer: d.took, toClone: clone.started.Sub(d.answered), startToClone: tl.startToClone()}, nil
}

// times are the level's answer times.
func (lv webhookLevel) times() []time.Duration {
	ds := make([]time.Duration, len(lv.results))
	for i, r := range lv.results {
		ds[i] = r.took
	}
	return ds
}

// rate is the deliveries answered per second over the level's wall time.
func (lv webhookLevel) rate() float64 {
	if lv.wall <= 0 {
		return 0
	}
	return float64(len(lv.results)) / lv.wall.Seconds()
}

// failures describes every delivery not answered 202 with one build.
func (lv webhookLevel) failures() []string {
	return unexpectedAnswers(lv.results, oneBuild())
}

// unexpectedAnswers describes every result that is not the wanted answer.
func unexpectedAnswers(res []deliveryResult, want answer) []string {
	var out []string
	for i, r := range res {
		if msg := r.problem(want); msg != "" {
			out = append(out, fmt.Sprintf("delivery %d: %s", i, msg))
		}
	}
	return out
}

// levelTable is one row per sender count: answer times, rate, failures and where the time goes.
func (s *webhooksSection) levelTable() table {
	t := table{header: []string{"Temporal", "senders", "deliveries", "answer p50 / p99 / max", "min", "deliveries/s",
		"non-202", "gateway handling p50 / p99 / max", "Temporal start RPC mean / p99 bucket", "executions counted", "p99 < 50 ms"}}
	for _, lv := range s.levels {
		a := nearestRanks(lv.times())
		h := nearestRanks(lv.server)
		goal := "yes"
		if a.p99 >= webhookGoal {
			goal = "no"
		}
		t.rows = append(t.rows, []string{
			lv.backend, strconv.Itoa(lv.senders), strconv.Itoa(a.n), a.text(), ms(a.min), fmt.Sprintf("%.0f", lv.rate()),
			strconv.Itoa(len(lv.failures())), fmt.Sprintf("%s (n=%d)", h.text(), h.n), lv.start.text(),
			strconv.FormatInt(lv.executions, 10), goal,
		})
	}
	return t
}

// firstStepTable is the delivery → Clone started spread.
func (s *webhooksSection) firstStepTable() table {
	var ans, to, stc []time.Duration
	for _, f := range s.firstStep {
		ans, to, stc = append(ans, f.answer), append(to, f.toClone), append(stc, f.startToClone)
	}
	n := strconv.Itoa(len(s.firstStep))
	return table{header: []string{"measure", "runs", "min / median / max"}, rows: [][]string{
		{"delivery answer (client)", n, spread(summarize(ans))},
		{"202 read → Clone ActivityTaskStarted", n, spread(summarize(to))},
		{"WorkflowExecutionStarted → Clone ActivityTaskStarted (history)", n, spread(summarize(stc))},
	}}
}

// findings says whether the goal held, and where the answer time goes.
func (s *webhooksSection) findings() []string {
	var out []string
	for _, lv := range s.levels {
		a := nearestRanks(lv.times())
		h := nearestRanks(lv.server)
		verdict := "meets"
		if a.p99 >= webhookGoal {
			verdict = "misses"
		}
		line := fmt.Sprintf("%s, %d sender(s): p99 %s %s the 50 ms goal; the gateway's own handling is %s at p50 (%s of the answer), "+
			"and the Temporal start RPC inside it averages %s.", lv.backend, lv.senders, ms(a.p99), verdict, ms(h.p50), percentOf(h.p50, a.p50), ms(lv.start.mean()))
		if lv.senders > 1 && lv.rate() > 0 {
			// Little's law: with the senders always busy, the mean answer is senders ÷ rate
			// whatever the work is; a rate that does not grow with the senders is a serial
			// point, and the answer time is the wait for it.
			line += fmt.Sprintf(" %.0f deliveries/s with %d senders: senders ÷ rate = %s against a measured mean of %s.",
				lv.rate(), lv.senders, ms(time.Duration(float64(lv.senders)/lv.rate()*float64(time.Second))), ms(meanDuration(lv.times())))
		}
		if f := lv.failures(); len(f) > 0 {
			line += fmt.Sprintf(" %d deliveries failed, first: %s.", len(f), f[0])
		}
		out = append(out, line)
	}
	return out
}

// text prints the tables, the findings and every failed delivery.
func (s *webhooksSection) text(w io.Writer) {
	s.levelTable().text(w)
	fmt.Fprintln(w)
	s.firstStepTable().text(w)
	fmt.Fprintln(w)
	writeList(w, "*", s.findings())
	for _, lv := range s.levels {
		for _, f := range lv.failures() {
			fmt.Fprintf(w, "  %s senders=%d %s\n", lv.backend, lv.senders, f)
		}
	}
}

// markdown says what is measured and how, then gives the tables and findings.
func (s *webhooksSection) markdown(w io.Writer) {
	fmt.Fprintf(w, "The gateway binary (`go build ./gateway`, SQLite database in its own home) runs beside the "+
		"bench's stack. One build rule (GitHub source, push trigger on `main`) is created through the API; "+
		"the bench then POSTs `/webhooks/github/{rule}` with GitHub's push payload (`webhook/testdata/github/push_branch.json`, "+
		"9 KB) rewritten to the rule's repository and a new commit id each time, signed with the rule's secret "+
		"(`X-Hub-Signature-256`). Each delivery therefore verifies, parses, matches and starts a new execution "+
		"of `workflow_docker_builder` (conflict policy use-existing, reuse policy reject-duplicate) before its 202. "+
		"So that thousands of starts do not each run a build on the bench's single worker, this gateway starts "+
		"builds on the task queue `%s`, which no worker polls (`SLIPWAY_TASK_QUEUE`): the start is the same "+
		"server work, the first workflow task just waits; the executions are terminated after each level, outside "+
		"the timing.\n\n", idleTaskQueue)
	fmt.Fprintf(w, "%d unmeasured deliveries warm the gateway up; then each sender count delivers %d pushes, the senders "+
		"pulling from one queue over kept-alive HTTP/1.1 connections (one per sender). The answer time is the "+
		"client's, from the request sent to the answer read; deliveries/s is the level's count over its wall time. "+
		"The gateway's handling time comes from its request log (`duration_ms`), the Temporal start RPC from the "+
		"gateway's own client metrics (`temporal_request_latency`, StartWorkflowExecution; a histogram, so its 99th "+
		"percentile is only known to a bucket). \"Executions counted\" is a visibility count of the rule's "+
		"executions after the level (cumulative). The goal is a p99 under 50 ms.\n\n"+
		"The levels run twice: on the bench stack's Temporal dev server (SQLite, what `make run` starts), then "+
		"on the production shape's Temporal (the server built from go.temporal.io/server on a PostgreSQL cluster "+
		"from Debian's packages, as `make test-prod` runs it; a second gateway with its own database and rule "+
		"points at it).\n\n", s.warmups, webhookDeliveries)
	s.levelTable().markdown(w)
	fmt.Fprintf(w, "\nDelivery → first step: the gateway is restarted on the workers' task queue and %d further pushes "+
		"of real commits of a small fixture are delivered one at a time (after one unmeasured build), each followed "+
		"until its build ends; the time runs from the 202 read by the client to the Clone activity's "+
		"ActivityTaskStarted event in the build's history.\n\n", len(s.firstStep))
	s.firstStepTable().markdown(w)
	fmt.Fprintln(w)
	writeList(w, "-", s.findings())
	for _, lv := range s.levels {
		for _, f := range lv.failures() {
			fmt.Fprintf(w, "  - %s senders=%d %s\n", lv.backend, lv.senders, f)
		}
	}
}

// benchstat writes the answer times per sender count and the delivery → first step times.
func (s *webhooksSection) benchstat(w io.Writer) {
	for _, lv := range s.levels {
		benchstatLines(w, fmt.Sprintf("BenchmarkWebhook/temporal=%s/senders=%d", backendKey(lv.backend), lv.senders), lv.times())
	}
	var to []time.Duration
	for _, f := range s.firstStep {
		to = append(to, f.toClone)
	}
	benchstatLines(w, "BenchmarkWebhookToFirstStep", to)
}

// backendKey is a backend's name in benchstat lines.
func backendKey(backend string) string {
	if backend == backendPostgres {
		return "postgres"
	}
	return "dev"
}

// benchstatLines writes samples as benchstat lines: one per sample when there are few, else
// one per batch of consecutive samples (ns/op is the batch's mean, p99-ns its 99th
// percentile), ten batches or more, so benchstat still sees a spread.
func benchstatLines(w io.Writer, name string, ds []time.Duration) {
	if len(ds) <= 50 {
		for _, d := range ds {
			fmt.Fprintf(w, "%s 1 %d ns/op\n", name, d.Nanoseconds())
		}
		return
	}
	size := len(ds) / 10
	for i := 0; i+size <= len(ds); i += size {
		b := ds[i : i+size]
		var sum time.Duration
		for _, d := range b {
			sum += d
		}
		fmt.Fprintf(w, "%s %d %d ns/op %d p99-ns\n", name, len(b), (sum / time.Duration(len(b))).Nanoseconds(), nearestRanks(b).p99.Nanoseconds())
	}
}

// ranks are nearest-rank percentiles of a set of durations.
type ranks struct {
	n                  int
	min, p50, p99, max time.Duration
}

// nearestRanks returns the nearest-rank p50 and p99 (the smallest value with at least that
// share of the samples at or below it), min and max.
func nearestRanks(ds []time.Duration) ranks {
	if len(ds) == 0 {
		return ranks{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	at := func(p float64) time.Duration {
		i := int(math.Ceil(p*float64(len(s)))) - 1
		return s[max(0, min(i, len(s)-1))]
	}
	return ranks{n: len(s), min: s[0], p50: at(0.50), p99: at(0.99), max: s[len(s)-1]}
}

// text formats the ranks as "p50 / p99 / max".
func (r ranks) text() string {
	if r.n == 0 {
		return "–"
	}
	return ms(r.p50) + " / " + ms(r.p99) + " / " + ms(r.max)
}

// meanDuration is the mean of ds.
func meanDuration(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	var sum time.Duration
	for _, d := range ds {
		sum += d
	}
	return sum / time.Duration(len(ds))
}

// percentOf formats a/b as a percentage.
func percentOf(a, b time.Duration) string {
	if b <= 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.0f%%", 100*float64(a)/float64(b))
}

// startedBuilds collects the ids of the builds deliveries started, to terminate them.
type startedBuilds struct {
	ids []string
}

// add records the builds of the results and reports the first result that is not the
// wanted answer.
func (b *startedBuilds) add(res []deliveryResult, want answer) error {
	var first error
	for i, r := range res {
		b.ids = append(b.ids, r.builds...)
		if msg := r.problem(want); msg != "" && first == nil {
			first = fmt.Errorf("delivery %d: %s", i, msg)
		}
	}
	return first
}

// take returns the recorded ids and forgets them.
func (b *startedBuilds) take() []string {
	ids := b.ids
	b.ids = nil
	return ids
}

// terminateAll terminates the executions ids name, a few at a time; one that already ended
// counts as done. It returns how many it terminated.
func (e *env) terminateAll(ctx context.Context, ids []string, reason string) (int, error) {
	const workers = 16
	var (
		mu    sync.Mutex
		done  int
		first error
		wg    sync.WaitGroup
	)
	work := make(chan string)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range work {
				err := e.temporal.TerminateWorkflow(ctx, id, "", reason)
				var nf *serviceerror.NotFound
				mu.Lock()
				switch {
				case err == nil:
					done++
				case errors.As(err, &nf):
				case first == nil:
					first = fmt.Errorf("terminating build %s: %w", id, err)
				}
				mu.Unlock()
			}
		}()
	}
	for _, id := range ids {
		work <- id
	}
	close(work)
	wg.Wait()
	return done, first
}

// countExecutions counts the builds matching a visibility query, waiting (up to 30 s) for
// visibility to reach want, since it is written after the start returns.
func (e *env) countExecutions(ctx context.Context, query string, want int) (int64, error) {
	q := fmt.Sprintf("WorkflowType = '%s' AND %s", build.WorkflowName, query)
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := e.temporal.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{Query: q})
		if err != nil {
			return 0, fmt.Errorf("counting builds (%s): %w", q, err)
		}
		if resp.GetCount() >= int64(want) || time.Now().After(deadline) {
			return resp.GetCount(), nil
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// fakeCommit is a 40-hex commit id no repository holds, distinct per label and number.
func fakeCommit(label string, n int) string {
	h := sha1.Sum(fmt.Appendf(nil, "%s-%d-%d", label, n, time.Now().UnixNano()))
	return hex.EncodeToString(h[:])
}

// randomToken is a new random admin token for a bench gateway.
func randomToken() (string, error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generating a token: %w", err)
	}
	return "bench-" + hex.EncodeToString(b), nil
}

// pushMaker makes signed GitHub push deliveries from a payload fixture.
type pushMaker struct {
	template          []byte
	owner, repository string
}

// delivery is one webhook request, made before the clock starts.
type delivery struct {
	path string
	body []byte
	// headers are GitHub's: event, delivery id, signature.
	headers map[string]string
}

// make returns a push of commit to branch for the rule at path, signed with secret.
func (p pushMaker) make(path, secret, branch, commit string) (delivery, error) {
	var m map[string]any
	if err := json.Unmarshal(p.template, &m); err != nil {
		return delivery{}, fmt.Errorf("decoding the push payload fixture: %w", err)
	}
	m["ref"], m["after"] = "refs/heads/"+branch, commit
	if hc, ok := m["head_commit"].(map[string]any); ok {
		hc["id"] = commit
	}
	if cs, ok := m["commits"].([]any); ok && len(cs) > 0 {
		if c, ok := cs[len(cs)-1].(map[string]any); ok {
			c["id"] = commit
		}
	}
	repo, ok := m["repository"].(map[string]any)
	if !ok {
		return delivery{}, errors.New("push payload fixture has no repository object")
	}
	repo["name"], repo["full_name"] = p.repository, p.owner+"/"+p.repository
	if owner, ok := repo["owner"].(map[string]any); ok {
		owner["login"], owner["name"] = p.owner, p.owner
	}
	body, err := json.Marshal(m)
	if err != nil {
		return delivery{}, fmt.Errorf("encoding a push payload: %w", err)
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	id, err := randomToken()
	if err != nil {
		return delivery{}, err
	}
	return delivery{path: path, body: body, headers: map[string]string{
		"X-GitHub-Event":      "push",
		"X-GitHub-Delivery":   id,
		"X-Hub-Signature-256": "sha256=" + hex.EncodeToString(mac.Sum(nil)),
	}}, nil
}

// deliveryResult is one delivery's answer as the sender saw it.
type deliveryResult struct {
	took     time.Duration
	answered time.Time
	code     int
	builds   []string
	// err is the transport error, or the answer's body when the code was not the one wanted.
	err string
}

// answer is what a delivery should get: a status and how many builds the answer names.
type answer struct {
	code, builds int
}

// oneBuild is a 202 naming the one build the delivery started.
func oneBuild() answer { return answer{code: http.StatusAccepted, builds: 1} }

// problem says how the answer differs from want, or "".
func (r deliveryResult) problem(want answer) string {
	switch {
	case r.code == 0:
		return "no answer: " + r.err
	case r.code != want.code:
		return fmt.Sprintf("answered %d: %s", r.code, r.err)
	case len(r.builds) != want.builds:
		return fmt.Sprintf("answered %d with %d builds, want %d: %s", r.code, len(r.builds), want.builds, r.err)
	}
	return ""
}

// gatewayConfig says how a bench gateway runs.
type gatewayConfig struct {
	// name picks its home (HOME/gateway-NAME, holding its SQLite database) and its log.
	name string
	// admin is SLIPWAY_ADMIN_TOKEN, the site admin's token.
	admin string
	// taskQueue is SLIPWAY_TASK_QUEUE; empty is the workers' default.
	taskQueue string
	// temporalAddress is SLIPWAY_TEMPORAL_ADDRESS; empty is the bench stack's dev server.
	temporalAddress string
}

// home is the gateway's SLIPWAY_HOME under the bench's home.
func (c gatewayConfig) home(e *env) string { return filepath.Join(e.home, "gateway-"+c.name) }

// database is the gateway's SQLite file, which the bench may also open with the store package
// while the gateway is stopped.
func (c gatewayConfig) database(e *env) string { return filepath.Join(c.home(e), "slipway.db") }

// benchGateway is a gateway binary the bench started.
type benchGateway struct {
	url     string
	admin   string
	logPath string
	proc    *workerProcess
	client  *http.Client
	stopped bool
}

// launchGateway builds the gateway at its first launch, starts it with its data in its home
// and waits until /healthz answers 200. A second launch with the same config runs on the same
// database.
func (e *env) launchGateway(ctx context.Context, c gatewayConfig) (*benchGateway, error) {
	root, err := moduleRoot()
	if err != nil {
		return nil, err
	}
	bin := filepath.Join(e.home, "bin")
	// Built once per bench run, like the worker: a later launch runs the same binary even if
	// the working tree changed meanwhile.
	if _, err := os.Stat(filepath.Join(bin, "gateway")); err != nil {
		build := exec.CommandContext(ctx, "go", "build", "-o", bin+"/", "./cmd/gateway")
		build.Dir = root
		if out, err := build.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("building gateway: %w\n%s", err, out)
		}
	}
	if err := os.MkdirAll(c.home(e), 0o755); err != nil {
		return nil, fmt.Errorf("creating gateway home: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("picking a gateway port: %w", err)
	}
	addr := ln.Addr().String()
	ln.Close()
	environ := append(os.Environ(),
		"SLIPWAY_HOME="+c.home(e),
		"SLIPWAY_TEMPORAL_ADDRESS="+cmp.Or(c.temporalAddress, e.stack.TemporalAddress),
		"SLIPWAY_TEMPORAL_UI_URL="+e.stack.TemporalUIURL,
		"SLIPWAY_REGISTRY="+e.stack.Registry,
		"SLIPWAY_GATEWAY_ADDR="+addr,
		"SLIPWAY_DATABASE_URL="+c.database(e),
		"SLIPWAY_ADMIN_TOKEN="+c.admin,
		"SLIPWAY_GITHUB_URL="+e.gitURL,
		"SLIPWAY_GITLAB_URL="+e.gitURL,
	)
	if c.taskQueue != "" {
		environ = append(environ, "SLIPWAY_TASK_QUEUE="+c.taskQueue)
	}
	logPath := filepath.Join(e.stack.LogDir(), "gateway-"+c.name+".log")
	// The worker's process handling fits any binary: own process group, log file, SIGTERM
	// then SIGKILL.
	proc, err := startWorker(filepath.Join(bin, "gateway"), logPath, environ)
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	g := &benchGateway{
		url: "http://" + addr, admin: c.admin, logPath: logPath, proc: proc,
		client: &http.Client{Timeout: time.Minute, Transport: &http.Transport{
			MaxIdleConns: 256, MaxIdleConnsPerHost: 256, IdleConnTimeout: time.Minute, DisableCompression: true,
		}},
	}
	deadline := time.Now().Add(gatewayReadyWait)
	for {
		code, herr := g.get(ctx, "/healthz")
		if herr == nil && code == http.StatusOK {
			break
		}
		if proc.exited() {
			return nil, fmt.Errorf("gateway exited at start (%v); log:\n%s", proc.err, tail(logPath, 2048))
		}
		if time.Now().After(deadline) {
			g.stop()
			return nil, fmt.Errorf("gateway not healthy at %s after %s (%d, %v); log:\n%s", g.url, gatewayReadyWait, code, herr, tail(logPath, 2048))
		}
		select {
		case <-ctx.Done():
			g.stop()
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	e.logger.Info("gateway ready", "url", g.url, "home", c.home(e), "task_queue", cmp.Or(c.taskQueue, build.DefaultTaskQueue))
	return g, nil
}

// stop stops the gateway (SIGTERM, then SIGKILL after a grace); calling it again does nothing.
func (g *benchGateway) stop() {
	if g == nil || g.stopped {
		return
	}
	g.stopped = true
	g.proc.stop(gatewayStopGrace)
	g.client.CloseIdleConnections()
}

// get makes an unauthenticated GET and returns the answer's status.
func (g *benchGateway) get(ctx context.Context, path string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, g.url+path, nil)
	if err != nil {
		return 0, fmt.Errorf("making request: %w", err)
	}
	resp, err := g.client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("GET %s: %w", path, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

// call makes one API call as the site admin, checks the answer's status and decodes a JSON
// answer into out (when not nil).
func (g *benchGateway) call(ctx context.Context, method, path string, body, out any, want int) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("encoding %s %s: %w", method, path, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, g.url+path, rd)
	if err != nil {
		return fmt.Errorf("making request %s %s: %w", method, path, err)
	}
	req.Header.Set("Authorization", "Bearer "+g.admin)
	req.Header.Set("Content-Type", "application/json")
	resp, err := g.client.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("reading answer of %s %s: %w", method, path, err)
	}
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s answered %d, want %d: %s", method, path, resp.StatusCode, want, bytes.TrimSpace(raw))
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("decoding answer of %s %s: %w", method, path, err)
		}
	}
	return nil
}

// deliver posts one delivery and times it from the request sent to the answer read.
func (g *benchGateway) deliver(ctx context.Context, d delivery) deliveryResult {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, g.url+d.path, bytes.NewReader(d.body))
	if err != nil {
		return deliveryResult{err: err.Error()}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "GitHub-Hookshot/slipway-bench")
	for k, v := range d.headers {
		req.Header.Set(k, v)
	}
	start := time.Now()
	resp, err := g.client.Do(req)
	if err != nil {
		return deliveryResult{took: time.Since(start), err: err.Error()}
	}
	raw, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	res := deliveryResult{answered: time.Now(), code: resp.StatusCode}
	res.took = res.answered.Sub(start)
	if err != nil {
		res.code, res.err = 0, "reading answer: "+err.Error()
		return res
	}
	var ans struct {
		Builds []string `json:"builds"`
	}
	if json.Unmarshal(raw, &ans) == nil {
		res.builds = ans.Builds
	}
	if resp.StatusCode != http.StatusAccepted || len(ans.Builds) != 1 {
		res.err = string(bytes.TrimSpace(raw))
	}
	return res
}

// send delivers ds with the given number of concurrent senders, which pull from one queue
// in order; it returns the results in the order of ds and the wall time from the first
// request to the last answer.
func (g *benchGateway) send(ctx context.Context, ds []delivery, senders int) ([]deliveryResult, time.Duration) {
	res := make([]deliveryResult, len(ds))
	work := make(chan int)
	var wg sync.WaitGroup
	start := time.Now()
	for range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				res[i] = g.deliver(ctx, ds[i])
			}
		}()
	}
	for i := range ds {
		work <- i
	}
	close(work)
	wg.Wait()
	return res, time.Since(start)
}

// logSize is the size of the gateway's log, where the next level's lines start.
func (g *benchGateway) logSize() int64 {
	st, err := os.Stat(g.logPath)
	if err != nil {
		return 0
	}
	return st.Size()
}

// webhookTimes reads the handling times of webhook deliveries the gateway logged after
// offset off (its request log's duration_ms).
func (g *benchGateway) webhookTimes(off int64) ([]time.Duration, error) {
	return loggedDurations(g.logPath, off, "/webhooks/")
}

// loggedDurations reads the duration_ms of the gateway's request log lines after offset off
// whose route starts with prefix.
func loggedDurations(path string, off int64, prefix string) ([]time.Duration, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("opening gateway log: %w", err)
	}
	defer f.Close()
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return nil, fmt.Errorf("seeking gateway log: %w", err)
	}
	var out []time.Duration
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.Contains(line, " msg=request ") || !strings.Contains(line, " route="+prefix) {
			continue
		}
		for _, field := range strings.Fields(line) {
			v, ok := strings.CutPrefix(field, "duration_ms=")
			if !ok {
				continue
			}
			f, err := strconv.ParseFloat(v, 64)
			if err == nil {
				out = append(out, time.Duration(f*float64(time.Millisecond)))
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading gateway log: %w", err)
	}
	return out, nil
}

// histogramDelta is the change of one Prometheus histogram between two scrapes.
type histogramDelta struct {
	count float64
	sum   float64
	// buckets maps each upper bound (seconds) to the cumulative count at or below it.
	buckets map[float64]float64
}

// minus is h − earlier.
func (h histogramDelta) minus(earlier histogramDelta) histogramDelta {
	out := histogramDelta{count: h.count - earlier.count, sum: h.sum - earlier.sum, buckets: map[float64]float64{}}
	for le, n := range h.buckets {
		out.buckets[le] = n - earlier.buckets[le]
	}
	return out
}

// mean is the mean observation.
func (h histogramDelta) mean() time.Duration {
	if h.count == 0 {
		return 0
	}
	return time.Duration(h.sum / h.count * float64(time.Second))
}

// p99Bucket is the upper bound of the bucket that holds the 99th percentile.
func (h histogramDelta) p99Bucket() (time.Duration, bool) {
	if h.count == 0 {
		return 0, false
	}
	bounds := make([]float64, 0, len(h.buckets))
	for le := range h.buckets {
		bounds = append(bounds, le)
	}
	slices.Sort(bounds)
	for _, le := range bounds {
		if h.buckets[le] >= 0.99*h.count {
			if math.IsInf(le, 1) {
				return 0, false
			}
			return time.Duration(le * float64(time.Second)), true
		}
	}
	return 0, false
}

// text formats the mean and the p99 bucket, with the count.
func (h histogramDelta) text() string {
	if h.count == 0 {
		return "–"
	}
	p := "> largest bucket"
	if b, ok := h.p99Bucket(); ok {
		p = "≤ " + ms(b)
	}
	return fmt.Sprintf("%s / %s (n=%.0f)", ms(h.mean()), p, h.count)
}

// startLatency scrapes the gateway's /metrics for its Temporal client's StartWorkflowExecution
// latency histogram, summed over label sets.
func (g *benchGateway) startLatency(ctx context.Context) (histogramDelta, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, g.url+"/metrics", nil)
	if err != nil {
		return histogramDelta{}, fmt.Errorf("making metrics request: %w", err)
	}
	resp, err := g.client.Do(req)
	if err != nil {
		return histogramDelta{}, fmt.Errorf("scraping gateway metrics: %w", err)
	}
	defer resp.Body.Close()
	return parseStartLatency(resp.Body)
}

// parseStartLatency reads temporal_request_latency*{operation="StartWorkflowExecution"} from
// Prometheus text.
func parseStartLatency(r io.Reader) (histogramDelta, error) {
	h := histogramDelta{buckets: map[float64]float64{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "temporal_request_latency") || !strings.Contains(line, `operation="StartWorkflowExecution"`) {
			continue
		}
		name, rest, ok := strings.Cut(line, "{")
		if !ok {
			continue
		}
		// The SDK records each request and, apart, each attempt of it
		// (temporal_request_latency_attempt); only the request counts here.
		var part string
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if base, ok := strings.CutSuffix(name, suffix); ok {
				name, part = base, suffix
				break
			}
		}
		if name != "temporal_request_latency" && name != "temporal_request_latency_seconds" {
			continue
		}
		labels, value, ok := strings.Cut(rest, "} ")
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(strings.Fields(value)[0], 64)
		if err != nil {
			continue
		}
		switch part {
		case "_count":
			h.count += v
		case "_sum":
			h.sum += v
		case "_bucket":
			_, le, ok := strings.Cut(labels, `le="`)
			if !ok {
				continue
			}
			le, _, _ = strings.Cut(le, `"`)
			bound, err := strconv.ParseFloat(le, 64)
			if err != nil {
				continue
			}
			h.buckets[bound] += v
		}
	}
	if err := sc.Err(); err != nil {
		return histogramDelta{}, fmt.Errorf("reading gateway metrics: %w", err)
	}
	return h, nil
}
