package webhook

import (
	"errors"
	"fmt"
	"path"
	"strings"

	"github.com/slipway-dev/slipway/build"
)

// Decision is Match's answer; Reason is for the 202 answer and the log in
// both cases.
type Decision struct {
	Build  bool
	Reason string
}

// Match decides whether ev starts a build under a rule with source src and
// triggers trg. The webhook URL names the rule, so Match also refuses an
// event for another repository: a hook copied onto the wrong repository must
// not build the rule's image from foreign code. Owners and repositories
// compare case-insensitively, as GitHub and GitLab resolve them.
func Match(src build.Source, trg build.Triggers, ev Event) Decision {
	switch ev.Kind {
	case KindPing:
		return Decision{Reason: "ping"}
	case KindBranch, KindTag:
	case KindIgnore:
		if ev.Reason != "" {
			return Decision{Reason: ev.Reason}
		}
		return Decision{Reason: "event does not start builds"}
	default:
		return Decision{Reason: fmt.Sprintf("unknown event kind %s", quote(string(ev.Kind)))}
	}
	if ev.Provider != src.Provider {
		return Decision{Reason: fmt.Sprintf("event is from %s, rule builds from %s", quote(ev.Provider), quote(src.Provider))}
	}
	if !strings.EqualFold(ev.Owner, src.Owner) || !strings.EqualFold(ev.Repository, src.Repository) {
		return Decision{Reason: fmt.Sprintf("event is for %s/%s, rule builds %s/%s", ev.Owner, ev.Repository, src.Owner, src.Repository)}
	}
	if ev.Deleted {
		return Decision{Reason: fmt.Sprintf("%s %s was deleted", ev.Kind, ev.Ref)}
	}
	if ev.Kind == KindTag {
		if !trg.Tags {
			return Decision{Reason: fmt.Sprintf("tag %s: rule does not build tags", ev.Ref)}
		}
		return Decision{Build: true, Reason: fmt.Sprintf("tag %s", ev.Ref)}
	}
	for _, b := range trg.Branches {
		if branchMatches(b, ev.Ref) {
			return Decision{Build: true, Reason: fmt.Sprintf("push to branch %s matches %s", ev.Ref, quote(b))}
		}
	}
	return Decision{Reason: fmt.Sprintf("branch %s is not in the rule's branches", ev.Ref)}
}

// branchMatches reports whether branch is pattern or matches it as a
// path.Match pattern; a malformed pattern matches only itself.
func branchMatches(pattern, branch string) bool {
	if pattern == branch {
		return true
	}
	ok, err := path.Match(pattern, branch)
	return err == nil && ok
}

// ValidBranchPattern reports a branch entry that can only ever match a
// branch of exactly its own name because it is a malformed path.Match
// pattern, so the rule store can refuse "release/[" when a rule is saved
// instead of letting it silently match nothing else.
func ValidBranchPattern(pattern string) error {
	if pattern == "" {
		return errors.New("branch pattern is empty")
	}
	if _, err := path.Match(pattern, ""); err != nil {
		return fmt.Errorf("branch pattern %s: %w", quote(pattern), err)
	}
	return nil
}
