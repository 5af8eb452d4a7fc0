package webhook

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/slipway-dev/slipway/build"
)

// Decision is Match's answer; Reason is for the 202 answer and the log in
// both cases.
type Decision struct {
	Build  bool
	Reason string
	// Entry is the trigger entry the ref matched ("" for all tags), and
	// Captures what it captured, by group number and name, for the tag
	// template.
	Entry    string
	Captures map[string]string
	// ComputePaths says the rule filters by path and the payload could not
	// tell which files the push changed: the build starts and its clone step
	// decides.
	ComputePaths bool
	// Deleted says the event removed a ref of the rule's source: the
	// handler remembers a deleted tag, so that the tag pushed again builds
	// again.
	Deleted bool
}

// Rule is what Match reads of a build rule.
type Rule struct {
	Source   build.Source
	Triggers build.Triggers
	// SkipMarkers lets "[skip ci]" and its kin in the head commit's message
	// of a branch push start nothing.
	SkipMarkers bool
}

// Match decides whether ev starts a build under a rule with source src and
// triggers trg, without skip markers; see Rule.Match.
func Match(src build.Source, trg build.Triggers, ev Event) Decision {
	return Rule{Source: src, Triggers: trg}.Match(ev)
}

// Match decides whether ev starts a build under rule r. The webhook URL names
// the rule, so Match also refuses an event for another repository: a hook
// copied onto the wrong repository must not build the rule's image from
// foreign code. Owners and repositories compare case-insensitively, as
// GitHub and GitLab resolve them.
//
// Skip markers and path filters apply to branch pushes only: a release tag is
// often made on a commit that says "[skip ci]" (release tools write it on
// their version bump), and a tag push changes no file.
func (r Rule) Match(ev Event) Decision {
	src, trg := r.Source, r.Triggers
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
		return Decision{Deleted: true, Reason: fmt.Sprintf("%s %s was deleted", ev.Kind, ev.Ref)}
	}
	if ev.Kind == KindTag {
		d, ok := MatchRef(trg, build.Ref{Type: build.RefTag, Name: ev.Ref})
		if !ok {
			return d
		}
		d.Build = true
		return d
	}
	d, ok := MatchRef(trg, build.Ref{Type: build.RefBranch, Name: ev.Ref})
	if !ok {
		return d
	}
	if r.SkipMarkers {
		if m := SkipMarker(ev.Message); m != "" {
			return Decision{Reason: fmt.Sprintf("push to branch %s: the head commit's message holds %q (skip_markers)", ev.Ref, m)}
		}
	}
	d.Build = true
	if trg.Paths != nil {
		if !ev.FilesComplete {
			why := ev.Incomplete
			if why == "" {
				why = "the payload does not list the changed files"
			}
			d.ComputePaths = true
			d.Reason += fmt.Sprintf("; triggers.paths is decided after the clone, since %s", why)
			return d
		}
		ok, why := trg.Paths.Selects(ev.Files)
		if !ok {
			return Decision{Reason: fmt.Sprintf("push to branch %s: %s", ev.Ref, why)}
		}
		d.Reason += "; " + why
	}
	return d
}

// MatchRef finds the entry of trg a branch or tag matches, first match first,
// with what it captured; when none does, the Decision's Reason says so. An
// entry that is no valid pattern matches only a ref of exactly its name, as
// rules saved before patterns were checked may hold one.
func MatchRef(trg build.Triggers, ref build.Ref) (Decision, bool) {
	if ref.Type == build.RefTag {
		if !trg.Tags && len(trg.TagPatterns) == 0 {
			return Decision{Reason: fmt.Sprintf("tag %s: rule does not build tags", ref.Name)}, false
		}
		if len(trg.TagPatterns) == 0 {
			return Decision{Reason: fmt.Sprintf("tag %s", ref.Name)}, true
		}
		if entry, c, ok := firstEntry(trg.TagPatterns, ref.Name); ok {
			return Decision{Reason: fmt.Sprintf("tag %s matches %s", ref.Name, quote(entry)), Entry: entry, Captures: c}, true
		}
		return Decision{Reason: fmt.Sprintf("tag %s matches none of the rule's tag_patterns", ref.Name)}, false
	}
	if entry, c, ok := firstEntry(trg.Branches, ref.Name); ok {
		return Decision{Reason: fmt.Sprintf("push to branch %s matches %s", ref.Name, quote(entry)), Entry: entry, Captures: c}, true
	}
	return Decision{Reason: fmt.Sprintf("branch %s is not in the rule's branches", ref.Name)}, false
}

// firstEntry returns the first of entries name matches and its captures.
func firstEntry(entries []string, name string) (string, map[string]string, bool) {
	for _, e := range entries {
		p, err := ParsePattern(e)
		if err != nil {
			if e == name {
				return e, nil, true
			}
			continue
		}
		if c, ok := p.Match(name); ok {
			return e, c.Map(), true
		}
	}
	return "", nil, false
}

// Map flattens captures for a build's input: "1".."9" and the group names.
// It is nil when there are none.
func (c Captures) Map() map[string]string {
	if len(c.Index) == 0 {
		return nil
	}
	m := make(map[string]string, len(c.Index)+len(c.Named))
	for i, v := range c.Index {
		m[strconv.Itoa(i+1)] = v
	}
	for k, v := range c.Named {
		m[k] = v
	}
	return m
}
