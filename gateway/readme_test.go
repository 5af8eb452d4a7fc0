package gateway

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// readmeBodies are the JSON bodies the README posts to a path ending in suffix, as written
// between single quotes after -d.
func readmeBodies(t *testing.T, suffix string) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`(?s)` + regexp.QuoteMeta(suffix) + ` -d '(\{.*?\})'`)
	var out []map[string]any
	for _, m := range re.FindAllStringSubmatch(string(b), -1) {
		var v map[string]any
		if err := json.Unmarshal([]byte(m[1]), &v); err != nil {
			t.Fatalf("README body %s is not JSON: %v", m[1], err)
		}
		out = append(out, v)
	}
	if len(out) == 0 {
		t.Fatalf("README posts nothing to %s", suffix)
	}
	return out
}

// TestREADMERuleExamples saves the README's build rules and runs its preview: they must work
// as the README says, without warnings.
func TestREADMERuleExamples(t *testing.T) {
	tm := h.newTeam(t, "readme")
	for _, body := range readmeBodies(t, "/repositories/app/build-rules") {
		created := h.createRule(t, tm, body)
		if w, ok := created.View["warnings"]; ok {
			t.Errorf("README rule saved with warnings %v", w)
		}
	}
	for _, body := range readmeBodies(t, "/build-rules/preview") {
		r := h.do(t, "POST", tm.rules()+"/preview", h.writer, body)
		expect(t, r, 200, "README preview")
		var v struct {
			Refs []struct {
				Name    string   `json:"name"`
				Matches bool     `json:"matches"`
				Tags    []string `json:"tags"`
				Error   string   `json:"error"`
			} `json:"refs"`
			Warnings []string `json:"warnings"`
		}
		r.decode(t, &v)
		got := map[string]string{}
		for _, ref := range v.Refs {
			got[ref.Name] = strings.Join(ref.Tags, ",") + map[bool]string{true: "", false: " (no match)"}[ref.Matches] + ref.Error
		}
		want := map[string]string{"release-1.2": "1.2-0000000", "v1.2.3": "1.2.3-0000000,1.2.3,1.2,1"}
		for k, w := range want {
			if got[k] != w {
				t.Errorf("README preview of %s: %q, want %q", k, got[k], w)
			}
		}
		if !strings.HasSuffix(got["main"], "(no match)") || len(v.Warnings) != 0 {
			t.Errorf("README preview: main %q, warnings %v", got["main"], v.Warnings)
		}
	}
}
