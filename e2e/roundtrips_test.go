package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"

	"github.com/slipway-dev/slipway/build"
)

// historyCounts is what one build cost in Temporal round trips, read from its history.
type historyCounts struct {
	events, workflowTasks, signals, markers int
	// activities lists the activity types scheduled, in order.
	activities []string
	// firstToLast is the workflow's start to its completion, server time.
	firstToLast time.Duration
	// cloneToBuild is the Clone activity's completion to the Build activity's start: the
	// orchestration between the two long steps.
	cloneToBuild time.Duration
	// toSession is the start to the session's creation being scheduled (the slot's grant);
	// openSession that to the Clone being scheduled; pushToEnd the Push's completion to the
	// workflow's (the session's completion and the slot's release).
	toSession, openSession, pushToEnd time.Duration
}

// countHistory reads build id's history.
func countHistory(t *testing.T, id string) historyCounts {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var c historyCounts
	var first, last, cloneDone, sessionAsked, pushDone time.Time
	names := map[int64]string{}
	it := env.temporal.GetWorkflowHistory(ctx, id, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			t.Fatalf("reading history of %s: %v", id, err)
		}
		c.events++
		if first.IsZero() {
			first = ev.GetEventTime().AsTime()
		}
		last = ev.GetEventTime().AsTime()
		switch ev.GetEventType() {
		case enumspb.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
			c.workflowTasks++
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
			c.signals++
		case enumspb.EVENT_TYPE_MARKER_RECORDED:
			c.markers++
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
			name := ev.GetActivityTaskScheduledEventAttributes().GetActivityType().GetName()
			names[ev.GetEventId()] = name
			c.activities = append(c.activities, name)
			switch name {
			case "internalSessionCreationActivity":
				sessionAsked = ev.GetEventTime().AsTime()
				c.toSession = sessionAsked.Sub(first)
			case "Clone":
				c.openSession = ev.GetEventTime().AsTime().Sub(sessionAsked)
			}
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
			switch names[ev.GetActivityTaskCompletedEventAttributes().GetScheduledEventId()] {
			case "Clone":
				cloneDone = ev.GetEventTime().AsTime()
			case "Push":
				pushDone = ev.GetEventTime().AsTime()
			}
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_STARTED:
			if names[ev.GetActivityTaskStartedEventAttributes().GetScheduledEventId()] == "Build" && !cloneDone.IsZero() {
				c.cloneToBuild = ev.GetEventTime().AsTime().Sub(cloneDone)
			}
		}
	}
	c.firstToLast = last.Sub(first)
	if !pushDone.IsZero() {
		c.pushToEnd = last.Sub(pushDone)
	}
	return c
}

// TestBuildRoundTrips runs a small build of an unchanged commit several times and counts,
// from each history, the workflow tasks and activity tasks it took: the clone resolves the
// Dockerfile and the tags are rendered in the workflow, so the only activities are the
// session's two, Clone, Build and Push. It logs the client-observed time of each build
// (SLIPWAY_ROUNDTRIPS_N builds after a warm-up, default 5) and the phases between its
// history's events, and records the histories of a built image and a refused Dockerfile for
// workflows/testdata/replay (SLIPWAY_RECORD_HISTORIES).
func TestBuildRoundTrips(t *testing.T) {
	w := startWorker(t)
	t.Cleanup(w.stop)
	owner := "e2e-roundtrips"
	_, head := fixture(t, owner)
	n := 5
	if v, err := strconv.Atoi(os.Getenv("SLIPWAY_ROUNDTRIPS_N")); err == nil && v > 0 {
		n = v
	}
	wantActivities := []string{"internalSessionCreationActivity", "Clone", "Build", "Push", "internalSessionCompletionActivity"}
	wantSteps := []string{build.StepClone, build.StepResolve, build.StepTag, build.StepBuild, build.StepPush}

	var took, gaps, toSession, openSession, pushToEnd []time.Duration
	var last string
	for i := 0; i <= n; i++ {
		in := baseInput(owner)
		in.TagTemplate = "{short_commit}"
		id := fmt.Sprintf("e2e-roundtrips-%d-%d", i, time.Now().UnixNano())
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		start := time.Now()
		run := startBuild(t, id, in)
		var res build.Result
		err := run.Get(ctx, &res)
		elapsed := time.Since(start)
		cancel()
		if err != nil {
			t.Fatalf("build %d: %v\nlog:\n%s", i, err, readLogQuiet(id, run.GetRunID()))
		}
		if res.Commit != head || !slices.Equal(res.Tags, []string{head[:7]}) {
			t.Fatalf("build %d: result %+v", i, res)
		}
		c := countHistory(t, id)
		t.Logf("build %d (%s): %s client-observed, %s start to close in history, %s Clone done to Build started; %d events, %d workflow tasks, %d signals, %d markers, activities %s",
			i, map[bool]string{true: "warm-up", false: "measured"}[i == 0], elapsed.Round(time.Millisecond), c.firstToLast.Round(time.Millisecond),
			c.cloneToBuild.Round(time.Millisecond), c.events, c.workflowTasks, c.signals, c.markers, strings.Join(c.activities, ","))
		if !slices.Equal(c.activities, wantActivities) {
			t.Errorf("build %d scheduled %v, want %v", i, c.activities, wantActivities)
		}
		st := queryStatus(t, id)
		var names []string
		for _, s := range st.Steps {
			names = append(names, s.Name)
			if s.StartedAt.IsZero() || s.EndedAt == nil || s.Error != "" {
				t.Errorf("build %d: step %+v has no clean start and end", i, s)
			}
		}
		if !slices.Equal(names, wantSteps) || st.Step != "done" {
			t.Errorf("build %d: status step %q, steps %v; want done and %v", i, st.Step, names, wantSteps)
		}
		if i > 0 {
			took = append(took, elapsed)
			gaps = append(gaps, c.cloneToBuild)
			toSession, openSession, pushToEnd = append(toSession, c.toSession), append(openSession, c.openSession), append(pushToEnd, c.pushToEnd)
		}
		last = id
	}
	load, _ := os.ReadFile("/proc/loadavg")
	t.Logf("%d unchanged small builds, load average %s; min / median / max:", len(took), strings.Join(strings.Fields(string(load))[:3], " "))
	for _, p := range []struct {
		what string
		d    []time.Duration
	}{
		{"client-observed time", took},
		{"start to the session asked (slot granted)", toSession},
		{"session asked to Clone scheduled", openSession},
		{"Clone done to Build started", gaps},
		{"Push done to the workflow closed", pushToEnd},
	} {
		sort.Slice(p.d, func(i, j int) bool { return p.d[i] < p.d[j] })
		t.Logf("  %s: %s / %s / %s", p.what, p.d[0].Round(time.Millisecond), p.d[len(p.d)/2].Round(time.Millisecond), p.d[len(p.d)-1].Round(time.Millisecond))
	}
	recordHistory(t, last, "v3-built")

	// A missing Dockerfile is found by the clone and reported as the resolve step's failure;
	// the tags are rendered all the same, as when the two steps ran together.
	in := baseInput(owner)
	in.DockerfilePath = "docs/Dockerfile"
	id := fmt.Sprintf("e2e-roundtrips-missing-%d", time.Now().UnixNano())
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	err := startBuild(t, id, in).Get(ctx, nil)
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) || appErr.Type() != build.ErrTypeDockerfileNotFound || !strings.Contains(appErr.Message(), "case-sensitive") {
		t.Fatalf("error = %v, want %s with a case hint", err, build.ErrTypeDockerfileNotFound)
	}
	st := queryStatus(t, id)
	var steps []string
	for _, s := range st.Steps {
		steps = append(steps, s.Name)
	}
	if !slices.Equal(steps, wantSteps[:3]) || !strings.Contains(st.Steps[1].Error, "no such file") || st.Steps[2].Error != "" {
		t.Fatalf("steps %+v, want clone, a failed %s and %s", st.Steps, build.StepResolve, build.StepTag)
	}
	if c := countHistory(t, id); slices.Contains(c.activities, "ResolveDockerfile") || slices.Contains(c.activities, "Build") {
		t.Fatalf("refused build scheduled %v", c.activities)
	}
	recordHistory(t, id, "v3-missing-dockerfile")
}

// queryStatus is build id's status query.
func queryStatus(t *testing.T, id string) build.Status {
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

// pushDone is when build id's Push activity completed, the end of the part of a build that
// holds its slots.
func pushDone(t *testing.T, id string) time.Time {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	push := map[int64]bool{}
	it := env.temporal.GetWorkflowHistory(ctx, id, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			t.Fatalf("reading history of %s: %v", id, err)
		}
		if a := ev.GetActivityTaskScheduledEventAttributes(); a != nil && a.GetActivityType().GetName() == "Push" {
			push[ev.GetEventId()] = true
		}
		if a := ev.GetActivityTaskCompletedEventAttributes(); a != nil && push[a.GetScheduledEventId()] {
			return ev.GetEventTime().AsTime()
		}
	}
	t.Fatalf("build %s never completed a push", id)
	return time.Time{}
}
