package build

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/go-containerregistry/pkg/name"
	"go.temporal.io/sdk/temporal"
)

// InvalidError is an input no build can run with. The gateway answers it with a 400 and the
// workflow fails with it before taking a host, so both say the same thing about the same input.
type InvalidError struct {
	// Field is the JSON name of the field at fault ("ref.name", "build_args").
	Field string
	// Type is the error type the workflow fails with (ErrTypeInvalidInput unless a step has
	// long failed the same input with a type of its own, such as ErrTypeInvalidTag).
	Type string
	// Msg says what is wrong; it names the field.
	Msg string
}

func (e *InvalidError) Error() string { return e.Msg }

// ApplicationError is err as a workflow or an activity fails with it: an *InvalidError becomes
// a non-retryable application error of its Type, any other error is returned as it is.
func ApplicationError(err error) error {
	var ie *InvalidError
	if !errors.As(err, &ie) {
		return err
	}
	typ := ie.Type
	if typ == "" {
		typ = ErrTypeInvalidInput
	}
	return temporal.NewNonRetryableApplicationError(ie.Msg, typ, nil)
}

func invalid(field, format string, args ...any) error {
	return &InvalidError{Field: field, Type: ErrTypeInvalidInput, Msg: fmt.Sprintf(format, args...)}
}

// standInCommit is the commit a template is rendered with before the real one is known.
var standInCommit = strings.Repeat("0", 40)

// Validate refuses what no build could do, naming the field: a bad timeout, image, cache,
// build argument, source, ref or commit, a tag template that renders no tag for the ref, or a
// path that leaves the repository. Checks that need the checkout are the steps' own.
func (in Input) Validate() error {
	if in.Timeout != "" {
		if d, err := time.ParseDuration(in.Timeout); err != nil || d <= 0 {
			return invalid("timeout", "timeout %q is not a positive duration such as 30m", in.Timeout)
		}
	}
	if _, err := ParseImage(in.Image); err != nil {
		return err
	}
	if err := CheckCache(in.Image, in.Cache); err != nil {
		return err
	}
	if err := CheckBuildArgs(in.BuildArgs); err != nil {
		return err
	}
	if err := CheckSecrets(in.Secrets); err != nil {
		return err
	}
	if in.Source.CloneURL != "" && in.Source.AccountID != "" {
		// The account's token would follow the URL wherever it points (the clone refuses it
		// too; refusing here spares taking a host).
		return invalid("source.clone_url", "source names both clone_url and account_id: a connected account is only used with its provider's configured host; drop clone_url")
	}
	if err := in.Ref.Check(); err != nil {
		return err
	}
	if err := CheckCommit(in.Commit); err != nil {
		return err
	}
	// Before comes from the provider's payload: SHA-1 or SHA-256, all zeros for a new ref.
	if in.Before != "" && !beforePattern.MatchString(in.Before) {
		return invalid("before", "before %q is not a commit hash", shorten(in.Before, 80))
	}
	if err := in.Paths.Check(); err != nil {
		return invalid("paths", "%s", err.Error())
	}
	switch in.RunPolicy {
	case "", RunParallel, RunSerial, RunLatestOnly:
	default:
		return invalid("run_policy", "run_policy %q is not one of parallel, serial, latest_only", in.RunPolicy)
	}
	if _, err := NormalizePlatforms(in.Platforms); err != nil {
		return err
	}
	// Rendering with a stand-in commit catches a ref name no tag can hold now rather than
	// after the clone; the real tags are rendered once the commit is known.
	if _, err := RenderTags(RenderTagInput{
		TagTemplate: in.TagTemplate, Ref: in.Ref, Commit: standInCommit, SanitizeRef: in.SanitizeRef,
		Captures: in.Captures, Latest: in.Latest, Semver: in.Semver,
	}); err != nil {
		return err
	}
	for _, p := range []struct{ path, field string }{{in.DockerfilePath, "dockerfile_path"}, {in.ContextPath, "context_path"}} {
		if p.path == "" {
			continue
		}
		if err := CheckPath(p.path, p.field); err != nil {
			return err
		}
	}
	return nil
}

// ParseImage checks an image repository name such as 127.0.0.1:5000/demo/app.
func ParseImage(image string) (name.Repository, error) {
	repo, err := name.NewRepository(image, name.StrictValidation)
	if err != nil {
		return name.Repository{}, &InvalidError{Field: "image", Type: ErrTypeInvalidImage,
			Msg: fmt.Sprintf("image %q is not a valid repository name: %v", image, err)}
	}
	return repo, nil
}

// CheckCache refuses a registry cache outside the build's own image repository: BuildKit
// pushes the cache with the worker's credentials, so a cache naming another repository would
// write over that repository's tags. cache is a build's or a rule's cache field ("" and
// CacheOff always pass), or the reference it resolves to; image is the build's image
// repository.
func CheckCache(image, cache string) error {
	if cache == "" || cache == CacheOff {
		return nil
	}
	ref, err := name.ParseReference(cache, name.StrictValidation)
	if err != nil {
		return invalid("cache", "cache %q is not an image reference, nor %q", cache, CacheOff)
	}
	if _, ok := ref.(name.Tag); !ok {
		return invalid("cache", "cache %q names a digest; give a tag of %s such as %s:buildcache", cache, image, image)
	}
	repo, err := name.NewRepository(image, name.StrictValidation)
	if err != nil {
		return &InvalidError{Field: "image", Type: ErrTypeInvalidImage,
			Msg: fmt.Sprintf("image %q is not a valid repository name: %v", image, err)}
	}
	if ref.Context().Name() != repo.Name() {
		return invalid("cache", "cache %q lies outside the image repository %s: give a tag of it, such as %s:buildcache", cache, image, image)
	}
	return nil
}

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
// names the argument.
func CheckBuildArgs(args map[string]string) error {
	if len(args) > MaxBuildArgs {
		return invalid("build_args", "build_args: %d arguments; at most %d", len(args), MaxBuildArgs)
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
			return invalid("build_args", "build_args: name %.32q... is %d bytes long; at most %d", k, len(k), MaxBuildArgNameLen)
		case !buildArgName.MatchString(k):
			return invalid("build_args", "build_args: %q is not a valid ARG name", k)
		case strings.HasPrefix(strings.ToUpper(k), ReservedArgPrefix):
			return invalid("build_args", "build_args: %q is reserved: names starting with %s are BuildKit's own settings", k, ReservedArgPrefix)
		case len(v) > MaxBuildArgValueLen:
			return invalid("build_args", "build_args: the value of %q is %d bytes long; at most %d", k, len(v), MaxBuildArgValueLen)
		}
		total += len(k) + len(v)
	}
	if total > MaxBuildArgsTotalLen {
		return invalid("build_args", "build_args: %d bytes in all; at most %d", total, MaxBuildArgsTotalLen)
	}
	return nil
}

var commitPattern = regexp.MustCompile(`^[0-9a-f]{40}$`)

// beforePattern is a push's before commit: a SHA-1 or SHA-256 object name.
var beforePattern = regexp.MustCompile(`^(?:[0-9a-f]{40}|[0-9a-f]{64})$`)

// ValidCommit reports whether s is a full commit id: 40 lowercase hex digits.
func ValidCommit(s string) bool {
	return commitPattern.MatchString(s)
}

// CheckCommit refuses a commit that is not a full commit id; empty, the ref's head, passes.
// Its type is ErrTypeCommitNotOnRef, which the clone has always failed such a commit with.
func CheckCommit(commit string) error {
	if commit == "" || ValidCommit(commit) {
		return nil
	}
	return &InvalidError{Field: "commit", Type: ErrTypeCommitNotOnRef,
		Msg: fmt.Sprintf("commit %q is not a full 40-hex commit id", shorten(commit, 80))}
}

// Check refuses a ref of another type than branch or tag, and a name git would refuse
// (CheckRefName), before it reaches a command line.
func (r Ref) Check() error {
	if r.Type != RefBranch && r.Type != RefTag {
		return invalid("ref.type", "ref.type %q is not branch or tag", shorten(r.Type, 80))
	}
	if r.Name == "" {
		return invalid("ref.name", "ref.name is empty")
	}
	if err := CheckRefName(r.Name); err != nil {
		return &InvalidError{Field: "ref.name", Type: ErrTypeRefNotFound,
			Msg: fmt.Sprintf("%s %q is not a valid git ref name: it %v", r.Type, shorten(r.Name, 80), err)}
	}
	return nil
}

// MaxRefNameLen bounds a branch or tag name. Git itself has no limit, but names go into
// search attributes, workflow ids and image tags; no real branch comes near it.
const MaxRefNameLen = 255

// CheckRefName applies git check-ref-format's rules to a branch or tag name (without its
// refs/heads/ or refs/tags/ prefix) and MaxRefNameLen, and says which rule a name breaks.
// A leading "-" is refused too: git would read it as an option.
func CheckRefName(name string) error {
	switch {
	case name == "":
		return errors.New("is empty")
	case len(name) > MaxRefNameLen:
		return fmt.Errorf("is %d bytes long, more than %d", len(name), MaxRefNameLen)
	case !utf8.ValidString(name):
		return errors.New("is not valid UTF-8")
	case name == "@":
		return errors.New(`is "@"`)
	case strings.HasPrefix(name, "-"):
		return errors.New(`starts with "-"`)
	case strings.HasPrefix(name, "/"), strings.HasSuffix(name, "/"):
		return errors.New(`starts or ends with "/"`)
	case strings.HasSuffix(name, "."):
		return errors.New(`ends with "."`)
	case strings.Contains(name, ".."):
		return errors.New(`holds ".."`)
	case strings.Contains(name, "//"):
		return errors.New(`holds "//"`)
	case strings.Contains(name, "@{"):
		return errors.New(`holds "@{"`)
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("holds the control character %U", r)
		}
		if strings.ContainsRune(" ~^:?*[\\", r) {
			return fmt.Errorf("holds %q, which git does not allow in a ref name", r)
		}
	}
	for _, part := range strings.Split(name, "/") {
		if strings.HasPrefix(part, ".") {
			return fmt.Errorf("has a component %q starting with \".\"", part)
		}
		if strings.HasSuffix(part, ".lock") {
			return fmt.Errorf("has a component %q ending with \".lock\"", part)
		}
	}
	return nil
}

// shorten cuts s to at most n bytes (on a rune boundary) for an error message, so an answer
// does not echo a huge input back.
func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "..."
}
