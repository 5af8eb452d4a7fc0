package webhook

import (
	"errors"
	"fmt"
	"path"
	"regexp"
	"regexp/syntax"
	"strconv"
	"strings"
	"unicode"

	"github.com/slipway-dev/slipway/build"
)

// Pattern is one entry of a rule's triggers.branches or triggers.tag_patterns. It is one of:
//   - an exact name ("main");
//   - a glob, where "*" and "?" stay within a path segment and "**" crosses "/"
//     ("release/*", "feature/**"), with path.Match's character classes;
//   - an RE2 regular expression between slashes ("/^release-(\d+)$/"), matched against the
//     whole ref name as written (anchor it yourself), whose groups become captures.
//
// Docker Hub and Cloud Build users write the slash form; Quay users write globs.
type Pattern struct {
	raw  string
	kind patternKind
	re   *regexp.Regexp // kindGlob with "**", kindRegexp
}

type patternKind int

const (
	kindExact patternKind = iota
	kindGlob
	kindRegexp
)

// Captures are what a regular-expression pattern captured from a ref: Index[0] is group 1.
// Named groups appear both by index and by name. A glob or an exact name captures nothing.
type Captures struct {
	Index []string
	Named map[string]string
}

// Lookup returns the capture a tag template names by "1".."9" or by a group's name.
func (c Captures) Lookup(key string) (string, bool) {
	if n, err := strconv.Atoi(key); err == nil {
		if n >= 1 && n <= len(c.Index) {
			return c.Index[n-1], true
		}
		return "", false
	}
	v, ok := c.Named[key]
	return v, ok
}

// ParsePattern reads one trigger entry. A malformed regular expression or glob is an error
// naming the entry, so a rule that could never match is refused when it is saved.
func ParsePattern(s string) (Pattern, error) {
	if s == "" {
		return Pattern{}, errors.New("pattern is empty")
	}
	if len(s) >= 2 && strings.HasPrefix(s, "/") && strings.HasSuffix(s, "/") {
		re, err := regexp.Compile(s[1 : len(s)-1])
		if err != nil {
			return Pattern{}, fmt.Errorf("pattern %s is not a valid RE2 regular expression: %w", quote(s), err)
		}
		if re.NumSubexp() > 9 {
			return Pattern{}, fmt.Errorf("pattern %s has %d groups; a tag template can name at most 9", quote(s), re.NumSubexp())
		}
		return Pattern{raw: s, kind: kindRegexp, re: re}, nil
	}
	if !strings.ContainsAny(s, `*?[\`) {
		return Pattern{raw: s, kind: kindExact}, nil
	}
	if _, err := path.Match(strings.ReplaceAll(s, "**", "*"), ""); err != nil {
		return Pattern{}, fmt.Errorf("pattern %s is not a valid glob: %w", quote(s), err)
	}
	p := Pattern{raw: s, kind: kindGlob}
	if strings.Contains(s, "**") {
		re, err := globRegexp(s)
		if err != nil {
			return Pattern{}, fmt.Errorf("pattern %s is not a valid glob: %w", quote(s), err)
		}
		p.re = re
	}
	return p, nil
}

// String returns the entry as the rule wrote it.
func (p Pattern) String() string { return p.raw }

// IsRegexp reports whether the entry is a regular expression, whose groups a template may name.
func (p Pattern) IsRegexp() bool { return p.kind == kindRegexp }

// IsExact reports whether the entry names one ref only.
func (p Pattern) IsExact() bool { return p.kind == kindExact }

// GroupNames lists the captures a template may name after a match of p: "1".."N" and the
// names of named groups.
func (p Pattern) GroupNames() []string {
	if p.kind != kindRegexp {
		return nil
	}
	var names []string
	for i, n := range p.re.SubexpNames()[1:] {
		names = append(names, strconv.Itoa(i+1))
		if n != "" {
			names = append(names, n)
		}
	}
	return names
}

// Match reports whether ref matches the entry and, for a regular expression, what it captured.
// A ref equal to the entry always matches, so a branch literally named "fix[1" still builds.
func (p Pattern) Match(ref string) (Captures, bool) {
	if ref == p.raw && p.kind != kindRegexp {
		return Captures{}, true
	}
	switch p.kind {
	case kindExact:
		return Captures{}, false
	case kindGlob:
		if p.re != nil {
			return Captures{}, p.re.MatchString(ref)
		}
		ok, err := path.Match(p.raw, ref)
		return Captures{}, err == nil && ok
	}
	m := p.re.FindStringSubmatch(ref)
	if m == nil {
		return Captures{}, false
	}
	c := Captures{Index: m[1:], Named: map[string]string{}}
	for i, n := range p.re.SubexpNames() {
		if i > 0 && n != "" {
			c.Named[n] = m[i]
		}
	}
	return c, true
}

// globRegexp compiles a glob holding "**"; see build.CompileGlob.
func globRegexp(glob string) (*regexp.Regexp, error) { return build.CompileGlob(glob) }

// MayHold reports whether a ref this entry matches may hold a rune bad reports, or, when
// group is not "", whether that capture ("1".."9" or a group's name) may. It answers for
// every ref the entry could match, not one: the gateway warns about a rule whose template
// would fail for some of them. An exact name is checked itself; a glob's wildcards can match
// almost anything, so a glob may hold any rune its wildcards can.
func (p Pattern) MayHold(group string, bad func(rune) bool) bool {
	switch p.kind {
	case kindExact:
		return group == "" && strings.IndexFunc(p.raw, bad) >= 0
	case kindGlob:
		return group == ""
	}
	tree, err := syntax.Parse(p.raw[1:len(p.raw)-1], syntax.Perl)
	if err != nil {
		return true
	}
	if group != "" {
		if tree = findCapture(tree, group); tree == nil {
			return false
		}
	}
	return mayMatchRune(tree, bad)
}

// findCapture returns the group of tree numbered or named group, or nil.
func findCapture(tree *syntax.Regexp, group string) *syntax.Regexp {
	if tree.Op == syntax.OpCapture && (strconv.Itoa(tree.Cap) == group || tree.Name == group) {
		return tree
	}
	for _, sub := range tree.Sub {
		if c := findCapture(sub, group); c != nil {
			return c
		}
	}
	return nil
}

// mayMatchRune reports whether some string tree matches holds a rune bad reports.
func mayMatchRune(tree *syntax.Regexp, bad func(rune) bool) bool {
	switch tree.Op {
	case syntax.OpLiteral:
		for _, r := range tree.Rune {
			if bad(r) || (tree.Flags&syntax.FoldCase != 0 && (bad(unicode.ToUpper(r)) || bad(unicode.ToLower(r)))) {
				return true
			}
		}
	case syntax.OpCharClass:
		for i := 0; i+1 < len(tree.Rune); i += 2 {
			lo, hi := tree.Rune[i], tree.Rune[i+1]
			if hi-lo > 512 {
				return true
			}
			for r := lo; r <= hi; r++ {
				if bad(r) {
					return true
				}
			}
		}
	case syntax.OpAnyChar, syntax.OpAnyCharNotNL:
		return true
	}
	for _, sub := range tree.Sub {
		if mayMatchRune(sub, bad) {
			return true
		}
	}
	return false
}
