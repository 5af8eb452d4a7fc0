package build

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// pathGlob compiles one entry of a path filter. An entry ending in "/" is a folder and
// selects everything under it ("docs/" is "docs/**").
func pathGlob(entry string) (*regexp.Regexp, error) {
	if strings.HasSuffix(entry, "/") {
		entry += "**"
	}
	return CompileGlob(entry)
}

// Check refuses an empty or malformed entry, naming it, so a filter that could never match is
// refused when the rule is saved.
func (f *PathFilter) Check() error {
	if f == nil {
		return nil
	}
	for _, list := range []struct {
		field   string
		entries []string
	}{{"triggers.paths.include", f.Include}, {"triggers.paths.ignore", f.Ignore}} {
		for _, e := range list.entries {
			if strings.TrimSpace(e) == "" {
				return fmt.Errorf("%s has an empty entry", list.field)
			}
			if strings.HasPrefix(e, "/") {
				return fmt.Errorf("%s entry %q is absolute; give it relative to the repository root", list.field, e)
			}
			if _, err := pathGlob(e); err != nil {
				return fmt.Errorf("%s entry %q is not a valid glob: %w", list.field, e, err)
			}
		}
	}
	return nil
}

// firstMatch returns the first entry matching file, or "".
func firstMatch(entries []string, file string) string {
	for _, e := range entries {
		if re, err := pathGlob(e); err == nil && re.MatchString(file) {
			return e
		}
	}
	return ""
}

// Selects reports whether a push that changed files builds under the filter, and why, naming
// the entries that decided: the webhook says it in its answer and the clone step in the
// skipped build's record. A nil filter selects everything; a push that changed no file (an
// empty commit) is selected only by a filter without Include, since nothing was ignored.
func (f *PathFilter) Selects(files []string) (bool, string) {
	if f == nil {
		return true, "no path filter"
	}
	ignoredBy := map[string]bool{}
	var kept []string
	for _, file := range files {
		if e := firstMatch(f.Ignore, file); e != "" {
			ignoredBy[e] = true
			continue
		}
		kept = append(kept, file)
	}
	if len(files) > 0 && len(kept) == 0 {
		return false, fmt.Sprintf("all %d changed files are ignored by triggers.paths.ignore %s", len(files), quoteList(ignoredBy))
	}
	if len(f.Include) == 0 {
		return true, fmt.Sprintf("%d changed files not ignored", len(kept))
	}
	for _, file := range kept {
		if e := firstMatch(f.Include, file); e != "" {
			return true, fmt.Sprintf("%s matches triggers.paths.include %q", file, e)
		}
	}
	if len(ignoredBy) > 0 {
		return false, fmt.Sprintf("no changed file matches triggers.paths.include %s (others ignored by %s)", quoteSlice(f.Include), quoteList(ignoredBy))
	}
	return false, fmt.Sprintf("no changed file matches triggers.paths.include %s", quoteSlice(f.Include))
}

func quoteList(set map[string]bool) string {
	var s []string
	for e := range set {
		s = append(s, e)
	}
	slices.Sort(s)
	return quoteSlice(s)
}

func quoteSlice(s []string) string {
	q := make([]string, len(s))
	for i, e := range s {
		q[i] = fmt.Sprintf("%q", e)
	}
	return "[" + strings.Join(q, ", ") + "]"
}
