package gateway

import (
	"net/http"
	"strings"
	"testing"
)

func TestBodyIsOneJSONObject(t *testing.T) {
	t.Parallel()
	h := mockStack(t)
	for _, tt := range []struct {
		name, body string
		want       int
		msg        string
	}{
		{"one object", `{"name":"` + h.name("json") + `"}`, http.StatusCreated, ""},
		{"trailing data", `{"name":"` + h.name("json") + `"} junk`, http.StatusBadRequest, "data after the JSON object"},
		{"two objects", `{"name":"` + h.name("json") + `"}{"name":"x"}`, http.StatusBadRequest, "data after the JSON object"},
		{"trailing whitespace is fine", `{"name":"` + h.name("json") + `"}` + "\n\t ", http.StatusCreated, ""},
		{"empty", ``, http.StatusBadRequest, "empty body"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := h.do(t, "POST", "/api/v1/namespaces", h.owner, tt.body)
			if r.code != tt.want {
				t.Fatalf("got %s, want %d", r, tt.want)
			}
			if tt.msg != "" && !strings.Contains(r.errorMessage(t), tt.msg) {
				t.Fatalf("error %q lacks %q", r.errorMessage(t), tt.msg)
			}
		})
	}
}
