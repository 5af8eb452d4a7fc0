package build

import (
	"fmt"
	"regexp"
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
}

// invalidTag is the error of a template that renders no tag.
func invalidTag(field, msg string) error {
	return &InvalidError{Field: field, Type: ErrTypeInvalidTag, Msg: msg}
}

// ExpandTag expands a tag template and checks the result against the OCI tag grammar.
// A ref name holding a character a tag cannot hold fails naming the character, unless
// SanitizeRef maps each such character to '-'. Errors are *InvalidError of ErrTypeInvalidTag.
func ExpandTag(template string, v TagValues) (string, error) {
	if template == "" {
		template = DefaultTagTemplate
	}
	if err := CheckTemplate(template); err != nil {
		return "", err
	}
	refName := v.Ref.Name
	if v.SanitizeRef {
		refName = sanitizeRef(refName)
	} else if i := strings.IndexFunc(refName, func(r rune) bool { return !tagRune(r) }); i >= 0 {
		r := []rune(refName[i:])[0]
		return "", invalidTag("ref.name", fmt.Sprintf("%s %q holds %q, which an image tag cannot contain; set sanitize_ref to map it to '-'",
			v.Ref.Type, v.Ref.Name, r))
	}
	var branch, tag string
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
	out := strings.NewReplacer(
		"{branch}", branch,
		"{tag}", tag,
		"{ref}", refName,
		"{commit}", v.Commit,
		"{short_commit}", short,
		"{time}", v.Time.UTC().Format(TimeFormat),
	).Replace(template)
	if !tagPattern.MatchString(out) {
		return "", invalidTag("tag_template", fmt.Sprintf("template %q renders %q, which is not a valid image tag (want %s)",
			template, out, tagPattern.String()))
	}
	return out, nil
}

// CheckTemplate refuses a template with an unknown or unclosed placeholder. It is what a
// gateway calls when a rule is saved, so a bad template is caught before any build.
func CheckTemplate(template string) error {
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
		known := false
		for _, p := range Placeholders() {
			if ph == p {
				known = true
				break
			}
		}
		if !known {
			return invalidTag("tag_template", fmt.Sprintf("template %q uses unknown placeholder %s (known: %s)",
				template, ph, strings.Join(Placeholders(), ", ")))
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
}

// RenderTagResult lists the rendered tags, in template order, without repeats.
type RenderTagResult struct {
	Tags []string `json:"tags"`
	// Mutable lists the tags that follow a ref (see MutableTemplate): the push step moves
	// them only forwards. The others hold the commit or the time and are always pushed.
	Mutable []string `json:"mutable,omitempty"`
}

// RenderTags renders a build's tags; errors are *InvalidError of ErrTypeInvalidTag.
func RenderTags(in RenderTagInput) (RenderTagResult, error) {
	var res RenderTagResult
	seen := map[string]bool{}
	tmpl := in.TagTemplate
	if strings.TrimSpace(tmpl) == "" {
		tmpl = DefaultTagTemplate
	}
	templates := strings.Split(tmpl, ",")
	if len(templates) > MaxTags {
		return RenderTagResult{}, invalidTag("tag_template", fmt.Sprintf("tag_template gives %d tags; a build pushes at most %d", len(templates), MaxTags))
	}
	for _, t := range templates {
		tag, err := ExpandTag(strings.TrimSpace(t), TagValues{Ref: in.Ref, Commit: in.Commit, Time: in.Time, SanitizeRef: in.SanitizeRef})
		if err != nil {
			return RenderTagResult{}, err
		}
		if !seen[tag] {
			seen[tag] = true
			res.Tags = append(res.Tags, tag)
			if MutableTemplate(t) {
				res.Mutable = append(res.Mutable, tag)
			}
		}
	}
	return res, nil
}
