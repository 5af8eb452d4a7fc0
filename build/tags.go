package build

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
)

// This file is where a tag is rendered: the gateway and the workflow check a template with
// it before any build, and the render_tag step renders the real tags with it.

// DefaultTagTemplate is used when a build names no template: the branch or tag that triggered.
const DefaultTagTemplate = "{ref}"

// TimeFormat is how {time} renders: the build start in UTC, sortable and valid in a tag.
const TimeFormat = "20060102150405"

// MaxTags bounds the tags one build pushes: each is a registry round trip, and a template of
// thousands would keep the push step busy for every other build of the host.
const MaxTags = 16

// tagPattern is the OCI distribution grammar for a tag.
var tagPattern = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)

// ValidTag reports whether tag is a valid image tag by the OCI distribution grammar.
func ValidTag(tag string) bool {
	return tagPattern.MatchString(tag)
}

// Placeholders lists every placeholder a tag template may use.
func Placeholders() []string {
	return []string{"{branch}", "{tag}", "{ref}", "{commit}", "{short_commit}", "{time}"}
}

// immutablePlaceholders are the placeholders that make a rendered tag name one build's own:
// a tag holding the commit or the build time is never written by a build of another commit.
var immutablePlaceholders = []string{"{commit}", "{short_commit}", "{time}"}

// MutableTemplate reports whether a tag template (one entry of a comma-separated list) renders
// a tag that follows a ref, such as {branch}, {tag}, {ref} or a fixed name like latest: one
// that builds of different commits write in turn. A template holding {commit},
// {short_commit} or {time} renders a tag of one commit only, which never moves backwards.
func MutableTemplate(template string) bool {
	template = strings.TrimSpace(template)
	if template == "" {
		template = DefaultTagTemplate
	}
	for _, p := range immutablePlaceholders {
		if strings.Contains(template, p) {
			return false
		}
	}
	return true
}

// TagValues are what a template's placeholders stand for.
type TagValues struct {
	Ref         Ref
	Commit      string
	Time        time.Time
	SanitizeRef bool
	// Captures are what the rule's matching pattern captured from the ref, by group number
	// ("1".."9") and name; a template may name them as {1} or {name}.
	Captures map[string]string
}

// invalidTag is the error of a template that renders no tag.
func invalidTag(field, msg string) error {
	return &InvalidError{Field: field, Type: ErrTypeInvalidTag, Msg: msg}
}

// builtin reports whether a placeholder (with its braces) is one of Placeholders.
func builtin(ph string) bool {
	for _, p := range Placeholders() {
		if ph == p {
			return true
		}
	}
	return false
}

// UsesRef reports whether a template puts the name of a ref of type refType into the tag:
// {ref}, or {branch} for a branch and {tag} for a tag. Only such a template (or one naming a
// capture) cares whether the ref holds a character an image tag cannot.
func UsesRef(template, refType string) bool {
	if strings.TrimSpace(template) == "" {
		template = DefaultTagTemplate
	}
	return strings.Contains(template, "{ref}") ||
		(refType == RefBranch && strings.Contains(template, "{branch}")) ||
		(refType == RefTag && strings.Contains(template, "{tag}"))
}

// TemplateCaptures lists the placeholders of a (comma-separated) template that are not
// Placeholders, without braces, in order and without repeats: the captures it needs from the
// pattern a ref matched. The gateway checks them against every pattern of the rule at save
// time.
func TemplateCaptures(template string) []string {
	var out []string
	rest := template
	for {
		open := strings.IndexByte(rest, '{')
		if open < 0 {
			return out
		}
		end := strings.IndexByte(rest[open:], '}')
		if end < 0 {
			return out
		}
		ph := rest[open : open+end+1]
		if !builtin(ph) && !slices.Contains(out, ph[1:len(ph)-1]) {
			out = append(out, ph[1:len(ph)-1])
		}
		rest = rest[open+end+1:]
	}
}

// refValue is the value of a placeholder taken from a ref (the ref, or a capture of it): it
// fails naming the character an image tag cannot hold, unless sanitize maps it to '-'.
func refValue(what, value string, ref Ref, sanitize bool) (string, error) {
	if sanitize {
		return sanitizeRef(value), nil
	}
	if i := strings.IndexFunc(value, func(r rune) bool { return !tagRune(r) }); i >= 0 {
		r := []rune(value[i:])[0]
		if what == "" {
			return "", invalidTag("ref.name", fmt.Sprintf("%s %q holds %q, which an image tag cannot contain; set sanitize_ref to map it to '-', or leave {branch}, {tag} and {ref} out of tag_template",
				ref.Type, ref.Name, r))
		}
		return "", invalidTag("ref.name", fmt.Sprintf("%s of %s %q is %q, which holds %q, which an image tag cannot contain; set sanitize_ref to map it to '-'",
			what, ref.Type, ref.Name, value, r))
	}
	return value, nil
}

// ExpandTag expands a tag template and checks the result against the OCI tag grammar. A ref
// name holding a character a tag cannot hold fails naming the character only when the
// template puts the ref into the tag ({branch}, {tag}, {ref} or a capture holding it), unless
// SanitizeRef maps each such character to '-'. Errors are *InvalidError of ErrTypeInvalidTag.
func ExpandTag(template string, v TagValues) (string, error) {
	if template == "" {
		template = DefaultTagTemplate
	}
	if err := checkTemplate(template, v.Captures); err != nil {
		return "", err
	}
	var branch, tag, refName string
	if UsesRef(template, v.Ref.Type) {
		var err error
		if refName, err = refValue("", v.Ref.Name, v.Ref, v.SanitizeRef); err != nil {
			return "", err
		}
	}
	switch v.Ref.Type {
	case RefBranch:
		branch = refName
	case RefTag:
		tag = refName
	}
	short := v.Commit
	if len(short) > 7 {
		short = short[:7]
	}
	pairs := []string{
		"{branch}", branch,
		"{tag}", tag,
		"{ref}", refName,
		"{commit}", v.Commit,
		"{short_commit}", short,
		"{time}", v.Time.UTC().Format(TimeFormat),
	}
	for _, name := range TemplateCaptures(template) {
		value, err := refValue("capture {"+name+"}", v.Captures[name], v.Ref, v.SanitizeRef)
		if err != nil {
			return "", err
		}
		pairs = append(pairs, "{"+name+"}", value)
	}
	out := strings.NewReplacer(pairs...).Replace(template)
	if !tagPattern.MatchString(out) {
		return "", invalidTag("tag_template", fmt.Sprintf("template %q renders %q, which is not a valid image tag (want %s)",
			template, out, tagPattern.String()))
	}
	return out, nil
}

// CheckTemplate refuses a template with an unknown or unclosed placeholder. It is what a
// gateway calls when a rule is saved, so a bad template is caught before any build; a
// template naming captures is checked with CheckTemplateCaptures.
func CheckTemplate(template string) error {
	return checkTemplate(template, nil)
}

// CheckTemplateCaptures is CheckTemplate for a template rendered with the captures a pattern
// with groups names: each placeholder is one of Placeholders or one of groups.
func CheckTemplateCaptures(template string, groups []string) error {
	captures := map[string]string{}
	for _, g := range groups {
		captures[g] = ""
	}
	return checkTemplate(template, captures)
}

// checkTemplate is CheckTemplate with the names of captures also known.
func checkTemplate(template string, captures map[string]string) error {
	rest := template
	for {
		open := strings.IndexByte(rest, '{')
		closing := strings.IndexByte(rest, '}')
		if open < 0 {
			if closing >= 0 {
				return invalidTag("tag_template", fmt.Sprintf("template %q has a '}' without '{'", template))
			}
			return nil
		}
		if closing >= 0 && closing < open {
			return invalidTag("tag_template", fmt.Sprintf("template %q has a '}' without '{'", template))
		}
		end := strings.IndexByte(rest[open:], '}')
		if end < 0 {
			return invalidTag("tag_template", fmt.Sprintf("template %q has an unclosed '{'", template))
		}
		ph := rest[open : open+end+1]
		if _, capture := captures[ph[1:len(ph)-1]]; !builtin(ph) && !capture {
			known := strings.Join(Placeholders(), ", ")
			if len(captures) > 0 {
				var names []string
				for n := range captures {
					names = append(names, "{"+n+"}")
				}
				slices.Sort(names)
				known += ", and the captures " + strings.Join(names, ", ")
			}
			return invalidTag("tag_template", fmt.Sprintf("template %q uses unknown placeholder %s (known: %s)",
				template, ph, known))
		}
		rest = rest[open+end+1:]
	}
}

func tagRune(r rune) bool {
	return r == '_' || r == '.' || r == '-' ||
		(r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9')
}

func sanitizeRef(s string) string {
	return strings.Map(func(r rune) rune {
		if tagRune(r) {
			return r
		}
		return '-'
	}, s)
}

// RenderTagInput carries what a tag template may refer to.
type RenderTagInput struct {
	// TagTemplate is one template or several separated by commas, each giving one tag.
	TagTemplate string    `json:"tag_template"`
	Ref         Ref       `json:"ref"`
	Commit      string    `json:"commit"`
	Time        time.Time `json:"time"`
	SanitizeRef bool      `json:"sanitize_ref,omitempty"`
	// Captures are what the rule's matching pattern captured from the ref.
	Captures map[string]string `json:"captures,omitempty"`
	// Latest adds the tag "latest" (a build of the default branch of a rule that asks).
	Latest bool `json:"latest,omitempty"`
	// Semver adds SemverTags of a Git tag.
	Semver bool `json:"semver,omitempty"`
}

// RenderTagResult lists the rendered tags, in template order, without repeats.
type RenderTagResult struct {
	Tags []string `json:"tags"`
	// Mutable lists the tags that follow a ref (see MutableTemplate): the push step moves
	// them only forwards. The others hold the commit or the time and are always pushed.
	Mutable []string `json:"mutable,omitempty"`
}

// LatestTag is the tag a rule with tag_latest adds to builds of the default branch.
const LatestTag = "latest"

// RenderTags renders a build's tags: the template's, then "latest" when Latest is set, then
// the version tags when Semver is set and the ref is a tag that is a version. Errors are
// *InvalidError of ErrTypeInvalidTag.
func RenderTags(in RenderTagInput) (RenderTagResult, error) {
	var res RenderTagResult
	seen := map[string]bool{}
	add := func(tag string, mutable bool) {
		if !seen[tag] {
			seen[tag] = true
			res.Tags = append(res.Tags, tag)
			if mutable {
				res.Mutable = append(res.Mutable, tag)
			}
		}
	}
	tmpl := in.TagTemplate
	if strings.TrimSpace(tmpl) == "" {
		tmpl = DefaultTagTemplate
	}
	templates := strings.Split(tmpl, ",")
	var extra []string
	if in.Latest {
		extra = append(extra, LatestTag)
	}
	if in.Semver && in.Ref.Type == RefTag {
		extra = append(extra, SemverTags(in.Ref.Name)...)
	}
	if n := len(templates) + len(extra); n > MaxTags {
		return RenderTagResult{}, invalidTag("tag_template", fmt.Sprintf("tag_template, tag_latest and semver give %d tags; a build pushes at most %d", n, MaxTags))
	}
	for _, t := range templates {
		tag, err := ExpandTag(strings.TrimSpace(t), TagValues{Ref: in.Ref, Commit: in.Commit, Time: in.Time, SanitizeRef: in.SanitizeRef, Captures: in.Captures})
		if err != nil {
			return RenderTagResult{}, err
		}
		add(tag, MutableTemplate(t))
	}
	// latest and the version tags follow a ref: each moves from commit to commit.
	for _, tag := range extra {
		add(tag, true)
	}
	return res, nil
}

// TagRune reports whether an image tag may hold r; a ref name holding another rune fails to
// render into a tag unless sanitize_ref maps it to '-'.
func TagRune(r rune) bool { return tagRune(r) }
