package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/slipway-dev/slipway/accounts"
	"github.com/slipway-dev/slipway/build"
	"github.com/slipway-dev/slipway/store"
	"github.com/slipway-dev/slipway/workflows"
)

// Settings of the scale section.
const (
	// scaleNamespace is the gateway namespace (and SlipwayNamespace) of everything it seeds.
	scaleNamespace = "scale"
	// scaleListRepo is the image repository whose build records are listed.
	scaleListRepo = "list"
	// scaleListRules is how many rule ids the seeded builds spread over, so that ?rule= keeps
	// one build in this many.
	scaleListRules = 10
	// scaleStarters is how many starts of the seeding are in flight at once.
	scaleStarters = 32
	// scaleSeedWait bounds the seeding of the closed builds.
	scaleSeedWait = 15 * time.Minute
	// scaleListReps is how many times each listing is timed.
	scaleListReps = 20
	// scalePageSize is the build list's default page size (no limit parameter).
	scalePageSize = 20
	// scaleRuleRepos is how many image repositories the seeded rules spread over.
	scaleRuleRepos = 100
	// scaleDeliveries is how many deliveries of each kind are timed.
	scaleDeliveries = 300
	// scaleRefusedTimeout is a build timeout the workflow refuses before any activity, so a
	// seeded build closes failed in its first workflow task.
	scaleRefusedTimeout = "refused-by-the-bench"
	// scaleSeedQueue is the task queue of the seeded builds, which a worker inside the bench
	// polls; starts request eager execution, so the server hands the first workflow task back
	// in the start's answer.
	scaleSeedQueue = "bench-seed"
)

// scaleSection measures what grows with use: listing build records with many closed builds in
// visibility, and webhook deliveries with many build rules in the gateway's store.
type scaleSection struct {
	// n is how many closed builds and how many rules are seeded.
	n int
	// seedStarts is how long the n starts took, seedClosed until visibility showed them all
	// closed; seedFailed counts starts refused.
	seedStarts, seedClosed time.Duration
	// lists are the timed listings, in report order.
	lists []listRow
	// walk times every page of one walk through the whole list; walkRecords counts the
	// records it saw.
	walk        []time.Duration
	walkRecords int
	// walkEmptyLast says the walk's last page was empty: the list hands out a page token
	// after a full page even when nothing follows.
	walkEmptyLast bool
	// ruleSeed is how long the store took to create the rules beyond the first.
	ruleSeed time.Duration
	// deliveries are the timed deliveries, by number of rules in the store and kind.
	deliveries []ruleRow
}

// newScaleSection returns the scale section, to be run.
func newScaleSection() section { return &scaleSection{} }

// listRow is one listing, timed scaleListReps times.
type listRow struct {
	// key names the listing in benchstat lines.
	key     string
	name    string
	samples []time.Duration
	// records is how many records (or executions, for Temporal alone) the listing returned.
	records int
}

// ruleRow is one kind of delivery with a number of rules in the store.
type ruleRow struct {
	rules int
	// key names the kind in benchstat lines.
	key     string
	kind    string
	want    answer
	results []deliveryResult
	// server are the gateway's handling times, from its request log.
	server []time.Duration
}

// scaleRule is a seeded rule, with what a delivery to it needs.
type scaleRule struct {
	id, secret        string
	owner, repository string
}

// key is "scale", for -only.
func (s *scaleSection) key() string { return "scale" }

// title heads the section.
func (s *scaleSection) title() string {
	return "Scale: build records with many closed builds, webhook deliveries with many rules"
}

// run seeds the closed builds and times the build list, then times deliveries with one rule
// in the store and again with n, on a gateway that starts builds on a queue no worker polls.
// Every execution it started and left running is terminated before it returns.
func (s *scaleSection) run(ctx context.Context, e *env, o options) error {
	s.n = o.scaleN
	if s.n < scaleListRules {
		return fmt.Errorf("-scale-n %d is below %d", s.n, scaleListRules)
	}
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	tmpl, err := os.ReadFile(filepath.Join(root, "webhook", "testdata", "github", "push_branch.json"))
	if err != nil {
		return fmt.Errorf("reading the push payload fixture: %w", err)
	}
	token, err := randomToken()
	if err != nil {
		return err
	}
	cfg := gatewayConfig{name: "scale", admin: token, taskQueue: idleTaskQueue}
	rules, err := s.prepareStore(ctx, e, cfg)
	if err != nil {
		return err
	}
	if err := s.seedBuilds(ctx, e); err != nil {
		return err
	}

	gw, err := e.launchGateway(ctx, cfg)
	if err != nil {
		return err
	}
	var started startedBuilds
	defer func() {
		gw.stop()
		if n, terr := e.terminateAll(context.WithoutCancel(ctx), started.take(), "bench: scale section ended"); terr != nil {
			e.logger.Warn("terminating builds the scale section left", "error", terr)
		} else if n > 0 {
			e.logger.Info("terminated builds the scale section left", "count", n)
		}
	}()
	if err := s.measureLists(ctx, e, gw); err != nil {
		return err
	}

	rnd := rand.New(rand.NewPCG(1, 2))
	if err := s.measureRules(ctx, e, gw, rules, tmpl, &started, rnd); err != nil {
		return err
	}
	gw.stop()
	if rules, err = s.seedRules(ctx, e, cfg, rules); err != nil {
		return err
	}
	if gw, err = e.launchGateway(ctx, cfg); err != nil {
		return err
	}
	return s.measureRules(ctx, e, gw, rules, tmpl, &started, rnd)
}

// prepareStore creates, in the gateway's database, the admin, the namespace, the image
// repositories and the first rule, which it returns.
func (s *scaleSection) prepareStore(ctx context.Context, e *env, cfg gatewayConfig) ([]scaleRule, error) {
	st, err := openGatewayStore(ctx, e, cfg)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	admin, err := st.EnsureAdmin(ctx, "admin", cfg.admin)
	if err != nil {
		return nil, err
	}
	if _, err := st.CreateNamespace(ctx, scaleNamespace, admin.ID); err != nil {
		return nil, err
	}
	if _, err := st.CreateRepository(ctx, scaleNamespace, scaleListRepo); err != nil {
		return nil, err
	}
	for i := range scaleRuleRepos {
		if _, err := st.CreateRepository(ctx, scaleNamespace, ruleRepo(i)); err != nil {
			return nil, err
		}
	}
	r, err := createScaleRule(ctx, st, 0)
	if err != nil {
		return nil, err
	}
	return []scaleRule{r}, nil
}

// seedRules creates rules until there are n, timing it; the gateway must be stopped.
func (s *scaleSection) seedRules(ctx context.Context, e *env, cfg gatewayConfig, rules []scaleRule) ([]scaleRule, error) {
	st, err := openGatewayStore(ctx, e, cfg)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	start := time.Now()
	for i := len(rules); i < s.n; i++ {
		r, err := createScaleRule(ctx, st, i)
		if err != nil {
			return nil, err
		}
		rules = append(rules, r)
	}
	s.ruleSeed = time.Since(start)
	e.logger.Info("rules seeded", "rules", len(rules), "took", s.ruleSeed.Round(time.Millisecond))
	return rules, nil
}

// openGatewayStore opens the database of the gateway cfg with the secret key that gateway
// will use (made in its home when missing, as its first start would), so the webhook secrets
// of the rules seeded here are sealed as the gateway's own are.
func openGatewayStore(ctx context.Context, e *env, cfg gatewayConfig) (*store.Store, error) {
	if err := os.MkdirAll(cfg.home(e), 0o700); err != nil {
		return nil, fmt.Errorf("creating gateway home: %w", err)
	}
	box, err := accounts.LoadKey(os.Getenv, cfg.home(e), true)
	if err != nil {
		return nil, err
	}
	st, err := store.Open(ctx, cfg.database(e), store.WithSecretBox(box))
	if err != nil {
		return nil, fmt.Errorf("opening the scale gateway's database: %w", err)
	}
	return st, nil
}

// ruleRepo is the image repository of the i-th group of seeded rules.
func ruleRepo(i int) string { return fmt.Sprintf("r%03d", i%scaleRuleRepos) }

// createScaleRule creates the i-th seeded rule: its own source repository, pushes to main
// and release/* and every tag build.
func createScaleRule(ctx context.Context, st *store.Store, i int) (scaleRule, error) {
	r, err := st.CreateRule(ctx, store.Rule{
		Namespace: scaleNamespace, Repository: ruleRepo(i),
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

// seedBuilds starts n builds of the list repository with all six search attributes and an
// input the workflow refuses at once, so each closes failed in its first workflow task on the
// bench's worker, and waits until visibility shows them all closed.
func (s *scaleSection) seedBuilds(ctx context.Context, e *env) error {
	w := worker.New(e.temporal, scaleSeedQueue, worker.Options{MaxConcurrentWorkflowTaskExecutionSize: 2 * scaleStarters})
	w.RegisterWorkflowWithOptions(workflows.DockerBuilder, workflow.RegisterOptions{Name: build.WorkflowName})
	if err := w.Start(); err != nil {
		return fmt.Errorf("starting the seeding worker: %w", err)
	}
	defer w.Stop()
	tag := strconv.FormatInt(time.Now().UnixNano(), 36)
	var (
		mu    sync.Mutex
		first error
		wg    sync.WaitGroup
	)
	work := make(chan int)
	start := time.Now()
	for range scaleStarters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				if err := e.startRefused(ctx, tag, i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	lastLog := time.Now()
	for i := range s.n {
		mu.Lock()
		stop := first != nil
		mu.Unlock()
		if stop || ctx.Err() != nil {
			break
		}
		if time.Since(lastLog) > 30*time.Second {
			e.logger.Info("starting the closed builds", "handed_out", i, "of", s.n, "per_second", fmt.Sprintf("%.0f", float64(i)/time.Since(start).Seconds()))
			lastLog = time.Now()
		}
		work <- i
	}
	close(work)
	wg.Wait()
	if first != nil {
		return first
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	s.seedStarts = time.Since(start)
	e.logger.Info("closed builds started", "builds", s.n, "took", s.seedStarts.Round(time.Millisecond),
		"per_second", fmt.Sprintf("%.0f", float64(s.n)/s.seedStarts.Seconds()))

	running := listQuery() + " AND ExecutionStatus = 'Running'"
	closed := listQuery() + " AND ExecutionStatus != 'Running'"
	deadline := start.Add(scaleSeedWait)
	for {
		r, err := e.temporal.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{Query: running})
		if err != nil {
			return fmt.Errorf("counting running seeded builds: %w", err)
		}
		c, err := e.temporal.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{Query: closed})
		if err != nil {
			return fmt.Errorf("counting closed seeded builds: %w", err)
		}
		if r.GetCount() == 0 && c.GetCount() >= int64(s.n) {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("seeded builds: %d running and %d closed after %s", r.GetCount(), c.GetCount(), scaleSeedWait)
		}
		if time.Since(lastLog) > 10*time.Second {
			e.logger.Info("waiting for the seeded builds to close", "running", r.GetCount(), "closed", c.GetCount())
			lastLog = time.Now()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
	s.seedClosed = time.Since(start)
	e.logger.Info("closed builds seeded", "builds", s.n, "took", s.seedClosed.Round(time.Millisecond))
	return nil
}

// startRefused starts the i-th seeded build, eagerly, on the seeding worker's task queue.
func (e *env) startRefused(ctx context.Context, tag string, i int) error {
	rule := fmt.Sprintf("r-scalelist%d", i%scaleListRules)
	commit := fakeCommit("scale", i)
	in := build.Input{
		Namespace: scaleNamespace, Repository: scaleListRepo, RuleID: rule,
		Source:      build.Source{Provider: "github", Owner: "org-list", Repository: "app-list"},
		Ref:         build.Ref{Type: build.RefBranch, Name: "main"},
		Commit:      commit,
		TagTemplate: "{ref}-{short_commit}",
		Image:       e.stack.Registry + "/" + scaleNamespace + "/" + scaleListRepo,
		Trigger:     build.TriggerPush,
		Timeout:     scaleRefusedTimeout,
	}
	id := fmt.Sprintf("bench-scale-%s-%05d", tag, i)
	_, err := e.temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                       id,
		TaskQueue:                scaleSeedQueue,
		EnableEagerStart:         true,
		WorkflowExecutionTimeout: time.Hour,
		TypedSearchAttributes: temporal.NewSearchAttributes(
			build.AttrNamespace.ValueSet(in.Namespace),
			build.AttrRepository.ValueSet(in.Repository),
			build.AttrRule.ValueSet(in.RuleID),
			build.AttrRef.ValueSet(in.Ref.Name),
			build.AttrCommit.ValueSet(in.Commit),
			build.AttrTrigger.ValueSet(in.Trigger),
		),
		Memo: map[string]any{build.MemoImage: in.Image},
	}, build.WorkflowName, in)
	if err != nil {
		return fmt.Errorf("starting seeded build %s: %w", id, err)
	}
	return nil
}

// buildPage is the part of a build list answer the bench reads.
type buildPage struct {
	Builds []struct {
		ID string `json:"id"`
	} `json:"builds"`
	NextPageToken string `json:"next_page_token"`
}

// timedGet makes one API GET as the site admin, timed from the request sent to the answer
// read, and decodes the answer (outside the timing).
func (g *benchGateway) timedGet(ctx context.Context, path string, out any) (time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, g.url+path, nil)
	if err != nil {
		return 0, fmt.Errorf("making request GET %s: %w", path, err)
	}
	req.Header.Set("Authorization", "Bearer "+g.admin)
	start := time.Now()
	resp, err := g.client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("GET %s: %w", path, err)
	}
	raw, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	took := time.Since(start)
	if err != nil {
		return 0, fmt.Errorf("reading answer of GET %s: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET %s answered %d: %s", path, resp.StatusCode, strings.TrimSpace(string(raw)))
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return 0, fmt.Errorf("decoding answer of GET %s: %w", path, err)
	}
	return took, nil
}

// measureLists walks the whole build list once, timing each page, then times the first
// page, a page in the middle, the last page, filtered first pages and the same visibility
// query straight to Temporal, round-robin, scaleListReps times each.
func (s *scaleSection) measureLists(ctx context.Context, e *env, g *benchGateway) error {
	base := "/api/v1/namespaces/" + scaleNamespace + "/repositories/" + scaleListRepo + "/builds"
	// tokens[i] fetches page i (tokens[0] is the first page's empty token).
	tokens := []string{""}
	for {
		var p buildPage
		path := base
		if t := tokens[len(tokens)-1]; t != "" {
			path += "?page_token=" + t
		}
		took, err := g.timedGet(ctx, path, &p)
		if err != nil {
			return err
		}
		s.walk = append(s.walk, took)
		s.walkRecords += len(p.Builds)
		s.walkEmptyLast = len(p.Builds) == 0
		if p.NextPageToken == "" || len(p.Builds) == 0 {
			break
		}
		tokens = append(tokens, p.NextPageToken)
	}
	if s.walkEmptyLast && len(tokens) > 1 {
		// The last page with records is the one worth timing.
		tokens = tokens[:len(tokens)-1]
	}
	if len(s.walk) > 0 && s.walkRecords < s.n {
		return fmt.Errorf("walking the build list saw %d records in %d pages, want %d", s.walkRecords, len(s.walk), s.n)
	}
	pages := len(tokens)
	mid := pages / 2
	e.logger.Info("build list walked", "pages", pages, "records", s.walkRecords, "took", sumDurations(s.walk).Round(time.Millisecond))

	midToken, err := base64.RawURLEncoding.DecodeString(tokens[mid])
	if err != nil {
		return fmt.Errorf("decoding page token: %w", err)
	}
	gwGet := func(path string, want int) func() (int, time.Duration, error) {
		return func() (int, time.Duration, error) {
			var p buildPage
			took, err := g.timedGet(ctx, path, &p)
			if err == nil && len(p.Builds) != want {
				err = fmt.Errorf("GET %s gave %d records, want %d", path, len(p.Builds), want)
			}
			return len(p.Builds), took, err
		}
	}
	direct := func(token []byte, size int32) func() (int, time.Duration, error) {
		return func() (int, time.Duration, error) {
			start := time.Now()
			resp, err := e.temporal.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
				PageSize: size, NextPageToken: token, Query: listQuery(),
			})
			took := time.Since(start)
			if err != nil {
				return 0, 0, fmt.Errorf("listing builds straight from Temporal: %w", err)
			}
			return len(resp.GetExecutions()), took, nil
		}
	}
	lastWant := s.walkRecords - (pages-1)*scalePageSize
	midWant := scalePageSize
	if mid == pages-1 {
		midWant = lastWant
	}
	oneRule := s.n / scaleListRules
	cases := []struct {
		key, name string
		do        func() (int, time.Duration, error)
	}{
		{"first", "gateway: first page (limit 20, the default)", gwGet(base, min(scalePageSize, s.walkRecords))},
		{"first-limit100", "gateway: first page, limit=100", gwGet(base+"?limit=100", min(100, s.walkRecords))},
		{"middle", fmt.Sprintf("gateway: page %d of %d (after %d records)", mid+1, pages, mid*scalePageSize), gwGet(base+"?page_token="+tokens[mid], midWant)},
		{"last", fmt.Sprintf("gateway: last page with records (%d)", pages), gwGet(base+"?page_token="+tokens[pages-1], lastWant)},
		{"first-rule", fmt.Sprintf("gateway: first page, ?rule= (%d of the builds)", oneRule), gwGet(base+"?rule=r-scalelist3", min(scalePageSize, oneRule))},
		{"first-failed", "gateway: first page, ?status=failed", gwGet(base+"?status=failed", min(scalePageSize, s.walkRecords))},
		{"temporal-first", "Temporal ListWorkflowExecutions alone: first page", direct(nil, scalePageSize)},
		{"temporal-first-100", "Temporal ListWorkflowExecutions alone: first page, 100", direct(nil, 100)},
		{"temporal-middle", fmt.Sprintf("Temporal ListWorkflowExecutions alone: page %d", mid+1), direct(midToken, scalePageSize)},
	}
	s.lists = make([]listRow, len(cases))
	for i, c := range cases {
		s.lists[i].key, s.lists[i].name = c.key, c.name
	}
	for range scaleListReps {
		for i, c := range cases {
			n, took, err := c.do()
			if err != nil {
				return err
			}
			s.lists[i].samples = append(s.lists[i].samples, took)
			s.lists[i].records = n
		}
	}
	return nil
}

// measureRules times, one at a time, pushes that match a rule picked at random among the
// store's rules (each starts a build), pushes to a branch the rule does not build (no start),
// and deliveries to a rule id that does not exist (404).
func (s *scaleSection) measureRules(ctx context.Context, e *env, g *benchGateway, rules []scaleRule, tmpl []byte,
	started *startedBuilds, rnd *rand.Rand) error {
	seq := 0
	push := func(r scaleRule, path, branch string) (delivery, error) {
		seq++
		return pushMaker{template: tmpl, owner: r.owner, repository: r.repository}.make(path, r.secret, branch, fakeCommit("rules", seq))
	}
	matching := func(n int) ([]delivery, error) {
		ds := make([]delivery, n)
		for i := range ds {
			r := rules[rnd.IntN(len(rules))]
			var err error
			if ds[i], err = push(r, "/webhooks/github/"+r.id, "main"); err != nil {
				return nil, err
			}
		}
		return ds, nil
	}
	warm, err := matching(webhookWarmups)
	if err != nil {
		return err
	}
	res, _ := g.send(ctx, warm, 1)
	if err := started.add(res, oneBuild()); err != nil {
		return fmt.Errorf("warm-up with %d rules: %w", len(rules), err)
	}

	kinds := []struct {
		key, name string
		want      answer
		make      func(n int) ([]delivery, error)
	}{
		{"match", "push matching a rule (starts a build)", oneBuild(), matching},
		{"nomatch", "push to a branch the rule does not build (no start)", answer{code: http.StatusAccepted}, func(n int) ([]delivery, error) {
			ds := make([]delivery, n)
			for i := range ds {
				r := rules[rnd.IntN(len(rules))]
				var err error
				if ds[i], err = push(r, "/webhooks/github/"+r.id, fmt.Sprintf("feature/bench-%d", i)); err != nil {
					return nil, err
				}
			}
			return ds, nil
		}},
		{"unknown", "delivery to a rule id that does not exist (404)", answer{code: http.StatusNotFound}, func(n int) ([]delivery, error) {
			ds := make([]delivery, n)
			for i := range ds {
				r := rules[rnd.IntN(len(rules))]
				var err error
				if ds[i], err = push(r, fmt.Sprintf("/webhooks/github/r-nosuchrule%04d", i), "main"); err != nil {
					return nil, err
				}
			}
			return ds, nil
		}},
	}
	for _, k := range kinds {
		ds, err := k.make(scaleDeliveries)
		if err != nil {
			return err
		}
		off := g.logSize()
		res, _ := g.send(ctx, ds, 1)
		server, err := g.webhookTimes(off)
		if err != nil {
			return err
		}
		row := ruleRow{rules: len(rules), key: k.key, kind: k.name, want: k.want, results: res, server: server}
		_ = started.add(res, k.want)
		a := nearestRanks(row.times())
		e.logger.Info("rule deliveries", "rules", len(rules), "kind", k.name, "p50", a.p50.Round(10*time.Microsecond),
			"p99", a.p99.Round(10*time.Microsecond), "failures", len(unexpectedAnswers(res, k.want)))
		s.deliveries = append(s.deliveries, row)
	}
	_, err = e.terminateAll(ctx, started.take(), "bench: rule deliveries measured")
	return err
}

// times are the row's answer times.
func (r ruleRow) times() []time.Duration {
	ds := make([]time.Duration, len(r.results))
	for i, x := range r.results {
		ds[i] = x.took
	}
	return ds
}

// sumDurations is the sum of ds.
func sumDurations(ds []time.Duration) time.Duration {
	var t time.Duration
	for _, d := range ds {
		t += d
	}
	return t
}

// secondsText formats a long duration in seconds.
func secondsText(d time.Duration) string { return fmt.Sprintf("%.1f s", d.Seconds()) }

// seedTable says how long seeding took and how the walk through every page went.
func (s *scaleSection) seedTable() table {
	rate := func(n int, d time.Duration) string {
		if d <= 0 {
			return "–"
		}
		return fmt.Sprintf("%.0f/s", float64(n)/d.Seconds())
	}
	w := summarize(s.walk)
	emptyLast := ""
	if s.walkEmptyLast {
		emptyLast = " (the last one empty)"
	}
	return table{header: []string{"seeding and walking", "count", "time", "rate"}, left: true, rows: [][]string{
		{fmt.Sprintf("closed builds: starts (%d in flight)", scaleStarters), strconv.Itoa(s.n), secondsText(s.seedStarts), rate(s.n, s.seedStarts)},
		{"closed builds: starts until visibility shows all closed", strconv.Itoa(s.n), secondsText(s.seedClosed), rate(s.n, s.seedClosed)},
		{"walk of the whole list through the gateway (pages; per page min / median / max)", fmt.Sprintf("%d pages%s, %d records", len(s.walk), emptyLast, s.walkRecords),
			secondsText(sumDurations(s.walk)) + " (" + spread(w) + ")", rate(len(s.walk), sumDurations(s.walk))},
		{"rules created through the store (one transaction each)", strconv.Itoa(max(0, s.n-1)), ms(s.ruleSeed), rate(s.n-1, s.ruleSeed)},
	}}
}

// listTable is one row per timed listing.
func (s *scaleSection) listTable() table {
	t := table{header: []string{"listing", "records", "runs", "min / median / max"}}
	for _, l := range s.lists {
		t.rows = append(t.rows, []string{l.name, strconv.Itoa(l.records), strconv.Itoa(len(l.samples)), spread(summarize(l.samples))})
	}
	return t
}

// ruleTable is one row per number of rules and kind of delivery.
func (s *scaleSection) ruleTable() table {
	t := table{header: []string{"rules in store", "delivery", "n", "min", "p50 (median)", "p99", "max", "gateway handling p50 / p99", "unexpected answers"}}
	for _, r := range s.deliveries {
		a := nearestRanks(r.times())
		h := nearestRanks(r.server)
		t.rows = append(t.rows, []string{strconv.Itoa(r.rules), r.kind, strconv.Itoa(a.n), ms(a.min), ms(a.p50), ms(a.p99), ms(a.max),
			ms(h.p50) + " / " + ms(h.p99), strconv.Itoa(len(unexpectedAnswers(r.results, r.want)))})
	}
	return t
}

// findings compares the deep page with the first and the gateway with Temporal alone, and
// the deliveries with one rule with those with n.
func (s *scaleSection) findings() []string {
	var out []string
	med := func(name string) (time.Duration, bool) {
		for _, l := range s.lists {
			if strings.HasPrefix(l.name, name) {
				return median(l.samples), true
			}
		}
		return 0, false
	}
	first, ok1 := med("gateway: first page (")
	mid, ok2 := med("gateway: page ")
	last, ok3 := med("gateway: last page")
	direct, ok4 := med("Temporal ListWorkflowExecutions alone: first page")
	directMid, ok5 := med("Temporal ListWorkflowExecutions alone: page ")
	if ok1 && ok2 && ok3 && ok4 && ok5 {
		out = append(out, fmt.Sprintf("Build list with %d closed builds in SQLite visibility (medians): first page %s, the middle page %s, "+
			"the last %s; the same query straight to Temporal takes %s for the first page and %s for the middle one, so the "+
			"gateway adds %s and a page's cost grows with its depth in Temporal's visibility store, not in the gateway. "+
			"A walk through all %d pages took %s.",
			s.n, ms(first), ms(mid), ms(last), ms(direct), ms(directMid), signedMS(first-direct), len(s.walk), secondsText(sumDurations(s.walk))))
	}
	if s.seedClosed > 0 {
		out = append(out, fmt.Sprintf("Seeding %d closed builds took %s (%.0f/s): the dev server's rate of start + close with visibility "+
			"on SQLite, on this machine; -scale-n sets the count.", s.n, secondsText(s.seedClosed), float64(s.n)/s.seedClosed.Seconds()))
	}
	byKind := map[string]map[int]ranks{}
	for _, r := range s.deliveries {
		if byKind[r.kind] == nil {
			byKind[r.kind] = map[int]ranks{}
		}
		byKind[r.kind][r.rules] = nearestRanks(r.times())
	}
	for _, r := range s.deliveries {
		if r.rules != s.n {
			continue
		}
		one, ok := byKind[r.kind][1]
		if !ok {
			continue
		}
		many := byKind[r.kind][s.n]
		verdict := "under"
		if many.p99 >= webhookGoal {
			verdict = "over"
		}
		out = append(out, fmt.Sprintf("%s: p50 %s with 1 rule, %s with %d (%s); p99 %s, %s the 50 ms goal.",
			r.kind, ms(one.p50), ms(many.p50), s.n, signedMS(many.p50-one.p50), ms(many.p99), verdict))
	}
	return out
}

// text prints the tables, the findings and every unexpected answer.
func (s *scaleSection) text(w io.Writer) {
	s.seedTable().text(w)
	fmt.Fprintln(w)
	s.listTable().text(w)
	fmt.Fprintln(w)
	s.ruleTable().text(w)
	fmt.Fprintln(w)
	writeList(w, "*", s.findings())
	for _, r := range s.deliveries {
		for _, f := range unexpectedAnswers(r.results, r.want) {
			fmt.Fprintf(w, "  rules=%d %s: %s\n", r.rules, r.kind, f)
		}
	}
}

// markdown says what is measured and how, then gives the tables and findings.
func (s *scaleSection) markdown(w io.Writer) {
	fmt.Fprintf(w, "**Build records.** The bench starts %d executions of `workflow_docker_builder` with the Go client, "+
		"%d at a time, each with the six search attributes a build carries (SlipwayNamespace `%s`, SlipwayRepository `%s`, "+
		"SlipwayRule one of %d ids, GitRef, GitCommit, BuildTrigger) and a `timeout` the workflow refuses before any "+
		"activity, so each closes failed in its first workflow task: a real closed build record with its error in the "+
		"memo. To spare the server a round of task matching per build, the starts ask for eager execution and a "+
		"worker inside the bench process (the same workflow code, on the task queue `%s`) runs that one task. "+
		"The seeding rate is the dev server's, on this machine, under the load the table at the top reports. Visibility is the Temporal dev server's SQLite database, not Elasticsearch or "+
		"PostgreSQL: listing figures are that store's. Then a gateway (its own SQLite database) serves "+
		"`GET /api/v1/namespaces/%s/repositories/%s/builds`: the bench walks every page once (default page size %d, "+
		"following `next_page_token`), then times %d times each, round-robin, the listings below, the same "+
		"visibility query sent straight to Temporal included; a time runs from the request sent to the answer read.\n\n",
		s.n, scaleStarters, scaleNamespace, scaleListRepo, scaleListRules, scaleSeedQueue, scaleNamespace, scaleListRepo, scalePageSize, scaleListReps)
	s.seedTable().markdown(w)
	fmt.Fprintln(w)
	s.listTable().markdown(w)
	fmt.Fprintf(w, "\n**Rule matching.** A webhook URL names its rule, so matching is the store's lookup of that rule by "+
		"id plus the comparison of the event with its source and triggers. Deliveries are timed with one rule in "+
		"the gateway's SQLite store, then again after the store package created rules up to %d (over %d image "+
		"repositories, each with its own GitHub source, branches `main` and `release/*`, tags) and the gateway was "+
		"restarted. Each kind is %d signed pushes sent one at a time after %d unmeasured ones, to rules picked at "+
		"random: pushes to `main` start a build (on the task queue `%s`, which no worker polls; terminated afterwards), "+
		"pushes to another branch start none (202), and deliveries to a rule id that does not exist answer 404. "+
		"Gateway handling times come from its request log.\n\n", s.n, scaleRuleRepos, scaleDeliveries, webhookWarmups, idleTaskQueue)
	s.ruleTable().markdown(w)
	fmt.Fprintln(w)
	writeList(w, "-", s.findings())
}

// benchstat writes the listing times and the delivery answer times.
func (s *scaleSection) benchstat(w io.Writer) {
	for _, l := range s.lists {
		benchstatLines(w, fmt.Sprintf("BenchmarkBuildList/builds=%d/%s", s.n, l.key), l.samples)
	}
	for _, r := range s.deliveries {
		benchstatLines(w, fmt.Sprintf("BenchmarkRuleDelivery/rules=%d/%s", r.rules, r.key), r.times())
	}
}
