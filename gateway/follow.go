package gateway

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
)

// followPoll is how often the one watcher of a followed build asks Temporal whether the build
// ended, however many follow it.
const followPoll = time.Second

// followHub shares one watcher per followed build among all its followers, so the gateway's
// load on Temporal grows with the builds followed, not with the people (or scripts) following
// them; and it counts each user's followed logs, to cap them.
type followHub struct {
	a     *api
	every time.Duration

	mu      sync.Mutex
	builds  map[string]*buildWatch
	perUser map[string]int
}

// buildWatch is what the watcher of one build run knows: whether it ended.
type buildWatch struct {
	ended     atomic.Bool
	followers int
	stop      chan struct{}
}

func newFollowHub(a *api) *followHub {
	return &followHub{a: a, every: followPoll, builds: map[string]*buildWatch{}, perUser: map[string]int{}}
}

// join makes user a follower of build id's run runID. ok is false when the user already
// follows as many logs as the gateway allows; otherwise leave must be called when the
// stream ends.
func (h *followHub) join(user, id, runID string) (w *buildWatch, leave func(), ok bool) {
	limit := h.a.cfg.LogFollowersPerUser
	if limit < 1 {
		limit = 8
	}
	key := id + "\x00" + runID
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.perUser[user] >= limit {
		return nil, nil, false
	}
	h.perUser[user]++
	w = h.builds[key]
	if w == nil {
		w = &buildWatch{stop: make(chan struct{})}
		h.builds[key] = w
		go h.watch(id, runID, w)
	}
	w.followers++
	var once sync.Once
	return w, func() {
		once.Do(func() {
			h.mu.Lock()
			defer h.mu.Unlock()
			if h.perUser[user]--; h.perUser[user] <= 0 {
				delete(h.perUser, user)
			}
			if w.followers--; w.followers == 0 {
				close(w.stop)
				delete(h.builds, key)
			}
		})
	}, true
}

// watch describes the build every h.every until it ends or has no follower left. A failed
// call is logged and tried again: followers keep streaming what the worker writes.
func (h *followHub) watch(id, runID string, w *buildWatch) {
	t := time.NewTicker(h.every)
	defer t.Stop()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), temporalTimeout)
		d, err := h.a.temporal.DescribeWorkflowExecution(ctx, id, runID)
		cancel()
		if err != nil {
			h.a.logger.Warn("checking a followed build", "id", id, "error", err)
		} else if d.GetWorkflowExecutionInfo().GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
			w.ended.Store(true)
			return
		}
		select {
		case <-w.stop:
			return
		case <-t.C:
		}
	}
}
