package activities

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	dockerconfig "github.com/docker/cli/cli/config"
	bkclient "github.com/moby/buildkit/client"
	"github.com/moby/buildkit/exporter/containerimage/exptypes"
	"github.com/moby/buildkit/session"
	"github.com/moby/buildkit/session/auth/authprovider"
	"github.com/moby/buildkit/util/grpcerrors"
	"github.com/moby/buildkit/util/progress/progressui"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/tonistiigi/fsutil"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc/codes"

	"github.com/slipway-dev/slipway/build"
	"github.com/slipway-dev/slipway/registryauth/buildauth"
)

// imageDir is the OCI image layout a build writes inside its workspace and push reads.
const imageDir = "image"

// BuildInput is what BuildKit builds: paths as ResolveDockerfile returned them.
type BuildInput struct {
	Workspace      string            `json:"workspace"`
	DockerfilePath string            `json:"dockerfile_path"`
	ContextPath    string            `json:"context_path"`
	BuildArgs      map[string]string `json:"build_args,omitempty"`
	// CacheRef is the registry reference BuildKit imports its cache from and exports it to
	// (mode=max); empty builds without a registry cache.
	CacheRef string `json:"cache_ref,omitempty"`
	// Image is the repository the build pushes to (REGISTRY/NAMESPACE/REPOSITORY): on the local
	// registry the build may pull and push it (its cache too), pull in its namespace and the
	// base images (library/), and nothing else.
	Image string `json:"image,omitempty"`
	// CacheMountNS is the namespace of the build's cache mounts, "slipway/NS/REPO".
	CacheMountNS string `json:"cache_mount_ns,omitempty"`
	// Revision is the commit built, recorded in the image config as RevisionLabel so that a
	// later push can tell which commit a tag carries.
	Revision string `json:"revision,omitempty"`
}

// BuildResult names the image BuildKit wrote into the workspace.
type BuildResult struct {
	// Digest is the manifest digest of the built image.
	Digest string `json:"digest"`
}

// Build runs the dockerfile.v0 frontend on BuildKit and writes the image as an OCI layout in
// the workspace. BuildKit's progress goes to the build log in the text of
// `buildctl --progress plain`; heartbeats carry the number of finished steps.
func (a *Activities) Build(ctx context.Context, in BuildInput) (BuildResult, error) {
	root, err := a.checkout(in.Workspace)
	if err != nil {
		return BuildResult{}, err
	}
	ws := filepath.Dir(root)
	// Resolved again here, not trusted from the input: the input may come from anyone with
	// access to Temporal, and the checkout may be a retry's.
	paths, err := ResolvePaths(root, in.DockerfilePath, in.ContextPath)
	if err != nil {
		return BuildResult{}, err
	}
	contextFS, err := fsutil.NewFS(filepath.Join(root, paths.ContextPath))
	if err != nil {
		return BuildResult{}, fmt.Errorf("opening build context: %w", err)
	}
	// Git's own folder is no part of the source, as when BuildKit clones a Git context itself;
	// leaving it out keeps it out of images and keeps the context cache stable.
	contextFS, err = fsutil.NewFilterFS(contextFS, &fsutil.FilterOpt{ExcludePatterns: []string{".git"}})
	if err != nil {
		return BuildResult{}, fmt.Errorf("filtering build context: %w", err)
	}
	dockerfileFS, err := fsutil.NewFS(filepath.Join(root, filepath.Dir(paths.DockerfilePath)))
	if err != nil {
		return BuildResult{}, fmt.Errorf("opening dockerfile folder: %w", err)
	}
	// The frontend reads only the Dockerfile and its own .dockerignore from this mount; the
	// rest of the folder (.git with the Dockerfile at the root) is no business of a frontend.
	base := filepath.Base(paths.DockerfilePath)
	dockerfileFS, err = fsutil.NewFilterFS(dockerfileFS, &fsutil.FilterOpt{IncludePatterns: []string{base, base + ".dockerignore"}})
	if err != nil {
		return BuildResult{}, fmt.Errorf("filtering dockerfile folder: %w", err)
	}
	log, err := a.openLog(ctx)
	if err != nil {
		return BuildResult{}, err
	}
	defer log.Close()
	frontends := a.Frontends
	if frontends == nil {
		frontends = DefaultFrontends
	}
	if err := CheckFrontend(filepath.Join(root, paths.DockerfilePath), frontends); err != nil {
		// The build log says why, as it does for a failing step: a reader of the build's
		// page sees the refusal where the build would have been.
		fmt.Fprintf(log, "==> %v\n", err)
		return BuildResult{}, err
	}
	out := filepath.Join(ws, imageDir)
	if err := os.RemoveAll(out); err != nil {
		return BuildResult{}, fmt.Errorf("clearing image layout: %w", err)
	}

	attrs := map[string]string{"filename": filepath.Base(paths.DockerfilePath)}
	keys := make([]string, 0, len(in.BuildArgs))
	for k := range in.BuildArgs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		// Refused by the gateway and the workflow already; a BUILDKIT_ arg reaching here
		// would choose BuildKit's settings, so it is refused again.
		if strings.HasPrefix(strings.ToUpper(k), build.ReservedArgPrefix) {
			err := temporal.NewNonRetryableApplicationError(
				fmt.Sprintf("build_args: %q is reserved: names starting with %s are BuildKit's own settings", k, build.ReservedArgPrefix),
				build.ErrTypeInvalidBuildArg, nil)
			fmt.Fprintf(log, "==> %v\n", err)
			return BuildResult{}, err
		}
		attrs["build-arg:"+k] = in.BuildArgs[k]
	}
	// Set after the build's own args, never from them: cache mounts (RUN --mount=type=cache)
	// are shared by every build on a buildkitd with the same id, so each image repository gets
	// a namespace of its own and a build cannot plant files in another team's cache.
	ns := in.CacheMountNS
	if ns == "" {
		// A build scheduled by an older workflow names none: it shares its cache mounts
		// with nobody.
		ns = "slipway/build/" + in.Workspace
	}
	attrs["build-arg:BUILDKIT_CACHE_MOUNT_NS"] = ns
	if in.Revision != "" {
		// Set by the build, over any LABEL of the Dockerfile, so the label tells the truth.
		attrs["label:"+RevisionLabel] = in.Revision
	}
	var cgroupNote string
	if a.Cgroups != nil {
		// RUN steps run in a cgroup of the image repository, with the operator's limits. Not
		// one per build: BuildKit keeps the cgroup parent in each RUN step's cache key, so a
		// name per build would never hit the cache. Builds of one repository share it (and
		// their namespace's slots bound how many run); the name is stable, so the registry
		// cache of hosts with the same SLIPWAY_BUILD_CGROUP agrees. It is kept, not removed
		// after the build: a concurrent build of the repository may be about to use it, and
		// runc would make a removed one again without limits.
		sum := sha256.Sum256([]byte(ns))
		name := "repo-" + hex.EncodeToString(sum[:8])
		cg, err := a.Cgroups.Child(name)
		if err != nil {
			return BuildResult{}, fmt.Errorf("making the build's cgroup: %w", err)
		}
		attrs["cgroup-parent"] = cg
		cgroupNote = fmt.Sprintf("==> RUN steps limited to %s (cgroup %s)\n", a.Cgroups.Limits, cg)
	}

	if err := a.checkIsolation(ctx); err != nil {
		fmt.Fprintf(log, "==> %v\n", err)
		return BuildResult{}, err
	}
	if a.Isolation != nil && a.Isolation.Off {
		fmt.Fprintf(log, "==> warning: build isolation is off (SLIPWAY_BUILD_ISOLATION=off): RUN steps may reach the service\n")
	}
	fmt.Fprintf(log, "==> build %s (context %s)\n", paths.DockerfilePath, paths.ContextPath)
	fmt.Fprint(log, cgroupNote)
	display, err := progressui.NewDisplay(log, progressui.PlainMode)
	if err != nil {
		return BuildResult{}, fmt.Errorf("creating progress display: %w", err)
	}

	export := bkclient.ExportEntry{Type: bkclient.ExporterOCI, Attrs: map[string]string{"tar": "false"}, OutputDir: out}
	if a.Images != nil {
		// Into the worker's image store, which skips the blobs it holds; the workspace gets
		// a layout pointing into it once the solve is done.
		if _, err := a.Images.pruneIfDue(time.Now()); err != nil {
			a.logger().Warn("pruning the image store", "error", err)
		}
		if export.OutputStore, err = a.Images.open(); err != nil {
			return BuildResult{}, err
		}
		export.OutputDir = ""
		a.Images.mu.RLock()
		defer a.Images.mu.RUnlock()
	}
	opt := bkclient.SolveOpt{
		Frontend:      "dockerfile.v0",
		FrontendAttrs: attrs,
		LocalMounts:   map[string]fsutil.FS{"context": contextFS, "dockerfile": dockerfileFS},
		Exports:       []bkclient.ExportEntry{export},
	}
	// Registry credentials of other registries come from the worker's Docker config, for the
	// cache as for the base images: nothing secret is in the input. The local registry's tokens
	// are minted per scope under the build's rules.
	docker := authprovider.NewDockerAuthProvider(authprovider.DockerAuthProviderConfig{
		AuthConfigProvider: authprovider.LoadAuthConfig(dockerconfig.LoadDefaultConfigFile(io.Discard)),
	})
	opt.Session = []session.Attachable{docker}
	if a.RegistryKey != nil {
		p, err := buildauth.New(a.RegistryKey, a.RegistryHosts, "build "+activityWorkflowID(ctx), buildRules(in.Image), docker)
		if err != nil {
			return BuildResult{}, err
		}
		opt.Session = []session.Attachable{p}
	}
	if in.CacheRef != "" {
		if err := build.CheckCache(in.Image, in.CacheRef); err != nil {
			return BuildResult{}, build.ApplicationError(err)
		}
		// A fresh buildkitd, or another host, starts from what the last build left in the
		// registry. A cache that cannot be read or written never fails the build.
		opt.CacheImports = []bkclient.CacheOptionsEntry{{Type: "registry", Attrs: map[string]string{"ref": in.CacheRef}}}
		opt.CacheExports = []bkclient.CacheOptionsEntry{{Type: "registry", Attrs: map[string]string{
			"ref": in.CacheRef, "mode": "max", "ignore-error": "true"}}}
		fmt.Fprintf(log, "==> cache %s\n", in.CacheRef)
	}

	start := time.Now()
	statusCh := make(chan *bkclient.SolveStatus)
	displayCh := make(chan *bkclient.SolveStatus)
	var resp *bkclient.SolveResponse
	eg, egCtx := errgroup.WithContext(ctx)
	eg.Go(func() error {
		var err error
		resp, err = a.Buildkit.Solve(egCtx, nil, opt, statusCh)
		return err
	})
	eg.Go(func() error {
		// Always drain: Solve blocks on a full status channel.
		defer close(displayCh)
		done := 0
		last := time.Time{}
		for st := range statusCh {
			for _, v := range st.Vertexes {
				if v.Completed != nil {
					done++
				}
			}
			if time.Since(last) > time.Second {
				activity.RecordHeartbeat(ctx, done)
				last = time.Now()
			}
			displayCh <- st
		}
		return nil
	})
	eg.Go(func() error {
		// The display's own error is not the build's: the log is best effort.
		_, _ = display.UpdateFrom(context.WithoutCancel(egCtx), displayCh)
		return nil
	})
	stop := heartbeatEvery(ctx, 5*time.Second)
	err = eg.Wait()
	stop()
	if err != nil {
		fmt.Fprintf(log, "==> build failed after %s: %v\n", time.Since(start).Round(time.Millisecond), err)
		return BuildResult{}, classifyBuild(ctx, err)
	}
	digest := resp.ExporterResponse["containerimage.digest"]
	if a.Images != nil {
		if err := a.layoutFromStore(out, resp.ExporterResponse); err != nil {
			fmt.Fprintf(log, "==> build failed: %v\n", err)
			return BuildResult{}, err
		}
	}
	fmt.Fprintf(log, "==> built %s in %s\n", digest, time.Since(start).Round(time.Millisecond))
	return BuildResult{Digest: digest}, nil
}

// layoutFromStore writes the workspace's image layout for an image exported into the image
// store, from the descriptor BuildKit answered with, and marks its blobs as used.
func (a *Activities) layoutFromStore(out string, exporterResponse map[string]string) error {
	enc := exporterResponse[exptypes.ExporterImageDescriptorKey]
	if enc == "" {
		return errors.New("buildkit answered without the exported image's descriptor")
	}
	raw, err := base64.StdEncoding.DecodeString(enc)
	if err != nil {
		return fmt.Errorf("decoding the exported image's descriptor: %w", err)
	}
	var desc ocispec.Descriptor
	if err := json.Unmarshal(raw, &desc); err != nil {
		return fmt.Errorf("decoding the exported image's descriptor: %w", err)
	}
	if err := a.Images.touch(desc, time.Now()); err != nil {
		return err
	}
	return a.Images.layout(out, desc)
}

// classifyBuild tells a broken build (bad Dockerfile, failing RUN), which no retry mends, from
// a BuildKit that was unreachable or went away, which a retry on a healthy daemon can.
func classifyBuild(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	switch grpcerrors.Code(err) {
	case codes.Unavailable, codes.Canceled, codes.DeadlineExceeded, codes.Aborted, codes.ResourceExhausted:
		return fmt.Errorf("buildkit: %w", err)
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("buildkit: %w", err)
	}
	return temporal.NewNonRetryableApplicationError(
		fmt.Sprintf("build failed: %v", err), build.ErrTypeBuildFailed, nil)
}
