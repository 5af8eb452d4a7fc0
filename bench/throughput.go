package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/slipway-dev/slipway/devstack"
)

// batchSize is how many builds one throughput batch submits at once.
const batchSize = 12

// batch is one throughput batch: wall time, per-build times, and CPU used meanwhile.
type batch struct {
	wall              time.Duration
	latency, onWorker []time.Duration
	// cpu is the CPU time each followed process used, by group; busy is the share of the
	// machine's CPU time, every process counted (/proc/stat), that was not idle.
	cpu       map[string]time.Duration
	perWorker map[int]int
	retries   int
	busy      float64
}

// measureThroughput stops the bench's worker and, per setting (workers × concurrent builds
// each), starts workers of its own, runs a warm-up batch of one build per slot and the measured
// batches, and stops them; the bench's worker is started again afterwards.
func measureThroughput(ctx context.Context, e *env, o options) (res result, err error) {
	res = result{key: "throughput", title: "Throughput: builds per minute by concurrent builds per worker and by workers"}
	// runtime.NumCPU counts the CPUs this process may use, as nproc does.
	nproc := runtime.NumCPU()
	r, err := e.createRepo(smallFixture("throughput"))
	if err != nil {
		return res, err
	}
	_ = e.worker.Stop(workerStopGrace)
	defer func() {
		var rerr error
		if e.worker, rerr = e.startWorker(ctx, "worker-after-throughput"); rerr != nil && err == nil {
			err = fmt.Errorf("starting the bench's worker again: %w", rerr)
		}
	}()
	groups := []string{"workers", "buildkitd", "temporal", "registry, other stack", "bench (client, git server)"}
	rates := table{header: []string{"setting", "batches × builds", "builds/min min / median / max", "batch wall min / median / max",
		"on worker (Clone started → done)", "submit → result", "activity retries"}}
	cpu := table{title: "CPU time per batch (s, min / median / max; utime + stime + reaped children)",
		header: append(append([]string{"setting"}, groups...), "all", "all per build, median", "ours / machine busy, median")}
	workers := table{title: "Workers", header: []string{"setting", "worker", "measured builds run", "CPU s (measured batches)", "peak RSS (VmHWM)"}}
	for _, set := range [][2]int{{1, 1}, {1, 2}, {1, 4}, {2, 2}} {
		name := fmt.Sprintf("%dx%d", set[0], set[1])
		var procs []*devstack.Process
		for i := range set[0] {
			w, err := e.startWorker(ctx, fmt.Sprintf("worker-%s-%d", name, i+1), "SLIPWAY_MAX_CONCURRENT_BUILDS="+strconv.Itoa(set[1]),
				"SLIPWAY_WORKER_METRICS_ADDR=off") // several workers on one host: no fight over the port
			if err != nil {
				return res, err
			}
			defer func() { _ = w.Stop(workerStopGrace) }()
			procs = append(procs, w)
		}
		var batches []batch
		for b := -1; b < o.runs; b++ {
			n, label := batchSize, fmt.Sprintf("tp-%s-b%d", name, b)
			if b < 0 {
				n, label = set[0]*set[1], "tp-"+name+"-w"
			}
			bt, err := e.batch(ctx, r, procs, label, n)
			if err != nil {
				return res, fmt.Errorf("setting %s: %w", name, err)
			}
			if b >= 0 {
				batches = append(batches, bt)
				res.samples = append(res.samples, sample{"BenchmarkThroughput/" + name + "/batch", 1, []float64{float64(bt.wall)}, []string{"ns/op"}},
					sample{"BenchmarkThroughput/" + name + "/per-build", n, []float64{float64(bt.wall) / float64(n)}, []string{"ns/op"}})
			}
		}
		var perMin, ours, busy []float64
		var walls, on, lat []time.Duration
		retries := 0
		byGroup := map[string][]time.Duration{}
		for _, bt := range batches {
			perMin, walls = append(perMin, float64(len(bt.latency))/bt.wall.Minutes()), append(walls, bt.wall)
			on, lat, retries = append(on, bt.onWorker...), append(lat, bt.latency...), retries+bt.retries
			var all time.Duration
			for _, g := range groups {
				byGroup[g] = append(byGroup[g], bt.cpu[g])
				all += bt.cpu[g]
			}
			byGroup["all"] = append(byGroup["all"], all)
			ours, busy = append(ours, float64(all)/float64(bt.wall)/float64(nproc)), append(busy, bt.busy)
		}
		rates.rows = append(rates.rows, []string{name, fmt.Sprintf("%d × %d", len(batches), batchSize), floatSpread("%.1f", perMin),
			secondsSpread(walls), fmt.Sprintf("%s (n=%d)", secondsSpread(on), len(on)), fmt.Sprintf("%s (n=%d)", secondsSpread(lat), len(lat)), strconv.Itoa(retries)})
		row := []string{name}
		for _, g := range append(groups, "all") {
			row = append(row, secondsSpread(byGroup[g]))
		}
		cpu.rows = append(cpu.rows, append(row, fmt.Sprintf("%.2f s", median(byGroup["all"]).Seconds()/batchSize),
			fmt.Sprintf("%.0f%% / %.0f%% of %d CPUs", 100*median(ours), 100*median(busy), nproc)))
		for i, w := range procs {
			var builds int
			var used time.Duration
			for _, bt := range batches {
				builds, used = builds+bt.perWorker[w.Pid()], used+bt.cpu["worker "+strconv.Itoa(w.Pid())]
			}
			workers.rows = append(workers.rows, []string{name, fmt.Sprintf("worker %d", i+1), strconv.Itoa(builds),
				fmt.Sprintf("%.2f s", used.Seconds()), procField(fmt.Sprintf("/proc/%d/status", w.Pid()), "VmHWM")})
		}
		for _, w := range procs {
			_ = w.Stop(workerStopGrace)
		}
	}
	res.tables = []table{rates, cpu, workers}
	return res, nil
}

// batch pushes n branches with a new commit each (untimed), submits their builds at once and
// waits for all of them, reading CPU times before and after.
func (e *env) batch(ctx context.Context, r *repo, workers []*devstack.Process, label string, n int) (batch, error) {
	branches, commits := make([]string, n), make([]string, n)
	for i := range n {
		branches[i] = fmt.Sprintf("%s-%02d", label, i)
		var err error
		if commits[i], err = r.pushBranch(branches[i]); err != nil {
			return batch{}, err
		}
	}
	procs := e.followedProcs(workers)
	before := cpuTimes(procs)
	busyBefore, totalBefore := machineCPU()
	builds := make([]buildRun, n)
	g, gctx := errgroup.WithContext(ctx)
	for i := range n {
		g.Go(func() error {
			var err error
			builds[i], err = e.runBuild(gctx, branches[i], buildInput(r, branches[i], branches[i], commits[i], e.stack.Registry+"/bench/throughput", e.cache), workers...)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return batch{}, err
	}
	after := cpuTimes(procs)
	busyAfter, totalAfter := machineCPU()
	bt := batch{cpu: map[string]time.Duration{}, perWorker: map[int]int{}}
	if totalAfter > totalBefore {
		bt.busy = float64(busyAfter-busyBefore) / float64(totalAfter-totalBefore)
	}
	bt.wall = slices.MaxFunc(builds, func(a, b buildRun) int { return a.end.Compare(b.end) }).end.Sub(
		slices.MinFunc(builds, func(a, b buildRun) int { return a.start.Compare(b.start) }).start)
	for i := range builds {
		b := &builds[i]
		if err := e.inspect(ctx, b); err != nil {
			return batch{}, err
		}
		bt.latency = append(bt.latency, b.total())
		if c, ok := b.tl.activity("Clone"); ok {
			bt.onWorker = append(bt.onWorker, b.tl.closed.Sub(c.started))
		}
		bt.retries += b.tl.retries
		pid, _, _ := strings.Cut(b.tl.identity, "@")
		p, _ := strconv.Atoi(pid)
		bt.perWorker[p]++
	}
	for pid, group := range procs {
		if b, ok := before[pid]; ok {
			bt.cpu[group] += after[pid] - b
			if strings.HasPrefix(group, "workers") {
				bt.cpu["worker "+strconv.Itoa(pid)] += after[pid] - b
			}
		}
	}
	return bt, nil
}

// followedProcs are the processes whose CPU time a batch records, pid to group: the workers,
// the stack's processes (their command lines name the bench's home) and the bench itself.
func (e *env) followedProcs(workers []*devstack.Process) map[int]string {
	out := map[int]string{os.Getpid(): "bench (client, git server)"}
	for _, w := range workers {
		out[w.Pid()] = "workers"
	}
	entries, _ := os.ReadDir("/proc")
	for _, d := range entries {
		pid, err := strconv.Atoi(d.Name())
		if _, known := out[pid]; err != nil || known {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", d.Name(), "cmdline"))
		if err != nil || !strings.Contains(string(b), e.home+"/") {
			continue
		}
		switch name, _, _ := strings.Cut(filepath.Base(strings.Split(string(b), "\x00")[0]), " "); name {
		case "worker": // a stopped worker's leftover is not ours to count
		case "buildkitd", "temporal":
			out[pid] = name
		default:
			out[pid] = "registry, other stack"
		}
	}
	return out
}

// cpuTimes reads utime + stime + cutime + cstime of /proc/PID/stat (so reaped children count:
// git for the workers, runc and RUN steps for buildkitd); pids that are gone are left out. The
// ticks are USER_HZ, 100 a second on every Linux architecture Go supports.
func cpuTimes(procs map[int]string) map[int]time.Duration {
	out := map[int]time.Duration{}
	for pid := range procs {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		i := strings.LastIndexByte(string(b), ')') // the command name may hold spaces
		if err != nil || i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 15 {
			continue
		}
		var ticks int64
		for _, s := range f[11:15] { // fields 14 to 17
			v, _ := strconv.ParseInt(s, 10, 64)
			ticks += v
		}
		out[pid] = time.Duration(ticks) * time.Second / 100
	}
	return out
}

// machineCPU is the machine's CPU time so far in clock ticks (/proc/stat): busy (everything
// but idle and iowait) and total.
func machineCPU() (busy, total int64) {
	b, _ := os.ReadFile("/proc/stat")
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0, 0
	}
	for i, s := range f[1:9] { // user nice system idle iowait irq softirq steal
		v, _ := strconv.ParseInt(s, 10, 64)
		total += v
		if i != 3 && i != 4 {
			busy += v
		}
	}
	return busy, total
}
