package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/slipway-dev/slipway/devstack"
	"github.com/slipway-dev/slipway/internal/testing/storetest"
)

// Settings of the webhook measurements.
const (
	// webhookDeliveries is how many signed pushes each sender count delivers.
	webhookDeliveries = 1000
	// webhookWarmups are unmeasured deliveries first: the gateway's first requests open its
	// database pages, its gRPC connection and the HTTP connections.
	webhookWarmups = 20
	// firstStepRuns is how many deliveries are followed to their Clone activity.
	firstStepRuns = 10
	// idleTaskQueue is a task queue no worker polls: builds started there are real executions
	// whose first workflow task waits, so thousands of starts do not each run a build.
	idleTaskQueue = "bench-no-worker"
)

// pushRule is a build rule created through a gateway's API, and signed deliveries to it.
type pushRule struct {
	id, secret string
	tmpl       []byte
	repository string
}

// push is a signed push of commit to branch for the rule.
func (r pushRule) push(branch, commit string) (delivery, error) {
	return pushDelivery(r.tmpl, "/webhooks/github/"+r.id, r.secret, benchOwner, r.repository, branch, commit)
}

// pushTemplate is GitHub's push payload the gateway's tests use.
func pushTemplate() ([]byte, error) {
	root, err := devstack.ModuleRoot()
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(filepath.Join(root, "webhook", "testdata", "github", "push_branch.json"))
	if err != nil {
		return nil, fmt.Errorf("reading the push payload fixture: %w", err)
	}
	return b, nil
}

// createPushRule creates the bench namespace, the image repository and a rule building pushes
// to main of benchOwner/repository through the gateway's API.
func createPushRule(ctx context.Context, g *gateway, tmpl []byte, repository string) (pushRule, error) {
	ns := "/api/v1/namespaces/" + benchOwner
	if _, err := g.call(ctx, http.MethodPost, "/api/v1/namespaces", map[string]string{"name": benchOwner}, nil, http.StatusCreated); err != nil {
		return pushRule{}, err
	}
	if _, err := g.call(ctx, http.MethodPost, ns+"/repositories", map[string]string{"name": repository}, nil, http.StatusCreated); err != nil {
		return pushRule{}, err
	}
	var rule struct {
		ID      string `json:"id"`
		Webhook struct {
			Secret string `json:"secret"`
		} `json:"webhook"`
	}
	_, err := g.call(ctx, http.MethodPost, ns+"/repositories/"+repository+"/build-rules", map[string]any{
		"source":   map[string]string{"provider": "github", "owner": benchOwner, "repository": repository},
		"triggers": map[string]any{"branches": []string{"main"}},
	}, &rule, http.StatusCreated)
	return pushRule{id: rule.ID, secret: rule.Webhook.Secret, tmpl: tmpl, repository: repository}, err
}

// measureWebhooks times signed push deliveries, each starting a real execution, at 1, 10 and
// 50 concurrent senders on the dev server and on the Temporal server on PostgreSQL, then the
// time from a delivery's answer to its build's first step on a polling worker.
func measureWebhooks(ctx context.Context, e *env, o options) (result, error) {
	res := result{key: "webhooks", title: "Webhook deliveries"}
	levels := table{title: fmt.Sprintf("Levels (%d deliveries each, after %d unmeasured)", webhookDeliveries, webhookWarmups),
		header: []string{"Temporal", "senders", "answer p50 / p99 / max", "min", "mean", "deliveries/s", "unexpected answers",
			"gateway handling p50 / p99 / max", "Temporal start RPC mean / p99 bucket", "distinct builds started"}}
	tmpl, err := pushTemplate()
	if err != nil {
		return res, err
	}
	fx := smallFixture("hooks")
	r, err := e.createRepo(fx)
	if err != nil {
		return res, err
	}
	admin := "bench-" + randomHex(24)
	rule, err := webhookLevels(ctx, e, e.temporal, "dev", "", admin, tmpl, fx.name, &res, &levels)
	if err != nil {
		return res, err
	}

	// The same levels on the production shape's Temporal: the server built from
	// go.temporal.io/server on a throwaway PostgreSQL cluster, with a gateway of its own.
	root, err := devstack.ModuleRoot()
	if err != nil {
		return res, err
	}
	cluster, err := storetest.StartCluster(ctx)
	if err != nil {
		return res, fmt.Errorf("starting postgres: %w", err)
	}
	defer cluster.Stop()
	addr, user, password, err := cluster.Login()
	if err != nil {
		return res, err
	}
	srv, err := devstack.StartTemporalServer(ctx, devstack.ServerOptions{Home: filepath.Join(e.home, "temporal-postgres"),
		ToolsDir: o.toolsDir, DeployDir: filepath.Join(root, "deploy"), Postgres: addr, User: user, Password: password, Logger: e.logger})
	if err != nil {
		return res, fmt.Errorf("starting the temporal server on postgres (scripts/tools.sh prod builds it): %w", err)
	}
	defer srv.Close()
	tc, err := dialTemporal(srv.Address)
	if err != nil {
		return res, err
	}
	defer tc.Close()
	if _, err := webhookLevels(ctx, e, tc, "postgres", srv.Address, admin, tmpl, fx.name, &res, &levels); err != nil {
		return res, err
	}

	// Delivery to first step: the same rule on a gateway that starts builds on the workers'
	// queue, one delivery at a time so no build waits for a slot; the first is unmeasured.
	g, err := e.launchGateway(ctx, "webhooks-dev", admin, "", "")
	if err != nil {
		return res, err
	}
	defer g.stop()
	var answers, toClone, startToClone []time.Duration
	for i := range firstStepRuns + 1 {
		commit, err := r.change()
		if err != nil {
			return res, err
		}
		d, err := rule.push("main", commit)
		if err != nil {
			return res, err
		}
		a := g.deliver(ctx, d)
		if len(a.builds) != 1 {
			return res, fmt.Errorf("first-step delivery answered %d: %s", a.Code, a.err)
		}
		b := buildRun{id: a.builds[0]}
		run := e.temporal.GetWorkflow(ctx, b.id, "")
		if err := run.Get(ctx, nil); err != nil {
			return res, fmt.Errorf("build %s started by a delivery: %w", b.id, err)
		}
		b.runID = run.GetRunID()
		if err := e.inspect(ctx, &b); err != nil {
			return res, err
		}
		clone, ok := b.tl.activity("Clone")
		if i == 0 || !ok {
			continue
		}
		answers, toClone = append(answers, a.Took), append(toClone, clone.started.Sub(a.Answered))
		startToClone = append(startToClone, b.tl.startToClone())
	}
	n := strconv.Itoa(len(toClone))
	res.tables = append(res.tables, levels, table{title: "Delivery to first step (deliveries one at a time, builds on the workers' queue)",
		header: []string{"measure", "runs", "min / median / max"}, rows: [][]string{
			{"delivery answer (client)", n, spread(answers)},
			{"202 read → Clone ActivityTaskStarted", n, spread(toClone)},
			{"WorkflowExecutionStarted → Clone ActivityTaskStarted (history)", n, spread(startToClone)},
		}})
	res.durations("BenchmarkWebhookToFirstStep", toClone)
	return res, nil
}

// webhookLevels starts the gateway webhooks-BACKEND on Temporal at temporal (empty: the bench
// stack's), whose client is tc, starting builds on a queue no worker polls; it creates the rule
// and delivers the warm-up and then each sender count's pushes, adds a row per level,
// terminates what each level started and stops the gateway. The rule stays in its database.
func webhookLevels(ctx context.Context, e *env, tc client.Client, backend, temporal, admin string, tmpl []byte, repository string, res *result, t *table) (pushRule, error) {
	g, err := e.launchGateway(ctx, "webhooks-"+backend, admin, idleTaskQueue, temporal)
	if err != nil {
		return pushRule{}, err
	}
	defer g.stop()
	rule, err := createPushRule(ctx, g, tmpl, repository)
	if err != nil {
		return rule, err
	}
	next := func(int) (delivery, error) { return rule.push("main", randomHex(20)) }
	answers, _, _, err := g.send(ctx, webhookWarmups, 1, next)
	if err != nil {
		return rule, err
	} else if bad, ids, first := unexpected(answers, http.StatusAccepted, true); bad > 0 {
		return rule, fmt.Errorf("warm-up: %d deliveries not answered 202 with a build, first %s", bad, first)
	} else if err := terminateAll(ctx, tc, ids, "bench: warm-up"); err != nil {
		return rule, err
	}
	for _, senders := range []int{1, 10, 50} {
		before, err := g.startLatency(ctx)
		if err != nil {
			return rule, err
		}
		answers, wall, server, err := g.send(ctx, webhookDeliveries, senders, next)
		if err != nil {
			return rule, err
		}
		after, err := g.startLatency(ctx)
		if err != nil {
			return rule, err
		}
		// A 202 may name a build that already existed (conflict policy use-existing); each
		// delivery is a new commit, so each should name a build of its own.
		bad, ids, first := unexpected(answers, http.StatusAccepted, true)
		if bad > 0 {
			e.logger.Warn("unexpected answers", "temporal", backend, "senders", senders, "count", bad, "first", first)
		}
		took := tookOf(answers)
		s := summarize(took)
		t.rows = append(t.rows, []string{backend, strconv.Itoa(senders), ranks(took), ms(s.min), ms(s.mean),
			fmt.Sprintf("%.0f", float64(len(answers))/wall.Seconds()), strconv.Itoa(bad),
			fmt.Sprintf("%s (n=%d)", ranks(server), len(server)), after.since(before), strconv.Itoa(len(slices.Compact(slices.Sorted(slices.Values(ids)))))})
		res.durations(fmt.Sprintf("BenchmarkWebhook/temporal=%s/senders=%d", backend, senders), took)
		if err := terminateAll(ctx, tc, ids, "bench: webhook level measured"); err != nil {
			return rule, err
		}
	}
	return rule, nil
}
