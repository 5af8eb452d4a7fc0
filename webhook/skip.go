package webhook

import "strings"

// skipMarkers are the commit-message markers that keep a push from building, as GitHub
// Actions, GitLab CI and Cloud Build honour them. Case-insensitive.
var skipMarkers = []string{"[skip ci]", "[ci skip]", "[skip build]", "[no ci]"}

// SkipMarker returns the marker in a head commit's message that keeps its push from building,
// or "" when there is none.
func SkipMarker(message string) string {
	lower := strings.ToLower(message)
	for _, m := range skipMarkers {
		if strings.Contains(lower, m) {
			return m
		}
	}
	return ""
}
