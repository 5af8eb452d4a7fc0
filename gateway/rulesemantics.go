package gateway

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/slipway-dev/slipway/build"
	"github.com/slipway-dev/slipway/builds"
	"github.com/slipway-dev/slipway/store"
	"github.com/slipway-dev/slipway/webhook"
)

// Values of a rule's tag_latest and run_policy.
const (
	tagLatestDefaultBranch = "default_branch"
	runParallel            = "parallel"
	runSerial              = "serial"
	runLatestOnly          = "latest_only"
)

// minReconcileEvery is the shortest reconcile_every: the heads of every ref of a rule are
// read through the provider's API (or git ls-remote) each time.
const minReconcileEvery = time.Minute

// triggerEntry is one entry of triggers.branches or triggers.tag_patterns, parsed.
type triggerEntry struct {
	field   string // "triggers.branches" or "triggers.tag_patterns"
	refType string
	pattern webhook.Pattern
}

// checkRuleFields refuses what the rule semantics fields of b cannot mean, naming the field,
// and fills in their defaults.
func checkRuleFields(b *ruleBody) error {
	switch b.TagLatest {
	case "", tagLatestDefaultBranch:
	default:
		return fmt.Errorf("tag_latest %q is not \"\" or %q", b.TagLatest, tagLatestDefaultBranch)
	}
	switch b.RunPolicy {
	case "":
		b.RunPolicy = runParallel
	case runParallel, runSerial, runLatestOnly:
	default:
		return fmt.Errorf("run_policy %q is not %q, %q or %q", b.RunPolicy, runParallel, runSerial, runLatestOnly)
	}
	if b.ReconcileEvery != "" {
		d, err := time.ParseDuration(b.ReconcileEvery)
		if err != nil || d < minReconcileEvery {
			return fmt.Errorf("reconcile_every %q is not a duration of at least %s (\"\" turns reconciliation off)", b.ReconcileEvery, minReconcileEvery)
		}
	}
	if p := b.Triggers.Paths; p != nil && len(p.Include) == 0 && len(p.Ignore) == 0 {
		b.Triggers.Paths = nil
	}
	return b.Triggers.Paths.Check()
}

// parseTriggers parses every entry of trg; a bad one is an error naming it.
func parseTriggers(trg build.Triggers) ([]triggerEntry, error) {
	var out []triggerEntry
	for _, list := range []struct {
		field, refType string
		entries        []string
	}{{"triggers.branches", build.RefBranch, trg.Branches}, {"triggers.tag_patterns", build.RefTag, trg.TagPatterns}} {
		for _, e := range list.entries {
			p, err := webhook.ParsePattern(e)
			if err != nil {
				return nil, fmt.Errorf("%s entry %q: %w", list.field, e, err)
			}
			out = append(out, triggerEntry{field: list.field, refType: list.refType, pattern: p})
		}
	}
	return out, nil
}

// checkTriggers is the save-time check of a rule's triggers against its tag template, for the
// seed's rule: a ref an image tag cannot hold fails only when the template puts it (or a
// capture of it) in the tag. A literal entry that could never render is an error naming the
// entry and the fix; a pattern that may match such refs is a warning. Every capture the
// template names must be a group of every entry that can start a build, since a build of a
// ref matched by another entry would have nothing to put there.
func (a *Server) checkTriggers(b ruleBody, ns, repo string) (warnings []string, err error) {
	entries, err := parseTriggers(b.Triggers)
	if err != nil {
		return nil, err
	}
	template := b.TagTemplate
	captures := build.TemplateCaptures(template)
	bad := func(r rune) bool { return !build.TagRune(r) }
	fix := "set sanitize_ref to map such characters to '-', or leave the ref out of tag_template (use {short_commit}, {time} or a fixed name)"
	allTags := (b.Triggers.Tags || len(b.Triggers.TagPatterns) > 0) && len(b.Triggers.TagPatterns) == 0
	if len(captures) > 0 {
		if allTags {
			return nil, fmt.Errorf("tag_template names {%s}, but triggers.tags builds every tag and a tag captures nothing; add triggers.tag_patterns with that group", captures[0])
		}
		if len(entries) == 0 {
			return nil, fmt.Errorf("tag_template names {%s}, which only a pattern of triggers.branches or triggers.tag_patterns can capture", captures[0])
		}
	}
	for _, e := range entries {
		if err := build.CheckTemplateCaptures(template, e.pattern.GroupNames()); err != nil {
			var ie *build.InvalidError
			if errors.As(err, &ie) && len(captures) > 0 {
				return nil, fmt.Errorf("%s entry %q: %s; every entry must capture the groups tag_template names", e.field, e.pattern, ie.Msg)
			}
			return nil, fmt.Errorf("tag_template: %w", err)
		}
		if b.SanitizeRef {
			continue
		}
		if e.pattern.IsExact() {
			ref := build.Ref{Type: e.refType, Name: e.pattern.String()}
			err := a.builds.InputOf(builds.Request{Rule: b.rule(ns, repo), Ref: ref, Trigger: build.TriggerManual}).Validate()
			var ie *build.InvalidError
			// Only the ref's own characters are the entry's fault; the template's are
			// reported for every build below.
			if errors.As(err, &ie) && ie.Type == build.ErrTypeInvalidTag && ie.Field == "ref.name" {
				return nil, fmt.Errorf("%s entry %q can never build: %s", e.field, e.pattern, ie.Msg)
			}
			continue
		}
		var why []string
		if build.UsesRef(template, e.refType) && e.pattern.MayHold("", bad) {
			why = append(why, "the ref")
		}
		for _, c := range captures {
			if e.pattern.MayHold(c, bad) {
				why = append(why, "capture {"+c+"}")
			}
		}
		if len(why) > 0 {
			warnings = append(warnings, fmt.Sprintf("%s entry %q may match a %s holding a character an image tag cannot (such as '/'), and tag_template puts %s in the tag: such builds fail; %s",
				e.field, e.pattern, e.refType, strings.Join(why, " and "), fix))
		}
	}
	if allTags && !b.SanitizeRef && build.UsesRef(template, build.RefTag) {
		warnings = append(warnings, fmt.Sprintf("triggers.tags builds every tag, and a tag holding a character an image tag cannot (such as '/') fails to render with tag_template %q; %s", template, fix))
	}
	return warnings, nil
}

// refExtras is what a build of ref under rule r adds to its input beyond the rule: the
// captures of the entry ref matched, and whether it also tags latest.
func refExtras(r store.Rule, ref build.Ref, defaultBranch string) (captures map[string]string, latest bool) {
	if d, ok := webhook.MatchRef(r.Triggers, ref); ok {
		captures = d.Captures
	}
	latest = r.TagLatest == tagLatestDefaultBranch && ref.Type == build.RefBranch && defaultBranch != "" && ref.Name == defaultBranch
	return captures, latest
}

// refExtras is refExtras for a build no webhook payload came with: the default branch is read
// through the rule's account, and only when the rule tags latest.
func (a *Server) refExtras(ctx context.Context, r store.Rule, ref build.Ref) (map[string]string, bool) {
	def := ""
	if r.TagLatest == tagLatestDefaultBranch && ref.Type == build.RefBranch {
		def = a.defaultBranch(ctx, r)
	}
	return refExtras(r, ref, def)
}

// maxRepoPages bounds the listing walked to find a repository's default branch through an
// account: an owner with more repositories than that tags no latest on a build by hand.
const maxRepoPages = 20

// defaultBranch reads the default branch of rule r's source through its account, for builds
// no webhook payload names it for; "" when the rule has no account or the provider cannot say.
func (a *Server) defaultBranch(ctx context.Context, r store.Rule) string {
	if r.AccountID == "" || a.accounts == nil {
		return ""
	}
	_, client, err := a.accounts.Client(ctx, r.AccountID)
	if err != nil {
		a.logger.Warn("reading the default branch", "rule", r.ID, "error", err)
		return ""
	}
	for page, n := 1, 0; page != 0 && n < maxRepoPages; n++ {
		repos, next, err := client.Repos(ctx, r.Source.Owner, page)
		if err != nil {
			a.logger.Warn("reading the default branch", "rule", r.ID, "error", err)
			return ""
		}
		for _, repo := range repos {
			if strings.EqualFold(repo.Name, r.Source.Repository) {
				return repo.DefaultBranch
			}
		}
		page = next.Next
	}
	return ""
}
