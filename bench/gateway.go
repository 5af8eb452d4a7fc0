package main

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"golang.org/x/sync/errgroup"

	"github.com/slipway-dev/slipway/build"
	"github.com/slipway-dev/slipway/devstack"
	"github.com/slipway-dev/slipway/internal/testing/apiclient"
)

// gateway is a gateway binary the bench started, and an HTTP client to it.
type gateway struct {
	apiclient.Client
	admin string
	proc  *devstack.Process
}

// gatewayHome is the SLIPWAY_HOME of the bench gateway called name; its SQLite database is
// slipway.db there, which the bench may open with the store package while it is stopped.
func (e *env) gatewayHome(name string) string { return filepath.Join(e.home, "gateway-"+name) }

// launchGateway starts the gateway called name, on its own database in its home, and waits
// until /healthz answers. taskQueue (SLIPWAY_TASK_QUEUE) and temporal may be empty: the
// workers' queue, the bench stack's Temporal.
func (e *env) launchGateway(ctx context.Context, name, admin, taskQueue, temporal string) (*gateway, error) {
	if err := os.MkdirAll(e.gatewayHome(name), 0o755); err != nil {
		return nil, fmt.Errorf("creating gateway home: %w", err)
	}
	addr, err := devstack.FreeAddr()
	if err != nil {
		return nil, err
	}
	proc, err := devstack.StartProcess(devstack.Command{Args: []string{filepath.Join(e.bin, "gateway")},
		Log: filepath.Join(e.stack.LogDir(), "gateway-"+name+".log"), Env: e.stack.GatewayEnv("SLIPWAY_HOME="+e.gatewayHome(name),
			"SLIPWAY_GATEWAY_ADDR="+addr, "SLIPWAY_TEMPORAL_ADDRESS="+cmp.Or(temporal, e.stack.TemporalAddress),
			"SLIPWAY_DATABASE_URL="+filepath.Join(e.gatewayHome(name), "slipway.db"), "SLIPWAY_ADMIN_TOKEN="+admin,
			"SLIPWAY_GITHUB_URL="+e.git.URL, "SLIPWAY_GITLAB_URL="+e.git.URL, "SLIPWAY_TASK_QUEUE="+cmp.Or(taskQueue, build.DefaultTaskQueue))})
	if err != nil {
		return nil, err
	}
	g := &gateway{admin: admin, proc: proc, Client: apiclient.Client{URL: "http://" + addr, HTTP: &http.Client{Timeout: time.Minute,
		Transport: &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 256, DisableCompression: true}}}}
	err = devstack.Poll(ctx, 100*time.Millisecond, 30*time.Second, func() (bool, error) {
		resp, err := g.HTTP.Get(g.URL + "/healthz")
		if err != nil {
			return false, proc.ExitError()
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
	if err != nil {
		g.stop()
		return nil, fmt.Errorf("gateway %s: %w; log:\n%s", name, err, proc.Tail(20))
	}
	return g, nil
}

// stop stops the gateway; calling it again does nothing.
func (g *gateway) stop() {
	if g != nil && g.proc.ExitError() == nil {
		_ = g.proc.Stop(workerStopGrace)
		g.HTTP.CloseIdleConnections()
	}
}

// call makes one API call as the site admin, checks the status and decodes the answer into out
// (when not nil); it returns the time from the request sent to the answer read.
func (g *gateway) call(ctx context.Context, method, path string, body, out any, want int) (time.Duration, error) {
	a, err := g.Call(ctx, method, path, g.admin, body, out)
	if err == nil && a.Code != want {
		err = fmt.Errorf("%s %s answered %d, want %d: %s", method, path, a.Code, want, bytes.TrimSpace(a.Body))
	}
	return a.Took, err
}

// delivery is one signed webhook request, made before the clock starts.
type delivery struct {
	path    string
	body    []byte
	headers map[string]string
}

// pushDelivery makes a GitHub push of commit to branch of owner/repository from the payload
// fixture tmpl, for the rule at path, signed with secret.
func pushDelivery(tmpl []byte, path, secret, owner, repository, branch, commit string) (delivery, error) {
	var m map[string]any
	if err := json.Unmarshal(tmpl, &m); err != nil {
		return delivery{}, fmt.Errorf("decoding the push payload fixture: %w", err)
	}
	m["ref"], m["after"] = "refs/heads/"+branch, commit
	if hc, ok := m["head_commit"].(map[string]any); ok {
		hc["id"] = commit
	}
	if cs, ok := m["commits"].([]any); ok && len(cs) > 0 {
		if c, ok := cs[len(cs)-1].(map[string]any); ok {
			c["id"] = commit
		}
	}
	repo, ok := m["repository"].(map[string]any)
	if !ok {
		return delivery{}, errors.New("push payload fixture has no repository object")
	}
	repo["name"], repo["full_name"] = repository, owner+"/"+repository
	if o, ok := repo["owner"].(map[string]any); ok {
		o["login"], o["name"] = owner, owner
	}
	body, err := json.Marshal(m)
	if err != nil {
		return delivery{}, fmt.Errorf("encoding a push payload: %w", err)
	}
	return delivery{path: path, body: body, headers: map[string]string{"X-GitHub-Event": "push",
		"X-GitHub-Delivery": randomHex(16), "X-Hub-Signature-256": devstack.SignGitHub(secret, body)}}, nil
}

// answer is one delivery's answer as the sender saw it.
type answer struct {
	apiclient.Answer
	builds []string
	// err is the transport error or the body of an answer that names no build.
	err string
}

// deliver posts one delivery, timed from the request sent to the answer read.
func (g *gateway) deliver(ctx context.Context, d delivery) answer {
	a, err := g.Post(ctx, http.MethodPost, d.path, d.body, d.headers)
	res := answer{Answer: a, builds: a.Builds()}
	if err != nil {
		res.err = err.Error()
	} else if len(res.builds) == 0 {
		res.err = string(bytes.TrimSpace(a.Body))
	}
	return res
}

// send makes n deliveries with mk (untimed), delivers them with senders concurrent senders
// pulling from one queue and reads from the gateway's log how long it handled each. It returns
// the answers in order and the wall time from the first request to the last answer.
func (g *gateway) send(ctx context.Context, n, senders int, mk func(i int) (delivery, error)) (res []answer, wall time.Duration, handled []time.Duration, err error) {
	ds := make([]delivery, n)
	for i := range ds {
		if ds[i], err = mk(i); err != nil {
			return nil, 0, nil, err
		}
	}
	var off int64
	if st, err := os.Stat(g.proc.LogPath()); err == nil {
		off = st.Size()
	}
	res = make([]answer, n)
	work := make(chan int)
	var wg sync.WaitGroup
	start := time.Now()
	for range senders {
		wg.Go(func() {
			for i := range work {
				res[i] = g.deliver(ctx, ds[i])
			}
		})
	}
	for i := range ds {
		work <- i
	}
	close(work)
	wg.Wait()
	wall = time.Since(start)
	handled, err = g.webhookTimes(off)
	return res, wall, handled, err
}

// unexpected counts the answers without code or, when builds is set, not naming one build,
// and describes the first; it also returns the builds they name, to terminate.
func unexpected(res []answer, code int, builds bool) (bad int, ids []string, first string) {
	for _, a := range res {
		ids = append(ids, a.builds...)
		if a.Code != code || builds != (len(a.builds) == 1) {
			if bad++; first == "" {
				first = fmt.Sprintf("answered %d: %.200s", a.Code, a.err)
			}
		}
	}
	return bad, ids, first
}

// tookOf are the answers' times.
func tookOf(res []answer) []time.Duration {
	ds := make([]time.Duration, len(res))
	for i, a := range res {
		ds[i] = a.Took
	}
	return ds
}

// webhookTimes are the duration_ms of the webhook requests the gateway logged after offset off.
func (g *gateway) webhookTimes(off int64) ([]time.Duration, error) {
	f, err := os.Open(g.proc.LogPath())
	if err != nil {
		return nil, fmt.Errorf("opening gateway log: %w", err)
	}
	defer f.Close()
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return nil, fmt.Errorf("seeking gateway log: %w", err)
	}
	var out []time.Duration
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if !strings.Contains(sc.Text(), " msg=request ") || !strings.Contains(sc.Text(), " route=/webhooks/") {
			continue
		}
		for _, field := range strings.Fields(sc.Text()) {
			if v, ok := strings.CutPrefix(field, "duration_ms="); ok {
				if f, err := strconv.ParseFloat(v, 64); err == nil {
					out = append(out, time.Duration(f*float64(time.Millisecond)))
				}
			}
		}
	}
	return out, sc.Err()
}

// histogram is a Prometheus histogram's count, sum (seconds) and cumulative buckets.
type histogram struct {
	count, sum float64
	buckets    map[float64]float64
}

// startLatency scrapes the gateway's Temporal client's StartWorkflowExecution latency
// (temporal_request_latency, summed over label sets; not the per-attempt one).
func (g *gateway) startLatency(ctx context.Context) (histogram, error) {
	h := histogram{buckets: map[float64]float64{}}
	a, err := g.Post(ctx, http.MethodGet, "/metrics", nil, nil)
	if err != nil {
		return h, fmt.Errorf("scraping gateway metrics: %w", err)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(bytes.NewReader(a.Body))
	if err != nil {
		return h, fmt.Errorf("parsing gateway metrics: %w", err)
	}
	for _, fam := range []string{"temporal_request_latency", "temporal_request_latency_seconds"} {
		for _, m := range fams[fam].GetMetric() {
			if !slices.ContainsFunc(m.GetLabel(), func(l *dto.LabelPair) bool {
				return l.GetName() == "operation" && l.GetValue() == "StartWorkflowExecution"
			}) {
				continue
			}
			h.count += float64(m.GetHistogram().GetSampleCount())
			h.sum += m.GetHistogram().GetSampleSum()
			for _, b := range m.GetHistogram().GetBucket() {
				h.buckets[b.GetUpperBound()] += float64(b.GetCumulativeCount())
			}
		}
	}
	return h, nil
}

// since formats the observations between earlier and h: mean and the bucket holding the 99th
// percentile (a histogram knows it only to a bucket), with the count.
func (h histogram) since(earlier histogram) string {
	n := h.count - earlier.count
	if n <= 0 {
		return "–"
	}
	mean := time.Duration((h.sum - earlier.sum) / n * float64(time.Second))
	p99 := "> largest bucket"
	for _, le := range slices.Sorted(maps.Keys(h.buckets)) {
		if h.buckets[le]-earlier.buckets[le] >= 0.99*n && !math.IsInf(le, 1) {
			p99 = "≤ " + ms(time.Duration(le*float64(time.Second)))
			break
		}
	}
	return fmt.Sprintf("%s / %s (n=%.0f)", ms(mean), p99, n)
}

// terminateAll terminates the executions ids name, 16 at a time; one already ended is done.
func terminateAll(ctx context.Context, tc client.Client, ids []string, reason string) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	for _, id := range ids {
		g.Go(func() error {
			var nf *serviceerror.NotFound
			if err := tc.TerminateWorkflow(gctx, id, "", reason); err != nil && !errors.As(err, &nf) {
				return fmt.Errorf("terminating build %s: %w", id, err)
			}
			return nil
		})
	}
	return g.Wait()
}

// randomHex is n random bytes in hex: admin tokens, delivery ids, commit ids no repository holds.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// csrfInput is the sign-in form's CSRF field as the console renders it.
var csrfInput = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// signIn signs in to the console as the site admin, as a browser does (the sign-in page's
// CSRF token, then POST /login with the token), and returns a client that keeps the session
// cookie, so console pages are timed as a signed-in person sees them.
func (g *gateway) signIn(ctx context.Context) (*http.Client, error) {
	jar, err := cookiejar.New(nil)
	if err != nil {
		return nil, err
	}
	c := &http.Client{Jar: jar, Timeout: g.HTTP.Timeout, Transport: g.HTTP.Transport}
	body, _, err := consolePage(ctx, c, g.URL+"/login")
	if err != nil {
		return nil, err
	}
	m := csrfInput.FindSubmatch(body)
	if m == nil {
		return nil, errors.New("the sign-in page has no CSRF token")
	}
	resp, err := c.PostForm(g.URL+"/login", url.Values{"csrf": {string(m[1])}, "token": {g.admin}})
	if err != nil {
		return nil, fmt.Errorf("signing in to the console: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path == "/login" {
		return nil, fmt.Errorf("signing in to the console ended at %s with %d", resp.Request.URL, resp.StatusCode)
	}
	return c, nil
}

// consolePage gets a console page with c and returns it and the time from the request sent to
// the page read.
func consolePage(ctx context.Context, c *http.Client, link string) ([]byte, time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, link, nil)
	if err != nil {
		return nil, 0, err
	}
	start := time.Now()
	resp, err := c.Do(req)
	if err != nil {
		return nil, 0, fmt.Errorf("getting %s: %w", link, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	took := time.Since(start)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("%s answered %d", link, resp.StatusCode)
	}
	return body, took, err
}
