package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"golang.org/x/sync/errgroup"

	"github.com/slipway-dev/slipway/build"
)

// throughputBatchSize is how many builds one batch submits at once.
const throughputBatchSize = 12

// throughputSetting is how many worker processes take builds, each with how many slots
// (SLIPWAY_MAX_CONCURRENT_BUILDS).
type throughputSetting struct {
	workers, slots int
}

// name is how tables and benchstat lines call the setting: "1x2", "2x2".
func (s throughputSetting) name() string { return fmt.Sprintf("%dx%d", s.workers, s.slots) }

// describe spells the setting out for tables.
func (s throughputSetting) describe() string {
	w := "worker"
	if s.workers > 1 {
		w = "workers"
	}
	return fmt.Sprintf("%d %s × %d concurrent", s.workers, w, s.slots)
}

// throughputSettings lists the settings in the order they run.
func throughputSettings() []throughputSetting {
	return []throughputSetting{{1, 1}, {1, 2}, {1, 4}, {2, 2}}
}

// throughputBatch is one batch of builds submitted at once.
type throughputBatch struct {
	// wall is from the first ExecuteWorkflow call to the last result.
	wall time.Duration
	// latency is each build's submit → result; onWorker its Clone started → workflow
	// completed, the time it held a worker's slot.
	latency, onWorker []time.Duration
	// cpu is the CPU time (user + system, reaped children included) each followed process
	// used during the batch, by label ("worker 1", "buildkitd", ...).
	cpu map[string]time.Duration
	// perWorker counts the builds each worker ran, by worker label.
	perWorker map[string]int
	retries   int
	// machineBusy is the share of the machine's CPU time, all processes of the machine
	// counted (/proc/stat), that was not idle during the batch.
	machineBusy float64
}

// workerStat is one worker process of a setting.
type workerStat struct {
	label string
	pid   int
	// builds counts the measured builds it ran; cpu is its CPU time over the measured
	// batches; hwmKiB its peak resident memory (VmHWM) over its whole life.
	builds int
	cpu    time.Duration
	hwmKiB int64
}

// throughputResult is one setting's batches and workers.
type throughputResult struct {
	setting throughputSetting
	batches []throughputBatch
	workers []workerStat
}

// throughputSection measures builds per minute with 1, 2 and 4 concurrent builds per worker
// and with two workers on one Temporal server.
type throughputSection struct {
	results []*throughputResult
	runs    int
	warmups int
	nproc   int
	cache   string
	// fixture says what each build builds, for the report.
	fixture string
}

// newThroughputSection is the "throughput" section.
func newThroughputSection() section { return &throughputSection{} }

// title heads the section.
func (s *throughputSection) title() string {
	return "Throughput: builds per minute by concurrent builds per worker and by workers"
}

// key is the section's name for -only.
func (s *throughputSection) key() string { return "throughput" }

// run stops the bench's worker, measures each setting with workers of its own, and starts the
// bench's worker again (with the same binary and environment) whatever happened.
func (s *throughputSection) run(ctx context.Context, e *env, o options) (err error) {
	s.runs, s.warmups, s.cache = o.runs, o.warmups, e.cache
	s.nproc, _ = strconv.Atoi(commandOutput(ctx, "nproc"))
	fx := smallFixture()
	fx.name = "throughput"
	fx.description = "the small fixture (" + fx.description + "), each build on a branch of its own whose commit " +
		"rewrites app/version.txt, so COPY app/ and both RUNs run again"
	s.fixture = fx.description
	r, err := e.createRepo(ctx, fx)
	if err != nil {
		return err
	}

	bin, environ := e.worker.cmd.Path, e.worker.cmd.Env
	e.worker.stop(workerStopGrace)
	defer func() {
		w, rerr := startWorker(bin, filepath.Join(e.stack.LogDir(), "worker-after-throughput.log"), environ)
		if rerr == nil {
			e.worker = w
			rerr = e.waitPolling(ctx, w)
		}
		if rerr != nil && err == nil {
			err = fmt.Errorf("starting the bench's worker again: %w", rerr)
		}
	}()

	clk := clockTicks(ctx)
	for _, set := range throughputSettings() {
		res, err := s.measure(ctx, e, r, set, o, bin, environ, clk)
		if err != nil {
			return fmt.Errorf("setting %s: %w", set.describe(), err)
		}
		s.results = append(s.results, res)
	}
	return nil
}

// measure starts the setting's workers, runs the warm-up and the measured batches, and stops
// the workers again.
func (s *throughputSection) measure(ctx context.Context, e *env, r *repo, set throughputSetting, o options,
	bin string, environ []string, clk int64) (_ *throughputResult, err error) {
	res := &throughputResult{setting: set}
	var workers []*workerProcess
	defer func() {
		for _, w := range workers {
			w.stop(workerStopGrace)
		}
	}()
	for i := range set.workers {
		logPath := filepath.Join(e.stack.LogDir(), fmt.Sprintf("worker-throughput-%s-%d.log", set.name(), i+1))
		w, err := startWorker(bin, logPath, append(slices.Clone(environ),
			"SLIPWAY_MAX_CONCURRENT_BUILDS="+strconv.Itoa(set.slots),
			// Several workers on one host: no fight over the metrics port.
			"SLIPWAY_WORKER_METRICS_ADDR=off"))
		if err != nil {
			return nil, err
		}
		workers = append(workers, w)
		res.workers = append(res.workers, workerStat{label: fmt.Sprintf("worker %d", i+1), pid: w.cmd.Process.Pid})
	}
	for _, w := range workers {
		if err := e.waitPolling(ctx, w); err != nil {
			return nil, err
		}
	}
	if o.warmups > 0 {
		// One build per slot, so every worker has run one before the measured batches.
		if _, err := s.batch(ctx, e, r, res, workers, fmt.Sprintf("tp-%s-w", set.name()), set.workers*set.slots, clk); err != nil {
			return nil, err
		}
	}
	for b := range o.runs {
		bt, err := s.batch(ctx, e, r, res, workers, fmt.Sprintf("tp-%s-b%d", set.name(), b), throughputBatchSize, clk)
		if err != nil {
			return nil, err
		}
		e.logger.Info("throughput batch", "setting", set.describe(), "batch", b, "builds", throughputBatchSize,
			"wall", bt.wall.Round(time.Millisecond), "builds_per_min", fmt.Sprintf("%.1f", perMinute(throughputBatchSize, bt.wall)))
		res.batches = append(res.batches, bt)
		for i := range res.workers {
			res.workers[i].builds += bt.perWorker[res.workers[i].label]
			res.workers[i].cpu += bt.cpu[res.workers[i].label]
		}
	}
	for i, w := range res.workers {
		if v := procField(fmt.Sprintf("/proc/%d/status", w.pid), "VmHWM"); v != "" {
			_, _ = fmt.Sscanf(v, "%d kB", &res.workers[i].hwmKiB)
		}
	}
	return res, nil
}

// batch pushes n branches with a new commit each, submits their builds at once and waits for
// all of them. Preparing the branches and reading the histories afterwards are not timed.
func (s *throughputSection) batch(ctx context.Context, e *env, r *repo, res *throughputResult, workers []*workerProcess,
	label string, n int, clk int64) (throughputBatch, error) {
	branches, commits := make([]string, n), make([]string, n)
	for i := range n {
		branches[i] = fmt.Sprintf("%s-%02d", label, i)
		c, err := r.pushBranch(ctx, branches[i])
		if err != nil {
			return throughputBatch{}, err
		}
		commits[i] = c
	}
	procs := e.followedProcs(res.workers)
	before := cpuTimes(procs, clk)
	busyBefore, totalBefore := machineCPU()

	builds := make([]sectionBuild, n)
	image := e.stack.Registry + "/bench/throughput"
	nonce := strconv.FormatInt(time.Now().UnixNano(), 36)
	g, gctx := errgroup.WithContext(ctx)
	for i := range n {
		g.Go(func() error {
			in := sectionInput(r, branches[i], branches[i], commits[i], image)
			in.Cache = e.cache
			b, err := e.runBuild(gctx, "bench-"+branches[i]+"-"+nonce, in, workers...)
			builds[i] = b
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return throughputBatch{}, err
	}
	after := cpuTimes(procs, clk)
	busyAfter, totalAfter := machineCPU()

	bt := throughputBatch{cpu: map[string]time.Duration{}, perWorker: map[string]int{}}
	if totalAfter > totalBefore {
		bt.machineBusy = float64(busyAfter-busyBefore) / float64(totalAfter-totalBefore)
	}
	first, last := builds[0].start, builds[0].end
	for i := range builds {
		b := &builds[i]
		first, last = minTime(first, b.start), maxTime(last, b.end)
		if err := e.inspectBuild(ctx, b); err != nil {
			return throughputBatch{}, err
		}
		bt.latency = append(bt.latency, b.end.Sub(b.start))
		if c, ok := b.tl.activity("Clone"); ok {
			bt.onWorker = append(bt.onWorker, b.tl.closed.Sub(c.started))
		}
		bt.retries += b.retries
		for _, w := range res.workers {
			if strings.HasPrefix(b.identity, strconv.Itoa(w.pid)+"@") {
				bt.perWorker[w.label]++
			}
		}
	}
	bt.wall = last.Sub(first)
	for pid, label := range procs {
		if b, ok := before[pid]; ok {
			if a, ok := after[pid]; ok {
				bt.cpu[label] += a - b
			}
		}
	}
	return bt, nil
}

// pushBranch commits a new content of the fixture's change file and pushes it as a new
// branch; it returns the commit.
func (r *repo) pushBranch(ctx context.Context, branch string) (string, error) {
	r.changes++
	full := filepath.Join(r.dir, r.fixture.changePath)
	if err := os.WriteFile(full, fmt.Appendf(nil, "change %d\n", r.changes), 0o644); err != nil {
		return "", fmt.Errorf("writing change: %w", err)
	}
	if _, err := git(ctx, r.dir, "add", "-A"); err != nil {
		return "", err
	}
	if _, err := git(ctx, r.dir, "-c", "user.name=Slipway Bench", "-c", "user.email=bench@slipway.invalid",
		"commit", "-q", "-m", "branch "+branch); err != nil {
		return "", err
	}
	if _, err := git(ctx, r.dir, "push", "-q", "origin", "HEAD:refs/heads/"+branch); err != nil {
		return "", err
	}
	return git(ctx, r.dir, "rev-parse", "HEAD")
}

// waitPolling waits until the worker process polls the build task queue under its own
// identity ("PID@host@"): pollers of a stopped worker stay listed for minutes, so any poller
// would not do.
func (e *env) waitPolling(ctx context.Context, w *workerProcess) error {
	prefix := strconv.Itoa(w.cmd.Process.Pid) + "@"
	deadline := time.Now().Add(workerReadyWait)
	for {
		resp, err := e.temporal.DescribeTaskQueue(ctx, build.DefaultTaskQueue, enumspb.TASK_QUEUE_TYPE_WORKFLOW)
		if err == nil {
			for _, p := range resp.GetPollers() {
				if strings.HasPrefix(p.GetIdentity(), prefix) {
					return nil
				}
			}
		}
		if w.exited() {
			return fmt.Errorf("worker exited at start (%v); log:\n%s", w.err, tail(w.logPath, 2048))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("worker %d does not poll %s after %s (last error %v); log:\n%s",
				w.cmd.Process.Pid, build.DefaultTaskQueue, workerReadyWait, err, tail(w.logPath, 2048))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// followedProcs are the processes whose CPU time a batch records, pid to label: the setting's
// workers, the stack's processes (found by their command lines, which name the bench's home)
// and the bench itself (Temporal client, Git server and its git http-backend children).
func (e *env) followedProcs(workers []workerStat) map[int]string {
	out := map[int]string{os.Getpid(): "bench"}
	isWorker := map[int]bool{}
	for _, w := range workers {
		out[w.pid] = w.label
		isWorker[w.pid] = true
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return out
	}
	for _, d := range entries {
		pid, err := strconv.Atoi(d.Name())
		if err != nil || isWorker[pid] || pid == os.Getpid() {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", d.Name(), "cmdline"))
		if err != nil || !strings.Contains(string(b), e.home+"/") {
			continue
		}
		argv := strings.Split(string(b), "\x00")
		name := filepath.Base(argv[0])
		if name == "worker" {
			// The bench's own worker is stopped; anything else named so is not ours to count.
			continue
		}
		out[pid] = name
	}
	return out
}

// cpuTimes reads, for each pid, the user and system time it and its reaped children used
// (utime + stime + cutime + cstime of /proc/PID/stat); pids that are gone are left out.
func cpuTimes(procs map[int]string, clk int64) map[int]time.Duration {
	out := map[int]time.Duration{}
	for pid := range procs {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		// The command name may hold spaces and parentheses: fields start after the last ')'.
		i := strings.LastIndexByte(string(b), ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		// f[0] is field 3 (state); utime, stime, cutime, cstime are fields 14 to 17.
		if len(f) < 15 {
			continue
		}
		var ticks int64
		for _, s := range f[11:15] {
			v, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				continue
			}
			ticks += v
		}
		out[pid] = time.Duration(ticks) * time.Second / time.Duration(clk)
	}
	return out
}

// machineCPU is the machine's CPU time so far in clock ticks, from the first line of
// /proc/stat: busy (everything but idle and iowait) and total; zeros when it cannot be read.
func machineCPU() (busy, total int64) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0, 0
	}
	// user nice system idle iowait irq softirq steal; guest time is already in user.
	for i, s := range f[1:9] {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, 0
		}
		total += v
		if i != 3 && i != 4 {
			busy += v
		}
	}
	return busy, total
}

// clockTicks is the kernel's USER_HZ, the unit of /proc/PID/stat's times (100 on Linux unless
// getconf says otherwise).
func clockTicks(ctx context.Context) int64 {
	if v, err := strconv.ParseInt(commandOutput(ctx, "getconf", "CLK_TCK"), 10, 64); err == nil && v > 0 {
		return v
	}
	return 100
}

// minTime is the earlier of a and b.
func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// maxTime is the later of a and b.
func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// perMinute is n builds in d as builds per minute.
func perMinute(n int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Minutes()
}

// secondsSpread formats the min, median and max of ds in seconds, "1.20 / 1.50 / 1.90 s".
func secondsSpread(ds []time.Duration) string {
	if len(ds) == 0 {
		return "n/a"
	}
	s := summarize(ds)
	return fmt.Sprintf("%.2f / %.2f / %.2f s", s.min.Seconds(), s.median.Seconds(), s.max.Seconds())
}

// builds are all measured builds' durations of the setting, by getter.
func (r *throughputResult) builds(get func(throughputBatch) []time.Duration) []time.Duration {
	var out []time.Duration
	for _, b := range r.batches {
		out = append(out, get(b)...)
	}
	return out
}

// cpuOf is each batch's CPU time of the processes whose label keep accepts.
func (r *throughputResult) cpuOf(keep func(label string) bool) []time.Duration {
	var out []time.Duration
	for _, b := range r.batches {
		var d time.Duration
		for l, c := range b.cpu {
			if keep(l) {
				d += c
			}
		}
		out = append(out, d)
	}
	return out
}

// rateTable is the headline: builds per minute, batch wall time and per-build times.
func (s *throughputSection) rateTable() table {
	t := table{header: []string{"setting", "batches × builds", "builds/min min / median / max", "batch wall min / median / max",
		"on worker (Clone started → done), builds", "submit → result", "activity retries"}}
	for _, r := range s.results {
		var rates []float64
		var walls []time.Duration
		retries := 0
		for _, b := range r.batches {
			rates = append(rates, perMinute(len(b.latency), b.wall))
			walls = append(walls, b.wall)
			retries += b.retries
		}
		rate := "n/a"
		if len(rates) > 0 {
			lo, med, hi := summarizeFloats(rates)
			rate = fmt.Sprintf("%.1f / %.1f / %.1f", lo, med, hi)
		}
		on := r.builds(func(b throughputBatch) []time.Duration { return b.onWorker })
		lat := r.builds(func(b throughputBatch) []time.Duration { return b.latency })
		t.rows = append(t.rows, []string{r.setting.describe(), fmt.Sprintf("%d × %d", len(r.batches), throughputBatchSize),
			rate, secondsSpread(walls), fmt.Sprintf("%s (n=%d)", secondsSpread(on), len(on)),
			fmt.Sprintf("%s (n=%d)", secondsSpread(lat), len(lat)), strconv.Itoa(retries)})
	}
	return t
}

// cpuGroups are the columns of the CPU table: a name and which process labels it sums.
func cpuGroups() []struct {
	name string
	keep func(string) bool
} {
	isWorker := func(l string) bool { return strings.HasPrefix(l, "worker ") }
	known := func(l string) bool { return isWorker(l) || l == "buildkitd" || l == "temporal" || l == "bench" }
	return []struct {
		name string
		keep func(string) bool
	}{
		{"workers", isWorker},
		{"buildkitd (+ runc, RUN steps)", func(l string) bool { return l == "buildkitd" }},
		{"temporal dev server", func(l string) bool { return l == "temporal" }},
		{"registry, other stack", func(l string) bool { return !known(l) }},
		{"bench (client, git server)", func(l string) bool { return l == "bench" }},
		{"all", func(string) bool { return true }},
	}
}

// cpuTable is the CPU time used per batch, by process group, and per build.
func (s *throughputSection) cpuTable() table {
	h := []string{"setting (CPU s per batch, min / median / max)"}
	for _, g := range cpuGroups() {
		h = append(h, g.name)
	}
	h = append(h, "all per build, median", "ours / machine busy (all its processes), median")
	t := table{header: h}
	for _, r := range s.results {
		row := []string{fmt.Sprintf("%s (n=%d)", r.setting.describe(), len(r.batches))}
		for _, g := range cpuGroups() {
			row = append(row, secondsSpread(r.cpuOf(g.keep)))
		}
		all := r.cpuOf(func(string) bool { return true })
		perBuild := fmt.Sprintf("%.2f s", median(all).Seconds()/throughputBatchSize)
		share := "n/a"
		if ours, machine := s.busy(r); len(ours) > 0 && len(machine) > 0 {
			_, o, _ := summarizeFloats(ours)
			_, m, _ := summarizeFloats(machine)
			share = fmt.Sprintf("%.0f%% / %.0f%% of %d CPUs", o*100, m*100, s.nproc)
		}
		t.rows = append(t.rows, append(row, perBuild, share))
	}
	return t
}

// busy is, per batch, the share of the machine's CPUs the followed processes kept busy and
// the share all of the machine's processes did.
func (s *throughputSection) busy(r *throughputResult) (ours, machine []float64) {
	all := r.cpuOf(func(string) bool { return true })
	for i, b := range r.batches {
		if b.wall > 0 && s.nproc > 0 {
			ours = append(ours, float64(all[i])/float64(b.wall)/float64(s.nproc))
		}
		if b.machineBusy > 0 {
			machine = append(machine, b.machineBusy)
		}
	}
	return ours, machine
}

// labels are the followed processes' labels, sorted, for the report.
func (s *throughputSection) labels() []string {
	var out []string
	for _, r := range s.results {
		for _, b := range r.batches {
			for l := range b.cpu {
				if !slices.Contains(out, l) {
					out = append(out, l)
				}
			}
		}
	}
	slices.Sort(out)
	return out
}

// workerTable is each worker process: builds run, CPU time over the measured batches, peak
// memory.
func (s *throughputSection) workerTable() table {
	t := table{header: []string{"setting", "worker", "pid", "measured builds run", "CPU s (measured batches)", "peak RSS (VmHWM)"}}
	for _, r := range s.results {
		for _, w := range r.workers {
			t.rows = append(t.rows, []string{r.setting.describe(), w.label, strconv.Itoa(w.pid), strconv.Itoa(w.builds),
				fmt.Sprintf("%.2f s", w.cpu.Seconds()), fmt.Sprintf("%.1f MiB", float64(w.hwmKiB)/1024)})
		}
	}
	return t
}

// findings are the section's conclusions in sentences.
func (s *throughputSection) findings() []string {
	if len(s.results) == 0 {
		return nil
	}
	medRate := func(r *throughputResult) float64 {
		var rates []float64
		for _, b := range r.batches {
			rates = append(rates, perMinute(len(b.latency), b.wall))
		}
		if len(rates) == 0 {
			return 0
		}
		_, m, _ := summarizeFloats(rates)
		return m
	}
	base := medRate(s.results[0])
	var parts []string
	for _, r := range s.results {
		on := median(r.builds(func(b throughputBatch) []time.Duration { return b.onWorker }))
		parts = append(parts, fmt.Sprintf("%s %.1f builds/min (%.2f× of 1 × 1; a build holds its slot %s median)",
			r.setting.describe(), medRate(r), medRate(r)/max(base, 1e-9), ms(on)))
	}
	var busy []string
	saturated := 0
	for _, r := range s.results {
		ours, machine := s.busy(r)
		if len(ours) == 0 || len(machine) == 0 {
			continue
		}
		_, o, _ := summarizeFloats(ours)
		_, m, _ := summarizeFloats(machine)
		busy = append(busy, fmt.Sprintf("%s %.0f%% (whole machine %.0f%%)", r.setting.name(), o*100, m*100))
		if m >= 0.85 {
			saturated++
		}
	}
	verdict := "the CPUs had room left in the lower settings, so there the figures are bound by latency " +
		"(dispatch, clone, export, push one after another) more than by CPU"
	if saturated > 0 {
		verdict = fmt.Sprintf("in %d of %d settings the whole machine was at least 85%% busy, so those figures are "+
			"CPU-bound and understate what an idle host of this size sustains; where the bench's own share is "+
			"well below the machine's, other load on the machine took the rest", saturated, len(s.results))
	}
	return []string{
		"Median builds per minute: " + strings.Join(parts, "; ") + ".",
		fmt.Sprintf("The machine has %d CPUs, shared by the workers, buildkitd and its RUN steps, the Temporal dev "+
			"server, the registry and the bench's Git server, and by whatever else runs on it. Share of the CPUs "+
			"the bench's processes kept busy, median per batch: %s; %s. With more concurrent builds each build "+
			"holds its slot longer, so an added slot gains less, or nothing, once the CPUs are full: the figures "+
			"say what one small host sustains, not how Slipway scales across hosts.",
			s.nproc, strings.Join(busy, ", "), verdict),
	}
}

// text prints the tables and findings.
func (s *throughputSection) text(w io.Writer) {
	s.rateTable().text(w)
	fmt.Fprintln(w)
	s.cpuTable().text(w)
	fmt.Fprintf(w, "(processes followed: %s)\n\n", strings.Join(s.labels(), ", "))
	s.workerTable().text(w)
	fmt.Fprintln(w)
	writeList(w, "*", s.findings())
}

// markdown writes what is measured and how, then the tables and findings.
func (s *throughputSection) markdown(w io.Writer) {
	cache := "Slipway's default registry cache (`IMAGE:buildcache`, mode=max, one image repository for all builds)"
	if s.cache != "" {
		cache = "registry cache `-cache " + s.cache + "`"
	}
	fmt.Fprintf(w, "The bench's own worker is stopped for this section; each setting starts worker processes of "+
		"its own (the same binary and environment, `SLIPWAY_MAX_CONCURRENT_BUILDS` set to the setting's slots, "+
		"metrics off) on the one Temporal server and buildkitd, waits until each polls under its own identity, "+
		"runs %s, then %d measured batches, and stops them; the bench's worker is started again afterwards. "+
		"A batch pushes %d branches of the throughput fixture (%s), each with a new commit (outside the timing), "+
		"then submits their %d builds at once from goroutines and waits for all: builds/min is %d over the "+
		"time from the first ExecuteWorkflow call to the last result. Per build: \"on worker\" is from its "+
		"Clone activity starting to the workflow completing (the time it held a slot), \"submit → result\" "+
		"adds the wait for a free slot. %s.\n\n",
		s.warmupText(), s.runs, throughputBatchSize, s.fixture, throughputBatchSize, throughputBatchSize, cache)
	s.rateTable().markdown(w)
	fmt.Fprintf(w, "\nCPU time per batch: utime + stime + cutime + cstime of `/proc/PID/stat` (so reaped children "+
		"count: git for the workers, runc and the RUN steps for buildkitd, git http-backend for the bench), "+
		"read before and after each batch, for the setting's workers, the stack's processes (found by "+
		"their command lines under the bench's home) and the bench process itself. The busy share is all of "+
		"it over the batch's wall time times the number of CPUs; the machine's share counts every process "+
		"on it (`/proc/stat`), the bench's and anything else running at the time. Processes followed: %s.\n\n",
		strings.Join(s.labels(), ", "))
	s.cpuTable().markdown(w)
	fmt.Fprintf(w, "\nWorkers: measured builds each ran (from the identity on its Clone activity), its CPU time over "+
		"the measured batches, and its peak resident memory (VmHWM of `/proc/PID/status`, read before it "+
		"is stopped, so over its whole life including the warm-up).\n\n")
	s.workerTable().markdown(w)
	fmt.Fprintln(w)
	writeList(w, "-", s.findings())
}

// warmupText says what warms a setting's workers up.
func (s *throughputSection) warmupText() string {
	if s.warmups == 0 {
		return "no warm-up (-warmup 0)"
	}
	return "an unmeasured warm-up batch of one build per slot"
}

// benchstat writes two lines per batch: its wall time, and the wall time per build with the
// batch's build count as the iteration count, so benchstat compares throughput directly.
func (s *throughputSection) benchstat(w io.Writer) {
	for _, r := range s.results {
		for _, b := range r.batches {
			fmt.Fprintf(w, "BenchmarkThroughput/%s/batch 1 %d ns/op\n", r.setting.name(), b.wall.Nanoseconds())
			fmt.Fprintf(w, "BenchmarkThroughput/%s/per-build %d %d ns/op\n", r.setting.name(), len(b.latency),
				b.wall.Nanoseconds()/int64(max(len(b.latency), 1)))
		}
	}
}
