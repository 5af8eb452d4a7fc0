package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/slipway-dev/slipway/build"
	"github.com/slipway-dev/slipway/builds"
	"github.com/slipway-dev/slipway/retention"
	"github.com/slipway-dev/slipway/store"
)

// retentionRoutes serves an image repository's retention policy: writers set and remove it,
// readers see it and ask what it would delete now.
func (a *Server) retentionRoutes(read, write *gin.RouterGroup) {
	const p = "/repositories/:repo/retention"
	read.GET(p, a.getRetention)
	write.PUT(p, a.putRetention)
	write.DELETE(p, a.deleteRetention)
	read.POST(p+"/dry-run", a.dryRunRetention)
}

// retentionView is a policy as the API shows it, with the Schedule that applies it.
type retentionView struct {
	store.RetentionPolicy
	Every    string `json:"every"`
	Schedule string `json:"schedule"`
}

func viewRetention(p store.RetentionPolicy) retentionView {
	return retentionView{RetentionPolicy: p, Every: p.EveryOrDefault().String(), Schedule: retention.ScheduleID(p.Namespace, p.Repository)}
}

func (a *Server) getRetention(c *gin.Context) {
	ns, repo := c.Param("ns"), c.Param("repo")
	ctx := c.Request.Context()
	p, err := a.store.GetRetention(ctx, ns, repo)
	if errors.Is(err, store.ErrNotFound) {
		// Say which is missing: the repository, or only its policy.
		if _, rerr := a.store.GetRepository(ctx, ns, repo); rerr != nil {
			a.storeError(c, fmt.Sprintf("repository %q", repo), rerr)
			return
		}
	}
	if err != nil {
		a.storeError(c, fmt.Sprintf("retention policy of repository %q", repo), err)
		return
	}
	c.JSON(http.StatusOK, viewRetention(p))
}

func (a *Server) putRetention(c *gin.Context) {
	ns, repo := c.Param("ns"), c.Param("repo")
	var body build.RetentionPolicy
	if !bindJSON(c, &body) {
		return
	}
	if err := body.Validate(); err != nil {
		fail(c, http.StatusBadRequest, err.Error())
		return
	}
	ctx := c.Request.Context()
	p, err := a.store.SetRetention(ctx, ns, repo, body)
	if err != nil {
		a.storeError(c, fmt.Sprintf("repository %q", repo), err)
		return
	}
	if err := a.applyRetention(ctx, p); err != nil {
		// The policy is saved; without its Schedule nothing is deleted. Saving again mends it.
		a.logger.Error("syncing the repository's retention schedule", "repository", ns+"/"+repo, "error", err)
		fail(c, http.StatusBadGateway, "the policy is saved but its schedule could not be written to Temporal; save it again")
		return
	}
	c.JSON(http.StatusOK, viewRetention(p))
}

func (a *Server) deleteRetention(c *gin.Context) {
	ns, repo := c.Param("ns"), c.Param("repo")
	ctx := c.Request.Context()
	if err := a.store.DeleteRetention(ctx, ns, repo); err != nil {
		a.storeError(c, fmt.Sprintf("retention policy of repository %q", repo), err)
		return
	}
	if err := a.deleteRetentionSchedule(ctx, ns, repo); err != nil {
		a.logger.Error("deleting the repository's retention schedule", "repository", ns+"/"+repo, "error", err)
		fail(c, http.StatusBadGateway, "the policy is removed but its schedule could not be deleted from Temporal; delete it again")
		return
	}
	c.Status(http.StatusNoContent)
}

// dryRunAnswer is what a policy would do now: the same decision the schedule's next run
// makes if nothing is pushed meanwhile.
type dryRunAnswer struct {
	Namespace  string                `json:"namespace"`
	Repository string                `json:"repository"`
	Image      string                `json:"image"`
	Policy     build.RetentionPolicy `json:"policy"`
	At         time.Time             `json:"at"`
	retention.Plan
}

// dryRunRetention answers which tags the policy would delete now and which it keeps, each
// with its reason. The body, when given, is a policy to try instead of the saved one.
func (a *Server) dryRunRetention(c *gin.Context) {
	ns, repo := c.Param("ns"), c.Param("repo")
	ctx := c.Request.Context()
	var policy build.RetentionPolicy
	if c.Request.ContentLength != 0 {
		if !bindJSON(c, &policy) {
			return
		}
		if err := policy.Validate(); err != nil {
			fail(c, http.StatusBadRequest, err.Error())
			return
		}
		if _, err := a.store.GetRepository(ctx, ns, repo); err != nil {
			a.storeError(c, fmt.Sprintf("repository %q", repo), err)
			return
		}
	} else {
		p, err := a.store.GetRetention(ctx, ns, repo)
		if err != nil {
			a.storeError(c, fmt.Sprintf("retention policy of repository %q", repo), err)
			return
		}
		policy = p.RetentionPolicy
	}
	ans, code, msg := a.dryRun(ctx, ns, repo, policy)
	if code != 0 {
		fail(c, code, msg)
		return
	}
	c.JSON(http.StatusOK, ans)
}

// dryRun evaluates policy on the repository's tags; a failure is an HTTP code and message.
func (a *Server) dryRun(ctx context.Context, ns, repo string, policy build.RetentionPolicy) (dryRunAnswer, int, string) {
	rules, err := a.store.RetentionRules(ctx, ns, repo)
	if err != nil {
		a.logger.Error("reading rules for a retention dry run", "repository", ns+"/"+repo, "error", err)
		return dryRunAnswer{}, http.StatusInternalServerError, "database error"
	}
	ref, err := name.NewRepository(a.image(ns, repo))
	if err != nil {
		a.logger.Error("naming the image repository", "repository", ns+"/"+repo, "error", err)
		return dryRunAnswer{}, http.StatusInternalServerError, "naming the image repository failed"
	}
	now := time.Now().UTC()
	plan, err := retention.Evaluate(ctx, ref, policy, ruleViews(rules), now, remote.WithAuthFromKeychain(a.registryKeychain))
	if err != nil {
		a.logger.Error("retention dry run", "repository", ref.String(), "error", err)
		return dryRunAnswer{}, http.StatusBadGateway, fmt.Sprintf("reading the tags of %s from the registry failed", ref)
	}
	return dryRunAnswer{Namespace: ns, Repository: repo, Image: ref.String(), Policy: policy, At: now, Plan: plan}, 0, ""
}

// ruleViews are what of rules protects tags from retention.
func ruleViews(rules []store.RuleTags) []retention.RuleView {
	out := make([]retention.RuleView, 0, len(rules))
	for _, r := range rules {
		out = append(out, retention.RuleView{ID: r.ID, TagLatest: r.TagLatest, Semver: r.Semver, Cache: r.Cache})
	}
	return out
}

// applyRetention creates or updates the repository's retention Schedule. Its input names the
// repository only: the run reads the policy and the rules as they are then.
func (a *Server) applyRetention(ctx context.Context, p store.RetentionPolicy) error {
	ctx, cancel := context.WithTimeout(ctx, builds.Timeout)
	defer cancel()
	id := retention.ScheduleID(p.Namespace, p.Repository)
	spec := client.ScheduleSpec{Intervals: []client.ScheduleIntervalSpec{{Every: p.EveryOrDefault()}}}
	action := &client.ScheduleWorkflowAction{
		ID:                       id,
		Workflow:                 build.RetentionWorkflowName,
		TaskQueue:                a.cfg.TaskQueue,
		Args:                     []any{build.RetentionInput{Namespace: p.Namespace, Repository: p.Repository}},
		WorkflowExecutionTimeout: 30 * time.Minute,
	}
	sc := a.temporal.ScheduleClient()
	_, err := sc.Create(ctx, client.ScheduleOptions{ID: id, Spec: spec, Action: action})
	if !errors.Is(err, temporal.ErrScheduleAlreadyRunning) {
		return err
	}
	return sc.GetHandle(ctx, id).Update(ctx, client.ScheduleUpdateOptions{
		DoUpdate: func(in client.ScheduleUpdateInput) (*client.ScheduleUpdate, error) {
			s := in.Description.Schedule
			s.Spec, s.Action = &spec, action
			return &client.ScheduleUpdate{Schedule: &s}, nil
		},
	})
}

// deleteRetentionSchedule deletes the repository's retention Schedule; none is no error.
func (a *Server) deleteRetentionSchedule(ctx context.Context, ns, repo string) error {
	ctx, cancel := context.WithTimeout(ctx, builds.Timeout)
	defer cancel()
	err := a.temporal.ScheduleClient().GetHandle(ctx, retention.ScheduleID(ns, repo)).Delete(ctx)
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		return nil
	}
	return err
}

// retentionDropper is what deleting repository ns/repo does to its retention Schedule, read
// before the repository (and its policy with it) is deleted: delete the Schedule when the
// repository has a policy, nothing otherwise. A failure is logged: the run of an orphaned
// Schedule finds no policy and deletes nothing.
func (a *Server) retentionDropper(ctx context.Context, ns, repo string) func() {
	if _, err := a.store.GetRetention(ctx, ns, repo); err != nil {
		return func() {}
	}
	return func() {
		if err := a.deleteRetentionSchedule(ctx, ns, repo); err != nil {
			a.logger.Error("deleting the repository's retention schedule", "repository", ns+"/"+repo, "error", err)
		}
	}
}
