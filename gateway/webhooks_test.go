package gateway

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/converter"

	"github.com/slipway-dev/slipway/build"
)

// fixture reads a delivery of webhook/testdata, lets edit change its JSON, and returns
// the bytes to sign and send.
func fixture(t testing.TB, name string, edit func(map[string]any)) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "webhook", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	if edit == nil {
		return b
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	edit(m)
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// setCommit points a GitHub push at commit.
func setCommit(commit string) func(map[string]any) {
	return func(m map[string]any) {
		m["after"] = commit
		if hc, ok := m["head_commit"].(map[string]any); ok {
			hc["id"] = commit
		}
	}
}

func randomCommit() string { return randomHex(20) }

// deliverGitHub posts a GitHub delivery. An empty signature sends no X-Hub-Signature-256.
func (hs *harness) deliverGitHub(t testing.TB, ruleID, event string, body []byte, signature, delivery string, headers ...string) response {
	t.Helper()
	hdr := append([]string{"X-GitHub-Event", event}, headers...)
	if signature != "" {
		hdr = append(hdr, "X-Hub-Signature-256", signature)
	}
	if delivery != "" {
		hdr = append(hdr, "X-GitHub-Delivery", delivery)
	}
	return hs.do(t, "POST", "/webhooks/github/"+ruleID, "", body, hdr...)
}

// deliverGitLab posts a GitLab delivery. An empty token sends no X-Gitlab-Token.
func (hs *harness) deliverGitLab(t testing.TB, ruleID, event string, body []byte, token string) response {
	t.Helper()
	hdr := []string{"X-Gitlab-Event", event, "X-Gitlab-Event-UUID", randomHex(16)}
	if token != "" {
		hdr = append(hdr, "X-Gitlab-Token", token)
	}
	return hs.do(t, "POST", "/webhooks/gitlab/"+ruleID, "", body, hdr...)
}

// buildIDs returns the builds of a 202 answer to a delivery.
func buildIDs(t testing.TB, r response) []string {
	t.Helper()
	var v struct {
		Builds []string `json:"builds"`
	}
	r.decode(t, &v)
	if v.Builds == nil {
		t.Fatalf("answer %s has no builds list", r)
	}
	return v.Builds
}

// oneBuild checks a delivery was answered 202 with one build and returns its id.
func oneBuild(t testing.TB, r response, what string) string {
	t.Helper()
	expect(t, r, 202, what)
	ids := buildIDs(t, r)
	if len(ids) != 1 || ids[0] == "" {
		t.Fatalf("%s: builds %v, want one", what, ids)
	}
	return ids[0]
}

// noBuild checks a delivery was answered 202 with no build.
func noBuild(t testing.TB, r response, what string) {
	t.Helper()
	expect(t, r, 202, what)
	if ids := buildIDs(t, r); len(ids) != 0 {
		t.Fatalf("%s: started %v, want nothing", what, ids)
	}
}

// searchAttributes describes build id and returns its keyword search attributes.
func (hs *harness) searchAttributes(t testing.TB, id string) (attrs map[string]string, runID string) {
	t.Helper()
	d, err := hs.temporal.DescribeWorkflow(context.Background(), id, "")
	if err != nil {
		t.Fatalf("describing %s: %v", id, err)
	}
	info := d.RawResponse.GetWorkflowExecutionInfo()
	if info.GetType().GetName() != build.WorkflowName {
		t.Errorf("%s runs workflow type %q, want %q", id, info.GetType().GetName(), build.WorkflowName)
	}
	if q := info.GetTaskQueue(); q != hs.cfg.TaskQueue {
		t.Errorf("%s is on task queue %q, want %q", id, q, hs.cfg.TaskQueue)
	}
	attrs = map[string]string{}
	for k, p := range info.GetSearchAttributes().GetIndexedFields() {
		var s string
		if err := converter.GetDefaultDataConverter().FromPayload(p, &s); err == nil {
			attrs[k] = s
		}
	}
	return attrs, info.GetExecution().GetRunId()
}

func TestGitHubWebhook(t *testing.T) {
	t.Parallel()
	h := mockStack(t)
	tm := h.newTeam(t, "gh")
	rule := h.createRule(t, tm, githubRule())
	secret := rule.Secret
	deliver := func(t *testing.T, event string, body []byte) response {
		t.Helper()
		return h.deliverGitHub(t, rule.ID, event, body, sign(secret, body), randomHex(16))
	}

	t.Run("push to a matching branch", func(t *testing.T) {
		commit := randomCommit()
		body := fixture(t, "github/push_branch.json", setCommit(commit))
		id := oneBuild(t, deliver(t, "push", body), "push")
		attrs, runID := h.searchAttributes(t, id)
		want := map[string]string{"SlipwayNamespace": tm.ns, "SlipwayRepository": "app", "SlipwayRule": rule.ID,
			"GitRef": "main", "GitCommit": commit, "BuildTrigger": "push"}
		for k, v := range want {
			if attrs[k] != v {
				t.Errorf("search attribute %s = %q, want %q", k, attrs[k], v)
			}
		}
		q := ruleQuery(rule.ID) + fmt.Sprintf(" AND GitCommit = '%s'", commit)
		h.expectBuilds(t, q, 1)

		// A redelivery (GitHub's "redeliver" keeps the delivery id; a repeated event has a new
		// one) finds the same build.
		for _, delivery := range []string{"d-1", "d-1", "d-2", ""} {
			r := h.deliverGitHub(t, rule.ID, "push", body, sign(secret, body), delivery)
			if again := oneBuild(t, r, "redelivery"); again != id {
				t.Errorf("redelivery (delivery id %q) answered build %s, want %s", delivery, again, id)
			}
		}
		if _, again := h.searchAttributes(t, id); again != runID {
			t.Errorf("redelivery made run %s, want the first run %s", again, runID)
		}
		h.expectBuilds(t, q, 1)

		// A late redelivery after the build ended starts no second build.
		if err := h.temporal.TerminateWorkflow(context.Background(), id, "", "test"); err != nil {
			t.Fatal(err)
		}
		if again := oneBuild(t, deliver(t, "push", body), "redelivery after the end"); again != id {
			t.Errorf("redelivery after the end answered %s, want %s", again, id)
		}
		if _, again := h.searchAttributes(t, id); again != runID {
			t.Errorf("redelivery after the end made run %s, want %s", again, runID)
		}
		h.expectBuilds(t, q, 1)
	})

	t.Run("new tag: push and create are one build", func(t *testing.T) {
		for _, order := range [][2]string{{"push", "create"}, {"create", "push"}} {
			tag := "v" + randomHex(3)
			push := fixture(t, "github/push_tag.json", func(m map[string]any) { m["ref"] = "refs/tags/" + tag })
			create := fixture(t, "github/create_tag.json", func(m map[string]any) { m["ref"] = tag })
			bodies := map[string][]byte{"push": push, "create": create}
			// The create event carries no commit: its push decides, and the tag's build is
			// known by its commit.
			var first string
			for _, event := range order {
				r := deliver(t, event, bodies[event])
				if event == "create" {
					noBuild(t, r, "create of a tag")
					continue
				}
				first = oneBuild(t, r, "push of a tag")
			}
			attrs, _ := h.searchAttributes(t, first)
			if attrs["BuildTrigger"] != "tag" || attrs["GitRef"] != tag {
				t.Errorf("tag build has trigger %q ref %q, want tag %s", attrs["BuildTrigger"], attrs["GitRef"], tag)
			}
			h.expectBuilds(t, ruleQuery(rule.ID)+fmt.Sprintf(" AND GitRef = '%s'", tag), 1)
		}
	})

	t.Run("deliveries that build nothing", func(t *testing.T) {
		quiet := h.createRule(t, tm, githubRule())
		for _, tc := range []struct {
			name, event, file string
			edit              func(map[string]any)
		}{
			{"branch not in triggers", "push", "github/push_branch.json", func(m map[string]any) { m["ref"] = "refs/heads/develop" }},
			{"branch matching no pattern", "push", "github/push_branch.json", func(m map[string]any) { m["ref"] = "refs/heads/release/1/hotfix" }},
			{"deleted branch", "push", "github/push_branch_deleted.json", func(m map[string]any) { m["ref"] = "refs/heads/main" }},
			{"deleted tag", "push", "github/push_tag_deleted.json", nil},
			{"another repository", "push", "github/push_branch.json", func(m map[string]any) {
				m["repository"].(map[string]any)["name"] = "other"
			}},
			{"another owner", "push", "github/push_branch.json", func(m map[string]any) {
				m["repository"].(map[string]any)["owner"].(map[string]any)["name"] = "someone"
				m["repository"].(map[string]any)["owner"].(map[string]any)["login"] = "someone"
			}},
			{"branch creation", "create", "github/create_branch.json", nil},
			{"issue", "issues", "github/issues.json", nil},
		} {
			t.Run(tc.name, func(t *testing.T) {
				body := fixture(t, tc.file, tc.edit)
				r := h.deliverGitHub(t, quiet.ID, tc.event, body, sign(quiet.Secret, body), randomHex(8))
				noBuild(t, r, tc.name)
			})
		}

		t.Run("ping", func(t *testing.T) {
			body := fixture(t, "github/ping.json", nil)
			r := h.deliverGitHub(t, quiet.ID, "ping", body, sign(quiet.Secret, body), "")
			expect(t, r, 200, "ping")
		})

		// Deliveries that must not verify, of an event that would build.
		body := fixture(t, "github/push_branch.json", setCommit(randomCommit()))
		sha1Sig := func() string {
			m := hmac.New(sha1.New, []byte(quiet.Secret))
			m.Write(body)
			return "sha1=" + hex.EncodeToString(m.Sum(nil))
		}()
		for _, tc := range []struct {
			name, signature string
			headers         []string
		}{
			{"missing signature", "", nil},
			{"wrong signature", sign("not the secret", body), nil},
			{"signature of another body", sign(quiet.Secret, append([]byte(" "), body...)), nil},
			{"another rule's secret", sign(secret, body), nil},
			{"sha1 only", "", []string{"X-Hub-Signature", sha1Sig}},
			{"sha1 in the sha256 header", sha1Sig, nil},
			{"truncated signature", sign(quiet.Secret, body)[:40], nil},
			{"uppercase scheme", "SHA256=" + strings.TrimPrefix(sign(quiet.Secret, body), "sha256="), nil},
		} {
			t.Run(tc.name, func(t *testing.T) {
				r := h.deliverGitHub(t, quiet.ID, "push", body, tc.signature, randomHex(8), tc.headers...)
				expect(t, r, 401, tc.name)
				r.errorMessage(t)
			})
		}

		// The signature covers the body, not the event header: a signed body replayed under
		// another event type must start nothing (the body's own event is the redelivery above).
		for _, event := range []string{"create", "ping", "issues", "release", "delete", ""} {
			t.Run("signed push replayed as "+event, func(t *testing.T) {
				r := h.deliverGitHub(t, quiet.ID, event, body, sign(quiet.Secret, body), randomHex(8))
				switch r.code {
				case 200, 400:
				case 202:
					noBuild(t, r, "replay as "+event)
				default:
					t.Fatalf("replay as %q: %s", event, r)
				}
			})
		}

		t.Run("malformed JSON, correctly signed", func(t *testing.T) {
			bad := []byte(`{"ref": "refs/heads/main", `)
			r := h.deliverGitHub(t, quiet.ID, "push", bad, sign(quiet.Secret, bad), "")
			expect(t, r, 400, "malformed JSON")
			r.errorMessage(t)
		})
		t.Run("push without a commit, correctly signed", func(t *testing.T) {
			bad := fixture(t, "github/push_branch.json", setCommit("not-a-commit"))
			r := h.deliverGitHub(t, quiet.ID, "push", bad, sign(quiet.Secret, bad), "")
			expect(t, r, 400, "push without commit")
		})
		t.Run("body over 25 MiB", func(t *testing.T) {
			big := bytes.Repeat([]byte(" "), maxWebhookBody+1)
			copy(big, body)
			r := h.deliverGitHub(t, quiet.ID, "push", big, sign(quiet.Secret, big), "")
			expect(t, r, 413, "oversized delivery")
			r.errorMessage(t)
		})
		t.Run("unknown rule", func(t *testing.T) {
			r := h.deliverGitHub(t, "r-nosuchrule00", "push", body, sign(quiet.Secret, body), "")
			expect(t, r, 404, "unknown rule")
		})

		h.expectBuilds(t, ruleQuery(quiet.ID), 0)
	})
}

// TestGitHubWebhookOnTemporal holds the deliveries whose answer rests on Temporal itself:
// what a server that deleted an execution answers, and its deduplication of concurrent starts.
func TestGitHubWebhookOnTemporal(t *testing.T) {
	h := devStack(t)
	tm := h.newTeam(t, "ghdev")
	rule := h.createRule(t, tm, githubRule())
	secret := rule.Secret
	deliver := func(t *testing.T, event string, body []byte) response {
		t.Helper()
		return h.deliverGitHub(t, rule.ID, event, body, sign(secret, body), randomHex(16))
	}

	t.Run("a delivery Temporal forgot starts nothing", func(t *testing.T) {
		commit := randomCommit()
		body := fixture(t, "github/push_branch.json", setCommit(commit))
		id := oneBuild(t, deliver(t, "push", body), "push")
		if d, err := h.store.FindDelivery(context.Background(), rule.ID, id, time.Now().Add(-time.Hour)); err != nil || d.BuildID != id {
			t.Fatalf("delivery record = %+v, %v", d, err)
		}
		// Deleted, as Temporal does once the namespace's retention has passed.
		ctx := context.Background()
		if _, err := h.temporal.WorkflowService().DeleteWorkflowExecution(ctx, &workflowservice.DeleteWorkflowExecutionRequest{
			Namespace: "default", WorkflowExecution: &commonpb.WorkflowExecution{WorkflowId: id},
		}); err != nil {
			t.Fatal(err)
		}
		gone := func() bool {
			_, err := h.temporal.DescribeWorkflow(ctx, id, "")
			var nf *serviceerror.NotFound
			return errors.As(err, &nf)
		}
		for deadline := time.Now().Add(30 * time.Second); !gone(); time.Sleep(100 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("execution not deleted")
			}
		}
		if again := oneBuild(t, deliver(t, "push", body), "replay"); again != id {
			t.Errorf("replay answered %s, want %s", again, id)
		}
		if !gone() {
			t.Error("the replay started the build again")
		}
	})

	t.Run("50 concurrent copies of one new event", func(t *testing.T) {
		commit := randomCommit()
		body := fixture(t, "github/push_branch.json", setCommit(commit))
		sig := sign(secret, body)
		const n = 50
		var (
			wg      sync.WaitGroup
			mu      sync.Mutex
			answers = map[string]int{}
		)
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := h.deliverGitHub(t, rule.ID, "push", body, sig, "")
				key := r.String()
				if r.code == 202 {
					var v struct {
						Builds []string `json:"builds"`
					}
					if json.Unmarshal(r.body, &v) == nil {
						key = strings.Join(v.Builds, ",")
					}
				}
				mu.Lock()
				answers[key]++
				mu.Unlock()
			}()
		}
		wg.Wait()
		if len(answers) != 1 {
			t.Fatalf("50 copies of one event got different answers: %v", answers)
		}
		for k := range answers {
			if strings.Contains(k, ",") || strings.HasPrefix(k, "5") || strings.HasPrefix(k, "4") {
				t.Fatalf("50 copies of one event answered %q", k)
			}
		}
		h.expectBuilds(t, ruleQuery(rule.ID)+fmt.Sprintf(" AND GitCommit = '%s'", commit), 1)
	})
}

// TestEmptySecretNeverValidates blanks a rule's stored secret, as a hand-edited or half-migrated
// database might: no delivery verifies against it, not even one signed with the empty key.
func TestEmptySecretNeverValidates(t *testing.T) {
	t.Parallel()
	h := mockStack(t)
	tm := h.newTeam(t, "empty")
	gh := h.createRule(t, tm, githubRule())
	gl := h.createRule(t, tm, map[string]any{
		"source":   map[string]any{"provider": "gitlab", "owner": "mike", "repository": "diaspora"},
		"triggers": map[string]any{"branches": []string{"master"}, "tags": true},
	})
	db, err := sql.Open("sqlite", h.cfg.DatabaseURL+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, id := range []string{gh.ID, gl.ID} {
		if _, err := db.Exec("UPDATE rules SET webhook_secret = '' WHERE id = ?", id); err != nil {
			t.Fatal(err)
		}
	}
	body := fixture(t, "github/push_branch.json", setCommit(randomCommit()))
	for _, tc := range []struct{ name, signature string }{
		{"signed with the empty key", sign("", body)},
		{"signed with the old secret", sign(gh.Secret, body)},
		{"unsigned", ""},
	} {
		t.Run("github "+tc.name, func(t *testing.T) {
			expect(t, h.deliverGitHub(t, gh.ID, "push", body, tc.signature, randomHex(8)), 401, tc.name)
		})
	}
	push := fixture(t, "gitlab/push.json", nil)
	for _, tc := range []struct{ name, token string }{
		{"without a token", ""}, {"with the old secret", gl.Secret}, {"with a blank token", " "},
	} {
		t.Run("gitlab "+tc.name, func(t *testing.T) {
			expect(t, h.deliverGitLab(t, gl.ID, "Push Hook", push, tc.token), 401, tc.name)
		})
	}
	h.expectBuilds(t, ruleQuery(gh.ID), 0)
	h.expectBuilds(t, ruleQuery(gl.ID), 0)
}

func TestGitLabWebhook(t *testing.T) {
	t.Parallel()
	h := mockStack(t)
	tm := h.newTeam(t, "gl")
	rule := h.createRule(t, tm, map[string]any{
		"source":   map[string]any{"provider": "gitlab", "owner": "mike", "repository": "diaspora"},
		"triggers": map[string]any{"branches": []string{"master"}, "tags": true},
	})
	if want := h.cfg.GatewayURL + "/webhooks/gitlab/" + rule.ID; rule.Webhook != want {
		t.Errorf("webhook url %q, want %q", rule.Webhook, want)
	}
	toDiaspora := func(m map[string]any) {
		m["project"].(map[string]any)["path_with_namespace"] = "mike/diaspora"
	}
	push := fixture(t, "gitlab/push.json", nil)
	tag := fixture(t, "gitlab/tag_push.json", toDiaspora)

	t.Run("push hook", func(t *testing.T) {
		id := oneBuild(t, h.deliverGitLab(t, rule.ID, "Push Hook", push, rule.Secret), "push hook")
		attrs, _ := h.searchAttributes(t, id)
		if attrs["BuildTrigger"] != "push" || attrs["GitRef"] != "master" || attrs["GitCommit"] != "da1560886d4f094c3e6c9ef40349f7d38b5d27d7" {
			t.Errorf("push hook build has attributes %v", attrs)
		}
		if again := oneBuild(t, h.deliverGitLab(t, rule.ID, "Push Hook", push, rule.Secret), "push hook again"); again != id {
			t.Errorf("repeated push hook started %s, want %s", again, id)
		}
	})
	t.Run("tag push hook", func(t *testing.T) {
		id := oneBuild(t, h.deliverGitLab(t, rule.ID, "Tag Push Hook", tag, rule.Secret), "tag push hook")
		attrs, _ := h.searchAttributes(t, id)
		if attrs["BuildTrigger"] != "tag" || attrs["GitRef"] != "v1.0.0" {
			t.Errorf("tag push hook build has attributes %v", attrs)
		}
	})
	h.expectBuilds(t, ruleQuery(rule.ID), 2)

	quiet := h.createRule(t, tm, map[string]any{
		"source":   map[string]any{"provider": "gitlab", "owner": "mike", "repository": "diaspora"},
		"triggers": map[string]any{"branches": []string{"master"}, "tags": true},
	})
	for _, tc := range []struct {
		name, event, token string
		body               []byte
		want               int
	}{
		{"missing token", "Push Hook", "", push, 401},
		{"wrong token", "Push Hook", "not-the-secret", push, 401},
		{"another rule's token", "Push Hook", rule.Secret, push, 401},
		{"token extending the secret", "Tag Push Hook", quiet.Secret + "0", tag, 401},
		{"prefix of the token", "Tag Push Hook", quiet.Secret[:32], tag, 401},
		{"deleted branch", "Push Hook", quiet.Secret, fixture(t, "gitlab/push_deleted.json", func(m map[string]any) {
			m["ref"] = "refs/heads/master"
			toDiaspora(m)
		}), 202},
		{"another project", "Push Hook", quiet.Secret, fixture(t, "gitlab/tag_push.json", func(m map[string]any) {
			m["object_kind"] = "push"
			m["ref"] = "refs/heads/master"
		}), 202},
		{"merge request", "Merge Request Hook", quiet.Secret, fixture(t, "gitlab/merge_request.json", nil), 202},
		{"malformed JSON", "Push Hook", quiet.Secret, []byte("{"), 400},
		{"hook and body disagree", "Tag Push Hook", quiet.Secret, push, 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := h.deliverGitLab(t, quiet.ID, tc.event, tc.body, tc.token)
			if tc.want == 202 {
				noBuild(t, r, tc.name)
				return
			}
			expect(t, r, tc.want, tc.name)
			r.errorMessage(t)
		})
	}
	t.Run("rule of the other provider", func(t *testing.T) {
		expect(t, h.deliverGitHub(t, quiet.ID, "push", push, sign(quiet.Secret, push), ""), 404, "gitlab rule on the github endpoint")
		gh := h.createRule(t, tm, githubRule())
		expect(t, h.deliverGitLab(t, gh.ID, "Push Hook", push, gh.Secret), 404, "github rule on the gitlab endpoint")
	})
	h.expectBuilds(t, ruleQuery(quiet.ID), 0)
}
