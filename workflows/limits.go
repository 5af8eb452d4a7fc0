package workflows

import (
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
)

// Caps on a build's arguments. Build args travel in the workflow's input, in every history
// and in BuildKit's frontend options, so their size is bounded like any other input.
const (
	MaxBuildArgs         = 64
	MaxBuildArgNameLen   = 128
	MaxBuildArgValueLen  = 4096
	MaxBuildArgsTotalLen = 32 * 1024
)

// ReservedArgPrefix starts the build args BuildKit itself reads (BUILDKIT_SYNTAX picks the
// frontend, BUILDKIT_CACHE_MOUNT_NS the cache mounts' namespace...): the worker sets those it
// needs, a build never does.
const ReservedArgPrefix = "BUILDKIT_"

var buildArgName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// CheckBuildArgs refuses build args BuildKit must not take from a build: reserved names
// (BUILDKIT_*, any case), names that are no ARG name, and args past the size caps. The error
// names the argument; the gateway answers it as a 400, the workflow fails with it.
func CheckBuildArgs(args map[string]string) error {
	if len(args) > MaxBuildArgs {
		return fmt.Errorf("build_args: %d arguments; at most %d", len(args), MaxBuildArgs)
	}
	keys := make([]string, 0, len(args))
	for k := range args {
		keys = append(keys, k)
	}
	sort.Strings(keys) // the same argument is named every time
	total := 0
	for _, k := range keys {
		v := args[k]
		switch {
		case len(k) > MaxBuildArgNameLen:
			return fmt.Errorf("build_args: name %.32q... is %d bytes long; at most %d", k, len(k), MaxBuildArgNameLen)
		case !buildArgName.MatchString(k):
			return fmt.Errorf("build_args: %q is not a valid ARG name", k)
		case strings.HasPrefix(strings.ToUpper(k), ReservedArgPrefix):
			return fmt.Errorf("build_args: %q is reserved: names starting with %s are BuildKit's own settings", k, ReservedArgPrefix)
		case len(v) > MaxBuildArgValueLen:
			return fmt.Errorf("build_args: the value of %q is %d bytes long; at most %d", k, len(v), MaxBuildArgValueLen)
		}
		total += len(k) + len(v)
	}
	if total > MaxBuildArgsTotalLen {
		return fmt.Errorf("build_args: %d bytes in all; at most %d", total, MaxBuildArgsTotalLen)
	}
	return nil
}

// CheckCache refuses a registry cache outside the build's own image repository: BuildKit
// pushes the cache with the worker's credentials, so a cache naming another repository would
// write over that repository's tags. cache is a build's or a rule's cache field ("" and
// CacheOff always pass); image is the build's image repository.
func CheckCache(image, cache string) error {
	if cache == "" || cache == CacheOff {
		return nil
	}
	ref, err := name.ParseReference(cache, name.StrictValidation)
	if err != nil {
		return fmt.Errorf("cache %q is not an image reference, nor %q", cache, CacheOff)
	}
	if _, ok := ref.(name.Tag); !ok {
		return fmt.Errorf("cache %q names a digest; give a tag of %s such as %s:buildcache", cache, image, image)
	}
	repo, err := name.NewRepository(image, name.StrictValidation)
	if err != nil {
		return fmt.Errorf("image %q is not a valid repository name: %w", image, err)
	}
	if ref.Context().Name() != repo.Name() {
		return fmt.Errorf("cache %q lies outside the image repository %s: give a tag of it, such as %s:buildcache", cache, image, image)
	}
	return nil
}
