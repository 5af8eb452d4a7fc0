package e2e

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	enumspb "go.temporal.io/api/enums/v1"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/slipway-dev/slipway/devstack"
	"github.com/slipway-dev/slipway/internal/testing/apiclient"
	"github.com/slipway-dev/slipway/internal/testing/gitserver"
)

// TestBuildSecrets sets a namespace's build secrets, builds a rule that names them from a
// webhook and again by rebuild, proves the RUN step saw each value (a hash of it in the image,
// the value echoed and masked in the log), then searches for the values everywhere a value
// could leak: the Temporal history with every payload decoded, memo and search attributes,
// the build log, the API's answers (records, params, webhook, secrets list), the database (the
// SQLite file's raw bytes, or every row of every table on PostgreSQL), every blob in the registry (layers, configs with their history, the
// registry cache), the worker's workspaces and image store, and the stack's logs. Deleting a
// secret the rule names fails the next build at once, naming it.
func TestBuildSecrets(t *testing.T) {
	// Values no file of the stack could hold by chance.
	token := "npm_" + randomHex(t, 16)
	sshKey := "ssh-" + randomHex(t, 16)
	key := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{3}, 32))
	common := []string{"SLIPWAY_SECRET_KEY=" + key}
	g := startGateway(t, common...)
	w := startWorker(t, append(common, "SLIPWAY_DATABASE_URL="+g.db)...)
	t.Cleanup(w.stop)

	owner := "e2e-secrets"
	srv := &gitserver.Server{Root: env.gitRoot, URL: env.gitURL}
	repo := srv.NewRepo(t, owner, "hello")
	head := repo.Commit("main", map[string]string{
		"Dockerfile": "FROM busybox\n" +
			"RUN --mount=type=secret,id=NPM_TOKEN sha256sum /run/secrets/NPM_TOKEN | cut -d' ' -f1 > /npm-hash && echo \"token is $(cat /run/secrets/NPM_TOKEN)\"\n" +
			"RUN --mount=type=secret,id=SSH_KEY,env=SSH_KEY printf %s \"$SSH_KEY\" | sha256sum | cut -d' ' -f1 > /ssh-hash && echo \"key is $SSH_KEY\"\n",
	})

	var answers []string // every answer a caller got, searched below
	call := func(token, method, path string, body, out any) int {
		t.Helper()
		var raw json.RawMessage
		code := g.call(t, method, path, token, body, &raw)
		answers = append(answers, string(raw))
		if out != nil && len(raw) > 0 {
			if err := json.Unmarshal(raw, out); err != nil {
				t.Fatal(err)
			}
		}
		return code
	}
	var alice, rita, wes struct{ Token string }
	for name, u := range map[string]*struct{ Token string }{"alice-sec": &alice, "rita-sec": &rita, "wes-sec": &wes} {
		if code := call(g.admin, "POST", "/api/v1/users", map[string]string{"name": name}, u); code != http.StatusCreated {
			t.Fatalf("user %s: %d", name, code)
		}
	}
	if code := call(alice.Token, "POST", "/api/v1/namespaces", map[string]string{"name": "sec"}, nil); code != http.StatusCreated {
		t.Fatalf("namespace: %d", code)
	}
	call(alice.Token, "PUT", "/api/v1/namespaces/sec/members/rita-sec", map[string]string{"role": "read"}, nil)
	call(alice.Token, "PUT", "/api/v1/namespaces/sec/members/wes-sec", map[string]string{"role": "write"}, nil)
	call(alice.Token, "POST", "/api/v1/namespaces/sec/repositories", map[string]string{"name": "app"}, nil)

	// Writers set secrets, readers cannot; a rule naming one that is not set is refused.
	if code := call(rita.Token, "PUT", "/api/v1/namespaces/sec/secrets/NPM_TOKEN", map[string]string{"value": token}, nil); code != http.StatusForbidden {
		t.Fatalf("a reader set a secret: %d", code)
	}
	ruleBody := map[string]any{
		"source":   map[string]string{"provider": "github", "owner": owner, "repository": "hello"},
		"triggers": map[string]any{"branches": []string{"main"}},
		"secrets":  []string{"NPM_TOKEN", "SSH_KEY"},
	}
	var refused struct{ Error string }
	if code := call(wes.Token, "POST", "/api/v1/namespaces/sec/repositories/app/build-rules", ruleBody, &refused); code != http.StatusBadRequest || !strings.Contains(refused.Error, "NPM_TOKEN") {
		t.Fatalf("a rule naming unset secrets: %d %+v", code, refused)
	}
	for name, v := range map[string]string{"NPM_TOKEN": token, "SSH_KEY": sshKey} {
		if code := call(wes.Token, "PUT", "/api/v1/namespaces/sec/secrets/"+name, map[string]string{"value": v}, nil); code != http.StatusCreated {
			t.Fatalf("setting %s: %d", name, code)
		}
	}
	var list struct {
		Secrets []struct{ Name, UpdatedBy string } `json:"secrets"`
	}
	if code := call(rita.Token, "GET", "/api/v1/namespaces/sec/secrets", nil, &list); code != http.StatusOK || len(list.Secrets) != 2 || list.Secrets[0].Name != "NPM_TOKEN" {
		t.Fatalf("list: %d %+v", code, list)
	}
	var rule struct {
		ID      string
		Secrets []string
		Webhook struct{ Secret string }
	}
	if code := call(wes.Token, "POST", "/api/v1/namespaces/sec/repositories/app/build-rules", ruleBody, &rule); code != http.StatusCreated || len(rule.Secrets) != 2 {
		t.Fatalf("rule: %d %+v", code, rule)
	}

	// A push delivery builds the rule; a rebuild repeats it.
	push := fixturePayload(t, "github/push_branch.json", func(m map[string]any) {
		m["after"], m["ref"] = head, "refs/heads/main"
		m["head_commit"].(map[string]any)["id"] = head
		r := m["repository"].(map[string]any)
		r["name"] = "hello"
		r["owner"].(map[string]any)["login"] = owner
	})
	a, err := apiclient.Client{URL: g.url}.Post(context.Background(), "POST", "/webhooks/github/"+rule.ID, push, map[string]string{
		"X-GitHub-Event": "push", "X-GitHub-Delivery": randomHex(t, 8), "X-Hub-Signature-256": devstack.SignGitHub(rule.Webhook.Secret, push)})
	if err != nil || a.Code != http.StatusAccepted || len(a.Builds()) != 1 {
		t.Fatalf("delivery: %v %d %s", err, a.Code, a.Body)
	}
	answers = append(answers, string(a.Body))
	built := a.Builds()[0]
	rec := g.waitBuild(t, alice.Token, built)
	if rec.Status != "succeeded" {
		t.Fatalf("the build with secrets: %+v\nlog:\n%s", rec, readLogQuiet(built, ""))
	}
	var again struct{ ID string }
	if code := call(wes.Token, "POST", "/api/v1/builds/"+built+"/rebuild", map[string]any{}, &again); code != http.StatusAccepted {
		t.Fatalf("rebuild: %d", code)
	}
	if rec := g.waitBuild(t, alice.Token, again.ID); rec.Status != "succeeded" {
		t.Fatalf("rebuild: %+v", rec)
	}
	recordHistory(t, built, "v2-secrets")

	// The RUN steps saw the values: their hashes are in the image.
	image := env.stack.Registry + "/sec/app:main"
	p := pull(t, image)
	for file, v := range map[string]string{"npm-hash": token, "ssh-hash": sshKey} {
		sum := sha256.Sum256([]byte(v))
		if got := strings.TrimSpace(p.files[file]); got != hex.EncodeToString(sum[:]) {
			t.Fatalf("/%s = %q: the RUN step did not see the secret", file, got)
		}
	}

	// Every place a value could be.
	places := map[string]string{}
	var logText bytes.Buffer
	g.logs(t, alice.Token, built, &logText)
	places["build log"] = logText.String()
	if !strings.Contains(logText.String(), "token is ***") || !strings.Contains(logText.String(), "key is ***") {
		t.Fatalf("the log does not show the masked echo:\n%s", logText.String())
	}
	for _, id := range []string{built, again.ID} {
		var logRaw bytes.Buffer
		call(alice.Token, "GET", "/api/v1/builds/"+id, nil, nil)
		g.logs(t, alice.Token, id, &logRaw)
		places["build log of "+id] = logRaw.String()
		places["history of "+id] = historyText(t, id)
	}
	if h := places["history of "+built]; !strings.Contains(h, "NPM_TOKEN") || !strings.Contains(h, owner) {
		t.Fatal("the decoded history lacks the build's input; searching it would prove nothing")
	}
	call(alice.Token, "GET", "/api/v1/namespaces/sec/repositories/app/builds", nil, nil)
	call(alice.Token, "GET", "/api/v1/namespaces/sec/repositories/app/build-rules/"+rule.ID, nil, nil)
	call(alice.Token, "GET", "/api/v1/namespaces/sec/secrets", nil, nil)
	places["API answers"] = strings.Join(answers, "\n")
	if !strings.Contains(places["API answers"], `"secrets":["NPM_TOKEN","SSH_KEY"]`) {
		t.Fatalf("the build's params do not name its secrets; the answers searched may be the wrong ones")
	}
	if env.prod {
		places["database"] = postgresDump(t, g.db)
	} else {
		places["database"] = readMatching(t, filepath.Dir(g.db), "slipway.db")
	}
	if !strings.Contains(places["database"], "NPM_TOKEN") {
		t.Fatal("the database does not hold the secret's name; searching it proves nothing")
	}
	places["image config"] = imageConfig(t, image)
	if !strings.Contains(places["image config"], "secret") {
		t.Fatal("the image config's history does not show the RUN steps")
	}
	places["image files"] = fmt.Sprint(p.files)
	places["image blobs"] = imageBlobs(t, image)
	places["registry storage"] = registryStorage(t)
	places["worker workspaces"] = readTree(t, filepath.Join(env.home, "workspaces"))
	places["worker image store"] = readTree(t, filepath.Join(env.home, "images"))
	places["stack logs"] = readTree(t, filepath.Join(env.home, "stack-logs"))
	for what, text := range places {
		for _, v := range []string{token, sshKey} {
			if strings.Contains(text, v) {
				t.Errorf("a secret value is in the %s", what)
			}
		}
	}

	// A writer cannot delete; an admin can, and the next build fails at once naming it.
	if code := call(wes.Token, "DELETE", "/api/v1/namespaces/sec/secrets/NPM_TOKEN", nil, nil); code != http.StatusForbidden {
		t.Fatalf("a writer deleted a secret: %d", code)
	}
	if code := call(alice.Token, "DELETE", "/api/v1/namespaces/sec/secrets/NPM_TOKEN", nil, nil); code != http.StatusNoContent {
		t.Fatalf("delete: %d", code)
	}
	var started struct{ ID string }
	if code := call(wes.Token, "POST", "/api/v1/namespaces/sec/repositories/app/build-rules/"+rule.ID+"/builds", map[string]string{"branch": "main"}, &started); code != http.StatusAccepted {
		t.Fatalf("build now: %d", code)
	}
	failed := g.waitBuild(t, alice.Token, started.ID)
	if failed.Status != "failed" || !strings.Contains(failed.Error, "NPM_TOKEN") || strings.Contains(failed.Error, "SSH_KEY") {
		t.Fatalf("a build naming a deleted secret: %+v", failed)
	}
	if n := buildAttempts(t, started.ID); n != 1 {
		t.Fatalf("the build step ran %d attempts for a missing secret; want 1 (not retried)", n)
	}
}

func randomHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// historyText is the history of build id as the SDK reads it, each event in protojson and
// every base64 string in it (payloads, memo, search attributes) decoded, plus the
// execution's description (memo and search attributes as they are now).
func historyText(t *testing.T, id string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var sb strings.Builder
	it := env.temporal.GetWorkflowHistory(ctx, id, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		b, err := protojson.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		sb.WriteString(decodedJSON(t, b))
	}
	d, err := env.temporal.DescribeWorkflowExecution(ctx, id, "")
	if err != nil {
		t.Fatal(err)
	}
	b, err := protojson.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	sb.WriteString(decodedJSON(t, b))
	return sb.String()
}

// buildAttempts is how many attempts the build step of build id started.
func buildAttempts(t *testing.T, id string) int32 {
	t.Helper()
	it := env.temporal.GetWorkflowHistory(context.Background(), id, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	scheduled := map[int64]bool{}
	var attempts int32
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		if a := ev.GetActivityTaskScheduledEventAttributes(); a != nil && a.GetActivityType().GetName() == "Build" {
			scheduled[ev.GetEventId()] = true
		}
		if a := ev.GetActivityTaskStartedEventAttributes(); a != nil && scheduled[a.GetScheduledEventId()] {
			attempts += a.GetAttempt()
		}
	}
	return attempts
}

// readMatching concatenates the files of dir whose names start with prefix (a SQLite
// database with its journal files).
func readMatching(t *testing.T, dir, prefix string) string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), prefix) {
			b, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			sb.Write(b)
		}
	}
	return sb.String()
}

// postgresDump is every row of every table of the database at url, as text.
func postgresDump(t *testing.T, url string) string {
	t.Helper()
	db, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, n)
	}
	rows.Close()
	var sb strings.Builder
	for _, n := range tables {
		rows, err := db.Query(`SELECT t::text FROM "` + n + `" t`)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var row string
			if err := rows.Scan(&row); err != nil {
				t.Fatal(err)
			}
			sb.WriteString(row + "\n")
		}
		rows.Close()
	}
	return sb.String()
}

// imageBlobs is every blob of image: manifest, config and each layer both compressed and
// uncompressed.
func imageBlobs(t *testing.T, image string) string {
	t.Helper()
	ref, err := name.ParseReference(image)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(ref, operatorAuth())
	if err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	m, err := img.RawManifest()
	if err != nil {
		t.Fatal(err)
	}
	sb.Write(m)
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range layers {
		for _, open := range []func() (io.ReadCloser, error){l.Compressed, l.Uncompressed} {
			rc, err := open()
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(rc)
			rc.Close()
			if err != nil {
				t.Fatal(err)
			}
			sb.Write(b)
		}
	}
	return sb.String()
}

// registryStorage is every file the registry stores (every pushed blob, the registry cache's
// too), each gzip one also decompressed.
func registryStorage(t *testing.T) string {
	t.Helper()
	var sb strings.Builder
	err := filepath.WalkDir(filepath.Join(env.home, "registry"), func(p string, d os.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		sb.Write(b)
		if zr, err := gzip.NewReader(bytes.NewReader(b)); err == nil {
			if u, err := io.ReadAll(zr); err == nil {
				sb.Write(u)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return sb.String()
}
