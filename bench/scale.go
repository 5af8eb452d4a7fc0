package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"time"

	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"golang.org/x/sync/errgroup"

	"github.com/slipway-dev/slipway/accounts"
	"github.com/slipway-dev/slipway/activities"
	"github.com/slipway-dev/slipway/build"
	"github.com/slipway-dev/slipway/devstack"
	"github.com/slipway-dev/slipway/store"
	"github.com/slipway-dev/slipway/workflows"
)

// Settings of the scale measurements.
const (
	scaleNamespace  = "scale" // gateway namespace (and SlipwayNamespace) of everything seeded
	scaleListRepo   = "list"  // image repository whose build records are listed
	scaleListRules  = 10      // rule ids the seeded builds spread over
	scaleStarters   = 32      // starts of the seeding in flight at once
	scaleListReps   = 20      // times each listing is timed
	scalePageSize   = 20      // the build list's default page size
	scaleRuleRepos  = 100     // image repositories the seeded rules spread over
	scaleDeliveries = 300     // deliveries of each kind timed
	// scaleSeedQueue is the task queue of the seeded builds, polled by a worker inside the
	// bench; starts ask for eager execution, so the first task comes back in the start's answer.
	scaleSeedQueue = "bench-seed"
)

// scaleRule is a seeded rule, with what a delivery to it needs.
type scaleRule struct{ id, secret, owner, repository string }

// measureScale seeds n closed builds and times the build list, then times webhook deliveries
// with one rule in the gateway's store and again with n.
func measureScale(ctx context.Context, e *env, o options) (result, error) {
	res := result{key: "scale", title: "Scale: build records with many closed builds, deliveries with many rules"}
	tmpl, err := pushTemplate()
	if err != nil {
		return res, err
	}
	admin := "bench-" + randomHex(24)
	st, err := e.gatewayStore("scale")
	if err != nil {
		return res, err
	}
	rules, err := prepareStore(ctx, st, admin)
	st.Close()
	if err != nil {
		return res, err
	}
	seed := table{title: "Seeding and walking", header: []string{"what", "count", "time", "rate"}}
	rate := func(n int, d time.Duration) string { return fmt.Sprintf("%.0f/s", float64(n)/d.Seconds()) }
	starts, closed, err := seedBuilds(ctx, e, o.scaleN)
	if err != nil {
		return res, err
	}
	seed.rows = append(seed.rows, []string{fmt.Sprintf("closed builds: starts (%d in flight)", scaleStarters), strconv.Itoa(o.scaleN), starts.Round(100 * time.Millisecond).String(), rate(o.scaleN, starts)},
		[]string{"closed builds: starts until visibility shows all closed", strconv.Itoa(o.scaleN), closed.Round(100 * time.Millisecond).String(), rate(o.scaleN, closed)})

	g, err := e.launchGateway(ctx, "scale", admin, idleTaskQueue, "")
	if err != nil {
		return res, err
	}
	defer func() { g.stop() }()
	lists, err := measureLists(ctx, e, g, o.scaleN, &res, &seed)
	if err != nil {
		return res, err
	}
	deliveries := table{title: fmt.Sprintf("Deliveries by rules in the store (%d each, one at a time)", scaleDeliveries),
		header: []string{"rules", "delivery", "min", "p50 / p99 / max", "gateway handling p50 / p99 / max", "unexpected answers"}}
	rnd := rand.New(rand.NewPCG(1, 2))
	if err := measureRules(ctx, e, g, rules, tmpl, rnd, &res, &deliveries); err != nil {
		return res, err
	}
	g.stop()
	if st, err = e.gatewayStore("scale"); err != nil {
		return res, err
	}
	start := time.Now()
	for i := len(rules); i < o.scaleN && err == nil; i++ {
		var r scaleRule
		r, err = createScaleRule(ctx, st, i)
		rules = append(rules, r)
	}
	st.Close()
	if err != nil {
		return res, err
	}
	seed.rows = append(seed.rows, []string{"rules created through the store (one transaction each)", strconv.Itoa(o.scaleN - 1), ms(time.Since(start)), rate(o.scaleN-1, time.Since(start))})
	if g, err = e.launchGateway(ctx, "scale", admin, idleTaskQueue, ""); err != nil {
		return res, err
	}
	if err := measureRules(ctx, e, g, rules, tmpl, rnd, &res, &deliveries); err != nil {
		return res, err
	}
	res.tables = append(res.tables, seed, lists, deliveries)
	return res, nil
}

// gatewayStore opens the database of the gateway called name with the secret key it will use
// (made in its home when missing, as its first start would), so seeded webhook secrets are
// sealed as its own are.
func (e *env) gatewayStore(name string) (*store.Store, error) {
	if err := os.MkdirAll(e.gatewayHome(name), 0o700); err != nil {
		return nil, fmt.Errorf("creating gateway home: %w", err)
	}
	box, err := accounts.LoadKey(os.Getenv, e.gatewayHome(name), true)
	if err != nil {
		return nil, err
	}
	st, err := store.Open(context.Background(), e.gatewayHome(name)+"/slipway.db", store.WithSecretBox(box))
	if err != nil {
		return nil, fmt.Errorf("opening the %s gateway's database: %w", name, err)
	}
	return st, nil
}

// prepareStore creates the admin, the namespace, the image repositories and the first rule.
func prepareStore(ctx context.Context, st *store.Store, admin string) ([]scaleRule, error) {
	a, err := st.EnsureAdmin(ctx, "admin", admin)
	if err != nil {
		return nil, err
	}
	if _, err := st.CreateNamespace(ctx, scaleNamespace, a.ID); err != nil {
		return nil, err
	}
	for i := -1; i < scaleRuleRepos; i++ {
		name := scaleListRepo
		if i >= 0 {
			name = fmt.Sprintf("r%03d", i)
		}
		if _, err := st.CreateRepository(ctx, scaleNamespace, name); err != nil {
			return nil, err
		}
	}
	r, err := createScaleRule(ctx, st, 0)
	return []scaleRule{r}, err
}

// createScaleRule creates the i-th seeded rule: its own source repository, pushes to main and
// release/*, and tags.
func createScaleRule(ctx context.Context, st *store.Store, i int) (scaleRule, error) {
	r, err := st.CreateRule(ctx, store.Rule{
		Namespace: scaleNamespace, Repository: fmt.Sprintf("r%03d", i%scaleRuleRepos),
		Source:      store.Source{Provider: "github", Owner: fmt.Sprintf("org-%02d", i%50), Repository: fmt.Sprintf("app-%05d", i)},
		Triggers:    build.Triggers{Branches: []string{"main", "release/*"}, Tags: true},
		TagTemplate: "{ref}-{short_commit}",
	})
	if err != nil {
		return scaleRule{}, fmt.Errorf("seeding rule %d: %w", i, err)
	}
	return scaleRule{id: r.ID, secret: r.WebhookSecret, owner: r.Source.Owner, repository: r.Source.Repository}, nil
}

// listQuery is the visibility query of the gateway's build list of the list repository.
func listQuery() string {
	return fmt.Sprintf("WorkflowType = '%s' AND %s = '%s' AND %s = '%s'", build.WorkflowName,
		build.AttrNamespace.GetName(), scaleNamespace, build.AttrRepository.GetName(), scaleListRepo)
}

// seedBuilds starts n builds of the list repository with the six search attributes a build
// carries and a timeout the workflow refuses before any activity, so each closes failed in its
// first workflow task; it returns how long the starts took and how long until visibility showed
// them all closed.
func seedBuilds(ctx context.Context, e *env, n int) (starts, closed time.Duration, err error) {
	w := worker.New(e.temporal, scaleSeedQueue, worker.Options{MaxConcurrentWorkflowTaskExecutionSize: 2 * scaleStarters})
	w.RegisterWorkflowWithOptions(workflows.DockerBuilder, workflow.RegisterOptions{Name: build.WorkflowName})
	// The workflow's local activities (who wants the build's events) run with the registered
	// struct: one without a database, so none is asked for and none wants them.
	w.RegisterActivity(&activities.Activities{})
	if err := w.Start(); err != nil {
		return 0, 0, fmt.Errorf("starting the seeding worker: %w", err)
	}
	defer w.Stop()
	tag := strconv.FormatInt(time.Now().UnixNano(), 36)
	begin := time.Now()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(scaleStarters)
	for i := range n {
		g.Go(func() error {
			in := build.Input{Namespace: scaleNamespace, Repository: scaleListRepo, RuleID: fmt.Sprintf("r-scalelist%d", i%scaleListRules),
				Source: build.Source{Provider: "github", Owner: "org-list", Repository: "app-list"},
				Ref:    build.Ref{Type: build.RefBranch, Name: "main"}, Commit: randomHex(20), TagTemplate: "{ref}-{short_commit}",
				Image: e.stack.Registry + "/scale/list", Trigger: build.TriggerPush, Timeout: "refused-by-the-bench"}
			_, err := e.temporal.ExecuteWorkflow(gctx, client.StartWorkflowOptions{
				ID: fmt.Sprintf("bench-scale-%s-%05d", tag, i), TaskQueue: scaleSeedQueue, EnableEagerStart: true, WorkflowExecutionTimeout: time.Hour,
				TypedSearchAttributes: temporal.NewSearchAttributes(build.AttrNamespace.ValueSet(in.Namespace),
					build.AttrRepository.ValueSet(in.Repository), build.AttrRule.ValueSet(in.RuleID), build.AttrRef.ValueSet(in.Ref.Name),
					build.AttrCommit.ValueSet(in.Commit), build.AttrTrigger.ValueSet(in.Trigger)),
				Memo: map[string]any{build.MemoImage: in.Image},
			}, build.WorkflowName, in)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return 0, 0, fmt.Errorf("starting seeded builds: %w", err)
	}
	starts = time.Since(begin)
	e.logger.Info("closed builds started", "builds", n, "took", starts.Round(time.Millisecond))
	count := func(q string) (int64, error) {
		r, err := e.temporal.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{Query: listQuery() + " AND " + q})
		return r.GetCount(), err
	}
	err = devstack.Poll(ctx, time.Second, 15*time.Minute, func() (bool, error) {
		running, err := count("ExecutionStatus = 'Running'")
		if err != nil {
			return false, fmt.Errorf("counting running seeded builds: %w", err)
		}
		done, err := count("ExecutionStatus != 'Running'")
		return running == 0 && done >= int64(n), err
	})
	return starts, time.Since(begin), err
}

// measureLists walks every page of the build list once, then times the listings of the first,
// middle and last pages and of filters, and the same visibility query sent to Temporal alone.
func measureLists(ctx context.Context, e *env, g *gateway, n int, res *result, seed *table) (table, error) {
	base := "/api/v1/namespaces/" + scaleNamespace + "/repositories/" + scaleListRepo + "/builds"
	type page struct {
		Builds        []struct{} `json:"builds"`
		NextPageToken string     `json:"next_page_token"`
	}
	tokens, records := []string{""}, 0
	var walk []time.Duration
	for {
		var p page
		path := base
		if tok := tokens[len(tokens)-1]; tok != "" {
			path += "?page_token=" + tok
		}
		took, err := g.call(ctx, http.MethodGet, path, nil, &p, http.StatusOK)
		if err != nil {
			return table{}, err
		}
		walk, records = append(walk, took), records+len(p.Builds)
		if p.NextPageToken == "" || len(p.Builds) == 0 {
			if len(p.Builds) == 0 && len(tokens) > 1 {
				tokens = tokens[:len(tokens)-1] // the last page with records is the one worth timing
			}
			break
		}
		tokens = append(tokens, p.NextPageToken)
	}
	if records < n {
		return table{}, fmt.Errorf("walking the build list saw %d records in %d pages, want %d", records, len(walk), n)
	}
	var sum time.Duration
	for _, d := range walk {
		sum += d
	}
	seed.rows = append(seed.rows, []string{"walk of the whole list through the gateway (per page min / median / max)",
		fmt.Sprintf("%d pages, %d records", len(walk), records), fmt.Sprintf("%.1f s (%s)", sum.Seconds(), spread(walk)),
		fmt.Sprintf("%.0f pages/s", float64(len(walk))/sum.Seconds())})
	pages, mid := len(tokens), len(tokens)/2
	midToken, err := base64.RawURLEncoding.DecodeString(tokens[mid])
	if err != nil {
		return table{}, fmt.Errorf("decoding page token: %w", err)
	}
	gw := func(path string) func() (int, time.Duration, error) {
		return func() (int, time.Duration, error) {
			var p page
			took, err := g.call(ctx, http.MethodGet, path, nil, &p, http.StatusOK)
			return len(p.Builds), took, err
		}
	}
	console, err := g.signIn(ctx)
	if err != nil {
		return table{}, err
	}
	browse := func(path string) func() (int, time.Duration, error) {
		return func() (int, time.Duration, error) {
			body, took, err := consolePage(ctx, console, g.URL+path)
			return bytes.Count(body, []byte(`<a href="/builds/`)), took, err
		}
	}
	recordsPage := "/ns/" + scaleNamespace + "/repos/" + scaleListRepo + "/builds"
	direct := func(token []byte, size int32) func() (int, time.Duration, error) {
		return func() (int, time.Duration, error) {
			start := time.Now()
			resp, err := e.temporal.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{PageSize: size, NextPageToken: token, Query: listQuery()})
			return len(resp.GetExecutions()), time.Since(start), err
		}
	}
	cases := []struct {
		key, name string
		do        func() (int, time.Duration, error)
	}{
		{"first", "gateway: first page (limit 20, the default)", gw(base)},
		{"first-limit100", "gateway: first page, limit=100", gw(base + "?limit=100")},
		{"middle", fmt.Sprintf("gateway: page %d of %d", mid+1, pages), gw(base + "?page_token=" + tokens[mid])},
		{"last", fmt.Sprintf("gateway: last page with records (%d)", pages), gw(base + "?page_token=" + tokens[pages-1])},
		{"first-rule", "gateway: first page, ?rule= (a tenth of the builds)", gw(base + "?rule=r-scalelist3")},
		{"first-failed", "gateway: first page, ?status=failed", gw(base + "?status=failed")},
		{"console-first", "console: build records page, signed in", browse(recordsPage)},
		{"console-first-rule", "console: build records page, ?rule=", browse(recordsPage + "?rule=r-scalelist3")},
		{"temporal-first", "Temporal ListWorkflowExecutions alone: first page", direct(nil, scalePageSize)},
		{"temporal-first-100", "Temporal ListWorkflowExecutions alone: first page, 100", direct(nil, 100)},
		{"temporal-middle", fmt.Sprintf("Temporal ListWorkflowExecutions alone: page %d", mid+1), direct(midToken, scalePageSize)},
	}
	samples, counts := make([][]time.Duration, len(cases)), make([]int, len(cases))
	for range scaleListReps {
		for i, c := range cases {
			k, took, err := c.do()
			if err != nil {
				return table{}, fmt.Errorf("%s: %w", c.name, err)
			}
			samples[i], counts[i] = append(samples[i], took), k
		}
	}
	t := table{title: fmt.Sprintf("Build list with %d closed builds (%d runs each, round-robin)", n, scaleListReps),
		header: []string{"listing", "records", "min / median / max", "p95"}}
	for i, c := range cases {
		t.rows = append(t.rows, []string{c.name, strconv.Itoa(counts[i]), spread(samples[i]), ms(p95(samples[i]))})
		res.durations(fmt.Sprintf("BenchmarkBuildList/builds=%d/%s", n, c.key), samples[i])
	}
	return t, nil
}

// measureRules times pushes matching a rule picked at random (each starts a build), pushes to a
// branch the rule does not build (no start) and deliveries to a rule id that does not exist
// (404), one at a time, after an unmeasured warm-up.
func measureRules(ctx context.Context, e *env, g *gateway, rules []scaleRule, tmpl []byte, rnd *rand.Rand, res *result, t *table) error {
	kinds := []struct {
		key, name, branch string
		code              int
		unknown           bool
	}{
		{"match", "push matching a rule (starts a build)", "main", http.StatusAccepted, false},
		{"nomatch", "push to a branch the rule does not build", "feature/bench", http.StatusAccepted, false},
		{"unknown", "delivery to a rule id that does not exist (404)", "main", http.StatusNotFound, true},
	}
	mk := func(branch string, unknown bool) func(i int) (delivery, error) {
		return func(i int) (delivery, error) {
			r := rules[rnd.IntN(len(rules))]
			path := "/webhooks/github/" + r.id
			if unknown {
				path = fmt.Sprintf("/webhooks/github/r-nosuchrule%04d", i)
			}
			return pushDelivery(tmpl, path, r.secret, r.owner, r.repository, branch, randomHex(20))
		}
	}
	answers, _, _, err := g.send(ctx, webhookWarmups, 1, mk("main", false))
	if err != nil {
		return err
	}
	_, started, _ := unexpected(answers, http.StatusAccepted, true)
	for _, k := range kinds {
		answers, _, server, err := g.send(ctx, scaleDeliveries, 1, mk(k.branch, k.unknown))
		if err != nil {
			return err
		}
		bad, ids, _ := unexpected(answers, k.code, k.key == "match")
		started = append(started, ids...)
		took := tookOf(answers)
		t.rows = append(t.rows, []string{strconv.Itoa(len(rules)), k.name, ms(summarize(took).min), ranks(took), ranks(server), strconv.Itoa(bad)})
		res.durations(fmt.Sprintf("BenchmarkRuleDelivery/rules=%d/%s", len(rules), k.key), took)
	}
	return terminateAll(ctx, e.temporal, started, "bench: rule deliveries measured")
}
