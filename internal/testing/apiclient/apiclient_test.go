package apiclient

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
)

func TestClient(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		switch r.URL.Path {
		case "/echo":
			_ = json.NewEncoder(w).Encode(map[string]string{"auth": r.Header.Get("Authorization"),
				"event": r.Header.Get("X-GitHub-Event"), "body": string(body), "type": r.Header.Get("Content-Type")})
		case "/hook":
			w.WriteHeader(http.StatusAccepted)
			_, _ = w.Write([]byte(`{"builds":["b-1"]}`))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	c := Client{URL: srv.URL}
	ctx := context.Background()

	tests := []struct {
		name, path, token string
		body              any
		wantCode          int
		wantAuth          string
		wantErr           bool
	}{
		{"token sent as bearer", "/echo", "tok", map[string]int{"a": 1}, http.StatusOK, "Bearer tok", false},
		{"no token, no header", "/echo", "", nil, http.StatusOK, "", false},
		{"a non-JSON answer is an error naming the status", "/missing", "", nil, http.StatusNotFound, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out map[string]string
			a, err := c.Call(ctx, http.MethodPost, tt.path, tt.token, tt.body, &out)
			if (err != nil) != tt.wantErr || a.Code != tt.wantCode {
				t.Fatalf("Call = %d, %v; want %d, error %v", a.Code, err, tt.wantCode, tt.wantErr)
			}
			if !tt.wantErr && (out["auth"] != tt.wantAuth || out["type"] != "application/json") {
				t.Errorf("server saw %v, want Authorization %q and a JSON content type", out, tt.wantAuth)
			}
			if a.Took <= 0 || a.Answered.IsZero() {
				t.Errorf("answer not timed: %+v", a)
			}
		})
	}
	t.Run("a webhook answer names its builds", func(t *testing.T) {
		a, err := c.Post(ctx, http.MethodPost, "/hook", []byte(`{}`), map[string]string{"X-GitHub-Event": "push"})
		if err != nil || a.Code != http.StatusAccepted || !slices.Equal(a.Builds(), []string{"b-1"}) {
			t.Fatalf("Post = %d %v %v, want 202 naming b-1", a.Code, a.Builds(), err)
		}
	})
	t.Run("a closed server is an error", func(t *testing.T) {
		if _, err := (Client{URL: "http://127.0.0.1:1"}).Call(ctx, http.MethodGet, "/", "", nil, nil); err == nil {
			t.Fatal("Call to a closed port succeeded")
		}
	})
}
