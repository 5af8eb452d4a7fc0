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

// vertex is one vertex of BuildKit's plain progress output: "#N name", then "#N CACHED" or
// "#N DONE 1.2s" among its lines.
type vertex struct {
	name      string
	cached    bool
	done      bool
	doneAfter time.Duration
}

// vertices parses BuildKit's plain progress output, vertices in the order they first appear.
func vertices(text string) []*vertex {
	byNum := map[string]*vertex{}
	var out []*vertex
	for line := range strings.Lines(text) {
		num, rest, ok := strings.Cut(strings.TrimSpace(line), " ")
		if v := byNum[num]; !ok || len(num) < 2 || num[0] != '#' {
			continue
		} else if v == nil {
			byNum[num] = &vertex{name: rest}
			out = append(out, byNum[num])
		} else if rest == "CACHED" {
			v.cached = true
		} else if secs, ok := strings.CutPrefix(rest, "DONE "); ok {
			if d, err := time.ParseDuration(strings.TrimSpace(secs)); err == nil {
				v.done, v.doneAfter = true, v.doneAfter+d
			}
		}
	}
	return out
}

// vertexGroups sums, per group, the "#N DONE 1.2s" times of the vertices in BuildKit's plain
// progress output. A vertex that ends CACHED or with an ERROR adds nothing. A step that was
// CACHED and is DONE later had its layers pulled for the export: a cache hit from the registry
// leaves the blobs there until an exporter needs their bytes.
func vertexGroups(text string) map[string]time.Duration {
	out := map[string]time.Duration{}
	for _, v := range vertices(text) {
		if g := vertexGroup(v.name); g != "" && v.done && v.cached {
			out[groupPull] += v.doneAfter
		} else if g != "" && v.done {
			out[g] += v.doneAfter
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
