package build

import (
	"fmt"
	"path"
	"regexp"
	"strings"
)

// CompileGlob translates a glob into an anchored regular expression: "**" is any run of
// characters, "*" any run without "/", "?" one character but "/", classes as path.Match, and
// "a/**/b" also matches "a/b", as in gitignore and Cloud Build. Branch and tag patterns and
// path filters share it, so one glob means the same everywhere in a rule.
func CompileGlob(glob string) (*regexp.Regexp, error) {
	if _, err := path.Match(strings.ReplaceAll(glob, "**", "*"), ""); err != nil {
		return nil, err
	}
	var b strings.Builder
	b.WriteString("^")
	for i := 0; i < len(glob); i++ {
		switch c := glob[i]; c {
		case '*':
			if i+1 < len(glob) && glob[i+1] == '*' {
				i++
				if i+1 < len(glob) && glob[i+1] == '/' && (i-1 == 0 || glob[i-2] == '/') {
					i++
					b.WriteString("(?:.*/)?")
					continue
				}
				b.WriteString(".*")
				continue
			}
			b.WriteString("[^/]*")
		case '?':
			b.WriteString("[^/]")
		case '\\':
			if i+1 == len(glob) {
				return nil, path.ErrBadPattern
			}
			i++
			b.WriteString(regexp.QuoteMeta(glob[i : i+1]))
		case '[':
			end := strings.IndexByte(glob[i+1:], ']')
			if end < 0 {
				return nil, path.ErrBadPattern
			}
			class := glob[i+1 : i+1+end]
			if strings.HasPrefix(class, "^") {
				// path.Match negates with "^" too; keep "/" out of either form.
				class = "^/" + class[1:]
			}
			b.WriteString("[" + class + "]")
			i += end + 1
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	b.WriteString("$")
	re, err := regexp.Compile(b.String())
	if err != nil {
		return nil, fmt.Errorf("%w: %w", path.ErrBadPattern, err)
	}
	return re, nil
}
