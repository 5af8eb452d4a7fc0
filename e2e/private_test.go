package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/slipway-dev/slipway/internal/testing/gitserver"
	"github.com/slipway-dev/slipway/internal/testing/providertest"
)

// TestPrivateSourceThroughAccount connects a GitHub account (a fake of GitHub's API) to a
// namespace, builds a private repository that a smart-HTTP server only serves with the
// account's token, and then looks for the token everywhere a reader could see.
func TestPrivateSourceThroughAccount(t *testing.T) {
	const token = "ghp_PRIVATEe2eTOKEN0123456789abcdef"
	key := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))

	// The private Git host: every request needs the token.
	gitSrv := gitserver.StartAuth(t, "x-access-token", token)
	gitURL := gitSrv.URL
	repo := gitSrv.NewRepo(t, "octo", "secret-app")
	head := repo.Commit("main", map[string]string{
		"Dockerfile": "FROM busybox\nCOPY app.txt /app.txt\nRUN echo private > /built\n",
		"app.txt":    "private code\n",
	})

	api := providertest.NewGitHub(t)
	api.AddUser("octo", token)
	api.AddRepo(providertest.Repo{Owner: "octo", Name: "secret-app", Private: true,
		Branches: []providertest.Ref{{Name: "main", Commit: head}}})

	providerEnv := []string{"SLIPWAY_SECRET_KEY=" + key, "SLIPWAY_GITHUB_API_URL=" + api.URL, "SLIPWAY_GITHUB_URL=" + gitURL}
	g := startGateway(t, providerEnv...)
	w := startWorker(t, append(providerEnv, "SLIPWAY_DATABASE_URL="+g.db)...)
	t.Cleanup(w.stop)

	var alice struct{ Token string }
	g.call(t, "POST", "/api/v1/users", g.admin, map[string]string{"name": "alice"}, &alice)
	g.call(t, "POST", "/api/v1/namespaces", alice.Token, map[string]string{"name": "private"}, nil)
	g.call(t, "POST", "/api/v1/namespaces/private/repositories", alice.Token, map[string]string{"name": "app"}, nil)

	var answers []string // every answer body, to look for the token in
	call := func(method, path string, body, out any) int {
		var raw map[string]any
		code := g.call(t, method, path, alice.Token, body, &raw)
		b, _ := jsonMarshal(raw)
		answers = append(answers, string(b))
		if out != nil {
			if err := jsonRoundTrip(raw, out); err != nil {
				t.Fatal(err)
			}
		}
		return code
	}
	if code := call("POST", "/api/v1/namespaces/private/accounts", map[string]string{"provider": "github", "token": "ghp_wrong"}, nil); code != http.StatusBadRequest {
		t.Fatalf("a token GitHub refuses: %d, want 400", code)
	}
	var acct struct{ ID, Login string }
	if code := call("POST", "/api/v1/namespaces/private/accounts", map[string]string{"provider": "github", "token": token}, &acct); code != http.StatusCreated || acct.Login != "octo" {
		t.Fatalf("connect: %d %+v", code, acct)
	}
	var repos struct {
		Items []struct{ Name string }
	}
	if code := call("GET", "/api/v1/namespaces/private/accounts/"+acct.ID+"/repositories?owner=octo", nil, &repos); code != 200 || len(repos.Items) != 1 || repos.Items[0].Name != "secret-app" {
		t.Fatalf("repositories: %d %+v", code, repos)
	}

	var rule struct {
		ID   string
		Hook struct {
			ID    int64
			State string
		}
		Webhook struct{ URL, Secret string }
	}
	ruleBody := map[string]any{
		"source":     map[string]string{"provider": "github", "owner": "octo", "repository": "secret-app"},
		"triggers":   map[string]any{"branches": []string{"main"}, "tags": true},
		"account_id": acct.ID,
	}
	if code := call("POST", "/api/v1/namespaces/private/repositories/app/build-rules", ruleBody, &rule); code != 201 || rule.Hook.State != "active" {
		t.Fatalf("rule: %d %+v", code, rule)
	}
	hooks := api.Hooks("octo", "secret-app")
	if len(hooks) != 1 || hooks[0].Config["url"] != rule.Webhook.URL || hooks[0].Config["secret"] != rule.Webhook.Secret || hooks[0].Config["insecure_ssl"] != "0" {
		t.Fatalf("hook on GitHub = %+v", hooks)
	}

	var started struct{ ID string }
	if code := call("POST", "/api/v1/namespaces/private/repositories/app/build-rules/"+rule.ID+"/builds", map[string]string{"branch": "main"}, &started); code != 202 {
		t.Fatalf("build now: %d", code)
	}
	rec := g.waitBuild(t, alice.Token, started.ID)
	if rec.Status != "succeeded" || rec.Commit != head {
		t.Fatalf("private build: %+v", rec)
	}
	p := pull(t, env.stack.Registry+"/private/app:main")
	if p.files["app.txt"] != "private code\n" {
		t.Fatalf("/app.txt = %q", p.files["app.txt"])
	}
	// Commit statuses: pending, then success, linking to the build's console page.
	var states []string
	deadline := time.Now().Add(30 * time.Second)
	for {
		states = states[:0]
		for _, s := range api.Statuses("octo", "secret-app", head) {
			states = append(states, s.State)
			if !strings.HasSuffix(s.TargetURL, "/builds/"+started.ID) || strings.Contains(s.TargetURL, "/api/") || s.Context != "slipway/private/app" {
				t.Fatalf("status %+v", s)
			}
		}
		if strings.Join(states, ",") == "pending,success" || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if strings.Join(states, ",") != "pending,success" {
		t.Fatalf("statuses = %v, want pending then success", states)
	}

	// The status's link opens in a browser: sign-in with a Slipway token, then the build's
	// page, with its status and parameters; the records page lists the build.
	statuses := api.Statuses("octo", "secret-app", head)
	alicePerson := newPerson(t)
	// The stack's worker is not told the gateway's address: the link's path is what counts.
	target, err := url.Parse(statuses[len(statuses)-1].TargetURL)
	if err != nil {
		t.Fatal(err)
	}
	end, page := alicePerson.open(g.url+target.Path, alice.Token)
	if !strings.HasSuffix(end, "/builds/"+started.ID) {
		t.Fatalf("the status link ended at %s", end)
	}
	wantIn(t, "build page", page, started.ID, "succeeded", "octo/secret-app", head)
	_, page = alicePerson.open(g.url+"/ns/private/repos/app/builds", alice.Token)
	wantIn(t, "build records", page, `href="/builds/`+started.ID+`"`, head[:7])

	// The token is nowhere a reader looks: history, log, image, API answers, stack logs, and
	// nowhere on the worker's disk.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	show := exec.CommandContext(ctx, filepath.Join(env.tools, "temporal"), "workflow", "show",
		"--address", env.stack.TemporalAddress, "--workflow-id", started.ID, "-o", "json")
	history, err := show.CombinedOutput()
	if err != nil || !bytes.Contains(history, []byte("EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED")) {
		t.Fatalf("temporal workflow show: %v\n%s", err, history)
	}
	// Payloads are base64 in the JSON: search them decoded too.
	historyText := decodedJSON(t, history)
	if !strings.Contains(historyText, "secret-app") || !strings.Contains(historyText, acct.ID) {
		t.Fatalf("decoded history lacks the build's input; the search below would prove nothing")
	}
	cacheText := readTree(t, filepath.Join(env.home, "gitcache"))
	if !strings.Contains(cacheText, "private code") {
		t.Fatal("the git cache holds no checkout of the private source; the search below would prove nothing")
	}
	var logText bytes.Buffer
	g.logs(t, alice.Token, started.ID, &logText)
	cfg := imageConfig(t, env.stack.Registry+"/private/app:main")
	for what, text := range map[string]string{
		"history": historyText, "log": logText.String(), "image config": cfg,
		"image files": fmt.Sprint(p.files), "API answers": strings.Join(answers, "\n"),
		"stack logs": readTree(t, filepath.Join(env.home, "stack-logs")),
		// The host's git cache: the mirror the private fetch wrote and the build's checkout.
		"git cache": cacheText,
	} {
		if strings.Contains(text, token) {
			t.Errorf("the token is in the %s", what)
		}
	}
	if !strings.Contains(logText.String(), "==> pushed") {
		t.Fatalf("log of the private build:\n%s", logText.String())
	}

	// Turning the triggers off removes the hook; the rule stays for manual builds.
	ruleBody["triggers"] = map[string]any{"branches": []string{}, "tags": false}
	if code := call("PUT", "/api/v1/namespaces/private/repositories/app/build-rules/"+rule.ID, ruleBody, &rule); code != 200 || rule.Hook.State != "removed" {
		t.Fatalf("update: %d %+v", code, rule.Hook)
	}
	if hooks := api.Hooks("octo", "secret-app"); len(hooks) != 0 {
		t.Fatalf("hook left on GitHub: %+v", hooks)
	}
}

// logs reads a build's log through the API.
func (g *gateway) logs(t *testing.T, token, id string, w *bytes.Buffer) {
	t.Helper()
	req, _ := http.NewRequest("GET", g.url+"/api/v1/builds/"+id+"/logs", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	w.ReadFrom(resp.Body)
}

// imageConfig is the raw config blob of an image.
func imageConfig(t *testing.T, ref string) string {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(r, operatorAuth())
	if err != nil {
		t.Fatal(err)
	}
	b, err := img.RawConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// readTree concatenates the files under dir.
func readTree(t *testing.T, dir string) string {
	t.Helper()
	var sb strings.Builder
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			b, _ := os.ReadFile(p)
			sb.Write(b)
		}
		return nil
	})
	return sb.String()
}

// decodedJSON is the text of a JSON document plus every string in it that decodes as base64,
// which is how `temporal workflow show -o json` prints payloads.
func decodedJSON(t *testing.T, raw []byte) string {
	t.Helper()
	var doc any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	sb.Write(raw)
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for _, e := range x {
				walk(e)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		case string:
			if b, err := base64.StdEncoding.DecodeString(x); err == nil {
				sb.WriteString("\n")
				sb.Write(b)
			}
		}
	}
	walk(doc)
	return sb.String()
}
