package gateway

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/slipway-dev/slipway/build"
	"github.com/slipway-dev/slipway/builds"
	"github.com/slipway-dev/slipway/config"
	"github.com/slipway-dev/slipway/retention"
	"github.com/slipway-dev/slipway/store"
)

// openAPI is the part of an OpenAPI document the tests read; schemas stay generic.
type openAPI struct {
	OpenAPI    string                                `json:"openapi"`
	Security   []map[string][]string                 `json:"security"`
	Paths      map[string]map[string]json.RawMessage `json:"paths"`
	Components struct {
		SecuritySchemes map[string]map[string]any `json:"securitySchemes"`
		Responses       map[string]map[string]any `json:"responses"`
		Schemas         map[string]map[string]any `json:"schemas"`
	} `json:"components"`
}

type operation struct {
	Parameters []struct {
		Name     string `json:"name"`
		In       string `json:"in"`
		Required bool   `json:"required"`
	} `json:"parameters"`
	RequestBody *json.RawMessage           `json:"requestBody"`
	Responses   map[string]json.RawMessage `json:"responses"`
	Security    *[]map[string][]string     `json:"security"`
}

var httpMethods = map[string]bool{"get": true, "put": true, "post": true, "delete": true,
	"patch": true, "head": true, "options": true, "trace": true}

func loadOpenAPI(t *testing.T) openAPI {
	t.Helper()
	b, err := os.ReadFile("openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc openAPI
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("openapi.json is not JSON: %v", err)
	}
	if doc.OpenAPI != "3.1.0" {
		t.Fatalf("openapi = %q, want 3.1.0", doc.OpenAPI)
	}
	return doc
}

// ginParam matches the :name and *name segments of a gin route.
var ginParam = regexp.MustCompile(`[:*]([A-Za-z_][A-Za-z0-9_]*)`)

// routeKeys are the (method, OpenAPI path) pairs the router registers.
func routeKeys() map[string]bool {
	a := testServer(config.Config{}, nil, nil, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	keys := map[string]bool{}
	for _, r := range apiRoutes(a.engine) {
		keys[r.Method+" "+ginParam.ReplaceAllString(r.Path, "{$1}")] = true
	}
	return keys
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TestOpenAPIRoutes checks the document describes exactly the routes the router serves.
func TestOpenAPIRoutes(t *testing.T) {
	doc := loadOpenAPI(t)
	documented := map[string]bool{}
	for path, item := range doc.Paths {
		for m := range item {
			if httpMethods[m] {
				documented[strings.ToUpper(m)+" "+path] = true
			}
		}
	}
	served := routeKeys()
	for _, k := range sortedKeys(served) {
		if !documented[k] {
			t.Errorf("route %s is not in openapi.json", k)
		}
	}
	for _, k := range sortedKeys(documented) {
		if !served[k] {
			t.Errorf("openapi.json documents %s, which the router does not serve", k)
		}
	}
}

// TestOpenAPIOperations checks each operation: its path parameters, its security, that it
// answers something 2xx and that every $ref resolves.
func TestOpenAPIOperations(t *testing.T) {
	doc := loadOpenAPI(t)
	b, err := os.ReadFile("openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range regexp.MustCompile(`"\$ref":\s*"([^"]+)"`).FindAllStringSubmatch(string(b), -1) {
		parts := strings.Split(strings.TrimPrefix(m[1], "#/components/"), "/")
		ok := len(parts) == 2 && strings.HasPrefix(m[1], "#/components/")
		if ok {
			switch parts[0] {
			case "schemas":
				_, ok = doc.Components.Schemas[parts[1]]
			case "responses":
				_, ok = doc.Components.Responses[parts[1]]
			default:
				ok = false
			}
		}
		if !ok {
			t.Errorf("$ref %s does not resolve", m[1])
		}
	}
	if _, ok := doc.Components.SecuritySchemes["bearerAuth"]; !ok {
		t.Error("no bearerAuth security scheme")
	}
	for path, item := range doc.Paths {
		var inPath []string
		for _, m := range regexp.MustCompile(`\{([^}]+)\}`).FindAllStringSubmatch(path, -1) {
			inPath = append(inPath, m[1])
		}
		sort.Strings(inPath)
		for method, raw := range item {
			if !httpMethods[method] {
				continue
			}
			name := strings.ToUpper(method) + " " + path
			var op operation
			if err := json.Unmarshal(raw, &op); err != nil {
				t.Errorf("%s: %v", name, err)
				continue
			}
			var declared []string
			for _, p := range op.Parameters {
				if p.In == "path" {
					declared = append(declared, p.Name)
					if !p.Required {
						t.Errorf("%s: path parameter %s is not required", name, p.Name)
					}
				}
			}
			sort.Strings(declared)
			if strings.Join(declared, ",") != strings.Join(inPath, ",") {
				t.Errorf("%s: declares path parameters %v, path has %v", name, declared, inPath)
			}
			security := doc.Security
			if op.Security != nil {
				security = *op.Security
			}
			bearer := len(security) == 1 && security[0]["bearerAuth"] != nil
			wantBearer := strings.HasPrefix(path, "/api/v1/") && path != "/api/v1/openapi.json"
			if bearer != wantBearer {
				t.Errorf("%s: bearerAuth required = %v, want %v", name, bearer, wantBearer)
			}
			if !bearer && len(security) != 0 {
				t.Errorf("%s: security %v, want none", name, security)
			}
			if wantBearer {
				if _, ok := op.Responses["401"]; !ok {
					t.Errorf("%s: no 401 answer", name)
				}
			}
			ok2xx := false
			for code := range op.Responses {
				ok2xx = ok2xx || strings.HasPrefix(code, "2")
			}
			if !ok2xx {
				t.Errorf("%s: no 2xx answer", name)
			}
			// Actions on what the path names (cancel, rotate a token or a secret) take no body.
			if (method == "post" || method == "put") && op.RequestBody == nil &&
				!strings.HasSuffix(path, "/cancel") && !strings.HasSuffix(path, "/token") && !strings.HasSuffix(path, "/webhook-secret") &&
				!strings.HasSuffix(path, "/badge-token") && !strings.HasSuffix(path, "/secret") {
				t.Errorf("%s: no request body", name)
			}
		}
	}
}

// TestOpenAPIServed checks the gateway serves the document as the file holds it.
func TestOpenAPIServed(t *testing.T) {
	b, err := os.ReadFile("openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	a := testServer(config.Config{}, nil, nil, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	rec := httptest.NewRecorder()
	a.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/v1/openapi.json", nil))
	if rec.Code != http.StatusOK || rec.Body.String() != string(b) {
		t.Fatalf("GET /api/v1/openapi.json answered %d with %d bytes, want 200 with openapi.json (%d bytes)",
			rec.Code, rec.Body.Len(), len(b))
	}
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type %q", ct)
	}
}

// TestOpenAPISchemasMatchTypes checks each component schema lists exactly the JSON fields of
// the Go type the API answers or reads with it, so a new field must be documented.
func TestOpenAPISchemasMatchTypes(t *testing.T) {
	doc := loadOpenAPI(t)
	for _, tc := range []struct {
		schema string
		typ    any
	}{
		{"BuildRecord", builds.Record{}},
		{"BuildParams", builds.Params{}},
		{"StepStatus", build.StepStatus{}},
		{"Ref", build.Ref{}},
		{"BuildSource", build.Source{}},
		{"Rule", store.Rule{}},
		{"RuleHook", store.RuleHook{}},
		{"Account", store.Account{}},
		{"RuleView", ruleView{}},
		{"Webhook", webhookView{}},
		{"RuleInput", ruleBody{}},
		{"Source", store.Source{}},
		{"Triggers", build.Triggers{}},
		{"PathFilter", build.PathFilter{}},
		{"PreviewRef", previewRef{}},
		{"Repository", repositoryView{}},
		{"NameBody", nameBody{}},
		{"User", userView{}},
		{"TokenInfo", tokenView{}},
		{"NamespaceRole", store.Membership{}},
		{"Member", store.Member{}},
		{"OrphanedHook", store.OrphanedHook{}},
		{"RepositoryOrphanedHook", hookReport{}},
		{"Notification", store.Notification{}},
		{"NotificationInput", notificationBody{}},
		{"NotificationDelivery", store.NotificationDelivery{}},
		{"Badge", badgeView{}},
		{"RetentionPolicy", build.RetentionPolicy{}},
		{"RetentionRule", build.RetentionRule{}},
		{"RetentionView", retentionView{}},
		{"RetentionDryRun", dryRunAnswer{}},
		{"RetentionDecision", retention.Decision{}},
	} {
		t.Run(tc.schema, func(t *testing.T) {
			want := jsonFields(reflect.TypeOf(tc.typ))
			got := schemaProperties(t, doc, doc.Components.Schemas[tc.schema])
			if len(got) == 0 {
				t.Fatalf("schema %s has no properties", tc.schema)
			}
			for _, f := range sortedKeys(want) {
				if !got[f] {
					t.Errorf("%T has field %q, schema %s does not", tc.typ, f, tc.schema)
				}
			}
			for _, f := range sortedKeys(got) {
				if !want[f] {
					t.Errorf("schema %s has property %q, %T does not", tc.schema, f, tc.typ)
				}
			}
		})
	}
}

// jsonFields returns the names encoding/json gives the fields of struct type t, with embedded
// structs flattened as encoding/json flattens them.
func jsonFields(t reflect.Type) map[string]bool {
	out := map[string]bool{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				for k := range jsonFields(ft) {
					out[k] = true
				}
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = true
	}
	return out
}

// schemaProperties returns the property names of schema s, following $ref and allOf.
func schemaProperties(t *testing.T, doc openAPI, s map[string]any) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	if ref, ok := s["$ref"].(string); ok {
		name := strings.TrimPrefix(ref, "#/components/schemas/")
		target, ok := doc.Components.Schemas[name]
		if !ok {
			t.Fatalf("$ref %s does not resolve", ref)
		}
		return schemaProperties(t, doc, target)
	}
	if props, ok := s["properties"].(map[string]any); ok {
		for k := range props {
			out[k] = true
		}
	}
	if all, ok := s["allOf"].([]any); ok {
		for _, part := range all {
			m, _ := part.(map[string]any)
			for k := range schemaProperties(t, doc, m) {
				out[k] = true
			}
		}
	}
	return out
}
