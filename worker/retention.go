package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/slipway-dev/slipway/activities"
	"github.com/slipway-dev/slipway/config"
	"github.com/slipway-dev/slipway/retention"
	"github.com/slipway-dev/slipway/store"
)

// storeRetention reads retention policies and the rules that protect tags from the gateway's
// database. It reads no sealed column, so the worker needs no secret key for it.
type storeRetention struct {
	st       *store.Store
	registry string
}

func (s storeRetention) RetentionTarget(ctx context.Context, ns, repo string) (activities.RetentionTarget, error) {
	p, err := s.st.GetRetention(ctx, ns, repo)
	if errors.Is(err, store.ErrNotFound) {
		return activities.RetentionTarget{}, fmt.Errorf("%s/%s: %w", ns, repo, activities.ErrNoRetentionPolicy)
	}
	if err != nil {
		return activities.RetentionTarget{}, err
	}
	rules, err := s.st.RetentionRules(ctx, ns, repo)
	if err != nil {
		return activities.RetentionTarget{}, err
	}
	views := make([]retention.RuleView, 0, len(rules))
	for _, r := range rules {
		views = append(views, retention.RuleView{ID: r.ID, TagLatest: r.TagLatest, Semver: r.Semver, Cache: r.Cache})
	}
	return activities.RetentionTarget{Image: s.registry + "/" + ns + "/" + repo, Policy: p.RetentionPolicy, Rules: views}, nil
}

// openRetention opens the gateway's database for retention runs. A worker that cannot reach
// it builds on, and its retention runs fail saying why (another worker may take them).
func openRetention(ctx context.Context, cfg config.Config, logger *slog.Logger) (activities.RetentionSource, func()) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	st, err := store.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		logger.Warn("retention runs are off on this worker: the database is out of reach", "error", err)
		return nil, func() {}
	}
	return storeRetention{st: st, registry: cfg.Registry}, func() { st.Close() }
}
