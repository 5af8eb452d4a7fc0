package e2e

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

// person is someone at the console in a browser: cookies kept, redirects followed.
type person struct {
	t      *testing.T
	client *http.Client
}

func newPerson(t *testing.T) *person {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &person{t: t, client: &http.Client{Jar: jar, Timeout: 30 * time.Second}}
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// open follows link as a browser and returns where it ended and the page. A page of the
// sign-in form is answered with token, as a person signs in, and followed back.
func (p *person) open(link, token string) (string, string) {
	p.t.Helper()
	resp, err := p.client.Get(link)
	if err != nil {
		p.t.Fatalf("opening %s: %v", link, err)
	}
	body := read(p.t, resp)
	end := resp.Request.URL
	if end.Path == "/login" {
		m := csrfField.FindStringSubmatch(body)
		if m == nil {
			p.t.Fatalf("sign-in page without a CSRF token:\n%s", body)
		}
		form := url.Values{"csrf": {m[1]}, "token": {token}, "next": {end.Query().Get("next")}}
		resp, err = p.client.PostForm(end.Scheme+"://"+end.Host+"/login", form)
		if err != nil {
			p.t.Fatalf("signing in: %v", err)
		}
		body = read(p.t, resp)
		end = resp.Request.URL
	}
	if resp.StatusCode != http.StatusOK {
		p.t.Fatalf("%s ended at %s with %d:\n%s", link, end, resp.StatusCode, body)
	}
	return end.String(), body
}

func read(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// wantIn fails t unless page holds every one of want.
func wantIn(t *testing.T, what, page string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(page, w) {
			t.Fatalf("%s lacks %q:\n%s", what, w, page)
		}
	}
}
