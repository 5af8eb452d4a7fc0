package gateway

// The handler tests run against a real Temporal dev server (the temporal CLI that
// scripts/tools.sh builds) and a real SQLite database, with the API served in-process by
// httptest. No worker polls the task queue: builds are started and stay queued, which is
// what starts, deduplication, records and cancellation need.

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/testsuite"

	"github.com/slipway-dev/slipway/build"
	"github.com/slipway-dev/slipway/builds"
	"github.com/slipway-dev/slipway/config"
	"github.com/slipway-dev/slipway/logstore"
	"github.com/slipway-dev/slipway/secretbox"
	"github.com/slipway-dev/slipway/store"
)

// testUIURL is the Temporal UI the gateway under test links to; it need not answer.
const testUIURL = "http://temporal-ui.test:8233"

// h is the dev-server stack, started by the first test that needs it (devStack). Tests that
// need no visibility query, worker or Temporal's own deduplication run on a mocked client
// instead (mockStack), each with its own.
var h *harness

// dev is what starting the dev-server stack left: the stack or why it did not start, and
// what stops it.
var dev struct {
	once sync.Once
	err  error
	dir  string
	stop func()
}

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	// As cmd/gateway sets it: gin's debug mode prints every route of every server built.
	gin.SetMode(gin.ReleaseMode)
	code := m.Run()
	if h == nil {
		return code
	}
	// Whatever the tests did, the request log must not hold a token or a webhook secret.
	if leak := h.leakIn(h.logBuf.String()); leak != "" {
		fmt.Fprintf(os.Stderr, "gateway tests: the gateway's log holds %s\n", leak)
		code = 1
	}
	dev.stop()
	return code
}

// devStack returns the stack on a real Temporal dev server (the temporal CLI that
// scripts/tools.sh builds) and a real SQLite database, starting it for the first test that
// asks. No worker polls the task queue: builds are started and stay queued, which is what
// starts, deduplication, records and cancellation need.
func devStack(t testing.TB) *harness {
	t.Helper()
	dev.once.Do(func() { h, dev.err = startDev() })
	if dev.err != nil {
		t.Fatalf("gateway tests: %v", dev.err)
	}
	return h
}

func startDev() (*harness, error) {
	bin, err := temporalBinary()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "slipway-gateway-test-")
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	quiet := tlog.NewStructuredLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})))
	devOut := &syncBuffer{}
	var extra []string
	for _, a := range []temporalAttr{build.AttrNamespace, build.AttrRepository, build.AttrRule,
		build.AttrRef, build.AttrCommit, build.AttrTrigger} {
		extra = append(extra, "--search-attribute", a.GetName()+"=Keyword")
	}
	srv, err := testsuite.StartDevServer(ctx, testsuite.DevServerOptions{
		ExistingPath:  bin,
		ClientOptions: &client.Options{Namespace: "default", Logger: quiet},
		DBFilename:    filepath.Join(dir, "temporal.db"),
		ExtraArgs:     extra,
		LogLevel:      "error",
		// The server's own output (its banner, errors logged while it stops) is shown only
		// when it does not start.
		Stdout: devOut,
		Stderr: devOut,
	})
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("starting the temporal dev server %s: %w\n%s", bin, err, devOut)
	}
	hs, err := newHarness(ctx, dir, srv.FrontendHostPort(), srv.Client())
	if err != nil {
		_ = srv.Stop()
		os.RemoveAll(dir)
		return nil, err
	}
	dev.stop = func() {
		hs.close()
		if err := srv.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "gateway tests: stopping the temporal dev server: %v\n", err)
		}
		os.RemoveAll(dir)
	}
	return hs, nil
}

// temporalAttr is what the search attribute keys of package workflows share.
type temporalAttr interface{ GetName() string }

// temporalBinary finds the temporal CLI: $SLIPWAY_TOOLS_DIR/temporal, else
// <repo>/.tools/bin/temporal. A missing binary fails the tests rather than skipping them, so CI
// cannot go green without running them.
func temporalBinary() (string, error) {
	dir := os.Getenv("SLIPWAY_TOOLS_DIR")
	if dir == "" {
		root, err := repoRoot()
		if err != nil {
			return "", err
		}
		dir = filepath.Join(root, ".tools", "bin")
	}
	bin := filepath.Join(dir, "temporal")
	if _, err := os.Stat(bin); err != nil {
		return "", fmt.Errorf("these tests need the temporal CLI at %s; build it with scripts/tools.sh (or point SLIPWAY_TOOLS_DIR at a folder holding it): %w", bin, err)
	}
	return bin, nil
}

func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found above the working directory")
		}
		dir = parent
	}
}

// harness is the gateway under test and what the tests look behind it with.
type harness struct {
	cfg      config.Config
	store    *store.Store
	logs     *logstore.Store
	temporal client.Client
	api      *Server
	srv      *httptest.Server
	// logBuf receives everything the gateway logs.
	logBuf *syncBuffer
	// fake is the mocked Temporal of a mockStack; nil on the dev server.
	fake *fakeTemporal

	// tokens of the fixed users; admin is the site admin. disabled is the token a user had
	// before the site admin disabled it (the permission matrix makes it an admin of its
	// namespace first).
	admin, owner, reader, writer, outsider, stranger, disabled string

	mu sync.Mutex
	// secrets are every webhook secret the tests made; tokenList every token.
	secrets   []string
	tokenList []string
	seq       atomic.Int64
}

func newHarness(ctx context.Context, dir, temporalAddr string, tc client.Client) (*harness, error) {
	env := map[string]string{
		"SLIPWAY_HOME":               filepath.Join(dir, "home"),
		"SLIPWAY_DATABASE_URL":       filepath.Join(dir, "home", "gateway.db"),
		"SLIPWAY_REGISTRY":           "127.0.0.1:5000",
		"SLIPWAY_TEMPORAL_ADDRESS":   temporalAddr,
		"SLIPWAY_TEMPORAL_NAMESPACE": "default",
		"SLIPWAY_TEMPORAL_UI_URL":    testUIURL,
		// A queue no worker polls: builds stay queued.
		"SLIPWAY_TASK_QUEUE": "gateway-test",
	}
	srv := httptest.NewUnstartedServer(nil)
	env["SLIPWAY_GATEWAY_URL"] = "http://" + srv.Listener.Addr().String()
	cfg, err := config.FromEnv(func(k string) string { return env[k] })
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.Home, 0o755); err != nil {
		return nil, err
	}
	box, err := secretbox.New(bytes.Repeat([]byte{5}, secretbox.KeySize))
	if err != nil {
		return nil, err
	}
	st, err := store.Open(ctx, cfg.DatabaseURL, store.WithSecretBox(box))
	if err != nil {
		return nil, err
	}
	// The admin token is made as a first start makes it: written to SLIPWAY_HOME/admin-token.
	if _, err := ensureAdmin(ctx, st, cfg.Home, ""); err != nil {
		return nil, err
	}
	tok, err := os.ReadFile(filepath.Join(cfg.Home, "admin-token"))
	if err != nil {
		return nil, err
	}
	logs, err := logstore.New(cfg.LogsDir())
	if err != nil {
		return nil, err
	}
	buf := &syncBuffer{}
	logger := slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	a := testServer(cfg, st, tc, logs, logger)
	srv.Config.Handler = a.Handler()
	srv.Start()
	hs := &harness{cfg: cfg, store: st, logs: logs, temporal: tc, api: a, srv: srv, logBuf: buf,
		admin: strings.TrimSpace(string(tok))}
	hs.tokenList = append(hs.tokenList, hs.admin, providerToken)
	for name, dst := range map[string]*string{"owner": &hs.owner, "reader": &hs.reader, "writer": &hs.writer,
		"outsider": &hs.outsider, "stranger": &hs.stranger, "disabled": &hs.disabled} {
		_, token, err := st.CreateUser(ctx, name, false)
		if err != nil {
			return nil, err
		}
		*dst = token
		hs.tokenList = append(hs.tokenList, token)
	}
	return hs, nil
}

func (hs *harness) close() {
	hs.srv.Close()
	hs.store.Close()
}

// syncBuffer is a bytes.Buffer for a logger that many requests write to at once.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// name returns a fresh name with the given prefix, valid for users, namespaces and
// repositories.
func (hs *harness) name(prefix string) string {
	return fmt.Sprintf("%s-%d", prefix, hs.seq.Add(1))
}

func (hs *harness) addSecret(s string) {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	hs.secrets = append(hs.secrets, s)
}

func (hs *harness) addToken(s string) {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	hs.tokenList = append(hs.tokenList, s)
}

// leakIn names the first webhook secret or token found in s, or returns "".
func (hs *harness) leakIn(s string) string {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	for _, sec := range hs.secrets {
		if strings.Contains(s, sec) {
			return "the webhook secret " + sec[:8] + "..."
		}
	}
	for _, tok := range hs.tokenList {
		if strings.Contains(s, tok) {
			return "the token " + tok[:10] + "..."
		}
	}
	return ""
}

// secretIn names the first webhook secret found in s, or returns "".
func (hs *harness) secretIn(s string) string {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	for _, sec := range hs.secrets {
		if strings.Contains(s, sec) {
			return sec
		}
	}
	return ""
}

// response is one answer of the gateway.
type response struct {
	code   int
	header http.Header
	body   []byte
}

func (r response) String() string {
	return fmt.Sprintf("%d %s", r.code, bytes.TrimSpace(r.body))
}

// decode decodes the JSON body into v, failing t when it is not JSON.
func (r response) decode(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("answer %s is not the JSON expected: %v", r, err)
	}
}

// errorMessage checks the body is exactly {"error": "..."} and returns the message.
func (r response) errorMessage(t testing.TB) string {
	t.Helper()
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(r.body))
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("error answer %s is not JSON: %v", r, err)
	}
	if dec.More() {
		t.Fatalf("error answer %s holds more than one JSON value", r)
	}
	msg, ok := m["error"].(string)
	if !ok || msg == "" || len(m) != 1 {
		t.Fatalf(`error answer %s is not {"error": "..."}`, r)
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("error answer has Content-Type %q, want application/json", ct)
	}
	return msg
}

// createRulePath and rotateSecretPath match the URLs whose answers may show a webhook secret.
var (
	createRulePath   = regexp.MustCompile(`^/api/v1/namespaces/[^/]+/repositories/[^/]+/build-rules$`)
	rotateSecretPath = regexp.MustCompile(`^/api/v1/namespaces/[^/]+/repositories/[^/]+/build-rules/[^/]+/webhook-secret$`)
)

// do sends one request. body is nil, a []byte or string sent as is, or a value sent as JSON.
// headers are name, value pairs. Every answer is checked for webhook secrets: only the 201 of
// a rule's creation may show one, and the secret it shows is remembered.
func (hs *harness) do(t testing.TB, method, path, token string, body any, headers ...string) response {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	case string:
		rd = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, hs.srv.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := hs.srv.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading answer: %v", method, path, err)
	}
	r := response{code: resp.StatusCode, header: resp.Header, body: b}
	hs.checkAnswer(t, method, path, r)
	return r
}

// checkAnswer fails t when an answer shows a webhook secret it may not show, and remembers the
// secret of a rule's creation.
func (hs *harness) checkAnswer(t testing.TB, method, path string, r response) {
	t.Helper()
	if method == http.MethodPost && ((createRulePath.MatchString(path) && r.code == http.StatusCreated) ||
		(rotateSecretPath.MatchString(path) && r.code == http.StatusOK)) {
		var v struct {
			Webhook struct {
				Secret string `json:"secret"`
			} `json:"webhook"`
		}
		r.decode(t, &v)
		if v.Webhook.Secret == "" {
			t.Errorf("the answer to creating a rule shows no webhook secret: %s", r)
		} else {
			hs.addSecret(v.Webhook.Secret)
		}
		return
	}
	if sec := hs.secretIn(string(r.body)); sec != "" {
		t.Errorf("%s %s answered %d with a webhook secret in its body: %s", method, path, r.code, r.body)
	}
}

// expect fails t unless r has status code want.
func expect(t testing.TB, r response, want int, what string) {
	t.Helper()
	if r.code != want {
		t.Fatalf("%s: got %s, want %d", what, r, want)
	}
}

// team is a namespace the fixed users belong to: owner is its admin, reader reads and writer
// writes. outsider and stranger are not members.
type team struct {
	ns string
}

// newTeam makes a namespace with the fixed users as members and one image repository, "app".
func (hs *harness) newTeam(t testing.TB, prefix string) team {
	t.Helper()
	ns := hs.name(prefix)
	expect(t, hs.do(t, "POST", "/api/v1/namespaces", hs.owner, map[string]string{"name": ns}), 201, "creating namespace")
	for user, role := range map[string]string{"reader": "read", "writer": "write"} {
		expect(t, hs.do(t, "PUT", "/api/v1/namespaces/"+ns+"/members/"+user, hs.owner, map[string]string{"role": role}), 200, "granting "+role)
	}
	expect(t, hs.do(t, "POST", "/api/v1/namespaces/"+ns+"/repositories", hs.writer, map[string]string{"name": "app"}), 201, "creating repository")
	return team{ns: ns}
}

// foreignTeam makes a namespace none of the fixed users but stranger (its admin) belongs to,
// with one image repository, "app".
func (hs *harness) foreignTeam(t testing.TB, prefix string) team {
	t.Helper()
	ns := hs.name(prefix)
	expect(t, hs.do(t, "POST", "/api/v1/namespaces", hs.stranger, map[string]string{"name": ns}), 201, "creating namespace")
	expect(t, hs.do(t, "POST", "/api/v1/namespaces/"+ns+"/repositories", hs.stranger, map[string]string{"name": "app"}), 201, "creating repository")
	return team{ns: ns}
}

func (tm team) rules() string { return "/api/v1/namespaces/" + tm.ns + "/repositories/app/build-rules" }

func (tm team) rule(id string) string { return tm.rules() + "/" + id }

func (tm team) builds() string { return "/api/v1/namespaces/" + tm.ns + "/repositories/app/builds" }

// createdRule is a rule as its creation answered: the view and its secret.
type createdRule struct {
	ID      string
	Secret  string
	Webhook string
	View    map[string]any
}

// githubRule is a rule body for octo/hello on GitHub, the repository of the webhook fixtures.
func githubRule() map[string]any {
	return map[string]any{
		"source":          map[string]any{"provider": "github", "owner": "octo", "repository": "hello"},
		"triggers":        map[string]any{"branches": []string{"main", "release/*"}, "tags": true},
		"tag_template":    "{ref}-{short_commit}",
		"dockerfile_path": "build/Dockerfile",
		"build_args":      map[string]string{"GREETING": "hi"},
	}
}

// createRule creates a rule in the team's repository as its writer and returns it.
func (hs *harness) createRule(t testing.TB, tm team, body map[string]any) createdRule {
	t.Helper()
	r := hs.do(t, "POST", tm.rules(), hs.writer, body)
	expect(t, r, 201, "creating rule")
	var v map[string]any
	r.decode(t, &v)
	wh, _ := v["webhook"].(map[string]any)
	c := createdRule{View: v}
	c.ID, _ = v["id"].(string)
	c.Secret, _ = wh["secret"].(string)
	c.Webhook, _ = wh["url"].(string)
	if c.ID == "" || c.Secret == "" || c.Webhook == "" {
		t.Fatalf("created rule lacks id, webhook url or secret: %s", r)
	}
	return c
}

// storeRule adds a rule straight to the store (faster than the API where many are needed).
func (hs *harness) storeRule(t testing.TB, ns, provider string) store.Rule {
	t.Helper()
	r, err := hs.store.CreateRule(context.Background(), store.Rule{
		Namespace: ns, Repository: "app",
		Source:   store.Source{Provider: provider, Owner: "octo", Repository: "hello"},
		Triggers: build.Triggers{Branches: []string{"main"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	hs.addSecret(r.WebhookSecret)
	return r
}

// buildNow starts a build of branch main of the rule as the site admin and returns its id and
// run id.
func (hs *harness) buildNow(t testing.TB, tm team, ruleID string) (id, runID string) {
	t.Helper()
	r := hs.do(t, "POST", tm.rule(ruleID)+"/builds", hs.admin, map[string]string{"branch": "main"})
	expect(t, r, 202, "build now")
	var v struct {
		ID    string `json:"id"`
		RunID string `json:"run_id"`
	}
	r.decode(t, &v)
	return v.ID, v.RunID
}

// sign is GitHub's X-Hub-Signature-256 of body under secret.
func sign(secret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// countBuilds counts the executions visibility finds for query.
func (hs *harness) countBuilds(t testing.TB, query string) int64 {
	t.Helper()
	if hs.fake != nil {
		return hs.fake.count(t, query)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := hs.temporal.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{
		Namespace: hs.cfg.TemporalNamespace, Query: query})
	if err != nil {
		t.Fatalf("counting %s: %v", query, err)
	}
	return resp.GetCount()
}

// settle is how long a count must hold before a test believes it: visibility is eventually
// consistent, so a second execution could show up a moment after the first.
const settle = 500 * time.Millisecond

// expectBuilds waits until visibility counts want executions for query, then checks the count
// holds.
func (hs *harness) expectBuilds(t testing.TB, query string, want int64) {
	t.Helper()
	if hs.fake != nil {
		// The fake counts exactly and at once.
		if n := hs.fake.count(t, query); n != want {
			t.Fatalf("%s: %d executions, want %d", query, n, want)
		}
		return
	}
	deadline := time.Now().Add(10 * time.Second)
	var n int64
	for {
		n = hs.countBuilds(t, query)
		if n == want || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if n != want {
		t.Fatalf("%s: %d executions, want %d", query, n, want)
	}
	time.Sleep(settle)
	if n = hs.countBuilds(t, query); n != want {
		t.Fatalf("%s: %d executions a moment later, want %d", query, n, want)
	}
}

func ruleQuery(ruleID string) string {
	return fmt.Sprintf("%s = '%s'", build.AttrRule.GetName(), ruleID)
}

// testServer is the server New builds from these deps and no others.
func testServer(cfg config.Config, st *store.Store, tc client.Client, logs *logstore.Store, logger *slog.Logger) *Server {
	return New(Deps{Config: cfg, Store: st, Temporal: tc, Logs: logs, Logger: logger})
}

// startBuild starts a build of branch main of rule r straight through the server's builds
// service, for tests that need many builds.
func (hs *harness) startBuild(t testing.TB, r store.Rule) string {
	t.Helper()
	id := "build-" + r.ID + "-test-" + randomHex(6)
	_, _, _, err := hs.api.builds.Start(context.Background(), builds.Request{
		ID: id, Rule: r, Ref: build.Ref{Type: build.RefBranch, Name: "main"}, Trigger: build.TriggerManual,
	})
	if err != nil {
		t.Fatalf("starting build: %v", err)
	}
	return id
}

// freshUserToken makes a user, with role in ns unless either is empty, and returns its name
// and token.
func (hs *harness) freshUserToken(t testing.TB, ns string, role store.Role) (string, string) {
	t.Helper()
	ctx := context.Background()
	u, token, err := hs.store.CreateUser(ctx, hs.name("fresh"), false)
	if err != nil {
		t.Fatal(err)
	}
	hs.addToken(token)
	if ns != "" && role != "" {
		if err := hs.store.SetMember(ctx, ns, u.Name, role); err != nil {
			t.Fatal(err)
		}
	}
	return u.Name, token
}
