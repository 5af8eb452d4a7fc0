package main

import (
	"regexp"
	"strings"
	"time"
)

// Groups of BuildKit vertices the bench times, in report order.
const (
	groupContext     = "context"
	groupBase        = "base image"
	groupSteps       = "COPY/RUN"
	groupCacheImport = "cache import"
	groupPull        = "cached-layer pull"
	groupExport      = "export"
	groupCacheExport = "cache export"
)

// vertexGroupNames lists the groups in report order.
func vertexGroupNames() []string {
	return []string{groupContext, groupBase, groupSteps, groupCacheImport, groupPull, groupExport, groupCacheExport}
}

// vertexGroups sums, per group, the "#N DONE 1.2s" times of the vertices in BuildKit's plain
// progress output. A vertex that ends CACHED or with an ERROR adds nothing. A step that was
// CACHED and is DONE later had its layers pulled for the export: a cache hit from the registry
// leaves the blobs there until an exporter needs their bytes.
func vertexGroups(text string) map[string]time.Duration {
	groupOf := map[string]string{}
	cached := map[string]bool{}
	out := map[string]time.Duration{}
	for line := range strings.Lines(text) {
		num, rest, ok := strings.Cut(strings.TrimSpace(line), " ")
		if !ok || len(num) < 2 || num[0] != '#' {
			continue
		}
		if _, seen := groupOf[num]; !seen {
			groupOf[num] = vertexGroup(rest)
			continue
		}
		if rest == "CACHED" {
			cached[num] = true
			continue
		}
		secs, ok := strings.CutPrefix(rest, "DONE ")
		if !ok || groupOf[num] == "" {
			continue
		}
		g := groupOf[num]
		if cached[num] {
			g = groupPull
		}
		if d, err := time.ParseDuration(strings.TrimSpace(secs)); err == nil {
			out[g] += d
		}
	}
	return out
}

// vertexGroup is the group of a vertex by its name, or "" for the small internal ones (load
// build definition, .dockerignore).
func vertexGroup(name string) string {
	switch {
	case strings.HasPrefix(name, "[internal] load build context"):
		return groupContext
	case strings.HasPrefix(name, "[internal] load metadata for"):
		return groupBase
	case strings.HasPrefix(name, "importing cache"):
		return groupCacheImport
	case strings.HasPrefix(name, "exporting cache"):
		return groupCacheExport
	case strings.HasPrefix(name, "exporting to "):
		return groupExport
	}
	switch inst, ok := dockerfileInstruction(name); {
	case !ok:
		return ""
	case inst == "FROM":
		return groupBase
	default:
		return groupSteps
	}
}

// stepName matches a Dockerfile step's vertex name: "[2/5] COPY app/ /app", "[stage 2/5] COPY …".
var stepName = regexp.MustCompile(`^\[(?:\S+ )?\d+/\d+\] (\S+)`)

// dockerfileInstruction is the instruction of a Dockerfile step's vertex name, "COPY" of
// "[2/5] COPY app/ /app"; ok is false for other vertices.
func dockerfileInstruction(name string) (inst string, ok bool) {
	if m := stepName.FindStringSubmatch(name); m != nil {
		return m[1], true
	}
	return "", false
}
