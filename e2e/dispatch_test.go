package e2e

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
)

// slowDispatch is the dispatch time from which a task counts as slow: the matching service
// hands a task to a waiting poller in a few milliseconds, while a task that missed the
// poller's partition waits about 100 ms.
const slowDispatch = 50 * time.Millisecond

// dispatchGaps collects named durations read from histories, to give each its distribution.
type dispatchGaps map[string][]time.Duration

// add records d under name.
func (g dispatchGaps) add(name string, d time.Duration) { g[name] = append(g[name], d) }

// readHistory is workflow id's history (its current run).
func readHistory(t *testing.T, id string) []*historypb.HistoryEvent {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var events []*historypb.HistoryEvent
	it := env.temporal.GetWorkflowHistory(ctx, id, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			t.Fatalf("reading history of %s: %v", id, err)
		}
		events = append(events, ev)
	}
	return events
}

// addDispatches records each task's dispatch in events (scheduled to started: the time the
// task waited in the matching service for a poller) and what a build waits for between its
// own tasks: a workflow task by the kind of queue it went to, an activity task by its type,
// and, with signals, each signal from the workflow task before it (which asked for it: the
// slot's grant, or the session's creation, whose signal is named by a UUID).
func (g dispatchGaps) addDispatches(events []*historypb.HistoryEvent, signals bool) {
	scheduled := map[int64]*historypb.HistoryEvent{}
	var lastCompleted time.Time
	for _, ev := range events {
		at := ev.GetEventTime().AsTime()
		switch ev.GetEventType() {
		case enumspb.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED, enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
			scheduled[ev.GetEventId()] = ev
		case enumspb.EVENT_TYPE_WORKFLOW_TASK_STARTED:
			s := scheduled[ev.GetWorkflowTaskStartedEventAttributes().GetScheduledEventId()]
			if s == nil {
				continue
			}
			kind := "normal"
			if s.GetWorkflowTaskScheduledEventAttributes().GetTaskQueue().GetKind() == enumspb.TASK_QUEUE_KIND_STICKY {
				kind = "sticky"
			}
			g.add("workflow task dispatch ("+kind+" queue)", at.Sub(s.GetEventTime().AsTime()))
		case enumspb.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
			lastCompleted = at
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_STARTED:
			s := scheduled[ev.GetActivityTaskStartedEventAttributes().GetScheduledEventId()]
			if s == nil {
				continue
			}
			g.add("activity dispatch "+s.GetActivityTaskScheduledEventAttributes().GetActivityType().GetName(), at.Sub(s.GetEventTime().AsTime()))
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
			name := ev.GetWorkflowExecutionSignaledEventAttributes().GetSignalName()
			if len(name) == 36 && strings.Count(name, "-") == 4 {
				name = "the session's creation"
			}
			if signals && !lastCompleted.IsZero() {
				g.add("signal "+name+" after the last workflow task", at.Sub(lastCompleted))
			}
		}
	}
}

// log writes each gap's count, the number at or over slowDispatch, and min / median / max.
func (g dispatchGaps) log(t *testing.T) {
	t.Helper()
	names := make([]string, 0, len(g))
	for name := range g {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		d := g[name]
		sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
		slow := 0
		for _, v := range d {
			if v >= slowDispatch {
				slow++
			}
		}
		t.Logf("  %s: %d, %d at %s or more; %s / %s / %s", name, len(d), slow, slowDispatch,
			d[0].Round(time.Millisecond), d[len(d)/2].Round(time.Millisecond), d[len(d)-1].Round(time.Millisecond))
	}
}

// timeline is events as one line each, at their offset from the first.
func timeline(events []*historypb.HistoryEvent) string {
	var b strings.Builder
	if len(events) == 0 {
		return ""
	}
	first := events[0].GetEventTime().AsTime()
	for _, ev := range events {
		detail := ""
		if a := ev.GetActivityTaskScheduledEventAttributes(); a != nil {
			detail = a.GetActivityType().GetName() + " on " + a.GetTaskQueue().GetName()
		}
		if a := ev.GetWorkflowTaskScheduledEventAttributes(); a != nil {
			detail = a.GetTaskQueue().GetKind().String()
		}
		if a := ev.GetWorkflowExecutionSignaledEventAttributes(); a != nil {
			detail = a.GetSignalName()
		}
		if a := ev.GetMarkerRecordedEventAttributes(); a != nil {
			detail = a.GetMarkerName()
		}
		fmt.Fprintf(&b, "  %4d %7.1fms %s %s\n", ev.GetEventId(), float64(ev.GetEventTime().AsTime().Sub(first).Microseconds())/1000, ev.GetEventType(), detail)
	}
	return b.String()
}
