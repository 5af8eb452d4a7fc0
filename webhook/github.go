package webhook

import (
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/google/go-github/v62/github"

	"github.com/slipway-dev/slipway/build"
)

// GitHub event names (X-GitHub-Event) that can mean something to a build rule.
const (
	githubPush   = "push"
	githubCreate = "create"
	githubPing   = "ping"
)

// githubFields is the handful of payload fields ParseGitHub reads, gathered
// from go-github's types or, when those cannot decode a payload, straight
// from the JSON.
type githubFields struct {
	ref, refType      string
	after, headCommit string
	deleted           bool
	owner, repository string
}

// githubPayload decodes only the fields ParseGitHub reads. go-github v62
// types some fields we never use more narrowly than GitHub sends them
// (repository.custom_properties holds arrays for multi-select properties,
// google/go-github#3229), and a delivery from such a repository must still
// start its build.
type githubPayload struct {
	Ref        string `json:"ref"`
	RefType    string `json:"ref_type"`
	After      string `json:"after"`
	Deleted    bool   `json:"deleted"`
	HeadCommit *struct {
		ID string `json:"id"`
	} `json:"head_commit"`
	Repository *struct {
		Name  string `json:"name"`
		Owner *struct {
			Login string `json:"login"`
			Name  string `json:"name"`
		} `json:"owner"`
	} `json:"repository"`
}

// ParseGitHub reads a GitHub delivery whose signature the caller has already
// verified; eventType is the X-GitHub-Event header. A push to refs/heads/ is
// a branch event, a push to refs/tags/ and the create event of a tag are tag
// events (GitHub sends both for one new tag; BuildID maps them to one build).
// Deleted refs come back with Deleted set, pings as KindPing, and everything
// else as KindIgnore with a Reason. An error wraps ErrMalformed: the body is
// not JSON, or not the event its header names.
//
// The handler sets Event.Delivery from X-GitHub-Delivery.
func ParseGitHub(eventType string, body []byte) (Event, error) {
	if eventType == "" {
		return Event{}, fmt.Errorf("missing X-GitHub-Event header: %w", ErrMalformed)
	}
	if !json.Valid(body) {
		return Event{}, fmt.Errorf("github %s payload is not JSON: %w", quote(eventType), ErrMalformed)
	}
	ev := Event{Provider: build.ProviderGitHub}
	switch eventType {
	case githubPush, githubCreate, githubPing:
	default:
		ev.Kind = KindIgnore
		ev.Reason = fmt.Sprintf("github event %s does not start builds", quote(eventType))
		return ev, nil
	}
	f, err := decodeGitHub(eventType, body)
	if err != nil {
		return Event{}, fmt.Errorf("decoding github %s payload: %w: %w", eventType, ErrMalformed, err)
	}
	switch eventType {
	case githubPing:
		ev.Kind = KindPing
		if validName(f.owner) && validName(f.repository) {
			ev.Owner, ev.Repository = f.owner, f.repository
		}
		return ev, nil
	case githubCreate:
		ev, err = githubCreateEvent(ev, f)
	default:
		ev, err = githubPushEvent(ev, f)
	}
	if err != nil {
		return Event{}, err
	}
	if eventType == githubPush && (ev.Kind == KindBranch || ev.Kind == KindTag) && !ev.Deleted {
		githubPushDetails(&ev, body)
	}
	return ev, nil
}

// githubPushDetails are the fields of a push a rule's finer triggers read: the
// files it changed, the head commit's message, the default branch.
type githubPushDetail struct {
	Before     string          `json:"before"`
	Forced     bool            `json:"forced"`
	Commits    []payloadCommit `json:"commits"`
	HeadCommit *payloadCommit  `json:"head_commit"`
	Repository *struct {
		DefaultBranch string `json:"default_branch"`
		MasterBranch  string `json:"master_branch"`
	} `json:"repository"`
}

// githubPushDetails fills the details of a push event from body; a payload
// that does not hold them as expected leaves them unknown (FilesComplete
// false), which costs a path filter only its shortcut.
func githubPushDetails(ev *Event, body []byte) {
	var d githubPushDetail
	if err := json.Unmarshal(body, &d); err != nil {
		ev.Incomplete = "the payload's commits could not be read"
		return
	}
	if h, ok := commitHash(d.Before); ok {
		ev.Before = h
	}
	if d.HeadCommit != nil {
		ev.Message = d.HeadCommit.Message
	}
	if r := d.Repository; r != nil {
		// The legacy payload names it master_branch.
		name := r.DefaultBranch
		if name == "" {
			name = r.MasterBranch
		}
		if validRefName(name) {
			ev.DefaultBranch = name
		}
	}
	ev.Files, ev.FilesComplete, ev.Incomplete = changedFiles(d.Commits, 0, ev.Before, d.Forced)
}

// decodeGitHub decodes body with go-github and falls back to githubPayload
// when go-github refuses a field that ParseGitHub does not read.
func decodeGitHub(eventType string, body []byte) (githubFields, error) {
	parsed, err := github.ParseWebHook(eventType, body)
	if err == nil {
		switch e := parsed.(type) {
		case *github.PushEvent:
			f := githubFields{
				ref:     e.GetRef(),
				after:   e.GetAfter(),
				deleted: e.GetDeleted(),
			}
			if e.HeadCommit != nil {
				f.headCommit = e.HeadCommit.GetID()
			}
			if r := e.Repo; r != nil {
				f.repository = r.GetName()
				f.owner = githubOwner(r.Owner)
			}
			return f, nil
		case *github.CreateEvent:
			f := githubFields{ref: e.GetRef(), refType: e.GetRefType()}
			if r := e.Repo; r != nil {
				f.repository = r.GetName()
				f.owner = githubOwner(r.Owner)
			}
			return f, nil
		case *github.PingEvent:
			var f githubFields
			if r := e.Repo; r != nil {
				f.repository = r.GetName()
				f.owner = githubOwner(r.Owner)
			}
			return f, nil
		}
	}
	var p githubPayload
	if err := json.Unmarshal(body, &p); err != nil {
		return githubFields{}, err
	}
	f := githubFields{ref: p.Ref, refType: p.RefType, after: p.After, deleted: p.Deleted}
	if p.HeadCommit != nil {
		f.headCommit = p.HeadCommit.ID
	}
	if r := p.Repository; r != nil {
		f.repository = r.Name
		if r.Owner != nil {
			f.owner = r.Owner.Login
			if f.owner == "" {
				f.owner = r.Owner.Name
			}
		}
	}
	return f, nil
}

// githubOwner prefers the owner's login; the legacy push payload names the
// owner only in "name".
func githubOwner(u *github.User) string {
	if u == nil {
		return ""
	}
	if login := u.GetLogin(); login != "" {
		return login
	}
	return u.GetName()
}

func githubPushEvent(ev Event, f githubFields) (Event, error) {
	if f.ref == "" {
		return ev, fmt.Errorf("github push has no ref: %w", ErrMalformed)
	}
	if err := githubSource(&ev, f); err != nil {
		return ev, err
	}
	var preferHead bool
	if name, ok := strings.CutPrefix(f.ref, "refs/heads/"); ok {
		ev.Kind, ev.Ref = KindBranch, name
	} else if name, ok := strings.CutPrefix(f.ref, "refs/tags/"); ok {
		// For an annotated tag "after" names the tag object; head_commit is
		// the commit it tags, which is what a build checks out and reports.
		ev.Kind, ev.Ref, preferHead = KindTag, name, true
	} else {
		if !validRefName(f.ref) {
			return ev, fmt.Errorf("github push ref %s is not a valid ref: %w", quote(f.ref), ErrMalformed)
		}
		ev.Kind = KindIgnore
		ev.Reason = fmt.Sprintf("push to %s, which is neither a branch nor a tag", quote(f.ref))
		return ev, nil
	}
	if !validRefName(ev.Ref) {
		return ev, fmt.Errorf("github push ref %s is not a valid ref: %w", quote(f.ref), ErrMalformed)
	}
	if f.deleted || zeroHash(f.after) {
		ev.Deleted = true
		return ev, nil
	}
	commit := f.after
	if commit == "" || (preferHead && f.headCommit != "") {
		commit = f.headCommit
	}
	h, ok := commitHash(commit)
	if !ok {
		return ev, fmt.Errorf("github push of %s has no commit hash (got %s): %w", quote(f.ref), quote(commit), ErrMalformed)
	}
	ev.Commit = h
	return ev, nil
}

func githubCreateEvent(ev Event, f githubFields) (Event, error) {
	ev.Kind = KindIgnore
	switch f.refType {
	case "tag":
		// The push event GitHub sends beside it carries the commit and
		// decides about the build: a build is known by its commit, and the
		// create event has none. The event is still checked, as before.
		if err := githubSource(&ev, f); err != nil {
			return ev, err
		}
		if !validRefName(f.ref) {
			return ev, fmt.Errorf("github create ref %s is not a valid tag name: %w", quote(f.ref), ErrMalformed)
		}
		ev.Reason = "tag creation; its push event decides about the build"
	case "branch":
		ev.Reason = "branch creation; its push event decides about the build"
	default:
		ev.Reason = fmt.Sprintf("creation of a %s does not start builds", quote(f.refType))
	}
	return ev, nil
}

// githubSource fills the owner and repository a rule is matched against; an
// event that could start a build is malformed without them.
func githubSource(ev *Event, f githubFields) error {
	if !validName(f.owner) || !validName(f.repository) || strings.Contains(f.owner, "/") || strings.Contains(f.repository, "/") {
		return fmt.Errorf("github payload has no valid repository owner and name (got %s/%s): %w", quote(f.owner), quote(f.repository), ErrMalformed)
	}
	ev.Owner, ev.Repository = f.owner, f.repository
	return nil
}

// quote renders an untrusted string for an error or reason: quoted, so
// control characters stay visible, and cut short, so a hostile payload
// cannot flood the log.
func quote(s string) string {
	const max = 100
	if len(s) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		return fmt.Sprintf("%q...", s[:cut])
	}
	return fmt.Sprintf("%q", s)
}
