package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/devstack"
	"github.com/slipway-dev/slipway/internal/testing/apiclient"
)

// gateway is a running gateway process on the shared stack.
type gateway struct {
	*devstack.Process
	url   string
	admin string
	// db is the gateway's database, which workers that resolve accounts read too.
	db string
	// home, addr and extra start the gateway again (startGatewayAt).
	home, addr string
	extra      []string
}

func startGateway(t *testing.T, extra ...string) *gateway {
	t.Helper()
	addr, err := devstack.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	home := filepath.Join(env.home, fmt.Sprintf("gw-%d", time.Now().UnixNano()))
	return startGatewayAt(t, home, addr, extra...)
}

// startGatewayAt runs a gateway with its data in home, listening on addr; a second call with
// the same home and addr restarts one that was stopped or killed.
func startGatewayAt(t *testing.T, home, addr string, extra ...string) *gateway {
	t.Helper()
	db := databaseFor(t, home)
	// Logs are shared between worker and gateway through SLIPWAY_HOME/logs.
	for _, dir := range []string{home, filepath.Join(env.home, "logs")} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Lstat(filepath.Join(home, "logs")); err != nil {
		if err := os.Symlink(filepath.Join(env.home, "logs"), filepath.Join(home, "logs")); err != nil {
			t.Fatal(err)
		}
	}
	p, err := devstack.StartProcess(devstack.Command{
		Name: "gateway",
		Args: []string{filepath.Join(env.bin, "gateway")},
		Env: env.stack.GatewayEnv(append([]string{"SLIPWAY_HOME=" + home,
			"SLIPWAY_GATEWAY_ADDR=" + addr, "SLIPWAY_DATABASE_URL=" + db}, extra...)...),
		// Appended to, so a restarted gateway's log follows the first one's.
		Log: filepath.Join(env.home, "stack-logs", filepath.Base(home)+".log"),
	})
	if err != nil {
		t.Fatal(err)
	}
	g := &gateway{Process: p, url: "http://" + addr, db: db, home: home, addr: addr, extra: extra}
	t.Cleanup(func() { _ = p.Stop(time.Minute) })
	err = devstack.Poll(t.Context(), 100*time.Millisecond, 30*time.Second, func() (bool, error) {
		resp, err := http.Get(g.url + "/healthz")
		if err != nil {
			return false, p.ExitError()
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
	if err != nil {
		t.Fatalf("gateway not healthy at %s: %v", g.url, err)
	}
	b, err := os.ReadFile(filepath.Join(home, "admin-token"))
	if err != nil {
		t.Fatal(err)
	}
	g.admin = strings.TrimSpace(string(b))
	return g
}

// call makes one API call and decodes a JSON answer into out (when not nil).
func (g *gateway) call(t *testing.T, method, path, token string, body any, out any) int {
	t.Helper()
	a, err := apiclient.Client{URL: g.url}.Call(context.Background(), method, path, token, body, out)
	if err != nil {
		t.Fatal(err)
	}
	return a.Code
}

// deliver posts a webhook delivery with the given headers.
func (g *gateway) deliver(t *testing.T, path string, body []byte, headers map[string]string) (int, []string, time.Duration) {
	t.Helper()
	a, err := apiclient.Client{URL: g.url}.Post(context.Background(), http.MethodPost, path, body, headers)
	if err != nil {
		t.Fatal(err)
	}
	return a.Code, a.Builds(), a.Took
}

// fixturePayload loads a webhook fixture and rewrites it to name owner/repo, ref and commit.
func fixturePayload(t *testing.T, path string, edit func(map[string]any)) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "webhook", "testdata", path))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type record struct {
	ID      string   `json:"id"`
	Status  string   `json:"status"`
	Trigger string   `json:"trigger"`
	Ref     string   `json:"ref"`
	Commit  string   `json:"commit"`
	Tags    []string `json:"tags"`
	Digest  string   `json:"digest"`
	Error   string   `json:"error"`
	UIURL   string   `json:"ui_url"`
	Params  *struct {
		DockerfilePath string            `json:"dockerfile_path"`
		BuildArgs      map[string]string `json:"build_args"`
	} `json:"params"`
	Steps []struct {
		Name string `json:"name"`
	} `json:"steps"`
}

// waitBuild polls a build record until it leaves running.
func (g *gateway) waitBuild(t *testing.T, token, id string) record {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		var rec record
		code := g.call(t, http.MethodGet, "/api/v1/builds/"+id, token, nil, &rec)
		if code == http.StatusOK && rec.Status != "running" {
			return rec
		}
		if time.Now().After(deadline) {
			t.Fatalf("build %s still %q (%d)", id, rec.Status, code)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// TestGatewayEndToEnd walks the path a team takes: a user, a namespace, a repository and a
// rule; real GitHub and GitLab payloads signed with the rule's secret; one build per event,
// none for a redelivery; the log followed live; the record pointing into the Temporal UI.
func TestGatewayEndToEnd(t *testing.T) {
	w := startWorker(t)
	t.Cleanup(w.stop)
	g := startGateway(t)
	owner := "e2e-gateway"
	_, head := fixture(t, owner)

	var alice, bob struct{ Token string }
	if code := g.call(t, "POST", "/api/v1/users", g.admin, map[string]string{"name": "alice"}, &alice); code != 201 {
		t.Fatalf("create user: %d", code)
	}
	g.call(t, "POST", "/api/v1/users", g.admin, map[string]string{"name": "bob"}, &bob)
	if code := g.call(t, "POST", "/api/v1/namespaces", alice.Token, map[string]string{"name": "team"}, nil); code != 201 {
		t.Fatalf("create namespace: %d", code)
	}
	g.call(t, "PUT", "/api/v1/namespaces/team/members/bob", alice.Token, map[string]string{"role": "read"}, nil)
	if code := g.call(t, "POST", "/api/v1/namespaces/team/repositories", alice.Token, map[string]string{"name": "app"}, nil); code != 201 {
		t.Fatalf("create repository: %d", code)
	}
	for _, provider := range []string{"github", "gitlab"} {
		t.Run(provider, func(t *testing.T) {
			var rule struct {
				ID      string `json:"id"`
				Webhook struct{ URL, Secret string }
			}
			code := g.call(t, "POST", "/api/v1/namespaces/team/repositories/app/build-rules", alice.Token, map[string]any{
				"source":          map[string]string{"provider": provider, "owner": owner, "repository": "hello"},
				"triggers":        map[string]any{"branches": []string{"main"}, "tags": true},
				"tag_template":    provider + "-{ref}-{short_commit}",
				"dockerfile_path": "args/Dockerfile",
				"build_args":      map[string]string{"GREETING": "from " + provider},
			}, &rule)
			if code != 201 || rule.Webhook.Secret == "" {
				t.Fatalf("create rule: %d %+v", code, rule)
			}
			// A read-only member is refused every write.
			if code := g.call(t, "POST", "/api/v1/namespaces/team/repositories/app/build-rules/"+rule.ID+"/builds", bob.Token, map[string]string{"branch": "main"}, nil); code != 403 {
				t.Fatalf("read-only build now: %d, want 403", code)
			}
			if code := g.call(t, "PUT", "/api/v1/namespaces/team/repositories/app/build-rules/"+rule.ID, bob.Token, map[string]any{}, nil); code != 403 {
				t.Fatalf("read-only rule edit: %d, want 403", code)
			}

			var push, tag []byte
			var pushHeaders, tagHeaders, badHeaders map[string]string
			path := "/webhooks/" + provider + "/" + rule.ID
			if provider == "github" {
				push = fixturePayload(t, "github/push_branch.json", func(m map[string]any) {
					m["after"], m["ref"] = head, "refs/heads/main"
					m["head_commit"].(map[string]any)["id"] = head
					r := m["repository"].(map[string]any)
					r["name"] = "hello"
					r["owner"].(map[string]any)["login"] = owner
				})
				// GitHub sends a push and a create event for a new tag: the push builds.
				tag = fixturePayload(t, "github/push_tag.json", func(m map[string]any) {
					m["ref"], m["after"] = "refs/tags/v1.0.0", head
					m["head_commit"].(map[string]any)["id"] = head
					r := m["repository"].(map[string]any)
					r["name"] = "hello"
					r["owner"].(map[string]any)["login"] = owner
				})
				create := fixturePayload(t, "github/create_tag.json", func(m map[string]any) {
					m["ref"] = "v1.0.0"
					r := m["repository"].(map[string]any)
					r["name"] = "hello"
					r["owner"].(map[string]any)["login"] = owner
				})
				createHeaders := map[string]string{"X-GitHub-Event": "create", "X-GitHub-Delivery": "d-3", "X-Hub-Signature-256": devstack.SignGitHub(rule.Webhook.Secret, create)}
				if code, none, _ := g.deliver(t, path, create, createHeaders); code != 202 || len(none) != 0 {
					t.Fatalf("create of a tag: %d %v, want 202 and no build (its push decides)", code, none)
				}
				pushHeaders = map[string]string{"X-GitHub-Event": "push", "X-GitHub-Delivery": "d-1", "X-Hub-Signature-256": devstack.SignGitHub(rule.Webhook.Secret, push)}
				tagHeaders = map[string]string{"X-GitHub-Event": "push", "X-GitHub-Delivery": "d-2", "X-Hub-Signature-256": devstack.SignGitHub(rule.Webhook.Secret, tag)}
				badHeaders = map[string]string{"X-GitHub-Event": "push", "X-Hub-Signature-256": devstack.SignGitHub("not-the-secret", push)}
			} else {
				edit := func(ref string) func(map[string]any) {
					return func(m map[string]any) {
						m["ref"], m["checkout_sha"], m["after"] = ref, head, head
						m["project"].(map[string]any)["path_with_namespace"] = owner + "/hello"
					}
				}
				push = fixturePayload(t, "gitlab/push.json", edit("refs/heads/main"))
				tag = fixturePayload(t, "gitlab/tag_push.json", edit("refs/tags/v1.0.0"))
				pushHeaders = map[string]string{"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": rule.Webhook.Secret}
				tagHeaders = map[string]string{"X-Gitlab-Event": "Tag Push Hook", "X-Gitlab-Token": rule.Webhook.Secret}
				badHeaders = map[string]string{"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": "not-the-secret"}
			}
			if code, builds, _ := g.deliver(t, path, push, badHeaders); code != 401 || len(builds) != 0 {
				t.Fatalf("wrong secret: %d %v, want 401", code, builds)
			}
			code, builds, took := g.deliver(t, path, push, pushHeaders)
			if code != 202 || len(builds) != 1 {
				t.Fatalf("push: %d %v", code, builds)
			}
			t.Logf("push delivery answered in %s", took)
			id := builds[0]

			// Follow the log while the build runs; the stream ends when the build does.
			followed := make(chan string, 1)
			go func() {
				req, _ := http.NewRequest("GET", g.url+"/api/v1/builds/"+id+"/logs?follow=1", nil)
				req.Header.Set("Authorization", "Bearer "+bob.Token)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					followed <- "error: " + err.Error()
					return
				}
				defer resp.Body.Close()
				var sb strings.Builder
				sc := bufio.NewScanner(resp.Body)
				for sc.Scan() {
					sb.WriteString(sc.Text() + "\n")
				}
				followed <- sb.String()
			}()

			// A redelivery starts nothing new.
			if code, again, _ := g.deliver(t, path, push, pushHeaders); code != 202 || len(again) != 1 || again[0] != id {
				t.Fatalf("redelivery: %d %v, want the same build %s", code, again, id)
			}
			rec := g.waitBuild(t, bob.Token, id)
			if rec.Status != "succeeded" || rec.Trigger != "push" || rec.Commit != head {
				t.Fatalf("record = %+v", rec)
			}
			if rec.Params == nil || rec.Params.DockerfilePath != "args/Dockerfile" || rec.Params.BuildArgs["GREETING"] != "from "+provider {
				t.Fatalf("params = %+v", rec.Params)
			}
			if len(rec.Steps) != 5 {
				t.Fatalf("steps = %+v", rec.Steps)
			}
			select {
			case text := <-followed:
				if !strings.Contains(text, "==> clone") || !strings.Contains(text, "==> pushed") {
					t.Fatalf("followed log lacks the build:\n%s", text)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("following the log did not end with the build")
			}
			p := pull(t, env.stack.Registry+"/team/app:"+rec.Tags[0])
			if p.files["greeting"] != "from "+provider+"\n" {
				t.Fatalf("greeting = %q", p.files["greeting"])
			}
			// The record opens the execution in the Temporal web UI.
			resp, err := http.Get(rec.UIURL)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 || !strings.Contains(rec.UIURL, "/workflows/"+id+"/") {
				t.Fatalf("ui_url %s answered %d", rec.UIURL, resp.StatusCode)
			}

			code, tagBuilds, _ := g.deliver(t, path, tag, tagHeaders)
			if code != 202 || len(tagBuilds) != 1 {
				t.Fatalf("tag: %d %v", code, tagBuilds)
			}
			trec := g.waitBuild(t, bob.Token, tagBuilds[0])
			if trec.Status != "succeeded" || trec.Trigger != "tag" || trec.Ref != "v1.0.0" {
				t.Fatalf("tag record = %+v", trec)
			}

			var list struct{ Builds []record }
			g.call(t, "GET", "/api/v1/namespaces/team/repositories/app/builds?rule="+rule.ID, bob.Token, nil, &list)
			if len(list.Builds) != 2 {
				t.Fatalf("records of rule %s: %+v, want 2", rule.ID, list.Builds)
			}
		})
	}
}

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }

// jsonRoundTrip decodes v, as decoded JSON, into out.
func jsonRoundTrip(v, out any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, out)
}
