// Package retention decides which tags of an image repository a retention policy deletes,
// and deletes them from the registry with go-containerregistry. Deciding is a pure function
// (Select) shared by the dry run the gateway answers and the run the worker's schedule makes,
// so a dry run lists exactly what a run at the same moment deletes.
package retention

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/slipway-dev/slipway/build"
)

// Tag is one tag of the repository as the registry has it.
type Tag struct {
	Name string `json:"tag"`
	// Digest is the manifest (or index) the tag points at.
	Digest string `json:"digest"`
	// Created is the image config's created time (for an index, its first image's); zero
	// when the image records none.
	Created time.Time `json:"created"`
}

// Decision is one tag's fate with the reason, as the dry run and the run's result show it.
type Decision struct {
	Tag
	Reason string `json:"reason"`
}

// Plan is a policy applied to a repository's tags at one moment.
type Plan struct {
	Delete []Decision `json:"delete"`
	Keep   []Decision `json:"keep"`
}

// DeleteDigests are the manifests the plan deletes: those of its deleted tags. No kept tag
// points at any of them (Select keeps every tag sharing a kept tag's digest), so deleting a
// manifest, which on a distribution registry untags every tag on it, takes no kept tag along.
func (p Plan) DeleteDigests() []string {
	seen := map[string]bool{}
	var out []string
	for _, d := range p.Delete {
		if !seen[d.Digest] {
			seen[d.Digest] = true
			out = append(out, d.Digest)
		}
	}
	sort.Strings(out)
	return out
}

// Protected are the tags kept whatever the policy says, by name, with the reason.
type Protected map[string]string

// RuleView is what of a build rule decides which tags it keeps alive.
type RuleView struct {
	ID        string
	TagLatest string
	Semver    bool
	Cache     string
}

// versionTag is an image tag SemverTags produces: "1.2.3", "1.2.3-rc.1", "1.2" or "1".
var versionTag = regexp.MustCompile(`^(0|[1-9]\d*)(\.(0|[1-9]\d*)(\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?)?)?$`)

// ProtectedTags are the tags of tags that the repository's rules keep in use: the registry
// cache (buildcache or the rule's cache tag), "latest" of a rule with tag_latest, and the
// version tags ("1.2.3", "1.2", "1") of a rule with semver, which follow releases and which
// users pull by those names.
func ProtectedTags(tags []Tag, rules []RuleView) Protected {
	p := Protected{build.CacheTag: "registry cache"}
	for _, r := range rules {
		if c := cacheTag(r.Cache); c != "" {
			p[c] = "registry cache of rule " + r.ID
		}
		if r.TagLatest != "" {
			p[build.LatestTag] = "tag_latest of rule " + r.ID
		}
	}
	for _, r := range rules {
		if !r.Semver {
			continue
		}
		for _, t := range tags {
			if _, done := p[t.Name]; !done && versionTag.MatchString(t.Name) {
				p[t.Name] = "semver tag of rule " + r.ID
			}
		}
	}
	return p
}

// cacheTag is the tag of a rule's cache setting: "" is buildcache, "off" none, else the part
// after the last ":" of an image reference, or the value itself.
func cacheTag(c string) string {
	switch c {
	case "":
		return build.CacheTag
	case "off":
		return ""
	}
	if i := strings.LastIndex(c, ":"); i >= 0 && !strings.Contains(c[i:], "/") {
		return c[i+1:]
	}
	return c
}

// Select applies policy to tags at now: each tag falls under the first rule whose pattern
// matches it; within a rule, tags are ordered newest first (by Created, then by name
// descending) and the first KeepLast are kept, as are those younger than KeepYoungerThan.
// Protected tags, tags no rule matches, tags with no created time (their age is unknown) and
// every tag on the same manifest as a kept tag are kept. Both lists are sorted by tag name.
func Select(tags []Tag, policy build.RetentionPolicy, protected Protected, now time.Time) (Plan, error) {
	if err := policy.Validate(); err != nil {
		return Plan{}, err
	}
	res := make([]*regexp.Regexp, len(policy.Rules))
	for i, r := range policy.Rules {
		res[i], _ = build.CompileTagPattern(r.TagPattern)
	}
	keep := map[string]string{}
	del := map[string]string{}
	byRule := make([][]Tag, len(policy.Rules))
	for _, t := range tags {
		if why, ok := protected[t.Name]; ok {
			keep[t.Name] = "protected: " + why
			continue
		}
		rule := -1
		for i, re := range res {
			if re.MatchString(t.Name) {
				rule = i
				break
			}
		}
		switch {
		case rule < 0:
			keep[t.Name] = "no rule matches"
		case t.Created.IsZero():
			keep[t.Name] = "age unknown: the image records no created time"
		default:
			byRule[rule] = append(byRule[rule], t)
		}
	}
	for i, group := range byRule {
		r := policy.Rules[i]
		sort.Slice(group, func(a, b int) bool {
			if !group[a].Created.Equal(group[b].Created) {
				return group[a].Created.After(group[b].Created)
			}
			return group[a].Name > group[b].Name
		})
		var young time.Duration
		if r.KeepYoungerThan != "" {
			young, _ = time.ParseDuration(r.KeepYoungerThan)
		}
		for n, t := range group {
			age := now.Sub(t.Created)
			switch {
			case n < r.KeepLast:
				keep[t.Name] = fmt.Sprintf("rule %q: newest %d of %d (keep_last %d)", r.TagPattern, n+1, len(group), r.KeepLast)
			case young > 0 && age < young:
				keep[t.Name] = fmt.Sprintf("rule %q: %s old, younger than %s", r.TagPattern, roundAge(age), r.KeepYoungerThan)
			default:
				del[t.Name] = deleteReason(r, n, len(group), age)
			}
		}
	}
	// A manifest is deleted whole: a tag on the same manifest as a kept tag stays with it.
	keptDigest := map[string]string{}
	for _, t := range tags {
		if _, ok := keep[t.Name]; ok {
			if _, seen := keptDigest[t.Digest]; !seen {
				keptDigest[t.Digest] = t.Name
			}
		}
	}
	var plan Plan
	for _, t := range tags {
		if why, ok := del[t.Name]; ok {
			if k, shared := keptDigest[t.Digest]; shared {
				plan.Keep = append(plan.Keep, Decision{Tag: t, Reason: fmt.Sprintf("same image as kept tag %q (%s)", k, why)})
				continue
			}
			plan.Delete = append(plan.Delete, Decision{Tag: t, Reason: why})
			continue
		}
		plan.Keep = append(plan.Keep, Decision{Tag: t, Reason: keep[t.Name]})
	}
	sortDecisions(plan.Delete)
	sortDecisions(plan.Keep)
	if plan.Delete == nil {
		plan.Delete = []Decision{}
	}
	if plan.Keep == nil {
		plan.Keep = []Decision{}
	}
	return plan, nil
}

func deleteReason(r build.RetentionRule, n, total int, age time.Duration) string {
	var parts []string
	if r.KeepLast > 0 {
		parts = append(parts, fmt.Sprintf("not among the newest %d (number %d of %d)", r.KeepLast, n+1, total))
	}
	if r.KeepYoungerThan != "" {
		parts = append(parts, fmt.Sprintf("%s old, not younger than %s", roundAge(age), r.KeepYoungerThan))
	}
	return fmt.Sprintf("rule %q: %s", r.TagPattern, strings.Join(parts, ", "))
}

func roundAge(d time.Duration) time.Duration {
	if d > time.Hour {
		return d.Round(time.Minute)
	}
	return d.Round(time.Second)
}

func sortDecisions(ds []Decision) {
	sort.Slice(ds, func(i, j int) bool { return ds[i].Name < ds[j].Name })
}
