// Package webhook turns GitHub and GitLab webhook deliveries into build
// decisions: it verifies a delivery's signature or token, parses the payload
// into one provider-neutral Event, matches the Event against a build rule and
// derives the Temporal workflow ID that makes a redelivery start no second
// build.
//
// The package is pure logic so that the gateway's handler stays a thin
// sequence of verify, parse, match and start, and so that every step can be
// tested and fuzzed without a server. The handler must verify the raw body
// (VerifyGitHub, VerifyGitLab) before it parses anything, and should bound
// the body it reads (GitHub caps payloads at 25 MB).
package webhook

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Kind says what a delivery means for building: the handler answers 200 to a
// ping, 202 with no build to anything ignored, and asks Match about branches
// and tags.
type Kind string

// The kinds of event the gateway distinguishes.
const (
	// KindIgnore is every delivery that can never start a build (an issue, a
	// branch creation without a push, an event type we do not know); Event.Reason
	// says why.
	KindIgnore Kind = "ignore"
	// KindPing is GitHub's check that a new hook reaches us.
	KindPing Kind = "ping"
	// KindBranch is a push to a branch.
	KindBranch Kind = "branch"
	// KindTag is a new, moved or deleted tag.
	KindTag Kind = "tag"
)

// ErrMalformed marks a payload that is not what its event type promises
// (broken JSON, a push without a ref or repository, a commit that is not a
// hash); the handler answers 400, since a redelivery of the same bytes cannot
// succeed.
var ErrMalformed = errors.New("malformed webhook payload")

// Event is what a delivery means, independent of the provider, so matching,
// build identity and logging are written once.
type Event struct {
	// Provider is ProviderGitHub or ProviderGitLab.
	Provider string
	// Kind decides whether Match looks at the event at all.
	Kind Kind
	// Owner is the GitHub user or organization login, or the GitLab namespace
	// path, which holds "/" for subgroups ("group/sub").
	Owner string
	// Repository is the GitHub repository name or the GitLab project path
	// without its namespace.
	Repository string
	// Ref is the branch or tag name without "refs/heads/" or "refs/tags/".
	Ref string
	// Commit is the lowercase hex commit the ref now points at (for a tag the
	// tagged commit, not an annotated tag's own object). It is empty for a
	// deleted ref and for GitHub's create event, which carries no hash.
	Commit string
	// Deleted reports that the push removed the ref; such events never build.
	Deleted bool
	// Delivery is the provider's delivery ID (X-GitHub-Delivery,
	// X-Gitlab-Event-UUID). The parsers never see headers, so the handler
	// sets it; it may stay empty.
	Delivery string
	// Reason says why a KindIgnore event is ignored, for the 202 answer and
	// the log.
	Reason string
	// Before is the commit the ref pointed at before the push: empty when
	// the payload does not say, all zeros for a new ref.
	Before string
	// DefaultBranch is the repository's default branch as the payload names
	// it (GitHub repository.default_branch, GitLab project.default_branch).
	DefaultBranch string
	// Message is the head commit's message (GitHub head_commit, GitLab the
	// commit checkout_sha names, or the last one listed).
	Message string
	// Files are the paths the push added, modified or removed, as the
	// payload's commits list them. FilesComplete says whether they are all
	// of them; when not, Incomplete says why.
	Files         []string
	FilesComplete bool
	Incomplete    string
	// Generation tells a tag pushed again after its deletion from the tag
	// as first pushed, so the same tag at the same commit builds again. The
	// handler sets it from its record of the tag's last deletion.
	Generation string
}

// payloadCommit is one entry of a push payload's commits, as both
// providers spell it.
type payloadCommit struct {
	ID       string    `json:"id"`
	Message  string    `json:"message"`
	Added    *[]string `json:"added"`
	Modified *[]string `json:"modified"`
	Removed  *[]string `json:"removed"`
}

// maxListedCommits is how many commits GitHub and GitLab list in a push
// payload at most: a push listing that many may have had more.
const maxListedCommits = 20

// changedFiles gathers the files commits list, in order and without
// repeats, and says when the list cannot be the whole push: listed is the
// number of commits the push holds by the payload's count (0 when it does
// not say).
func changedFiles(commits []payloadCommit, total int, before string, forced bool) (files []string, complete bool, why string) {
	seen := map[string]bool{}
	for _, c := range commits {
		if c.Added == nil && c.Modified == nil && c.Removed == nil {
			why = fmt.Sprintf("commit %s lists no files", shortHash(c.ID))
		}
		for _, list := range []*[]string{c.Added, c.Modified, c.Removed} {
			if list == nil {
				continue
			}
			for _, f := range *list {
				if !seen[f] {
					seen[f] = true
					files = append(files, f)
				}
			}
		}
		if c.Added != nil && c.Modified != nil && c.Removed != nil && len(*c.Added)+len(*c.Modified)+len(*c.Removed) == 0 {
			why = fmt.Sprintf("commit %s lists no files", shortHash(c.ID))
		}
	}
	switch {
	case forced:
		why = "the push was forced"
	case before == "" || zeroHash(before):
		why = "the push created the ref"
	case len(commits) == 0:
		why = "the payload lists no commits"
	case len(commits) >= maxListedCommits || total > len(commits):
		why = fmt.Sprintf("the payload lists %d commits, at most %d are listed", len(commits), maxListedCommits)
	}
	return files, why == "", why
}

func shortHash(h string) string {
	if len(h) > 7 {
		return h[:7]
	}
	return quote(h)
}

// maxNameLen bounds refs, owners and repository names. Real names are far
// shorter; the bound keeps a hostile payload from carrying megabytes into
// logs, search attributes and workflow inputs.
const maxNameLen = 1024

// zeroHash reports whether h is Git's null object name, which providers send
// as the new value of a deleted ref.
func zeroHash(h string) bool {
	return h != "" && strings.Trim(h, "0") == ""
}

// commitHash lowercases h and reports whether it is a full object name: 40
// hex digits for SHA-1 repositories, 64 for SHA-256 ones.
func commitHash(h string) (string, bool) {
	if len(h) != 40 && len(h) != 64 {
		return "", false
	}
	h = strings.ToLower(h)
	for i := 0; i < len(h); i++ {
		c := h[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return "", false
		}
	}
	return h, true
}

// validRefName applies git check-ref-format's rules to a branch or tag name
// (without its "refs/heads/" or "refs/tags/" prefix). Providers only send
// names Git accepted, so a name that breaks the rules means the payload is
// not what it claims to be, and refusing it keeps odd bytes out of build IDs,
// image tags and logs.
func validRefName(name string) bool {
	if name == "" || len(name) > maxNameLen || !utf8.ValidString(name) || name == "@" {
		return false
	}
	if strings.Contains(name, "..") || strings.Contains(name, "@{") || strings.Contains(name, "//") {
		return false
	}
	// A leading "-" is legal in git but would read as an option on a command line; the worker
	// refuses such a ref, so the delivery is refused here rather than as a failed build.
	if strings.HasPrefix(name, "-") || strings.HasPrefix(name, "/") || strings.HasSuffix(name, "/") || strings.HasSuffix(name, ".") {
		return false
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f || strings.ContainsRune(" ~^:?*[\\", r) {
			return false
		}
	}
	for _, part := range strings.Split(name, "/") {
		if strings.HasPrefix(part, ".") || strings.HasSuffix(part, ".lock") {
			return false
		}
	}
	return true
}

// validName reports whether an owner or repository name is plausible: not
// empty, bounded, valid UTF-8, without spaces or control characters.
func validName(name string) bool {
	if name == "" || len(name) > maxNameLen || !utf8.ValidString(name) {
		return false
	}
	for _, r := range name {
		if r <= 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}
