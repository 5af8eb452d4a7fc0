package activities

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	bkclient "github.com/moby/buildkit/client"
)

// Default bounds of the deferred cache exports (see CacheExports).
const (
	DefaultCacheExportLimit   = 2
	DefaultCacheExportTimeout = 10 * time.Minute
)

// CacheExports runs the registry cache exports that builds leave until their image is out: a
// build whose checkout is a git cache slot solves with the cache imported only, and once its
// image is exported (and streamed) a second solve of the same definition, on the same slot
// under the same shared key, writes the cache (mode=max). Every step of that solve hits
// BuildKit's cache and its context transfer sends nothing, so it costs the cache upload only,
// which no longer delays the build nor races its push for the network.
//
// It never fails nor delays a build: an export waits for a free run (Limit at once), ends at
// Timeout or when the worker stops (Close), and its outcome is in the worker's log. One export
// per cache reference runs at a time; a newer build's export waits behind it and replaces any
// older one still waiting, since the newest build's cache is the one the next build wants.
type CacheExports struct {
	limit   int
	timeout time.Duration
	logger  *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	sem    chan struct{}
	wg     sync.WaitGroup

	mu     sync.Mutex
	closed bool
	// running holds the cache references being exported; pending the export waiting behind
	// each.
	running map[string]bool
	pending map[string]*cacheExport
}

// cacheExport is one deferred export: run writes the cache, release lets go of what it reads
// (the slot's hold), mask hides secret values in its error.
type cacheExport struct {
	ref, build string
	run        func(ctx context.Context) error
	release    func()
	mask       func(string) string
}

// NewCacheExports starts the deferred exports of a worker: at most limit at once, each ended
// after timeout. Zero values take the defaults.
func NewCacheExports(limit int, timeout time.Duration, logger *slog.Logger) *CacheExports {
	if limit <= 0 {
		limit = DefaultCacheExportLimit
	}
	if timeout <= 0 {
		timeout = DefaultCacheExportTimeout
	}
	if logger == nil {
		logger = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &CacheExports{limit: limit, timeout: timeout, logger: logger, ctx: ctx, cancel: cancel,
		sem: make(chan struct{}, limit), running: map[string]bool{}, pending: map[string]*cacheExport{}}
}

// start runs x in the background (or after the export of the same reference running now).
func (e *CacheExports) start(x *cacheExport) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		x.release()
		e.logger.Info("registry cache not exported: the worker is stopping", "cache", x.ref, "build", x.build)
		return
	}
	if e.running[x.ref] {
		if old := e.pending[x.ref]; old != nil {
			old.release()
			e.logger.Info("registry cache export superseded by a newer build's", "cache", old.ref, "build", old.build)
		}
		e.pending[x.ref] = x
		return
	}
	e.running[x.ref] = true
	e.wg.Add(1)
	go e.loop(x)
}

// loop runs x, then each export that queued behind it on its reference.
func (e *CacheExports) loop(x *cacheExport) {
	defer e.wg.Done()
	for x != nil {
		e.runOne(x)
		e.mu.Lock()
		next := e.pending[x.ref]
		delete(e.pending, x.ref)
		if next == nil {
			delete(e.running, x.ref)
		}
		e.mu.Unlock()
		x = next
	}
}

// runOne runs one export within the limit and the timeout, and logs how it ended.
func (e *CacheExports) runOne(x *cacheExport) {
	defer x.release()
	select {
	case e.sem <- struct{}{}:
		defer func() { <-e.sem }()
	case <-e.ctx.Done():
		e.logger.Info("registry cache not exported: the worker is stopping", "cache", x.ref, "build", x.build)
		return
	}
	ctx, cancel := context.WithTimeout(e.ctx, e.timeout)
	defer cancel()
	start := time.Now()
	err := x.run(ctx)
	took := time.Since(start).Round(time.Millisecond)
	if err != nil {
		msg := err.Error()
		if x.mask != nil {
			msg = x.mask(msg)
		}
		if e.ctx.Err() != nil {
			e.logger.Info("registry cache export stopped with the worker", "cache", x.ref, "build", x.build, "after", took.String())
			return
		}
		e.logger.Warn("registry cache export failed; the next build imports an older cache", "cache", x.ref, "build", x.build,
			"after", took.String(), "error", msg)
		return
	}
	e.logger.Info("registry cache exported", "cache", x.ref, "build", x.build, "took", took.String())
}

// Close cancels the exports running, drops those waiting, and returns once every one has let
// go of its slot.
func (e *CacheExports) Close() {
	e.mu.Lock()
	e.closed = true
	for ref, x := range e.pending {
		x.release()
		e.logger.Info("registry cache not exported: the worker is stopping", "cache", x.ref, "build", x.build)
		delete(e.pending, ref)
	}
	e.mu.Unlock()
	e.cancel()
	e.wg.Wait()
}

// deferCacheExport tells whether the build's cache export can wait for the image, and if so
// holds the build's git cache slot for it: only a slot's checkout outlives the build (a
// workspace's own is removed by Cleanup), and only a slot's shared key lets the second solve
// send no context again. The hold is let go by release.
func (a *Activities) deferCacheExport(in BuildInput, src buildContext) (release func(), ok bool) {
	if a.CacheExports == nil || a.Sources == nil || in.CacheRef == "" || src.sharedKey == "" {
		return nil, false
	}
	release, ok, err := a.Sources.Hold(src.ws)
	if err != nil || !ok {
		return nil, false
	}
	return release, true
}

// exportCacheLater hands the cache export of opt (the build's solve, which imported the cache
// only) to the worker's CacheExports, with release to call once it ends.
func (a *Activities) exportCacheLater(ctx context.Context, opt bkclient.SolveOpt, ref string, release func(), mask func(string) string) {
	opt.Exports = nil
	// Not ignore-error, unlike the export in a build's solve: nothing waits on this solve,
	// and its error is what the worker's log says.
	opt.CacheExports = []bkclient.CacheOptionsEntry{{Type: "registry", Attrs: map[string]string{"ref": ref, "mode": "max"}}}
	bk := a.Buildkit
	a.CacheExports.start(&cacheExport{
		ref:   ref,
		build: activityWorkflowID(ctx),
		run: func(ctx context.Context) error {
			if _, err := bk.Solve(ctx, nil, opt, nil); err != nil {
				return fmt.Errorf("exporting the registry cache: %w", err)
			}
			return nil
		},
		release: release,
		mask:    mask,
	})
}
