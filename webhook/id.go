package webhook

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"strings"
)

// Bounds of the readable parts of a build ID. With the 12-digit hash and a
// 64-digit (SHA-256) commit an ID stays under 220 bytes, well inside
// Temporal's workflow ID limit and short enough for URLs and logs.
const (
	maxRuleLabel = 64
	maxRefLabel  = 40
)

// BuildID returns the Temporal workflow ID for the build ev starts under the
// rule ruleID. The gateway starts the workflow with this ID and a conflict
// policy that returns the running execution, so a redelivered or repeated
// event starts no second build:
//
//   - a branch or tag push is identified by rule, ref and commit, so a new
//     commit (or a tag moved to another commit) builds and a redelivery of
//     the same push does not. GitHub's create event of a tag, which carries
//     no commit, starts nothing (its push decides), so the two events of
//     one new tag are one build;
//   - a tag pushed again after its deletion carries the Generation the
//     handler read from its record of that deletion, so it builds again even
//     at the same commit, while the push and any redelivery after the same
//     deletion share it;
//   - an event without a commit (which Match never lets build) falls back to
//     the delivery ID when there is one.
//
// The format is build-<rule>-<branch|tag>-<ref>-<hash>[-<commit>][-g<gen>].
// Rule and ref are kept readable, cut to a few dozen bytes, with every
// character outside [A-Za-z0-9._-] turned into "-"; the hash (12 hex digits
// of SHA-256 over rule, kind and the exact ref) keeps refs that read alike
// apart, such as "feature/a$b" and "feature/a-b".
//
// Whether an ID used by a finished build may start again is the start
// request's reuse policy, not the ID's: with Temporal's default a
// redelivery after the build ended would build again.
func BuildID(ruleID string, ev Event) string {
	kind := "event"
	switch ev.Kind {
	case KindBranch, KindTag:
		kind = string(ev.Kind)
	}
	var b strings.Builder
	b.WriteString("build-")
	b.WriteString(label(ruleID, maxRuleLabel))
	b.WriteString("-")
	b.WriteString(kind)
	b.WriteString("-")
	b.WriteString(label(ev.Ref, maxRefLabel))
	b.WriteString("-")
	b.WriteString(digest(12, ruleID, kind, ev.Ref))
	switch {
	case (ev.Kind == KindBranch || ev.Kind == KindTag) && ev.Commit != "":
		b.WriteString("-")
		if h, ok := commitHash(ev.Commit); ok {
			b.WriteString(h)
		} else {
			b.WriteString("c" + digest(16, ev.Commit))
		}
	case ev.Kind == KindTag:
	case ev.Delivery != "":
		b.WriteString("-d")
		b.WriteString(digest(16, ev.Delivery))
	}
	if ev.Kind == KindTag && ev.Generation != "" {
		b.WriteString("-g")
		b.WriteString(digest(8, ev.Generation))
	}
	return b.String()
}

// TagDeletionKey is the key under which the handler records the last deletion
// of tag ref for rule ruleID; the record's value is the Generation of the
// pushes of the tag that follow it.
func TagDeletionKey(ruleID, ref string) string {
	return "tag-deleted-" + label(ref, maxRefLabel) + "-" + digest(12, ruleID, string(KindTag), ref)
}

// ManualBuildID returns the workflow ID of a "build now" request that sent
// an Idempotency-Key, so a client that retries the request gets the build it
// already started. The key is hashed, never shown, and scoped to the rule;
// a caller whose clients might pick the same key scopes it further (for
// example by prefixing the user). Without a key every request is a new
// build, and the caller uses a random ID instead of this function.
func ManualBuildID(ruleID, idempotencyKey string) string {
	return "build-" + label(ruleID, maxRuleLabel) + "-manual-" + digest(24, ruleID, idempotencyKey)
}

// label keeps s readable inside an ID: characters outside [A-Za-z0-9._-]
// become "-" and the result is cut to max bytes. It is lossy on purpose; the
// digest next to it tells apart what label merges.
func label(s string, max int) string {
	var b strings.Builder
	for _, r := range s {
		if b.Len() >= max {
			break
		}
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '_', r == '-':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	return b.String()
}

// digest returns the first n hex digits of SHA-256 over parts, each part
// preceded by its length so that ("ab", "c") and ("a", "bc") differ whatever
// bytes the parts hold.
func digest(n int, parts ...string) string {
	h := sha256.New()
	var size [8]byte
	for _, p := range parts {
		binary.BigEndian.PutUint64(size[:], uint64(len(p)))
		h.Write(size[:])
		h.Write([]byte(p))
	}
	return hex.EncodeToString(h.Sum(nil))[:n]
}
