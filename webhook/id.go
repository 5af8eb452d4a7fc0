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
//   - a branch push is identified by rule, branch and commit, so a new
//     commit builds and a redelivery of the same push does not;
//   - a tag is identified by rule and tag name only, because GitHub sends a
//     push and a create event (which has no commit) for one new tag;
//   - an event without a commit (which Match never lets build) falls back to
//     the delivery ID when there is one.
//
// The format is build-<rule>-<branch|tag>-<ref>-<hash>[-<commit>]. Rule and
// ref are kept readable, cut to a few dozen bytes, with every character
// outside [A-Za-z0-9._-] turned into "-"; the hash (12 hex digits of SHA-256
// over rule, kind and the exact ref) keeps refs that read alike apart, such
// as "feature/a$b" and "feature/a-b".
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
	case ev.Kind == KindTag:
	case ev.Kind == KindBranch && ev.Commit != "":
		b.WriteString("-")
		if h, ok := commitHash(ev.Commit); ok {
			b.WriteString(h)
		} else {
			b.WriteString("c" + digest(16, ev.Commit))
		}
	case ev.Delivery != "":
		b.WriteString("-d")
		b.WriteString(digest(16, ev.Delivery))
	}
	return b.String()
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
