//go:build chaos

package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"

	"github.com/slipway-dev/slipway/build"
	"github.com/slipway-dev/slipway/devstack"
	"github.com/slipway-dev/slipway/internal/testing/gitserver"
	"github.com/slipway-dev/slipway/internal/testing/providertest"
)

func randomText(prefix string, n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// authRegistry runs a second distribution registry that takes pushes and pulls only with
// basic auth as user and password (htpasswd, bcrypt), and returns its host:port.
func authRegistry(t *testing.T, user, password string) string {
	t.Helper()
	addr, p, err := devstack.StartBasicAuthRegistry(t.Context(), t.TempDir(), user, password)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Kill)
	return addr
}

// workflowShow is `temporal workflow show -o json` of a build, with its payloads decoded.
func workflowShow(t *testing.T, id string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, filepath.Join(env.tools, "temporal"), "workflow", "show",
		"--address", env.stack.TemporalAddress, "--workflow-id", id, "-o", "json").Output()
	if err != nil {
		t.Fatalf("temporal workflow show %s: %v\n%s", id, err, out)
	}
	return decodedJSON(t, out)
}

// TestChaosSecretsNeverShow runs builds that use every kind of secret Slipway handles (a
// webhook secret, a registry password, a provider token, the key that seals tokens) and looks
// for each of them, raw and base64-encoded, everywhere a reader can look.
func TestChaosSecretsNeverShow(t *testing.T) {
	rep := newReport(t, "Secrets stay out of sight",
		"Builds use every kind of secret: a rule's webhook secret (a signed delivery starts one), a registry password (a second registry that wants basic auth; the worker reads it from a Docker config.json through `DOCKER_CONFIG`), a provider token (a private Git host through a connected account) and the key that seals tokens. One build succeeds, one fails in its clone. Each secret, raw and in the base64 forms it travels in, is looked for in the Temporal history (payloads decoded), the build logs, the records' errors and every API answer, the gateway and worker logs, and the pushed image's config and files.")
	token := randomText("ghp_CHAOS", 16)
	regUser, regPass := "slipway-push", randomText("regpw-", 16)
	key := base64.StdEncoding.EncodeToString([]byte(randomText("", 16)))

	registry := authRegistry(t, regUser, regPass)
	dockerConfig := t.TempDir()
	cfg, _ := json.Marshal(map[string]any{"auths": map[string]any{
		registry: map[string]string{"auth": base64.StdEncoding.EncodeToString([]byte(regUser + ":" + regPass))},
	}})
	if err := os.WriteFile(filepath.Join(dockerConfig, "config.json"), cfg, 0o600); err != nil {
		t.Fatal(err)
	}

	// The private Git host: every request needs the token.
	gitSrv := gitserver.StartAuth(t, "x-access-token", token)
	gitURL := gitSrv.URL
	repo := gitSrv.NewRepo(t, "octo", "vault")
	head := repo.Commit("main", map[string]string{
		"Dockerfile": "FROM busybox\nARG LABEL\nCOPY app.txt /app.txt\nRUN echo \"$LABEL\" > /label\n",
		"app.txt":    "private code\n",
	})
	api := providertest.NewGitHub(t)
	api.AddUser("octo", token)
	api.AddRepo(providertest.Repo{Owner: "octo", Name: "vault", Private: true,
		Branches: []providertest.Ref{{Name: "main", Commit: head}}})

	common := []string{"SLIPWAY_SECRET_KEY=" + key, "SLIPWAY_GITHUB_API_URL=" + api.URL,
		"SLIPWAY_GITHUB_URL=" + gitURL, "SLIPWAY_REGISTRY=" + registry}
	g := startGateway(t, common...)
	w := startWorker(t, append(common, "SLIPWAY_DATABASE_URL="+g.db, "DOCKER_CONFIG="+dockerConfig)...)
	t.Cleanup(w.stop)

	userToken := g.setupTeam(t, "sam", "sec", "app")
	var answers []string // API answers a reader gets after setup, to search
	call := func(method, path string, body, out any) int {
		var raw json.RawMessage
		code := g.call(t, method, path, userToken, body, &raw)
		answers = append(answers, string(raw))
		if out != nil && len(raw) > 0 {
			if err := json.Unmarshal(raw, out); err != nil {
				t.Fatal(err)
			}
		}
		return code
	}
	var acct struct{ ID string }
	if code := g.call(t, "POST", "/api/v1/namespaces/sec/accounts", userToken, map[string]string{"provider": "github", "token": token}, &acct); code != http.StatusCreated {
		t.Fatalf("connecting the account: %d", code)
	}
	rule := g.createRule(t, userToken, "sec", "app", map[string]any{
		"source":       map[string]string{"provider": "github", "owner": "octo", "repository": "vault"},
		"triggers":     map[string]any{"branches": []string{"main"}},
		"account_id":   acct.ID,
		"tag_template": "{short_commit}",
		"build_args":   map[string]string{"LABEL": "not a secret"},
	})
	if hooks := api.Hooks("octo", "vault"); len(hooks) != 1 || hooks[0].Config["secret"] != rule.Webhook.Secret {
		t.Fatalf("managed hook on the provider: %+v", hooks)
	}

	// A signed delivery starts the build that succeeds.
	push := fixturePayload(t, "github/push_branch.json", func(m map[string]any) {
		m["after"], m["ref"] = head, "refs/heads/main"
		m["head_commit"].(map[string]any)["id"] = head
		r := m["repository"].(map[string]any)
		r["name"] = "vault"
		r["owner"].(map[string]any)["login"] = "octo"
	})
	code, builds, _ := g.deliver(t, "/webhooks/github/"+rule.ID, push, map[string]string{
		"X-GitHub-Event": "push", "X-GitHub-Delivery": randomText("", 8), "X-Hub-Signature-256": devstack.SignGitHub(rule.Webhook.Secret, push)})
	if code != http.StatusAccepted || len(builds) != 1 {
		t.Fatalf("signed delivery: %d %v", code, builds)
	}
	okID := builds[0]
	// A build whose clone fails, with the token in git's environment.
	var failed struct{ ID string }
	if code := call("POST", "/api/v1/namespaces/sec/repositories/app/build-rules/"+rule.ID+"/builds", map[string]string{"branch": "no-such-branch"}, &failed); code != http.StatusAccepted {
		t.Fatalf("build now: %d", code)
	}
	for _, id := range []string{okID, failed.ID} {
		waitClosed(t, id, 3*time.Minute)
	}
	var okRec, failedRec fullRecord
	call("GET", "/api/v1/builds/"+okID, nil, &okRec)
	call("GET", "/api/v1/builds/"+failed.ID, nil, &failedRec)
	call("GET", "/api/v1/namespaces/sec/repositories/app/builds", nil, nil)
	if okRec.Status != "succeeded" {
		t.Fatalf("the build with secrets: %+v\nlog:\n%s", okRec, readLogQuiet(okID, okRec.RunID))
	}
	if failedRec.Status != "failed" || !strings.Contains(failedRec.Error, "no-such-branch") {
		t.Fatalf("the failing build: %+v", failedRec)
	}

	// The image went to the registry that wants the password, and only the password reads it.
	ref, err := name.ParseReference(registry + "/sec/app:" + head[:7])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := remote.Image(ref); err == nil {
		t.Fatal("the registry served the image without credentials: the password proved nothing")
	}
	img, err := remote.Image(ref, remote.WithAuth(&authn.Basic{Username: regUser, Password: regPass}))
	if err != nil {
		t.Fatalf("pulling with the password: %v", err)
	}
	rawCfg, err := img.RawConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	var layers strings.Builder
	ls, _ := img.Layers()
	for _, l := range ls {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(&layers, rc)
		rc.Close()
	}

	places := map[string]string{
		"image config":             string(rawCfg),
		"image layers":             layers.String(),
		"API answers":              strings.Join(answers, "\n"),
		"errors":                   failedRec.Error + "\n" + fmt.Sprint(failedRec.Steps),
		"gateway and worker logs":  readTree(t, filepath.Join(env.home, "stack-logs")),
		"Temporal history":         "",
		"build logs (through API)": "",
	}
	for _, id := range []string{okID, failed.ID} {
		hist := workflowShow(t, id)
		if !strings.Contains(hist, registry+"/sec/app") || !strings.Contains(hist, acct.ID) {
			t.Fatalf("the decoded history of %s lacks the build's input: the search would prove nothing", id)
		}
		places["Temporal history"] += hist
		var logText bytes.Buffer
		g.logs(t, userToken, id, &logText)
		places["build logs (through API)"] += logText.String()
	}
	if !strings.Contains(places["build logs (through API)"], "==> pushed") || !strings.Contains(places["build logs (through API)"], "no-such-branch") {
		t.Fatalf("build logs lack the builds:\n%s", places["build logs (through API)"])
	}
	secrets := map[string]string{
		"webhook secret":                     rule.Webhook.Secret,
		"registry password":                  regPass,
		"registry auth (base64 user:pass)":   base64.StdEncoding.EncodeToString([]byte(regUser + ":" + regPass)),
		"provider token":                     token,
		"provider token as git's Basic auth": base64.StdEncoding.EncodeToString([]byte("x-access-token:" + token)),
		"token sealing key":                  key,
	}
	searched := 0
	for where, text := range places {
		searched += len(text)
		for what, secret := range secrets {
			if strings.Contains(text, secret) {
				t.Errorf("the %s is in the %s", what, where)
			}
		}
	}
	rep.add("secrets looked for (kinds, with encodings)", len(secrets))
	rep.add("places searched", len(places))
	rep.add("bytes searched", searched)
	rep.add("builds (succeeded / failed)", "1 / 1")
	rep.add("secrets found", 0)
	rep.note("Searched: %s.", strings.Join(slices.Sorted(maps.Keys(places)), ", "))
}

// bigFileSize is the size of the large file the hostile repository commits: 2 GiB, past any
// 32-bit size.
const bigFileSize = 2 << 30

// commitBigFile adds a file of size zero bytes at path on top of branch from, as branch to,
// with git fast-import straight into the bare repository, kept as a pack, so that serving it
// reuses the compressed object instead of compressing 2 GiB again for every clone.
func commitBigFile(t *testing.T, bare, from, to, path string, size int64) {
	t.Helper()
	cmd := exec.Command("git", "-c", "fastimport.unpackLimit=0", "-c", "pack.compression=1", "fast-import", "--quiet")
	cmd.Dir = bare
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null", "GIT_DIR="+bare)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(stdin, "blob\nmark :1\ndata %d\n", size)
	if _, err := io.CopyN(stdin, zeros{}, size); err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(stdin, "\ncommit refs/heads/%s\ncommitter Slipway Test <test@slipway.invalid> 1700000000 +0000\ndata 9\nbig file\nfrom refs/heads/%s^0\nM 100644 :1 %s\n\n", to, from, path)
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("git fast-import: %v\n%s", err, out.String())
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// TestChaosHostileRepository builds from a repository made to attack the build host: symlinks
// out of the checkout, ".." and ".GIT" tree entries, committed hooks, a submodule on a file://
// URL with an update command, and a 2 GiB file. Every attack is refused, with the reason in the
// log, or harmless.
func TestChaosHostileRepository(t *testing.T) {
	rep := newReport(t, "Hostile repository",
		"A repository made to attack the build host: symlinks to a host file, to /etc/passwd and up out of the checkout; tree entries named `..` and `.GIT` (which git itself never commits); executable `post-checkout` hooks in committed folders; a `.gitmodules` whose submodule is a local repository on a `file://` URL with an `update = !command`; and a 2 GiB file. Every hook and update command would create a marker file if it ran. Each input must be refused, naming the reason in the log, or harmless.")
	owner := "chaos-hostile"
	nonce := randomText("", 6)
	markers := filepath.Join(env.home, "markers-"+nonce)
	if err := os.MkdirAll(markers, 0o755); err != nil {
		t.Fatal(err)
	}
	hostSecret := filepath.Join(env.home, "host-secret-"+nonce)
	secretText := "HOST-SECRET-" + nonce
	if err := os.WriteFile(hostSecret, []byte(secretText+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	hook := func(name string) string { return "#!/bin/sh\ntouch " + filepath.Join(markers, name) + "\n" }

	// The submodule: a local repository with a file a fetch would bring along.
	subRepo := (&gitserver.Server{Root: t.TempDir(), URL: "unused"}).NewRepo(t, "local", "sub")
	subCommit := subRepo.Commit("main", map[string]string{"SUBMODULE-CONTENT": secretText + "\n"})

	srv := &gitserver.Server{Root: env.gitRoot, URL: env.gitURL}
	repo := srv.NewRepo(t, owner, "hello")
	for p, content := range map[string]string{"hooks/post-checkout": hook("committed-hook"), ".githooks/post-checkout": hook("githooks-hook")} {
		full := filepath.Join(repo.Dir, p)
		os.MkdirAll(filepath.Dir(full), 0o755)
		if err := os.WriteFile(full, []byte(content), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(repo.Dir, "app", "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	gitIn := func(args ...string) {
		cmd := exec.Command("git", args...)
		cmd.Dir = repo.Dir
		cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	gitIn("update-index", "--add", "--cacheinfo", "160000,"+subCommit+",app/sub")
	repo.Commit("main", map[string]string{
		".gitmodules": fmt.Sprintf("[submodule \"sub\"]\n\tpath = app/sub\n\turl = file://%s\n\tupdate = !%s\n",
			subRepo.Bare, "touch "+filepath.Join(markers, "submodule-update")),
		"app/Dockerfile": "FROM busybox\nCOPY . /src\n" +
			"RUN find /src | sort > /listing && (cat /src/host-file > /read 2>&1 || true)\n",
		"app/hello.txt":   "hello\n",
		"app/host-file":   "symlink:" + hostSecret,
		"app/passwd":      "symlink:/etc/passwd",
		"app/up":          "symlink:../../../../../../../../..",
		"leak/Dockerfile": "FROM busybox\nCOPY host-file /leaked\n",
	})
	repo.PlantEntry("dotdot", "..", "escaped.sh", hook("dotdot-escaped"))
	repo.PlantEntry("dotgit", ".GIT", "post-checkout", hook("dotgit-hook"))
	planted := time.Now()
	commitBigFile(t, repo.Bare, "main", "big", "big.bin", bigFileSize)
	plantTook := time.Since(planted)

	w := startWorker(t)
	t.Cleanup(w.stop)
	type outcome struct {
		status  enumspb.WorkflowExecutionStatus
		errType string
		msg     string
		log     string
		res     build.Result
		took    time.Duration
	}
	runBuild := func(t *testing.T, branch, dockerfile, contextPath, tag string) outcome {
		in := baseInput(owner)
		in.Ref.Name = branch
		in.DockerfilePath, in.ContextPath, in.TagTemplate = dockerfile, contextPath, tag
		id := fmt.Sprintf("chaos-hostile-%s-%d", tag, time.Now().UnixNano())
		start := time.Now()
		run := startBuild(t, id, in)
		o := outcome{status: waitClosed(t, id, 5*time.Minute), took: time.Since(start)}
		res, err := buildResult(t, id)
		o.res = res
		var appErr *temporal.ApplicationError
		if errors.As(err, &appErr) {
			o.errType, o.msg = appErr.Type(), appErr.Message()
		} else if err != nil {
			o.msg = err.Error()
		}
		o.log = readLogQuiet(id, run.GetRunID())
		return o
	}

	refusals := []struct {
		name, branch, dockerfile, context string
		wantType, wantLog                 string
	}{
		{"COPY of a symlink to a host file", "main", "leak/Dockerfile", "app", build.ErrTypeBuildFailed, "not found"},
		{"Dockerfile through a symlink out", "main", "app/up/etc/passwd", "", build.ErrTypeInvalidPath, ""},
		{"context through a symlink out", "main", "app/Dockerfile", "app/up", build.ErrTypeInvalidPath, ""},
		{"Dockerfile path with ..", "main", "../../etc/passwd", "", build.ErrTypeInvalidPath, ""},
		{"tree entry named ..", "dotdot", "", "", build.ErrTypeInvalidPath, "invalid path '../escaped.sh'"},
		{"tree entry .GIT with a hook", "dotgit", "", "", build.ErrTypeInvalidPath, "invalid path '.GIT/post-checkout'"},
	}
	for i, tc := range refusals {
		t.Run(tc.name, func(t *testing.T) {
			o := runBuild(t, tc.branch, tc.dockerfile, tc.context, fmt.Sprintf("refused%d", i))
			if o.status != enumspb.WORKFLOW_EXECUTION_STATUS_FAILED || o.errType != tc.wantType {
				t.Fatalf("ended %s with %s %q, want failed with %s\nlog:\n%s", o.status, o.errType, o.msg, tc.wantType, o.log)
			}
			if tc.wantLog != "" && !strings.Contains(o.log, tc.wantLog) {
				t.Errorf("log lacks %q:\n%s", tc.wantLog, o.log)
			}
			rep.add("refused: "+tc.name, fmt.Sprintf("%s: %s", o.errType, firstLine(o.msg)))
		})
	}

	t.Run("harmless: the whole repository with a 2 GiB file", func(t *testing.T) {
		// Watch the checkout, to see the big file really reach the build host.
		seen := make(chan int64, 1)
		stop := make(chan struct{})
		go func() {
			var most int64
			defer func() { seen <- most }()
			for {
				found, _ := filepath.Glob(filepath.Join(env.home, "workspaces", "worker-*", "*", "src", "big.bin"))
				for _, f := range found {
					if fi, err := os.Stat(f); err == nil {
						most = max(most, fi.Size())
					}
				}
				select {
				case <-stop:
					return
				case <-time.After(100 * time.Millisecond):
				}
			}
		}()
		o := runBuild(t, "big", "app/Dockerfile", "app", "harmless")
		close(stop)
		if most := <-seen; most != bigFileSize {
			t.Errorf("the largest big.bin seen in a workspace was %d bytes, want %d", most, bigFileSize)
		}
		if o.status != enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED {
			t.Fatalf("ended %s: %s %s\nlog:\n%s", o.status, o.errType, o.msg, o.log)
		}
		if !strings.Contains(o.log, "submodules are not fetched") {
			t.Errorf("the log does not say the submodule was left out:\n%s", o.log)
		}
		p := pull(t, env.stack.Registry+"/demo/"+owner+":harmless")
		for f, content := range p.files {
			if strings.Contains(content, secretText) {
				t.Errorf("the image's /%s holds a host file: %q", f, content)
			}
		}
		if !strings.Contains(p.files["listing"], "/src/host-file\n") || strings.Contains(p.files["listing"], "SUBMODULE-CONTENT") {
			t.Errorf("listing of /src:\n%s", p.files["listing"])
		}
		if !strings.Contains(p.files["read"], "No such file") {
			t.Errorf("reading the symlinks inside the build gave %q, want no such file", p.files["read"])
		}
		rss, peak := procMemory(t, w.Pid())
		if peak > 1<<30 {
			t.Errorf("the worker's peak RSS is %s while cloning a 2 GiB file: it does not stream", mib(peak))
		}
		rep.add("harmless: repository with a 2 GiB file, symlinks, hooks and a submodule", "built; symlinks copied as links that resolve to nothing in the image; submodule folder empty")
		rep.add("big file (size seen in the workspace's checkout)", mib(bigFileSize))
		rep.add("committing it (git fast-import, test setup)", plantTook)
		rep.add("build of the branch holding it", o.took)
		rep.add("worker RSS / peak RSS after it", fmt.Sprintf("%s / %s", mib(rss), mib(peak)))
	})

	entries, err := os.ReadDir(markers)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		t.Errorf("%s ran: marker %s exists", e.Name(), e.Name())
	}
	var escaped []string
	filepath.WalkDir(filepath.Join(env.home, "workspaces"), func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Name() == "escaped.sh" {
			escaped = append(escaped, p)
		}
		return nil
	})
	if len(escaped) > 0 {
		t.Errorf("the .. entry was written: %v", escaped)
	}
	if left := buildWorkspaces(t); len(left) != 0 {
		t.Errorf("workspaces left behind: %v", left)
	}
	rep.add("hooks and submodule update commands that ran (markers)", len(entries))
	rep.add("workspaces left", len(buildWorkspaces(t)))
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 160 {
		s = s[:160] + "..."
	}
	return s
}
