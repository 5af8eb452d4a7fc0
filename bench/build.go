package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/slipway-dev/slipway/build"
	"github.com/slipway-dev/slipway/devstack"
	"github.com/slipway-dev/slipway/logstore"
	"github.com/slipway-dev/slipway/registryauth"
)

// buildInput is the input of a bench build of branch at commit into image, tagged after label.
func buildInput(r *repo, branch, label, commit, image, cache string) build.Input {
	return build.Input{
		Namespace: benchOwner, Repository: r.fixture.name, RuleID: "bench",
		Source:      build.Source{Provider: "github", Owner: benchOwner, Repository: r.fixture.name},
		Ref:         build.Ref{Type: build.RefBranch, Name: branch},
		Commit:      commit,
		TagTemplate: label + "-{short_commit}",
		Image:       image,
		Trigger:     build.TriggerManual,
		Cache:       cache,
	}
}

// buildRun is one build through Temporal: the client's view, then what its history and log say.
type buildRun struct {
	id, runID  string
	start, end time.Time
	tl         timeline
	log        string
}

// total is from ExecuteWorkflow called to the result returned.
func (b buildRun) total() time.Duration { return b.end.Sub(b.start) }

// runBuild starts one build and waits for its result, giving up when one of watch exits or
// after the bench's build timeout. Reading the history is left to inspect, outside the timing.
func (e *env) runBuild(ctx context.Context, label string, in build.Input, watch ...*devstack.Process) (buildRun, error) {
	id := "bench-" + label + "-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	ctx, cancel := context.WithTimeoutCause(ctx, buildTimeout, fmt.Errorf("build %s took longer than %s", id, buildTimeout))
	defer cancel()
	ctx, cancelCause := context.WithCancelCause(ctx)
	defer cancelCause(nil)
	for _, w := range watch {
		go func() {
			select {
			case <-w.Exited():
				cancelCause(w.ExitError())
			case <-ctx.Done():
			}
		}()
	}
	b := buildRun{id: id, start: time.Now()}
	run, err := e.temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: build.DefaultTaskQueue}, build.WorkflowName, in)
	if err != nil {
		return b, fmt.Errorf("starting build %s: %w", id, withCause(ctx, err))
	}
	var out build.Result
	err = run.Get(ctx, &out)
	b.end, b.runID = time.Now(), run.GetRunID()
	if err != nil {
		return b, fmt.Errorf("build %s: %w; build log:\n%s", id, withCause(ctx, err), lastBytes(e.readLog(id, b.runID), 4096))
	}
	if out.Commit != in.Commit {
		return b, fmt.Errorf("build %s built commit %s, want %s", id, out.Commit, in.Commit)
	}
	return b, nil
}

// build runs one build and reads its history and log.
func (e *env) build(ctx context.Context, label string, in build.Input) (buildRun, error) {
	b, err := e.runBuild(ctx, label, in, e.worker)
	if err == nil {
		err = e.inspect(ctx, &b)
	}
	return b, err
}

// inspect reads a finished build's history and log into b.
func (e *env) inspect(ctx context.Context, b *buildRun) error {
	var err error
	if b.tl, err = e.timeline(ctx, b.id, b.runID); err != nil {
		return err
	}
	b.log = string(e.readLog(b.id, b.runID))
	return nil
}

// readLog is the build's log as the worker keeps it.
func (e *env) readLog(id, runID string) []byte {
	s, err := logstore.New(filepath.Join(e.home, "logs"))
	if err != nil {
		return nil
	}
	b, _ := os.ReadFile(s.Path(id, runID))
	return b
}

// withCause names why ctx ended, when it did: "context canceled" alone says nothing.
func withCause(ctx context.Context, err error) error {
	if cause := context.Cause(ctx); cause != nil && !errors.Is(err, cause) && !errors.Is(cause, context.Canceled) {
		return fmt.Errorf("%w (%v)", err, cause)
	}
	return err
}

// rawRun is one git clone + buildctl pair, timed together and apart.
type rawRun struct {
	total, clone, build time.Duration
	// output is what buildctl printed (plain progress).
	output string
}

// raw clones commit into a folder and runs buildctl with buildArgs on it, output to the registry
// with push, timed as one pair; it checks the clone holds commit and removes it (untimed).
func (e *env) raw(ctx context.Context, r *repo, label, commit, image string, buildArgs ...string) (rawRun, error) {
	dir := filepath.Join(e.home, "raw", label)
	auth, err := e.dockerConfig("raw", []*devstack.Stack{e.stack}, image)
	if err != nil {
		return rawRun{}, err
	}
	cmds := [][]string{
		{"git", "clone", "--depth", "1", "--branch", "main", r.CloneURL, dir},
		append(append([]string{e.buildctl, "--addr", e.stack.BuildkitAddr, "build", "--progress", "plain", "--frontend", "dockerfile.v0",
			"--local", "context=" + dir, "--local", "dockerfile=" + dir}, buildArgs...),
			"--output", "type=image,name="+image+":"+label+",push=true"),
	}
	ctx, cancel := context.WithTimeout(ctx, buildTimeout)
	defer cancel()
	var took [2]time.Duration
	var out [2][]byte
	start := time.Now()
	for i, args := range cmds {
		cmd := exec.CommandContext(ctx, args[0], args[1:]...)
		// The machine's git configuration stays out, as on the worker's side.
		cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null", "DOCKER_CONFIG="+auth)
		cmd.WaitDelay = 5 * time.Second
		out[i], err = cmd.CombinedOutput()
		took[i] = time.Since(start) - took[0]
		if err != nil {
			return rawRun{}, fmt.Errorf("raw %s of %s: %w; output:\n%s", filepath.Base(args[0]), label, err, lastBytes(out[i], 4096))
		}
	}
	run := rawRun{total: time.Since(start), clone: took[0], build: took[1], output: string(out[1])}
	got, err := exec.CommandContext(ctx, "git", "-C", dir, "rev-parse", "HEAD").Output()
	if err != nil || strings.TrimSpace(string(got)) != commit {
		return rawRun{}, fmt.Errorf("raw clone of %s checked out %s (%v), want %s", label, got, err, commit)
	}
	return run, os.RemoveAll(dir)
}

// dockerConfig writes a Docker config, as buildctl reads it through DOCKER_CONFIG, holding for
// each stack's registry a token minted with its key to pull busybox and push images, the way an
// operator's CI would hold one; it returns the config's folder.
func (e *env) dockerConfig(label string, stacks []*devstack.Stack, images ...string) (string, error) {
	access := []registryauth.Access{{Type: "repository", Name: "library/busybox", Actions: []string{registryauth.Pull}}}
	for _, img := range images {
		ref, err := name.NewRepository(img)
		if err != nil {
			return "", fmt.Errorf("parsing %q: %w", img, err)
		}
		access = append(access, registryauth.Access{Type: "repository", Name: ref.RepositoryStr(),
			Actions: []string{registryauth.Pull, registryauth.Push}})
	}
	auths := map[string]any{}
	for _, st := range stacks {
		tok, err := st.RegistryKey.Mint("bench "+label, access, buildTimeout+time.Minute)
		if err != nil {
			return "", err
		}
		auths[st.Registry] = map[string]string{"registrytoken": tok.Raw}
	}
	cfg, err := json.Marshal(map[string]any{"auths": auths})
	if err != nil {
		return "", err
	}
	dir := filepath.Join(e.home, "docker-config-"+label)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("creating docker config folder: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), cfg, 0o600); err != nil {
		return "", fmt.Errorf("writing docker config: %w", err)
	}
	return dir, nil
}

// span is one activity of a build as its history tells it.
type span struct {
	name                       string
	scheduled, started, closed time.Time
}

// timeline is a build's history reduced to the times the bench reports.
type timeline struct {
	started, closed time.Time
	// activities are in the order they were scheduled; the session's creation activity is
	// kept apart because it lasts as long as the session.
	activities []span
	session    span
	signal     time.Time
	// workflowTasks counts the workflow tasks; wftDispatch sums their scheduled → started
	// and wftRun their started → completed (the worker's work and its reply).
	workflowTasks       int
	wftDispatch, wftRun time.Duration
	// retries counts activity attempts after the first; identity is the worker that ran Clone.
	retries  int
	identity string
}

// sessionCreation is the SDK's activity that holds a session's host.
const sessionCreation = "internalSessionCreationActivity"

// timeline reads a closed build's history.
func (e *env) timeline(ctx context.Context, id, runID string) (timeline, error) {
	var tl timeline
	byID := map[int64]*span{}
	var order []int64
	wft := map[int64]time.Time{}
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
			if tl.signal.IsZero() {
				tl.signal = t
			}
		case enumspb.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED:
			wft[ev.GetEventId()] = t
		case enumspb.EVENT_TYPE_WORKFLOW_TASK_STARTED:
			wft[ev.GetEventId()] = t
			tl.wftDispatch += t.Sub(wft[ev.GetWorkflowTaskStartedEventAttributes().GetScheduledEventId()])
		case enumspb.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
			tl.workflowTasks++
			tl.wftRun += t.Sub(wft[ev.GetWorkflowTaskCompletedEventAttributes().GetStartedEventId()])
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
			byID[ev.GetEventId()] = &span{name: ev.GetActivityTaskScheduledEventAttributes().GetActivityType().GetName(), scheduled: t}
			order = append(order, ev.GetEventId())
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_STARTED:
			// The server writes a retried activity's started event when it closes, with the
			// time it really started.
			a := ev.GetActivityTaskStartedEventAttributes()
			if s := byID[a.GetScheduledEventId()]; s != nil {
				s.started = t
				if s.name != sessionCreation {
					tl.retries += int(a.GetAttempt()) - 1
				}
				if s.name == "Clone" {
					tl.identity = a.GetIdentity()
				}
			}
		default: // an activity's end: the getters of the other events' attributes answer 0
			for _, a := range []interface{ GetScheduledEventId() int64 }{ev.GetActivityTaskCompletedEventAttributes(),
				ev.GetActivityTaskFailedEventAttributes(), ev.GetActivityTaskTimedOutEventAttributes(), ev.GetActivityTaskCanceledEventAttributes()} {
				if s := byID[a.GetScheduledEventId()]; s != nil {
					s.closed = t
				}
			}
		}
	}
	for _, eid := range order {
		if s := *byID[eid]; s.name == sessionCreation {
			tl.session = s
		} else {
			tl.activities = append(tl.activities, s)
		}
	}
	if tl.started.IsZero() || tl.closed.IsZero() {
		return timeline{}, fmt.Errorf("history of %s lacks its start or completion", id)
	}
	return tl, nil
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

// startToClone is from the workflow's start to the Clone activity starting on a worker.
func (tl timeline) startToClone() time.Duration {
	if c, ok := tl.activity("Clone"); ok && !c.started.IsZero() {
		return c.started.Sub(tl.started)
	}
	return 0
}

// ran is how long the named activities ran, started to closed, summed.
func (tl timeline) ran(names ...string) time.Duration {
	var d time.Duration
	for _, a := range tl.activities {
		for _, n := range names {
			if a.name == n && !a.started.IsZero() {
				d += a.closed.Sub(a.started)
			}
		}
	}
	return d
}
