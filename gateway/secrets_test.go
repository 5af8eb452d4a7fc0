package gateway

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/slipway-dev/slipway/build"
)

// matrixSecretValue is the value the permission matrix sets; no answer may show it.
const matrixSecretValue = "matrix-secret-value-0f3c"

// secretName is a fresh secret name.
func secretName() string {
	return "S_" + strings.ToUpper(strings.ReplaceAll(h.name("s"), "-", "_"))
}

// storeSecret sets a fresh secret of namespace ns straight in the store and returns its name.
func storeSecret(t testing.TB, ns string) string {
	t.Helper()
	n := secretName()
	if _, _, err := h.store.PutSecret(context.Background(), ns, n, []byte(matrixSecretValue), "owner"); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestSecretsAPI(t *testing.T) {
	const value = "s3cr3t-value-of-the-gateway-test"
	hs := mockStack(t)
	// Every answer, and the gateway's log at the end, is searched for the value.
	hs.addSecret(value)
	tm := hs.newTeam(t, "sec")
	secrets := "/api/v1/namespaces/" + tm.ns + "/secrets"
	put := func(who, name string, body any) response {
		return hs.do(t, "PUT", secrets+"/"+name, who, body)
	}

	t.Run("set", func(t *testing.T) {
		for _, tt := range []struct {
			name, who, secret string
			body              any
			want              int
		}{
			{"a reader may not", hs.reader, "NPM_TOKEN", map[string]string{"value": value}, http.StatusForbidden},
			{"a non-member does not see the namespace", hs.outsider, "NPM_TOKEN", map[string]string{"value": value}, http.StatusNotFound},
			{"a writer creates", hs.writer, "NPM_TOKEN", map[string]string{"value": value}, http.StatusCreated},
			{"a writer replaces", hs.writer, "NPM_TOKEN", map[string]string{"value": value + "-2"}, http.StatusOK},
			{"a name no variable could have", hs.writer, "1BAD", map[string]string{"value": value}, http.StatusBadRequest},
			{"a dash in the name", hs.writer, "NPM-TOKEN", map[string]string{"value": value}, http.StatusBadRequest},
			{"no value", hs.writer, "EMPTY", map[string]string{}, http.StatusBadRequest},
			{"an empty value", hs.writer, "EMPTY", map[string]string{"value": ""}, http.StatusBadRequest},
			{"a value too long", hs.writer, "BIG", map[string]string{"value": strings.Repeat("x", build.MaxSecretValueLen+1)}, http.StatusBadRequest},
			{"an unknown field", hs.writer, "X", map[string]string{"value": "v", "secret": "v"}, http.StatusBadRequest},
		} {
			t.Run(tt.name, func(t *testing.T) {
				r := put(tt.who, tt.secret, tt.body)
				expect(t, r, tt.want, "PUT "+tt.secret)
				if strings.Contains(string(r.body), value) {
					t.Fatalf("the answer shows the value: %s", r)
				}
			})
		}
	})

	t.Run("list shows names, never values", func(t *testing.T) {
		r := hs.do(t, "GET", secrets, hs.reader, nil)
		expect(t, r, http.StatusOK, "list")
		if strings.Contains(string(r.body), value) {
			t.Fatalf("the list shows a value: %s", r)
		}
		var got struct {
			Secrets []map[string]any `json:"secrets"`
		}
		r.decode(t, &got)
		if len(got.Secrets) != 1 || got.Secrets[0]["name"] != "NPM_TOKEN" || got.Secrets[0]["updated_by"] != "writer" {
			t.Fatalf("list = %s", r)
		}
		if _, ok := got.Secrets[0]["value"]; ok {
			t.Fatalf("the list has a value field: %s", r)
		}
	})

	t.Run("rules name existing secrets only", func(t *testing.T) {
		body := githubRule()
		body["secrets"] = []string{"NPM_TOKEN", "NOT_SET"}
		r := hs.do(t, "POST", tm.rules(), hs.writer, body)
		expect(t, r, http.StatusBadRequest, "a rule naming an unset secret")
		if !strings.Contains(string(r.body), "NOT_SET") || strings.Contains(string(r.body), `NPM_TOKEN`) {
			t.Fatalf("the refusal must name the missing secret only: %s", r)
		}
		body["secrets"] = []string{"bad-name"}
		expect(t, hs.do(t, "POST", tm.rules(), hs.writer, body), http.StatusBadRequest, "a bad secret name")
		body["secrets"] = []string{"NPM_TOKEN", "NPM_TOKEN"}
		expect(t, hs.do(t, "POST", tm.rules(), hs.writer, body), http.StatusBadRequest, "a name twice")

		body["secrets"] = []string{"NPM_TOKEN"}
		rule := hs.createRule(t, tm, body)
		if got, _ := json.Marshal(rule.View["secrets"]); string(got) != `["NPM_TOKEN"]` {
			t.Fatalf("rule secrets = %s", got)
		}
		// Build now starts a build whose input names the secret and holds no value.
		r = hs.do(t, "POST", tm.rule(rule.ID)+"/builds", hs.writer, map[string]string{"branch": "main"})
		expect(t, r, http.StatusAccepted, "build now")
		var started struct{ ID string }
		r.decode(t, &started)
		run := hs.fake.run(started.ID)
		if run == nil {
			t.Fatalf("no build started: %s", r)
		}
		in, ok := run.input.(build.Input)
		if !ok || !slices.Equal(in.Secrets, []string{"NPM_TOKEN"}) {
			t.Fatalf("started input = %#v", run.input)
		}
		raw, _ := json.Marshal(run.input)
		memo, _ := json.Marshal(run.opts.Memo)
		sa := map[string]any{}
		for k, v := range run.opts.TypedSearchAttributes.GetUntypedValues() {
			sa[k.GetName()] = v
		}
		attrs, _ := json.Marshal(sa)
		for what, b := range map[string][]byte{"input": raw, "memo": memo, "search attributes": attrs} {
			if strings.Contains(string(b), value) {
				t.Fatalf("the build's %s holds the value: %s", what, b)
			}
		}
		// Its record shows the names among its parameters.
		r = hs.do(t, "GET", "/api/v1/builds/"+started.ID, hs.reader, nil)
		expect(t, r, http.StatusOK, "record")
		if !strings.Contains(string(r.body), `"secrets":["NPM_TOKEN"]`) || strings.Contains(string(r.body), value) {
			t.Fatalf("record = %s", r)
		}
	})

	t.Run("delete", func(t *testing.T) {
		expect(t, hs.do(t, "DELETE", secrets+"/NPM_TOKEN", hs.writer, nil), http.StatusForbidden, "a writer deletes")
		expect(t, hs.do(t, "DELETE", secrets+"/NPM_TOKEN", hs.reader, nil), http.StatusForbidden, "a reader deletes")
		expect(t, hs.do(t, "DELETE", secrets+"/NPM_TOKEN", hs.owner, nil), http.StatusNoContent, "an admin deletes")
		expect(t, hs.do(t, "DELETE", secrets+"/NPM_TOKEN", hs.owner, nil), http.StatusNotFound, "deleted twice")
	})
}
