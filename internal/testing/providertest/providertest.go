// Package providertest has fake GitHub and GitLab API servers for tests of
// code that connects accounts, lists repositories, installs webhooks and
// reports commit statuses.
//
// The fakes answer the REST endpoints Slipway uses at their real paths, with
// the real JSON shapes, status codes, pagination headers and error bodies,
// and keep state: users and their tokens (valid or revoked), organizations or
// groups, repositories (private ones visible only to some users), branches,
// tags, hooks and statuses. Switches make the next request fail with a rate
// limit or an outage. Every request is recorded.
//
//	gh := providertest.NewGitHub(t)
//	gh.AddUser("octo", "token-1")
//	gh.AddRepo(providertest.Repo{Owner: "octo", Name: "hello",
//		Branches: []providertest.Ref{{Name: "main", Commit: providertest.SHA("main")}}})
//	client, _ := providers.New("github", gh.URL, "token-1")
package providertest

import (
	"bytes"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Ref is a branch or a tag of a fake repository.
type Ref struct {
	Name   string
	Commit string
}

// Repo is a repository (a GitLab project) of a fake.
type Repo struct {
	// Owner is the owning user or organization, or on GitLab the namespace's
	// full path ("group/sub"). It must have been added first.
	Owner string
	Name  string
	// Private repositories are visible only to the owning user, the members
	// of the owning organization or group, Admins and Readers.
	Private bool
	// DefaultBranch defaults to "main".
	DefaultBranch string
	Branches      []Ref
	Tags          []Ref
	// Admins may manage the repository's hooks and statuses besides the
	// owning user (on GitLab: Maintainers of the project).
	Admins []string
	// Readers may see a private repository but not manage its hooks (on
	// GitLab: Reporters of the project).
	Readers []string
	// Commits are further commits that statuses may be set on; the commits
	// of Branches and Tags need not be listed.
	Commits []string
}

func (r *Repo) hasCommit(sha string) bool {
	for _, refs := range [][]Ref{r.Branches, r.Tags} {
		for _, ref := range refs {
			if ref.Commit == sha {
				return true
			}
		}
	}
	return slices.Contains(r.Commits, sha)
}

// SHA returns a made-up, stable 40-hex commit ID for a name, for fixtures.
func SHA(name string) string {
	sum := sha1.Sum([]byte(name))
	return hex.EncodeToString(sum[:])
}

// Request is one request a fake served.
type Request struct {
	Method string
	// Path is the path as sent, still escaped, such as
	// /api/v4/projects/acme%2Fapp/hooks.
	Path  string
	Query url.Values
	Body  []byte
}

// String gives "METHOD /path".
func (r Request) String() string { return r.Method + " " + r.Path }

// JSON decodes the body as a JSON object; nil when it is not one.
func (r Request) JSON() map[string]any {
	var m map[string]any
	if json.Unmarshal(r.Body, &m) != nil {
		return nil
	}
	return m
}

// readRequest records r and leaves its body readable again.
func readRequest(r *http.Request) Request {
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	return Request{Method: r.Method, Path: r.URL.EscapedPath(), Query: r.URL.Query(), Body: body}
}

// bearer reads the token from "Authorization: Bearer T" or "token T".
func bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	for _, scheme := range []string{"Bearer ", "bearer ", "token ", "Token "} {
		if t, ok := strings.CutPrefix(h, scheme); ok {
			return strings.TrimSpace(t)
		}
	}
	return ""
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// decodeBody reads a JSON object or a form, as the real APIs accept both.
func decodeBody(r *http.Request) map[string]any {
	body, _ := io.ReadAll(r.Body)
	m := map[string]any{}
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		vals, _ := url.ParseQuery(string(body))
		for k, v := range vals {
			m[k] = v[len(v)-1]
		}
		return m
	}
	_ = json.Unmarshal(body, &m)
	return m
}

func str(m map[string]any, key string) (string, bool) {
	v, ok := m[key]
	if !ok || v == nil {
		return "", false
	}
	switch v := v.(type) {
	case string:
		return v, true
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64), true
	case bool:
		return strconv.FormatBool(v), true
	}
	return fmt.Sprint(v), true
}

func boolean(m map[string]any, key string) (bool, bool) {
	v, ok := m[key]
	if !ok || v == nil {
		return false, false
	}
	switch v := v.(type) {
	case bool:
		return v, true
	case string:
		b, err := strconv.ParseBool(v)
		return b, err == nil
	case float64:
		return v != 0, true
	}
	return false, false
}

// page is one page of a listing, with what the headers need.
type page struct {
	number, perPage, total, last int
}

// paginate cuts items to the page the request asks for, defaulting to
// defaultPerPage, capped at 100 as both providers do.
func paginate[T any](r *http.Request, items []T, defaultPerPage int) ([]T, page) {
	q := r.URL.Query()
	p := page{number: 1, perPage: defaultPerPage, total: len(items)}
	if n, err := strconv.Atoi(q.Get("page")); err == nil && n > 0 {
		p.number = n
	}
	if n, err := strconv.Atoi(q.Get("per_page")); err == nil && n > 0 {
		p.perPage = min(n, 100)
	}
	p.last = max(1, int(math.Ceil(float64(len(items))/float64(p.perPage))))
	start := min(len(items), (p.number-1)*p.perPage)
	end := min(len(items), start+p.perPage)
	return items[start:end], p
}

// pageURL is the request's own URL with another page number, as both
// providers write into Link.
func pageURL(r *http.Request, n int) string {
	u := url.URL{Scheme: "http", Host: r.Host, Path: r.URL.Path, RawPath: r.URL.RawPath}
	q := r.URL.Query()
	q.Set("page", strconv.Itoa(n))
	u.RawQuery = q.Encode()
	return u.String()
}

// linkHeader writes RFC 8288 links; first and last only when asked, as
// GitHub leaves them out on the first and last pages.
func linkHeader(r *http.Request, p page, always bool) string {
	var links []string
	add := func(n int, rel string) {
		links = append(links, fmt.Sprintf("<%s>; rel=%q", pageURL(r, n), rel))
	}
	if p.number > 1 {
		add(p.number-1, "prev")
	}
	if p.number < p.last {
		add(p.number+1, "next")
	}
	if always || p.number > 1 {
		add(1, "first")
	}
	if always || p.number < p.last {
		add(p.last, "last")
	}
	return strings.Join(links, ", ")
}

// seconds renders a wait as whole seconds, rounded up, for Retry-After.
func seconds(d time.Duration) string {
	return strconv.FormatInt(int64(math.Ceil(d.Seconds())), 10)
}

// timestamp is the providers' ISO 8601 form.
func timestamp(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05Z")
}
