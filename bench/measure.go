package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/slipway-dev/slipway/build"
	"github.com/slipway-dev/slipway/logstore"
	"github.com/slipway-dev/slipway/registryauth"
)

// scenario says whether each run builds a commit no build has seen or the same one again.
type scenario string

const (
	// scenarioChanged runs build a new commit each, which changes a file the Dockerfile
	// copies: the base image stays cached, the COPY and every later step are rebuilt.
	scenarioChanged scenario = "changed"
	// scenarioUnchanged runs build the same commit again: every step is a cache hit, so what
	// is left is clone, context transfer, export and push of what the registry already has.
	scenarioUnchanged scenario = "unchanged"
)

// scenarioResult holds the measured runs of one fixture in one scenario.
type scenarioResult struct {
	fixture  fixture
	scenario scenario
	slipway  []slipwayRun
	raw      []rawRun
	// sampleInput and sampleRaw are the last run's inputs, for the report's command section.
	sampleInput build.Input
	sampleRaw   [][]string
	// loads are the 1-minute load averages seen after each measured pair.
	loads []float64
}

// name is how tables and benchstat lines call the scenario.
func (r *scenarioResult) name() string { return r.fixture.name + "/" + string(r.scenario) }

// slipwayRun is one build through Temporal.
type slipwayRun struct {
	id       string
	total    time.Duration // ExecuteWorkflow to result, as the client saw it
	timeline timeline
	steps    []build.StepStatus
	vertices map[string]time.Duration
}

// rawRun is one git clone + buildctl pair.
type rawRun struct {
	total, clone, build time.Duration
	vertices            map[string]time.Duration
}

// runScenario runs warm-ups and then the measured runs of one scenario, Slipway and raw
// interleaved (A B A B ...) so that machine noise hits both sides alike.
func (e *env) runScenario(ctx context.Context, r *repo, fx fixture, sc scenario, o options) (*scenarioResult, error) {
	res := &scenarioResult{fixture: fx, scenario: sc}
	for i := range o.warmups + o.runs {
		measured := i >= o.warmups
		label := fmt.Sprintf("%s-%s-w%d", fx.name, sc, i)
		if measured {
			label = fmt.Sprintf("%s-%s-%d", fx.name, sc, i-o.warmups)
		}
		commit := r.head
		var err error
		if sc == scenarioChanged {
			if commit, err = r.change(ctx); err != nil {
				return nil, err
			}
		}
		s, in, err := e.slipway(ctx, r, label, commit)
		if err != nil {
			return nil, err
		}
		// The raw side of a changed run gets its own new commit: building Slipway's commit
		// again would be a cache hit and flatter the raw tools.
		if sc == scenarioChanged {
			if commit, err = r.change(ctx); err != nil {
				return nil, err
			}
		}
		rw, cmds, err := e.raw(ctx, r, label, commit)
		if err != nil {
			return nil, err
		}
		e.logger.Info("run", "scenario", res.name(), "label", label, "measured", measured,
			"slipway", s.total.Round(time.Millisecond), "start_to_clone", s.timeline.startToClone().Round(time.Millisecond),
			"raw", rw.total.Round(time.Millisecond))
		if measured {
			res.slipway = append(res.slipway, s)
			res.raw = append(res.raw, rw)
			res.sampleInput, res.sampleRaw = in, cmds
			if l, ok := load1(); ok {
				res.loads = append(res.loads, l)
			}
		}
	}
	return res, nil
}

// slipway runs one build through workflow_docker_builder, timed from ExecuteWorkflow to the
// result; the history and the status query are read afterwards, outside the timing.
func (e *env) slipway(ctx context.Context, r *repo, label, commit string) (slipwayRun, build.Input, error) {
	in := build.Input{
		Namespace:   benchOwner,
		Repository:  r.fixture.name,
		RuleID:      "bench",
		Source:      build.Source{Provider: "github", Owner: benchOwner, Repository: r.fixture.name},
		Ref:         build.Ref{Type: build.RefBranch, Name: "main"},
		Commit:      commit,
		TagTemplate: label + "-{short_commit}",
		Image:       e.stack.Registry + "/bench/slipway",
		Trigger:     build.TriggerManual,
		Cache:       e.cache,
	}
	id := "bench-" + label + "-" + strconv.FormatInt(time.Now().UnixNano(), 36)

	ctx, cancel := context.WithTimeoutCause(ctx, e.timeout, fmt.Errorf("build %s took longer than %s", id, e.timeout))
	defer cancel()
	ctx, cancelCause := context.WithCancelCause(ctx)
	defer cancelCause(nil)
	go func() {
		select {
		case <-e.worker.done:
			cancelCause(fmt.Errorf("worker exited (%v); log:\n%s", e.worker.err, tail(e.worker.logPath, 2048)))
		case <-ctx.Done():
		}
	}()

	start := time.Now()
	run, err := e.temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:        id,
		TaskQueue: build.DefaultTaskQueue,
	}, build.WorkflowName, in)
	if err != nil {
		return slipwayRun{}, in, fmt.Errorf("starting build %s: %w", id, withCause(ctx, err))
	}
	var out build.Result
	err = run.Get(ctx, &out)
	took := time.Since(start)
	if err != nil {
		return slipwayRun{}, in, fmt.Errorf("build %s: %w; build log:\n%s", id, withCause(ctx, err), e.buildLog(id, run.GetRunID()))
	}
	if out.Commit != commit {
		return slipwayRun{}, in, fmt.Errorf("build %s built commit %s, want %s", id, out.Commit, commit)
	}

	tl, err := e.timeline(ctx, id, run.GetRunID())
	if err != nil {
		return slipwayRun{}, in, err
	}
	q, err := e.temporal.QueryWorkflow(ctx, id, run.GetRunID(), build.StatusQuery)
	if err != nil {
		return slipwayRun{}, in, fmt.Errorf("querying status of %s: %w", id, withCause(ctx, err))
	}
	var st build.Status
	if err := q.Get(&st); err != nil {
		return slipwayRun{}, in, fmt.Errorf("decoding status of %s: %w", id, err)
	}
	var vertices map[string]time.Duration
	if s, err := logstore.New(filepath.Join(e.home, "logs")); err == nil {
		if b, err := os.ReadFile(s.Path(id, run.GetRunID())); err == nil {
			vertices = parseVertices(string(b))
		}
	}
	return slipwayRun{id: id, total: took, timeline: tl, steps: st.Steps, vertices: vertices}, in, nil
}

// withCause names why ctx ended, when it did: "context canceled" alone says nothing.
func withCause(ctx context.Context, err error) error {
	if cause := context.Cause(ctx); cause != nil && !errors.Is(err, cause) && !errors.Is(cause, context.Canceled) {
		return fmt.Errorf("%w (%v)", err, cause)
	}
	return err
}

// buildLog is the tail of a build's log, for error messages.
func (e *env) buildLog(id, runID string) string {
	s, err := logstore.New(filepath.Join(e.home, "logs"))
	if err != nil {
		return ""
	}
	return tail(s.Path(id, runID), 4096)
}

// raw clones and builds the commit with the raw tools, timed as one command pair.
func (e *env) raw(ctx context.Context, r *repo, label, commit string) (rawRun, [][]string, error) {
	dir := filepath.Join(e.home, "raw", label)
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return rawRun{}, nil, fmt.Errorf("creating raw folder: %w", err)
	}
	cmds := [][]string{
		{"git", "clone", "--depth", "1", "--branch", "main", r.cloneURL, dir},
		{e.buildctl, "--addr", e.stack.BuildkitAddr, "build", "--frontend", "dockerfile.v0",
			"--local", "context=" + dir, "--local", "dockerfile=" + dir,
			"--output", "type=image,name=" + e.stack.Registry + "/bench/raw:" + label + ",push=true"},
	}
	p, err := e.runRaw(ctx, label, commit, dir, cmds)
	if err != nil {
		return rawRun{}, nil, err
	}
	return rawRun{total: p.total, clone: p.clone, build: p.build, vertices: parseVertices(p.output)}, cmds, nil
}

// rawPair is one timed run of a clone command and a buildctl command.
type rawPair struct {
	total, clone, build time.Duration
	// output is what buildctl printed.
	output string
}

// runRaw runs cmds (the clone into dir, then buildctl) one after the other, timing each and
// both, their output appended to the raw log; it checks that dir holds commit and removes it.
func (e *env) runRaw(ctx context.Context, label, commit, dir string, cmds [][]string) (rawPair, error) {
	logf, err := os.OpenFile(e.rawLog, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return rawPair{}, fmt.Errorf("opening raw log: %w", err)
	}
	defer logf.Close()
	ctx, cancel := context.WithTimeout(ctx, e.timeout)
	defer cancel()

	auth, err := e.rawRegistryAuth(cmds[len(cmds)-1])
	if err != nil {
		return rawPair{}, err
	}
	var took [2]time.Duration
	var output strings.Builder
	start := time.Now()
	for i, args := range cmds {
		fmt.Fprintf(logf, "\n=== %s: %s\n", label, strings.Join(args, " "))
		off, _ := logf.Seek(0, io.SeekCurrent)
		cmd := exec.CommandContext(ctx, args[0], args[1:]...)
		cmd.Env = gitEnv()
		cmd.Stdout, cmd.Stderr = logf, logf
		if i == 1 {
			cmd.Env = append(cmd.Env, auth)
			w := io.MultiWriter(logf, &output)
			cmd.Stdout, cmd.Stderr = w, w
		}
		cmd.WaitDelay = 5 * time.Second
		err := cmd.Run()
		took[i] = time.Since(start) - took[0]
		if err != nil {
			return rawPair{}, fmt.Errorf("raw %s of %s: %w; output:\n%s", filepath.Base(args[0]), label, err, tailFrom(e.rawLog, off))
		}
	}
	total := time.Since(start)
	got, err := git(ctx, dir, "rev-parse", "HEAD")
	if err != nil {
		return rawPair{}, err
	}
	if got != commit {
		return rawPair{}, fmt.Errorf("raw clone of %s checked out %s, want %s", label, got, commit)
	}
	if err := os.RemoveAll(dir); err != nil {
		return rawPair{}, fmt.Errorf("removing raw clone: %w", err)
	}
	return rawPair{total: total, clone: took[0], build: took[1], output: output.String()}, nil
}

// tailFrom is what a log gained after offset off, at most 4 KiB of its end.
func tailFrom(path string, off int64) string {
	b, err := os.ReadFile(path)
	if err != nil || off > int64(len(b)) {
		return ""
	}
	b = b[off:]
	if len(b) > 4096 {
		b = b[len(b)-4096:]
	}
	return strings.TrimSpace(string(b))
}

// span is one activity of a build as its history tells it.
type span struct {
	name                       string
	scheduled, started, closed time.Time
}

// timeline is a build's history reduced to the times the report needs.
type timeline struct {
	started, closed time.Time
	// activities are in the order they were scheduled; the session's creation activity is
	// kept apart because it lasts as long as the session.
	activities []span
	session    span
	signals    []time.Time
	// workflowTasks counts the workflow tasks; wftDispatch sums their scheduled-to-started
	// times and wftRun their started-to-completed times (the worker's work and its reply).
	workflowTasks int
	wftDispatch   time.Duration
	wftRun        time.Duration
}

// sessionCreation is the SDK's activity that holds a session's host.
const sessionCreation = "internalSessionCreationActivity"

// timeline reads a closed build's history.
func (e *env) timeline(ctx context.Context, id, runID string) (timeline, error) {
	var tl timeline
	byID := map[int64]*span{}
	var order []int64
	wftScheduled := map[int64]time.Time{}
	wftStarted := map[int64]time.Time{}
	it := e.temporal.GetWorkflowHistory(ctx, id, runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			return timeline{}, fmt.Errorf("reading history of %s: %w", id, err)
		}
		t := ev.GetEventTime().AsTime()
		switch ev.GetEventType() {
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
			tl.started = t
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
			tl.closed = t
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
			tl.signals = append(tl.signals, t)
		case enumspb.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED:
			wftScheduled[ev.GetEventId()] = t
		case enumspb.EVENT_TYPE_WORKFLOW_TASK_STARTED:
			wftStarted[ev.GetEventId()] = t
			if s, ok := wftScheduled[ev.GetWorkflowTaskStartedEventAttributes().GetScheduledEventId()]; ok {
				tl.wftDispatch += t.Sub(s)
			}
		case enumspb.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
			tl.workflowTasks++
			if s, ok := wftStarted[ev.GetWorkflowTaskCompletedEventAttributes().GetStartedEventId()]; ok {
				tl.wftRun += t.Sub(s)
			}
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
			a := ev.GetActivityTaskScheduledEventAttributes()
			byID[ev.GetEventId()] = &span{name: a.GetActivityType().GetName(), scheduled: t}
			order = append(order, ev.GetEventId())
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_STARTED:
			// The server writes a retried activity's started event when it closes, with the
			// time it really started.
			if s := byID[ev.GetActivityTaskStartedEventAttributes().GetScheduledEventId()]; s != nil {
				s.started = t
			}
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
			closeSpan(byID, ev.GetActivityTaskCompletedEventAttributes().GetScheduledEventId(), t)
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_FAILED:
			closeSpan(byID, ev.GetActivityTaskFailedEventAttributes().GetScheduledEventId(), t)
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT:
			closeSpan(byID, ev.GetActivityTaskTimedOutEventAttributes().GetScheduledEventId(), t)
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_CANCELED:
			closeSpan(byID, ev.GetActivityTaskCanceledEventAttributes().GetScheduledEventId(), t)
		}
	}
	for _, eid := range order {
		s := *byID[eid]
		if s.name == sessionCreation {
			tl.session = s
			continue
		}
		tl.activities = append(tl.activities, s)
	}
	if tl.started.IsZero() || tl.closed.IsZero() {
		return timeline{}, fmt.Errorf("history of %s lacks its start or completion", id)
	}
	return tl, nil
}

func closeSpan(byID map[int64]*span, scheduledID int64, t time.Time) {
	if s := byID[scheduledID]; s != nil {
		s.closed = t
	}
}

// server is how long the execution lasted on the server, start to completion event.
func (tl timeline) server() time.Duration { return tl.closed.Sub(tl.started) }

// startToClone is from the workflow's start to the Clone activity starting on a worker.
func (tl timeline) startToClone() time.Duration {
	for _, a := range tl.activities {
		if a.name == "Clone" && !a.started.IsZero() {
			return a.started.Sub(tl.started)
		}
	}
	return 0
}

// activity returns the first span of the named activity.
func (tl timeline) activity(name string) (span, bool) {
	for _, a := range tl.activities {
		if a.name == name {
			return a, true
		}
	}
	return span{}, false
}

// phase is one stretch of a build between two consecutive milestones of its history.
type phase struct {
	name string
	d    time.Duration
	// kind groups phases for the overhead attribution.
	kind phaseKind
	// dispatch marks an activity's scheduled → started stretch: matching handing the task to
	// a polling worker.
	dispatch bool
}

// phaseKind says what a phase is spent on.
type phaseKind int

const (
	// kindWork is an activity doing what the raw tools also do: clone, build, push.
	kindWork phaseKind = iota
	// kindStep is an activity the raw tools have no counterpart for: resolve, render, cleanup,
	// session completion.
	kindStep
	// kindOrchestration is Temporal between activities: workflow tasks, activity dispatch,
	// the session's creation and its signal.
	kindOrchestration
	// kindClient is the client's own round trips: the start call and the result poll.
	kindClient
)

// workActivities are the activities with a counterpart in the raw commands.
func isWork(name string) bool { return name == "Clone" || name == "Build" || name == "Push" }

// phases cuts the client-observed total into consecutive phases that add up to it exactly:
// each milestone of the history (session creation scheduled and started, its signal, each
// activity's scheduled, started and closed events, completion) ends one phase.
func (r slipwayRun) phases() []phase {
	tl := r.timeline
	type milestone struct {
		t    time.Time
		name string
		// run marks the close of an activity: the phase before it is the activity running.
		run      bool
		activity string
	}
	ms := []milestone{{t: tl.started, name: "workflow started"}}
	if !tl.session.scheduled.IsZero() {
		ms = append(ms, milestone{t: tl.session.scheduled, name: "session creation scheduled"})
	}
	if !tl.session.started.IsZero() && tl.session.started.Before(tl.closed) {
		ms = append(ms, milestone{t: tl.session.started, name: "session creation started"})
	}
	if len(tl.signals) > 0 {
		ms = append(ms, milestone{t: tl.signals[0], name: "session signal"})
	}
	for _, a := range tl.activities {
		for _, m := range []milestone{
			{t: a.scheduled, name: a.name + " scheduled"},
			{t: a.started, name: a.name + " started"},
			{t: a.closed, name: a.name + " closed", run: true, activity: a.name},
		} {
			if !m.t.IsZero() {
				ms = append(ms, m)
			}
		}
	}
	ms = append(ms, milestone{t: tl.closed, name: "workflow completed"})
	sort.SliceStable(ms, func(i, j int) bool { return ms[i].t.Before(ms[j].t) })

	var out []phase
	for i := 1; i < len(ms); i++ {
		p := phase{name: ms[i-1].name + " → " + ms[i].name, d: ms[i].t.Sub(ms[i-1].t), kind: kindOrchestration}
		if strings.HasSuffix(ms[i-1].name, " scheduled") && ms[i].name == strings.TrimSuffix(ms[i-1].name, " scheduled")+" started" {
			p.dispatch = true
		}
		if ms[i].run && ms[i-1].name == ms[i].activity+" started" {
			p.name = ms[i].activity + " runs"
			p.kind = kindStep
			if isWork(ms[i].activity) {
				p.kind = kindWork
			}
		}
		out = append(out, p)
	}
	out = append(out, phase{name: "client: start call and result poll", d: r.total - tl.server(), kind: kindClient})
	return out
}

// stepDurations are the status query's step durations by step name, first host attempt.
func (r slipwayRun) stepDurations() map[string]time.Duration {
	out := map[string]time.Duration{}
	for _, s := range r.steps {
		if s.EndedAt == nil || s.HostAttempt != 1 {
			continue
		}
		out[s.Name] = s.EndedAt.Sub(s.StartedAt)
	}
	return out
}

// Kinds of BuildKit vertex the report times from `--progress plain` output, in report order.
const (
	vertexContext     = "load build context"
	vertexCacheImport = "importing cache"
	vertexExport      = "exporting the image"
	vertexCacheExport = "exporting cache"
)

// vertexKinds lists the vertex kinds in report order.
func vertexKinds() []string {
	return []string{vertexContext, vertexCacheImport, vertexExport, vertexCacheExport}
}

// parseVertices sums, per kind, the "#N DONE 1.2s" times of the vertices in BuildKit's plain
// progress output whose names the report follows (0.1 s resolution, as BuildKit prints them).
func parseVertices(text string) map[string]time.Duration {
	kindOf := map[string]string{}
	out := map[string]time.Duration{}
	for line := range strings.Lines(text) {
		num, rest, ok := strings.Cut(strings.TrimSpace(line), " ")
		if !ok || len(num) < 2 || num[0] != '#' {
			continue
		}
		if _, seen := kindOf[num]; !seen {
			kindOf[num] = ""
			switch {
			case strings.HasPrefix(rest, "[internal] load build context"):
				kindOf[num] = vertexContext
			case strings.HasPrefix(rest, "importing cache"):
				kindOf[num] = vertexCacheImport
			case strings.HasPrefix(rest, "exporting cache"):
				kindOf[num] = vertexCacheExport
			case strings.HasPrefix(rest, "exporting to "):
				kindOf[num] = vertexExport
			}
			continue
		}
		secs, ok := strings.CutPrefix(rest, "DONE ")
		if !ok || kindOf[num] == "" {
			continue
		}
		if d, err := time.ParseDuration(strings.TrimSpace(secs)); err == nil {
			out[kindOf[num]] += d
		}
	}
	return out
}

// rawRegistryAuth gives buildctl a Docker config holding a registry token, minted with the
// stack's key, for the repositories its arguments name (pull and push) and the base images
// (pull), as an operator's CI would hold one; it answers the DOCKER_CONFIG entry to run with.
func (e *env) rawRegistryAuth(args []string) (string, error) {
	access := []registryauth.Access{{Type: "repository", Name: "library/busybox", Actions: []string{registryauth.Pull}}}
	prefix := e.stack.Registry + "/"
	for _, a := range args {
		for _, kv := range strings.Split(a, ",") {
			_, ref, ok := strings.Cut(kv, "=")
			if !ok || !strings.HasPrefix(ref, prefix) {
				continue
			}
			r, err := name.ParseReference(ref)
			if err != nil {
				return "", fmt.Errorf("parsing %q: %w", ref, err)
			}
			access = append(access, registryauth.Access{Type: "repository", Name: r.Context().RepositoryStr(),
				Actions: []string{registryauth.Pull, registryauth.Push}})
		}
	}
	tok, err := e.stack.RegistryKey.Mint("bench raw tools", access, e.timeout+time.Minute)
	if err != nil {
		return "", err
	}
	dir := filepath.Join(e.home, "raw-docker-config")
	if err := writeDockerConfig(dir, map[string]string{e.stack.Registry: tok.Raw}); err != nil {
		return "", err
	}
	return "DOCKER_CONFIG=" + dir, nil
}

// writeDockerConfig writes a Docker config into dir holding a registry token for each
// registry of tokens, as buildctl reads it through DOCKER_CONFIG.
func writeDockerConfig(dir string, tokens map[string]string) error {
	auths := map[string]any{}
	for registry, tok := range tokens {
		auths[registry] = map[string]string{"registrytoken": tok}
	}
	cfg, err := json.Marshal(map[string]any{"auths": auths})
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("creating docker config folder: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), cfg, 0o600); err != nil {
		return fmt.Errorf("writing docker config: %w", err)
	}
	return nil
}
