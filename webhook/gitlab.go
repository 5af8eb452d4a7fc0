package webhook

import (
	"encoding/json"
	"fmt"
	"strings"

	gitlab "gitlab.com/gitlab-org/api/client-go"

	"github.com/slipway-dev/slipway/build"
)

// gitlabHook describes one X-Gitlab-Event that can start a build: the
// object_kind its body must carry, the ref prefix it concerns and the kind of
// event it becomes.
type gitlabHook struct {
	objectKind string
	refPrefix  string
	kind       Kind
}

// gitlabHookFor returns what ParseGitLab expects of a body with the given
// X-Gitlab-Event header; ok is false for every hook that never builds.
func gitlabHookFor(eventType string) (h gitlabHook, ok bool) {
	switch gitlab.EventType(eventType) {
	case gitlab.EventTypePush:
		return gitlabHook{objectKind: "push", refPrefix: "refs/heads/", kind: KindBranch}, true
	case gitlab.EventTypeTagPush:
		return gitlabHook{objectKind: "tag_push", refPrefix: "refs/tags/", kind: KindTag}, true
	}
	return gitlabHook{}, false
}

// gitlabFields is the handful of payload fields ParseGitLab reads.
type gitlabFields struct {
	objectKind, ref, after, checkoutSHA, path string
}

// gitlabPayload decodes only the fields ParseGitLab reads, for payloads that
// client-go's stricter types refuse (a field we never read arriving with an
// unexpected type), so such a delivery still starts its build.
type gitlabPayload struct {
	ObjectKind  string `json:"object_kind"`
	Ref         string `json:"ref"`
	After       string `json:"after"`
	CheckoutSHA string `json:"checkout_sha"`
	Project     struct {
		PathWithNamespace string `json:"path_with_namespace"`
	} `json:"project"`
	Repository *struct {
		PathWithNamespace string `json:"path_with_namespace"`
	} `json:"repository"`
}

// ParseGitLab reads a GitLab delivery whose token the caller has already
// verified; eventType is the X-Gitlab-Event header. "Push Hook" is a branch
// event and "Tag Push Hook" a tag event; every other hook (merge requests,
// system hooks, ...) comes back as KindIgnore with a Reason. A push that
// removes its ref (after is all zeros, checkout_sha is null) comes back with
// Deleted set. Owner and Repository come from project.path_with_namespace,
// split at its last "/", since the namespace may hold subgroups. An error
// wraps ErrMalformed: the body is not JSON, or not the hook its header names.
//
// The handler sets Event.Delivery from X-Gitlab-Event-UUID.
func ParseGitLab(eventType string, body []byte) (Event, error) {
	if eventType == "" {
		return Event{}, fmt.Errorf("missing X-Gitlab-Event header: %w", ErrMalformed)
	}
	if !json.Valid(body) {
		return Event{}, fmt.Errorf("gitlab %s payload is not JSON: %w", quote(eventType), ErrMalformed)
	}
	ev := Event{Provider: build.ProviderGitLab}
	hook, ok := gitlabHookFor(eventType)
	if !ok {
		ev.Kind = KindIgnore
		ev.Reason = fmt.Sprintf("gitlab event %s does not start builds", quote(eventType))
		return ev, nil
	}
	f, err := decodeGitLab(eventType, body)
	if err != nil {
		return Event{}, fmt.Errorf("decoding gitlab %s payload: %w: %w", eventType, ErrMalformed, err)
	}
	ev, err = gitlabEvent(ev, hook, f)
	if err != nil {
		return Event{}, err
	}
	if (ev.Kind == KindBranch || ev.Kind == KindTag) && !ev.Deleted {
		gitlabPushDetails(&ev, body)
	}
	return ev, nil
}

// gitlabPushDetail are the fields of a push a rule's finer triggers read.
type gitlabPushDetail struct {
	Before            string          `json:"before"`
	CheckoutSHA       string          `json:"checkout_sha"`
	TotalCommitsCount int             `json:"total_commits_count"`
	Commits           []payloadCommit `json:"commits"`
	Project           struct {
		DefaultBranch string `json:"default_branch"`
	} `json:"project"`
}

// gitlabPushDetails fills the details of a push or tag push from body. GitLab
// says nothing of a forced push; a push whose before commit is not an
// ancestor still lists its new commits, and total_commits_count tells a cut
// list.
func gitlabPushDetails(ev *Event, body []byte) {
	var d gitlabPushDetail
	if err := json.Unmarshal(body, &d); err != nil {
		ev.Incomplete = "the payload's commits could not be read"
		return
	}
	if h, ok := commitHash(d.Before); ok {
		ev.Before = h
	}
	if validRefName(d.Project.DefaultBranch) {
		ev.DefaultBranch = d.Project.DefaultBranch
	}
	for _, c := range d.Commits {
		if strings.EqualFold(c.ID, d.CheckoutSHA) {
			ev.Message = c.Message
		}
	}
	if ev.Message == "" && len(d.Commits) > 0 {
		ev.Message = d.Commits[len(d.Commits)-1].Message
	}
	ev.Files, ev.FilesComplete, ev.Incomplete = changedFiles(d.Commits, d.TotalCommitsCount, ev.Before, false)
}

// decodeGitLab decodes body with client-go and falls back to gitlabPayload
// when client-go refuses a field that ParseGitLab does not read.
func decodeGitLab(eventType string, body []byte) (gitlabFields, error) {
	parsed, err := gitlab.ParseWebhook(gitlab.EventType(eventType), body)
	if err == nil {
		switch e := parsed.(type) {
		case *gitlab.PushEvent:
			f := gitlabFields{objectKind: e.ObjectKind, ref: e.Ref, after: e.After, checkoutSHA: e.CheckoutSHA, path: e.Project.PathWithNamespace}
			if f.path == "" && e.Repository != nil {
				f.path = e.Repository.PathWithNamespace
			}
			return f, nil
		case *gitlab.TagEvent:
			f := gitlabFields{objectKind: e.ObjectKind, ref: e.Ref, after: e.After, checkoutSHA: e.CheckoutSHA, path: e.Project.PathWithNamespace}
			if f.path == "" && e.Repository != nil {
				f.path = e.Repository.PathWithNamespace
			}
			return f, nil
		}
	}
	var p gitlabPayload
	if err := json.Unmarshal(body, &p); err != nil {
		return gitlabFields{}, err
	}
	f := gitlabFields{objectKind: p.ObjectKind, ref: p.Ref, after: p.After, checkoutSHA: p.CheckoutSHA, path: p.Project.PathWithNamespace}
	if f.path == "" && p.Repository != nil {
		f.path = p.Repository.PathWithNamespace
	}
	return f, nil
}

func gitlabEvent(ev Event, hook gitlabHook, f gitlabFields) (Event, error) {
	// A body whose object_kind disagrees with its header is not the hook it
	// claims to be; GitLab always sends both.
	if f.objectKind != hook.objectKind {
		return ev, fmt.Errorf("gitlab payload object_kind %s does not match %s: %w", quote(f.objectKind), quote(hook.objectKind), ErrMalformed)
	}
	if f.ref == "" {
		return ev, fmt.Errorf("gitlab %s has no ref: %w", hook.objectKind, ErrMalformed)
	}
	i := strings.LastIndex(f.path, "/")
	if i < 0 || !validName(f.path[:i]) || !validName(f.path[i+1:]) {
		return ev, fmt.Errorf("gitlab payload has no valid project.path_with_namespace (got %s): %w", quote(f.path), ErrMalformed)
	}
	ev.Owner, ev.Repository = f.path[:i], f.path[i+1:]
	name, ok := strings.CutPrefix(f.ref, hook.refPrefix)
	if !ok {
		if !validRefName(strings.TrimPrefix(f.ref, "refs/")) {
			return ev, fmt.Errorf("gitlab %s ref %s is not a valid ref: %w", hook.objectKind, quote(f.ref), ErrMalformed)
		}
		ev.Kind = KindIgnore
		ev.Reason = fmt.Sprintf("gitlab %s event for %s, outside %s", hook.objectKind, quote(f.ref), hook.refPrefix)
		return ev, nil
	}
	if !validRefName(name) {
		return ev, fmt.Errorf("gitlab %s ref %s is not a valid ref: %w", hook.objectKind, quote(f.ref), ErrMalformed)
	}
	ev.Kind, ev.Ref = hook.kind, name
	// GitLab marks a removed ref with an all-zero "after" and a null
	// checkout_sha; checkout_sha is also null when a new tag vanished
	// before GitLab looked it up, which leaves nothing to build either.
	if zeroHash(f.after) || f.checkoutSHA == "" {
		ev.Deleted = true
		return ev, nil
	}
	// checkout_sha is the commit; for an annotated tag "after" names the
	// tag object instead.
	h, ok := commitHash(f.checkoutSHA)
	if !ok {
		return ev, fmt.Errorf("gitlab %s of %s has no commit hash (got %s): %w", hook.objectKind, quote(f.ref), quote(f.checkoutSHA), ErrMalformed)
	}
	ev.Commit = h
	return ev, nil
}
