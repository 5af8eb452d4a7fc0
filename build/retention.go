package build

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// RetentionWorkflowName is the workflow type of an image repository's retention run, which
// the repository's Temporal Schedule (slipway-retention-NS-REPO) starts every policy period.
const RetentionWorkflowName = "slipway_retention"

// CacheTag is the tag BuildKit's registry cache takes by default; retention never touches it
// (nor any cache tag a rule names).
const CacheTag = "buildcache"

// Bounds of a retention policy.
const (
	maxRetentionRules = 32
	// MinRetentionEvery keeps a schedule from hammering the registry.
	MinRetentionEvery = time.Minute
)

// RetentionPolicy says which tags of an image repository are deleted: each tag falls under
// the first rule whose pattern matches it, which keeps its newest KeepLast tags and those
// younger than KeepYoungerThan; the rest of its tags go. A tag no rule matches is kept.
type RetentionPolicy struct {
	Rules []RetentionRule `json:"rules"`
	// Every is how often the schedule applies the policy (Go duration, default 24h).
	Every string `json:"every,omitempty"`
}

// RetentionRule is one tag pattern of a policy: a tag name, a glob (`*`, `?`, classes) or an
// RE2 expression between slashes, as branch patterns of a build rule are written.
type RetentionRule struct {
	TagPattern string `json:"tag_pattern"`
	// KeepLast keeps the newest N tags matching the pattern (0: none by count).
	KeepLast int `json:"keep_last,omitempty"`
	// KeepYoungerThan keeps the tags younger than this Go duration ("720h"); empty: none by age.
	KeepYoungerThan string `json:"keep_younger_than,omitempty"`
}

// DefaultRetentionEvery is how often a policy without Every runs.
const DefaultRetentionEvery = 24 * time.Hour

// EveryOrDefault is the policy's period.
func (p RetentionPolicy) EveryOrDefault() time.Duration {
	if d, err := time.ParseDuration(p.Every); err == nil && p.Every != "" {
		return d
	}
	return DefaultRetentionEvery
}

// Validate refuses a policy that would delete by accident: no rules, a rule that keeps
// nothing (neither keep_last nor keep_younger_than), a bad pattern or duration.
func (p RetentionPolicy) Validate() error {
	if len(p.Rules) == 0 {
		return errors.New("rules: a policy needs at least one rule")
	}
	if len(p.Rules) > maxRetentionRules {
		return fmt.Errorf("rules: at most %d", maxRetentionRules)
	}
	if p.Every != "" {
		d, err := time.ParseDuration(p.Every)
		if err != nil {
			return fmt.Errorf("every %q: %w", p.Every, err)
		}
		if d < MinRetentionEvery {
			return fmt.Errorf("every %q: at least %s", p.Every, MinRetentionEvery)
		}
	}
	for i, r := range p.Rules {
		if _, err := CompileTagPattern(r.TagPattern); err != nil {
			return fmt.Errorf("rules[%d].tag_pattern: %w", i, err)
		}
		if r.KeepLast < 0 {
			return fmt.Errorf("rules[%d].keep_last: %d is negative", i, r.KeepLast)
		}
		if r.KeepYoungerThan != "" {
			d, err := time.ParseDuration(r.KeepYoungerThan)
			if err != nil {
				return fmt.Errorf("rules[%d].keep_younger_than %q: %w", i, r.KeepYoungerThan, err)
			}
			if d <= 0 {
				return fmt.Errorf("rules[%d].keep_younger_than %q: must be positive", i, r.KeepYoungerThan)
			}
		}
		if r.KeepLast == 0 && r.KeepYoungerThan == "" {
			return fmt.Errorf("rules[%d]: set keep_last or keep_younger_than (a rule keeping nothing would delete every tag it matches)", i)
		}
	}
	return nil
}

// CompileTagPattern compiles a retention rule's tag pattern: RE2 between slashes, else a glob
// (an exact name is a glob without wildcards).
func CompileTagPattern(p string) (*regexp.Regexp, error) {
	if p == "" {
		return nil, errors.New("empty pattern")
	}
	if len(p) >= 2 && strings.HasPrefix(p, "/") && strings.HasSuffix(p, "/") {
		re, err := regexp.Compile(p[1 : len(p)-1])
		if err != nil {
			return nil, fmt.Errorf("parsing pattern %q: %w", p, err)
		}
		return re, nil
	}
	re, err := CompileGlob(p)
	if err != nil {
		return nil, fmt.Errorf("parsing pattern %q: %w", p, err)
	}
	return re, nil
}

// RetentionInput is what a repository's Schedule starts the retention workflow with: only
// which repository; the policy and the rules protecting tags are read when it runs, so a
// change applies at the next run without touching the Schedule.
type RetentionInput struct {
	Namespace  string `json:"namespace"`
	Repository string `json:"repository"`
}
