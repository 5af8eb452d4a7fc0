package providertest

import (
	"net/http"
	"slices"
	"strings"
	"sync"
)

// fakeAccounts is what the GitHub and GitLab fakes keep besides their API: the lock every
// request runs under, the IDs they hand out, users and the tokens that act as them, the
// requests served, and the answers forced on the next requests. Both fakes embed it, so its
// exported methods are theirs.
type fakeAccounts struct {
	mu       sync.Mutex
	nextID   int64
	users    map[string]*fakeUser // by lowercased name
	tokens   map[string]*token
	requests []Request
	once     []forced
}

// fakeUser is a user of a fake: its login on GitHub, its username (and namespace) on GitLab.
type fakeUser struct {
	id   int64
	name string
}

// token is a token of a fake and the user it acts as.
type token struct {
	user    string
	revoked bool
}

// forced is an answer forced on the next request whose token is good.
type forced struct {
	status int
	header http.Header
	body   any // JSON, or a string sent as text
}

// init readies the maps; IDs handed out start after firstID.
func (a *fakeAccounts) init(firstID int64) {
	a.nextID = firstID
	a.users = map[string]*fakeUser{}
	a.tokens = map[string]*token{}
}

// id hands out the next ID; a.mu is held.
func (a *fakeAccounts) id() int64 {
	a.nextID++
	return a.nextID
}

// AddUser adds a user (on GitLab with its namespace) and tokens that act as it.
func (a *fakeAccounts) AddUser(name string, tokens ...string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.users[strings.ToLower(name)]; !ok {
		a.users[strings.ToLower(name)] = &fakeUser{id: a.id(), name: name}
	}
	for _, t := range tokens {
		a.tokens[t] = &token{user: name}
	}
}

// user is the user named name, any case, or nil; a.mu is held.
func (a *fakeAccounts) user(name string) *fakeUser {
	return a.users[strings.ToLower(name)]
}

// RevokeToken makes a token answer 401 from now on (GitHub's "Bad credentials").
func (a *fakeAccounts) RevokeToken(tok string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if t, ok := a.tokens[tok]; ok {
		t.revoked = true
	}
}

// Requests returns every request served so far, in order.
func (a *fakeAccounts) Requests() []Request {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.requests)
}

// forceOnce queues an answer for the next request whose token is good.
func (a *fakeAccounts) forceOnce(f forced) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.once = append(a.once, f)
}

// record takes the lock for a request, which its handler runs under to the end (the caller
// unlocks), records it and returns how many requests were served with it.
func (a *fakeAccounts) record(r *http.Request) int {
	a.mu.Lock()
	a.requests = append(a.requests, readRequest(r))
	return len(a.requests)
}

// authenticate is the user tok acts as: "" for no token, and ok false for a token unknown
// or revoked. a.mu is held.
func (a *fakeAccounts) authenticate(tok string) (user string, ok bool) {
	if tok == "" {
		return "", true
	}
	t, found := a.tokens[tok]
	if !found || t.revoked {
		return "", false
	}
	return t.user, true
}

// answerForced writes the next forced answer, if one is queued, and says whether it did.
// a.mu is held.
func (a *fakeAccounts) answerForced(w http.ResponseWriter) bool {
	if len(a.once) == 0 {
		return false
	}
	o := a.once[0]
	a.once = a.once[1:]
	for k, v := range o.header {
		w.Header()[k] = v
	}
	if s, ok := o.body.(string); ok {
		if w.Header().Get("Content-Type") == "" {
			w.Header().Set("Content-Type", "text/plain")
		}
		w.WriteHeader(o.status)
		_, _ = w.Write([]byte(s))
		return true
	}
	writeJSON(w, o.status, o.body)
	return true
}
