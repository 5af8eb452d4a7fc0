package notify

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/build"
)

func TestCheckURL(t *testing.T) {
	for _, tc := range []struct {
		url, want string
	}{
		{"https://hooks.example/x?y=1", ""},
		{"http://127.0.0.1:9000/hook", ""},
		{"ftp://hooks.example/x", "not http or https"},
		{"hooks.example/x", "not http or https"},
		{"https://", "names no host"},
		{"https://u:p@hooks.example/", "credentials"},
		{"https://u@hooks.example/", "credentials"},
		{"https://hooks.example/#x", "fragment"},
		{"https://hooks.example/" + strings.Repeat("a", MaxURL), "longer"},
	} {
		t.Run(tc.url, func(t *testing.T) {
			err := CheckURL(tc.url)
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("CheckURL = %v, want %q", err, tc.want)
			}
			if err != nil && strings.Contains(err.Error(), "p@") {
				t.Fatalf("the error repeats the credentials: %v", err)
			}
		})
	}
}

func event() build.BuildEvent {
	return build.BuildEvent{Event: build.EventFailed, Status: build.EventFailed, BuildID: "b-1", Namespace: "demo", Repository: "app",
		RuleID: "r-1", Ref: build.Ref{Type: build.RefBranch, Name: "main"}, Commit: "0123456789abcdef", Image: "reg/demo/app",
		Error: "RUN false: exit code 1", BuildURL: "http://gw/builds/b-1", Timestamp: time.Unix(0, 0).UTC()}
}

func TestBody(t *testing.T) {
	b, err := Body(FormatJSON, event())
	if err != nil {
		t.Fatal(err)
	}
	var back map[string]any
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]any{"event": "failed", "build_id": "b-1", "rule_id": "r-1", "commit": "0123456789abcdef",
		"error": "RUN false: exit code 1", "build_url": "http://gw/builds/b-1", "timestamp": "1970-01-01T00:00:00Z"} {
		if back[k] != want {
			t.Errorf("%s = %v, want %v", k, back[k], want)
		}
	}
	if tags, ok := back["tags"].([]any); !ok || len(tags) != 0 {
		t.Errorf("tags = %v, want []", back["tags"])
	}
	s, err := Body(FormatSlack, event())
	if err != nil {
		t.Fatal(err)
	}
	var slack map[string]string
	if err := json.Unmarshal(s, &slack); err != nil || len(slack) != 1 {
		t.Fatalf("slack body %s, %v", s, err)
	}
	for _, want := range []string{":x:", "<http://gw/builds/b-1|b-1>", "demo/app", "branch main @ 0123456", "failed", "exit code 1"} {
		if !strings.Contains(slack["text"], want) {
			t.Errorf("slack text %q lacks %q", slack["text"], want)
		}
	}
	if _, err := Body("xml", event()); err == nil {
		t.Fatal("format xml rendered")
	}
}

func TestSend(t *testing.T) {
	var got http.Header
	var body []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Clone()
		body, _ = io.ReadAll(r.Body)
		switch r.URL.Path {
		case "/ok":
			io.WriteString(w, strings.Repeat("é", 400))
		case "/moved":
			http.Redirect(w, r, "/ok", http.StatusFound)
		default:
			http.Error(w, "no", http.StatusInternalServerError)
		}
	}))
	defer srv.Close()
	c := NewClient(5*time.Second, true)
	payload := []byte(`{"event":"failed"}`)
	a, err := Send(context.Background(), c, Request{URL: srv.URL + "/ok", Secret: "s3cret", Event: "failed", DeliveryID: "d-1", Body: payload})
	if err != nil || a.Status != 200 {
		t.Fatalf("Send = %+v, %v", a, err)
	}
	if len(a.Body) > maxAnswer || !strings.HasPrefix(a.Body, "é") {
		t.Errorf("answer kept %d bytes", len(a.Body))
	}
	if string(body) != string(payload) || got.Get(HeaderEvent) != "failed" || got.Get(HeaderDelivery) != "d-1" {
		t.Errorf("receiver got %s with %v", body, got)
	}
	if !Verify("s3cret", body, got.Get(HeaderSignature)) || Verify("other", body, got.Get(HeaderSignature)) {
		t.Errorf("signature %q does not verify", got.Get(HeaderSignature))
	}
	// A known vector: HMAC-SHA256("key", "The quick brown fox jumps over the lazy dog").
	if s := Sign("key", []byte("The quick brown fox jumps over the lazy dog")); s != "sha256=f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8" {
		t.Errorf("Sign = %s", s)
	}
	for _, path := range []string{"/moved", "/fail"} {
		a, err := Send(context.Background(), c, Request{URL: srv.URL + path, Secret: "s", Body: payload})
		if !errors.Is(err, ErrRefused) || a.Status < 300 {
			t.Errorf("%s: Send = %+v, %v; want refused", path, a, err)
		}
	}
	srv.Close()
	if _, err := Send(context.Background(), c, Request{URL: srv.URL + "/ok?token=hush", Secret: "s", Body: payload}); err == nil || strings.Contains(err.Error(), "hush") {
		t.Errorf("a receiver that is down: %v", err)
	}
}

// TestPrivateAddresses checks that a client for public receivers dials none of the service's
// own networks, by the address dialed.
func TestPrivateAddresses(t *testing.T) {
	for _, tc := range []struct {
		addr   string
		public bool
	}{
		{"127.0.0.1:80", false},
		{"[::1]:443", false},
		{"10.213.4.1:7233", false},
		{"192.168.1.1:80", false},
		{"172.16.0.1:80", false},
		{"169.254.169.254:80", false},
		{"[fe80::1]:80", false},
		{"0.0.0.0:80", false},
		{"[::ffff:127.0.0.1]:80", false},
		{"93.184.216.34:443", true},
		{"[2606:2800:220:1::1]:443", true},
	} {
		t.Run(tc.addr, func(t *testing.T) {
			err := checkPublic(tc.addr)
			if tc.public != (err == nil) {
				t.Fatalf("checkPublic(%s) = %v", tc.addr, err)
			}
			if err != nil && !errors.Is(err, ErrPrivateAddress) {
				t.Fatalf("error %v does not wrap ErrPrivateAddress", err)
			}
		})
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("a client for public receivers reached %s", r.URL)
	}))
	defer srv.Close()
	_, err := Send(context.Background(), NewClient(5*time.Second, false), Request{URL: srv.URL, Secret: "s", Body: []byte("{}")})
	if !errors.Is(err, ErrPrivateAddress) {
		t.Fatalf("sending to loopback: %v", err)
	}
}
