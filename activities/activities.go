// Package activities holds the steps of a Slipway build: clone, resolve the Dockerfile,
// render the tag, build with BuildKit and push with go-containerregistry. One Activities
// value carries the clients every step needs. The checks that need no checkout (tag rendering,
// paths, the input as a whole) are package build's, shared with the gateway; the steps keep
// the ones that need the checkout or the image.
package activities

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	bkclient "github.com/moby/buildkit/client"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/slipway-dev/slipway/build"
	"github.com/slipway-dev/slipway/cgroup"
	"github.com/slipway-dev/slipway/gitcache"
	"github.com/slipway-dev/slipway/logstore"
	"github.com/slipway-dev/slipway/registryauth"
)

// Accounts resolves connected accounts for the steps that talk to a Git provider. The
// worker's implementation reads sealed tokens from the gateway's database.
// Both refuse, wrapping build.ErrAccountNotBound, an account that belongs to another namespace or
// provider than ref says (build.AccountRef.Check).
type Accounts interface {
	// Token returns the account's provider token.
	Token(ctx context.Context, ref build.AccountRef) (string, error)
	// PostStatus sets a commit status on the source repository through the account, on the
	// provider's configured API host only.
	PostStatus(ctx context.Context, ref build.AccountRef, src build.Source, commit string, st build.CommitStatus) error
}

// Activities holds the clients and settings the build steps share. Workflows call its methods
// through a nil *Activities; the worker registers a filled one.
type Activities struct {
	// WorkspaceRoot is where each build's checkout and image layout live.
	WorkspaceRoot string
	// Buildkit is the client of the buildkitd this worker builds on.
	Buildkit *bkclient.Client
	// Logs stores build logs; the log URL of a build points into it.
	Logs *logstore.Store
	// LogURLBase is the gateway's builds URL; a build's log is at LogURLBase/{id}/logs.
	LogURLBase string
	// BuildPageBase is where the console shows builds (GATEWAY/builds): a commit status links
	// to BuildPageBase/{id}, a page a person opens. Empty links to the API's record
	// (LogURLBase/{id}), which sends a browser to the same page.
	BuildPageBase string
	// Keychain resolves registry credentials by registry name, so no password is an input.
	// It serves registries other than the local one when RegistryKey is set.
	Keychain authn.Keychain
	// RegistryKey, when set, signs the tokens of the local registry, whose names are
	// RegistryHosts: each build gets tokens for what its own image repository may do
	// (registryauth.BuildRules), never the worker's wider credentials.
	RegistryKey   *registryauth.Key
	RegistryHosts []string
	// CloneBaseURLs maps a provider ("github", "gitlab") to the base URL clone URLs are built
	// from when a build.Source carries none.
	CloneBaseURLs map[string]string
	// Accounts resolves account references; nil means only public sources can be built.
	Accounts Accounts
	// Secrets reads the namespaces' build secrets; nil fails every build that names one.
	Secrets Secrets
	// Images, when set, is the worker's image store: builds export into it and skip the
	// blobs it already holds. Nil exports every image whole into its workspace.
	Images *ImageStore
	// Isolation is checked before each build; nil checks nothing (unit tests of steps that
	// never reach BuildKit).
	Isolation *Isolation

	// Temporal and TaskQueue reach the namespaces' build-slots workflows.
	Temporal  client.Client
	TaskQueue string
	// Limits are the operator's limits on builds (timeout, builds per namespace).
	Limits Limits
	// Frontends are the image name patterns a Dockerfile's `# syntax=` may name (see
	// FrontendAllowed); the built-in Dockerfile frontend is always allowed. Nil means
	// DefaultFrontends, empty only the built-in one.
	Frontends []string
	// Cgroups, when set, gives each image repository a cgroup under which BuildKit runs the
	// RUN steps of its builds, bounding their memory, processes and CPU.
	Cgroups *cgroup.Parent
	// TagLockDir holds the lock files that serialize the writes of mutable tags, one per image
	// repository. Workers that share it (one SLIPWAY_HOME) take turns across processes and
	// containers; empty means a folder in the system's temporary directory (this host only).
	TagLockDir string
	// NoStreamedPush builds without BuildKit pushing the image in the solve (see
	// streamedPush): the Push step then uploads every layer itself.
	NoStreamedPush bool
	// Notifications holds the namespaces' notifications and their delivery log; nil sends
	// none. NotifyClient is the HTTP client deliveries go through (notify.NewClient); nil is
	// one that reaches public addresses only.
	Notifications Notifications
	NotifyClient  *http.Client
	// Sources, when set, is the host's Git cache: clones fetch into a mirror per source and
	// check out into a stable folder, so a build fetches and sends BuildKit only what changed.
	// Nil clones every build afresh into its workspace.
	Sources *gitcache.Cache
	// CacheExports, when set with Sources, writes the registry cache of a build whose checkout
	// is a git cache slot after its image is out, off the build's time (see CacheExports).
	// Nil writes it inside the build's solve, as without Sources.
	CacheExports *CacheExports
	// Retention reads image repositories' retention policies; nil refuses retention runs.
	Retention RetentionSource
}

// workspace is the folder of one build session on this host.
func (a *Activities) workspace(key string) (string, error) {
	if !workspaceKey.MatchString(key) {
		return "", temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("workspace key %q is not a plain name", key), build.ErrTypeInvalidPath, nil)
	}
	return filepath.Join(a.WorkspaceRoot, key), nil
}

// checkout is the checkout of a workspace that a clone filled, or build.ErrTypeWorkspaceLost.
func (a *Activities) checkout(key string) (string, error) {
	ws, err := a.workspace(key)
	if err != nil {
		return "", err
	}
	dir := filepath.Join(ws, checkoutDir)
	if _, err := os.Stat(filepath.Join(dir, ".git")); err != nil {
		return "", temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("workspace %s holds no checkout on this host", key), build.ErrTypeWorkspaceLost, nil)
	}
	return dir, nil
}

var workspaceKey = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,200}$`)

func invalidTag(msg string) error {
	return temporal.NewNonRetryableApplicationError(msg, build.ErrTypeInvalidTag, nil)
}

// openLog opens the log of the build this activity belongs to; the build ID is the workflow
// ID and each run of it has its own log.
func (a *Activities) openLog(ctx context.Context) (io.WriteCloser, error) {
	info := activity.GetInfo(ctx)
	return a.Logs.Append(info.WorkflowExecution.ID, info.WorkflowExecution.RunID)
}

// logURL is where the gateway serves the log of the current build.
func (a *Activities) logURL(ctx context.Context) string {
	return strings.TrimSuffix(a.LogURLBase, "/") + "/" + url.PathEscape(activityWorkflowID(ctx)) + "/logs"
}

// activityWorkflowID is the id of the build the running activity belongs to.
func activityWorkflowID(ctx context.Context) string {
	return activity.GetInfo(ctx).WorkflowExecution.ID
}

// localRegistry reports whether host is the registry whose tokens the worker mints.
func (a *Activities) localRegistry(host string) bool {
	return a.RegistryKey != nil && slices.Contains(a.RegistryHosts, host)
}

// buildRules are the registry rules of a build of image (REGISTRY/NAMESPACE/REPOSITORY).
func buildRules(image string) registryauth.Rules {
	ns, repo := "", ""
	if r, err := name.NewRepository(image, name.StrictValidation); err == nil {
		ns, repo, _ = strings.Cut(r.RepositoryStr(), "/")
	}
	return registryauth.BuildRules(ns, repo)
}
