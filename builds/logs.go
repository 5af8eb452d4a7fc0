package builds

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
)

// followPoll is how often the one watcher of a followed build asks Temporal whether the build
// ended, however many follow it.
const followPoll = time.Second

// Followers shares one watcher per followed build among all its followers, so the load on
// Temporal grows with the builds followed, not with the people (or scripts) following them;
// and it counts each user's followed logs, to cap them.
type Followers struct {
	svc     *Service
	perUser int
	every   time.Duration
	logger  *slog.Logger

	mu     sync.Mutex
	builds map[string]*Watch
	byUser map[string]int
}

// Watch is what the watcher of one build run knows: whether it ended.
type Watch struct {
	ended     atomic.Bool
	followers int
	stop      chan struct{}
}

// Ended reports whether the watched build has ended; its log grows no more.
func (w *Watch) Ended() bool { return w.ended.Load() }

// NewFollowers returns a hub that lets each user follow at most perUser logs at once (8 when
// perUser < 1); failed checks are logged to logger.
func (s *Service) NewFollowers(perUser int, logger *slog.Logger) *Followers {
	if perUser < 1 {
		perUser = 8
	}
	return &Followers{svc: s, perUser: perUser, every: followPoll, logger: logger,
		builds: map[string]*Watch{}, byUser: map[string]int{}}
}

// Join makes user a follower of build id's run runID. ok is false when the user already
// follows as many logs as allowed; otherwise leave must be called when the stream ends.
func (f *Followers) Join(user, id, runID string) (w *Watch, leave func(), ok bool) {
	key := id + "\x00" + runID
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.byUser[user] >= f.perUser {
		return nil, nil, false
	}
	f.byUser[user]++
	w = f.builds[key]
	if w == nil {
		w = &Watch{stop: make(chan struct{})}
		f.builds[key] = w
		go f.watch(id, runID, w)
	}
	w.followers++
	var once sync.Once
	return w, func() {
		once.Do(func() {
			f.mu.Lock()
			defer f.mu.Unlock()
			if f.byUser[user]--; f.byUser[user] <= 0 {
				delete(f.byUser, user)
			}
			if w.followers--; w.followers == 0 {
				close(w.stop)
				delete(f.builds, key)
			}
		})
	}, true
}

// Load is how many builds are watched, how many streams follow them, and how many users
// those streams belong to.
func (f *Followers) Load() (builds, followers, users int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, w := range f.builds {
		followers += w.followers
	}
	return len(f.builds), followers, len(f.byUser)
}

// watch describes the build every f.every until it ends or has no follower left. A failed
// call is logged and tried again: followers keep streaming what the worker writes.
func (f *Followers) watch(id, runID string, w *Watch) {
	t := time.NewTicker(f.every)
	defer t.Stop()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), Timeout)
		d, err := f.svc.temporal.DescribeWorkflow(ctx, id, runID)
		cancel()
		if err != nil {
			f.logger.Warn("checking a followed build", "id", id, "error", err)
		} else if d.Status != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
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
