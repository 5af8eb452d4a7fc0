package activities

import (
	"fmt"
	"os"
	"path"
	"strings"

	"github.com/distribution/reference"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"go.temporal.io/sdk/temporal"

	"github.com/slipway-dev/slipway/build"
)

// DefaultFrontends are the frontend images a `# syntax=` may name unless the operator says
// otherwise: Docker's own Dockerfile frontend, at any tag or digest. The built-in frontend
// (no directive) is always allowed.
var DefaultFrontends = []string{"docker.io/docker/dockerfile:*", "docker.io/docker/dockerfile-upstream:*"}

// CheckFrontend reads the Dockerfile's parser directives the way BuildKit's Dockerfile
// frontend does and refuses a `# syntax=` frontend no pattern of allowed matches: a frontend
// image runs inside buildkitd with the build's session and can emit any build graph, so only
// the operator chooses them.
func CheckFrontend(dockerfile string, allowed []string) error {
	data, err := os.ReadFile(dockerfile)
	if err != nil {
		return fmt.Errorf("reading the Dockerfile: %w", err)
	}
	ref, _, _, ok := parser.DetectSyntax(data)
	if !ok {
		return nil
	}
	if FrontendAllowed(ref, allowed) {
		return nil
	}
	return temporal.NewNonRetryableApplicationError(
		fmt.Sprintf("frontend %q of the Dockerfile's syntax directive is not allowed on this service (allowed: %s)",
			ref, strings.Join(allowed, ", ")), build.ErrTypeFrontendRefused, nil)
}

// FrontendAllowed reports whether the frontend image ref matches one of patterns. Both are
// normalized as Docker does (busybox is docker.io/library/busybox:latest); a pattern is a
// path.Match glob over "NAME:TAG" (a pattern without a tag matches any tag), and a ref pinned
// by digest matches with the tag it names, or "" when it names none.
func FrontendAllowed(ref string, patterns []string) bool {
	named, err := reference.ParseNormalizedNamed(strings.TrimSpace(ref))
	if err != nil {
		return false
	}
	tag := "latest"
	if t, ok := named.(reference.Tagged); ok {
		tag = t.Tag()
	} else if _, ok := named.(reference.Digested); ok {
		tag = ""
	}
	full := named.Name() + ":" + tag
	for _, p := range patterns {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		p = normalizePattern(p)
		subject := full
		if !strings.Contains(path.Base(p), ":") {
			subject = named.Name()
		}
		if ok, _ := path.Match(p, subject); ok {
			return true
		}
	}
	return false
}

// normalizePattern spells a pattern as reference.ParseNormalizedNamed spells names, so that
// "docker/dockerfile:*" covers "docker.io/docker/dockerfile:1".
func normalizePattern(p string) string {
	first, _, found := strings.Cut(p, "/")
	if !found {
		return "docker.io/library/" + p
	}
	if !strings.ContainsAny(first, ".:") && first != "localhost" {
		return "docker.io/" + p
	}
	return p
}
