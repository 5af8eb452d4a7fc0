package build

import (
	"regexp"
	"strings"
)

// semverTag is a release tag as people push them: "v1.2.3" or "1.2.3", with an optional
// pre-release ("-rc.1") and build metadata ("+linux"), per semver.org's grammar.
var semverTag = regexp.MustCompile(`^v?(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)` +
	`(?:-((?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*)(?:\.(?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*))*))?` +
	`(?:\+([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?$`)

// SemverTags returns the image tags a rule with "semver": true adds for a Git tag: "1.2.3",
// "1.2" and "1" for "v1.2.3". A pre-release ("v1.2.3-rc.1") gets only its full version
// ("1.2.3-rc.1"), so "1.2" and "1" never move to a release candidate; build metadata is
// dropped, as an image tag cannot hold "+" and semver ignores it for precedence. A tag that
// is not a version gets none.
func SemverTags(gitTag string) []string {
	m := semverTag.FindStringSubmatch(gitTag)
	if m == nil {
		return nil
	}
	major, minor, patch, pre := m[1], m[2], m[3], m[4]
	full := strings.Join([]string{major, minor, patch}, ".")
	if pre != "" {
		return []string{full + "-" + pre}
	}
	return []string{full, major + "." + minor, major}
}
