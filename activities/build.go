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

	"github.com/containerd/containerd/v2/core/content"
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
	// Namespace and Secrets name the build secrets of the build's namespace that BuildKit
	// serves to RUN --mount=type=secret: names only, the values are read as the step starts.
	Namespace string   `json:"namespace,omitempty"`
	Secrets   []string `json:"secrets,omitempty"`
	// Platforms are the platforms to build into one image index; none builds the worker's
	// own platform into one image.
	Platforms []string `json:"platforms,omitempty"`
}

// BuildResult names the image BuildKit wrote into the workspace.
type BuildResult struct {
	// Digest is the manifest digest of the built image.
	Digest string `json:"digest"`
}

// Build runs the dockerfile.v0 frontend on BuildKit and writes the image as an OCI layout in
// the workspace. BuildKit's progress goes to the build log in the text of
// `buildctl --progress plain`; heartbeats carry the number of finished steps.
func (a *Activities) Build(ctx context.Context, in BuildInput) (_ BuildResult, err error) {
	src, err := a.resolveContext(in)
	if err != nil {
		return BuildResult{}, err
	}
	rawLog, err := a.openLog(ctx)
	if err != nil {
		return BuildResult{}, err
	}
	// Secret values are masked in the log and in the step's error from here on.
	secretsAttached, log, err := a.openSecrets(ctx, in.Namespace, in.Secrets, rawLog)
	defer log.Close()
	defer func() { err = log.maskError(err) }()
	if err != nil {
		fmt.Fprintf(log, "==> %v\n", err)
		return BuildResult{}, err
	}
	if err := CheckFrontend(filepath.Join(src.root, src.paths.DockerfilePath), a.frontends()); err != nil {
		// The build log says why, as it does for a failing step: a reader of the build's
		// page sees the refusal where the build would have been.
		fmt.Fprintf(log, "==> %v\n", err)
		return BuildResult{}, err
	}
	out := filepath.Join(src.ws, imageDir)
	if err := os.RemoveAll(out); err != nil {
		return BuildResult{}, fmt.Errorf("clearing image layout: %w", err)
	}
	attrs, err := frontendAttrs(in, src.paths.DockerfilePath)
	if err != nil {
		fmt.Fprintf(log, "==> %v\n", err)
		return BuildResult{}, err
	}
	cgroupNote, err := a.limitRunSteps(attrs)
	if err != nil {
		return BuildResult{}, err
	}
	if err := a.checkIsolation(ctx); err != nil {
		fmt.Fprintf(log, "==> %v\n", err)
		return BuildResult{}, err
	}
	if err := a.checkPlatforms(ctx, attrPlatforms(attrs)); err != nil {
		fmt.Fprintf(log, "==> %v\n", err)
		return BuildResult{}, err
	}
	if a.Isolation != nil && a.Isolation.Off {
		fmt.Fprintf(log, "==> warning: build isolation is off (SLIPWAY_BUILD_ISOLATION=off): RUN steps may reach the service\n")
	}
	fmt.Fprintf(log, "==> build %s (context %s)\n", src.paths.DockerfilePath, src.paths.ContextPath)
	fmt.Fprint(log, cgroupNote)
	sess, err := a.session(ctx, in.Image)
	if err != nil {
		return BuildResult{}, err
	}
	sess = append(sess, secretsAttached...)
	opt, err := solveOpt(in, src, attrs, sess)
	if err != nil {
		return BuildResult{}, err
	}
	release, deferred := a.deferCacheExport(in, src)
	if deferred {
		// The cache is imported here and exported once the image is out (see CacheExports).
		opt.CacheExports = nil
		fmt.Fprintf(log, "==> cache %s (written after the build)\n", in.CacheRef)
	} else if in.CacheRef != "" {
		fmt.Fprintf(log, "==> cache %s\n", in.CacheRef)
	}
	start := time.Now()
	resp, err := a.export(ctx, opt, out, log, a.streamTo(in, deferred))
	if err != nil {
		if deferred {
			release()
		}
		return BuildResult{}, err
	}
	digest := resp.ExporterResponse["containerimage.digest"]
	fmt.Fprintf(log, "==> built %s in %s\n", digest, time.Since(start).Round(time.Millisecond))
	if deferred {
		a.exportCacheLater(ctx, opt, in.CacheRef, release, log.String)
	}
	return BuildResult{Digest: digest}, nil
}

// buildContext is a checkout's Dockerfile and context, checked and opened for BuildKit.
type buildContext struct {
	// ws is the build's workspace and root its checkout, where paths are.
	ws, root string
	paths    ResolveResult
	// context and dockerfile are the two local mounts the Dockerfile frontend reads.
	context, dockerfile fsutil.FS
	// sharedKey names the checkout to BuildKit when it is a stable folder (see contextRoot).
	sharedKey string
}

// resolveContext checks the input's paths against the checkout and opens the mounts.
func (a *Activities) resolveContext(in BuildInput) (buildContext, error) {
	link, err := a.checkout(in.Workspace)
	if err != nil {
		return buildContext{}, err
	}
	root, sharedKey, err := a.contextRoot(link)
	if err != nil {
		return buildContext{}, err
	}
	// Resolved again here, not trusted from the input: the input may come from anyone with
	// access to Temporal, and the checkout may be a retry's.
	paths, err := ResolvePaths(root, in.DockerfilePath, in.ContextPath)
	if err != nil {
		return buildContext{}, err
	}
	contextFS, err := fsutil.NewFS(filepath.Join(root, paths.ContextPath))
	if err != nil {
		return buildContext{}, fmt.Errorf("opening build context: %w", err)
	}
	// Git's own folder is no part of the source, as when BuildKit clones a Git context itself;
	// leaving it out keeps it out of images and keeps the context cache stable.
	contextFS, err = fsutil.NewFilterFS(contextFS, &fsutil.FilterOpt{ExcludePatterns: []string{".git"}})
	if err != nil {
		return buildContext{}, fmt.Errorf("filtering build context: %w", err)
	}
	dockerfileFS, err := fsutil.NewFS(filepath.Join(root, filepath.Dir(paths.DockerfilePath)))
	if err != nil {
		return buildContext{}, fmt.Errorf("opening dockerfile folder: %w", err)
	}
	// The frontend reads only the Dockerfile and its own .dockerignore from this mount; the
	// rest of the folder (.git with the Dockerfile at the root) is no business of a frontend.
	base := filepath.Base(paths.DockerfilePath)
	dockerfileFS, err = fsutil.NewFilterFS(dockerfileFS, &fsutil.FilterOpt{IncludePatterns: []string{base, base + ".dockerignore"}})
	if err != nil {
		return buildContext{}, fmt.Errorf("filtering dockerfile folder: %w", err)
	}
	return buildContext{ws: filepath.Dir(link), root: root, paths: paths, context: contextFS, dockerfile: dockerfileFS, sharedKey: sharedKey}, nil
}

// frontends are the frontend patterns a build may name, DefaultFrontends when unset.
func (a *Activities) frontends() []string {
	if a.Frontends == nil {
		return DefaultFrontends
	}
	return a.Frontends
}

// frontendAttrs are the Dockerfile frontend's settings: the file, the build args in name
// order, the cache mount namespace and the revision label.
func frontendAttrs(in BuildInput, dockerfile string) (map[string]string, error) {
	attrs := map[string]string{"filename": filepath.Base(dockerfile)}
	keys := make([]string, 0, len(in.BuildArgs))
	for k := range in.BuildArgs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		// Refused by the gateway and the workflow already; a BUILDKIT_ arg reaching here
		// would choose BuildKit's settings, so it is refused again.
		if strings.HasPrefix(strings.ToUpper(k), build.ReservedArgPrefix) {
			return nil, temporal.NewNonRetryableApplicationError(
				fmt.Sprintf("build_args: %q is reserved: names starting with %s are BuildKit's own settings", k, build.ReservedArgPrefix),
				build.ErrTypeInvalidBuildArg, nil)
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
	attrs[cacheMountNSAttr] = ns
	if in.Revision != "" {
		// Set by the build, over any LABEL of the Dockerfile, so the label tells the truth.
		attrs["label:"+RevisionLabel] = in.Revision
	}
	targets, err := buildPlatforms(in)
	if err != nil {
		return nil, err
	}
	if len(targets) > 0 {
		attrs[platformAttr] = strings.Join(targets, ",")
	}
	return attrs, nil
}

// cacheMountNSAttr is the frontend attribute naming the namespace of a build's cache mounts.
const cacheMountNSAttr = "build-arg:BUILDKIT_CACHE_MOUNT_NS"

// limitRunSteps puts the RUN steps of a build into its image repository's cgroup, when the
// worker has a cgroup parent, and returns the build log's line saying so.
func (a *Activities) limitRunSteps(attrs map[string]string) (note string, err error) {
	if a.Cgroups == nil {
		return "", nil
	}
	// One cgroup per image repository, with the operator's limits, not one per build:
	// BuildKit keeps the cgroup parent in each RUN step's cache key, so a name per build would
	// never hit the cache. Builds of one repository share it (and their namespace's slots
	// bound how many run); the name is stable, so the registry cache of hosts with the same
	// SLIPWAY_BUILD_CGROUP agrees. It is kept, not removed after the build: a concurrent build
	// of the repository may be about to use it, and runc would make a removed one again
	// without limits.
	sum := sha256.Sum256([]byte(attrs[cacheMountNSAttr]))
	cg, err := a.Cgroups.Child("repo-" + hex.EncodeToString(sum[:8]))
	if err != nil {
		return "", fmt.Errorf("making the build's cgroup: %w", err)
	}
	attrs["cgroup-parent"] = cg
	return fmt.Sprintf("==> RUN steps limited to %s (cgroup %s)\n", a.Cgroups.Limits, cg), nil
}

// session is what the build's BuildKit session serves: registry credentials.
func (a *Activities) session(ctx context.Context, image string) ([]session.Attachable, error) {
	// Registry credentials of other registries come from the worker's Docker config, for the
	// cache as for the base images: nothing secret is in the input. The local registry's tokens
	// are minted per scope under the build's rules.
	docker := authprovider.NewDockerAuthProvider(authprovider.DockerAuthProviderConfig{
		AuthConfigProvider: authprovider.LoadAuthConfig(dockerconfig.LoadDefaultConfigFile(io.Discard)),
	})
	if a.RegistryKey == nil {
		return []session.Attachable{docker}, nil
	}
	p, err := buildauth.New(a.RegistryKey, a.RegistryHosts, "build "+activityWorkflowID(ctx), buildRules(image), docker)
	if err != nil {
		return nil, err
	}
	return []session.Attachable{p}, nil
}

// solveOpt is the solve of one build, without its export: the frontend with its attributes,
// the two local mounts, the session and the registry cache.
func solveOpt(in BuildInput, src buildContext, attrs map[string]string, sess []session.Attachable) (bkclient.SolveOpt, error) {
	opt := bkclient.SolveOpt{
		Frontend:      "dockerfile.v0",
		FrontendAttrs: attrs,
		LocalMounts:   map[string]fsutil.FS{"context": src.context, "dockerfile": src.dockerfile},
		Session:       sess,
		SharedKey:     src.sharedKey,
	}
	if in.CacheRef == "" {
		return opt, nil
	}
	if err := build.CheckCache(in.Image, in.CacheRef); err != nil {
		return bkclient.SolveOpt{}, build.ApplicationError(err)
	}
	// A fresh buildkitd, or another host, starts from what the last build left in the
	// registry. A cache that cannot be read or written never fails the build.
	opt.CacheImports = []bkclient.CacheOptionsEntry{{Type: "registry", Attrs: map[string]string{"ref": in.CacheRef}}}
	opt.CacheExports = []bkclient.CacheOptionsEntry{{Type: "registry", Attrs: map[string]string{
		"ref": in.CacheRef, "mode": "max", "ignore-error": "true"}}}
	return opt, nil
}

// export solves opt and writes the image as an OCI layout at out: through the worker's image
// store when it has one, which skips the blobs it holds, or else whole into out. With image
// set (and an image store), BuildKit also pushes the image to it by digest in the same solve
// (see streamedPush and solveStreamed); a failure of that push alone fails nothing, since the
// Push step uploads what the worker keeps. A failure is in the build log.
func (a *Activities) export(ctx context.Context, opt bkclient.SolveOpt, out string, log io.Writer, image string) (*bkclient.SolveResponse, error) {
	entry := bkclient.ExportEntry{Type: bkclient.ExporterOCI, Attrs: map[string]string{"tar": "false"}, OutputDir: out}
	if a.Images == nil {
		opt.Exports = []bkclient.ExportEntry{entry}
		return a.solve(ctx, opt, log)
	}
	var resp *bkclient.SolveResponse
	var solveErr error
	err := a.Images.Export(ctx, out, func(cs content.Store) (ocispec.Descriptor, error) {
		entry.OutputDir, entry.OutputStore = "", cs
		opt.Exports = []bkclient.ExportEntry{entry}
		if image != "" {
			opt.Exports = append(opt.Exports, streamedPush(image))
			resp, solveErr = a.solveStreamed(ctx, opt, log, image, cs)
		} else {
			resp, solveErr = a.solve(ctx, opt, log)
		}
		if solveErr != nil {
			return ocispec.Descriptor{}, solveErr
		}
		return exportedImage(resp.ExporterResponse)
	})
	if err != nil {
		if solveErr == nil {
			fmt.Fprintf(log, "==> build failed: %v\n", err)
		}
		return nil, err
	}
	return resp, nil
}

// solve runs the solve as solveOnce does; a failure is in the build log, and classified for
// the workflow by classifyBuild.
func (a *Activities) solve(ctx context.Context, opt bkclient.SolveOpt, log io.Writer) (*bkclient.SolveResponse, error) {
	start := time.Now()
	resp, err := a.solveOnce(ctx, opt, log, nil)
	if err != nil {
		return nil, a.solveFailed(ctx, err, log, start)
	}
	return resp, nil
}

// solveFailed writes a solve's failure in the build log and classifies it for the workflow.
func (a *Activities) solveFailed(ctx context.Context, err error, log io.Writer, start time.Time) error {
	fmt.Fprintf(log, "==> build failed after %s: %v\n", time.Since(start).Round(time.Millisecond), err)
	return classifyBuild(ctx, err)
}

// solveOnce runs the solve beside a reader that always drains its status channel (Solve
// blocks on a full one), turning it into heartbeats and the build log's plain progress, and
// showing each status to tap unless it is nil.
func (a *Activities) solveOnce(ctx context.Context, opt bkclient.SolveOpt, log io.Writer, tap func(*bkclient.SolveStatus)) (*bkclient.SolveResponse, error) {
	display, err := progressui.NewDisplay(log, progressui.PlainMode)
	if err != nil {
		return nil, fmt.Errorf("creating progress display: %w", err)
	}
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
		defer close(displayCh)
		heartbeatSteps(ctx, statusCh, displayCh, tap)
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
		return nil, err
	}
	return resp, nil
}

// heartbeatSteps passes each status on to out (and to tap, unless nil) until in closes,
// heartbeating at most once a second with the number of finished steps.
func heartbeatSteps(ctx context.Context, in <-chan *bkclient.SolveStatus, out chan<- *bkclient.SolveStatus, tap func(*bkclient.SolveStatus)) {
	done := 0
	last := time.Time{}
	for st := range in {
		if tap != nil {
			tap(st)
		}
		for _, v := range st.Vertexes {
			if v.Completed != nil {
				done++
			}
		}
		if time.Since(last) > time.Second {
			activity.RecordHeartbeat(ctx, done)
			last = time.Now()
		}
		out <- st
	}
}

// exportedImage is the descriptor of the image BuildKit exported, from its answer.
func exportedImage(exporterResponse map[string]string) (ocispec.Descriptor, error) {
	enc := exporterResponse[exptypes.ExporterImageDescriptorKey]
	if enc == "" {
		return ocispec.Descriptor{}, errors.New("buildkit answered without the exported image's descriptor")
	}
	raw, err := base64.StdEncoding.DecodeString(enc)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("decoding the exported image's descriptor: %w", err)
	}
	var desc ocispec.Descriptor
	if err := json.Unmarshal(raw, &desc); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("decoding the exported image's descriptor: %w", err)
	}
	return desc, nil
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
