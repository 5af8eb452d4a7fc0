package e2e

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"go.temporal.io/sdk/temporal"

	"github.com/slipway-dev/slipway/activities"
	"github.com/slipway-dev/slipway/build"
	"github.com/slipway-dev/slipway/internal/testing/gitserver"
)

// archDockerfile records the machine its RUN step ran on: x86_64 natively, aarch64 under QEMU.
const archDockerfile = "FROM busybox\nRUN uname -m > /arch\n"

// TestMultiPlatformBuild builds linux/amd64 and linux/arm64 in one build, the arm64 one under
// emulation, and reads the pushed index back: both platforms listed, each image's RUN ran on
// its own machine, each records the commit. A later build of an older commit then finds the
// tag's commit through the index (the tag-ordering check) and holds the tag back.
func TestMultiPlatformBuild(t *testing.T) {
	w := startWorker(t)
	t.Cleanup(w.stop)
	owner := "e2e-platforms"
	srv := &gitserver.Server{Root: env.gitRoot, URL: env.gitURL}
	repo := srv.NewRepo(t, owner, "hello")
	older := repo.Commit("main", map[string]string{"Dockerfile": archDockerfile})
	head := repo.Commit("main", map[string]string{"Dockerfile": archDockerfile, "notes.txt": "second\n"})

	in := baseInput(owner)
	in.TagTemplate = "{branch},{short_commit}"
	in.Platforms = []string{"linux/amd64", "linux/arm64"}
	res, logText, err := runBuild(t, "e2e-platforms", in)
	if err != nil {
		t.Fatalf("build failed: %v\nlog:\n%s", err, logText)
	}
	if res.Commit != head {
		t.Fatalf("built %s, want %s", res.Commit, head)
	}
	idx := pullIndex(t, in.Image+":main")
	if d, _ := idx.Digest(); d.String() != res.Digest {
		t.Fatalf("main is %s, the build reported %s", d, res.Digest)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"linux/amd64": "x86_64\n", "linux/arm64": "aarch64\n"}
	var listed []string
	for _, m := range im.Manifests {
		if m.Platform == nil || m.Platform.OS == "unknown" {
			continue
		}
		p := m.Platform.OS + "/" + m.Platform.Architecture
		listed = append(listed, p)
		img, err := idx.Image(m.Digest)
		if err != nil {
			t.Fatalf("reading the %s image: %v", p, err)
		}
		if got := fileOf(t, img, "arch"); got != want[p] {
			t.Errorf("%s: /arch = %q, want %q (uname -m of the machine its RUN ran on)", p, got, want[p])
		}
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if cf.OS+"/"+cf.Architecture != p {
			t.Errorf("the %s image's config says %s/%s", p, cf.OS, cf.Architecture)
		}
		if rev := cf.Config.Labels[activities.RevisionLabel]; rev != head {
			t.Errorf("the %s image records commit %q, want %s", p, rev, head)
		}
	}
	slices.Sort(listed)
	if !slices.Equal(listed, []string{"linux/amd64", "linux/arm64"}) {
		t.Fatalf("index lists %q, want linux/amd64 and linux/arm64", listed)
	}
	if !strings.Contains(logText, "linux/arm64") {
		t.Errorf("the build log does not show the arm64 build:\n%s", logText)
	}

	// The older commit must not take main back: the push reads main's commit from a child of
	// its index.
	in.Commit = older
	res, logText, err = runBuild(t, "e2e-platforms-older", in)
	if err != nil {
		t.Fatalf("build of the older commit failed: %v\nlog:\n%s", err, logText)
	}
	if len(res.HeldTags) != 1 || res.HeldTags[0].Tag != "main" {
		t.Fatalf("older build wrote %v and held %v; want main held back\nlog:\n%s", res.Tags, res.HeldTags, logText)
	}
	if d, _ := pullIndex(t, in.Image+":main").Digest(); d != mustDigest(t, idx) {
		t.Fatalf("main moved to %s", d)
	}
	if got := fileOf(t, pullPlatform(t, in.Image+":"+older[:7], "arm64"), "arch"); got != "aarch64\n" {
		t.Fatalf("the older commit's arm64 image has /arch %q", got)
	}
}

// TestUnavailablePlatformFailsAtOnce asks for a platform this stack neither runs nor
// emulates: the build fails before any solve, non-retryable, naming it, and pushes nothing.
func TestUnavailablePlatformFailsAtOnce(t *testing.T) {
	w := startWorker(t)
	t.Cleanup(w.stop)
	owner := "e2e-platform-missing"
	srv := &gitserver.Server{Root: env.gitRoot, URL: env.gitURL}
	srv.NewRepo(t, owner, "hello").Commit("main", map[string]string{"Dockerfile": archDockerfile})
	in := baseInput(owner)
	in.TagTemplate = "{branch}"
	in.Platforms = []string{"linux/amd64", "linux/s390x"}
	_, logText, err := runBuild(t, "e2e-platform-missing", in)
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) || appErr.Type() != build.ErrTypePlatformUnavailable || !appErr.NonRetryable() {
		t.Fatalf("error = %v, want a non-retryable %s", err, build.ErrTypePlatformUnavailable)
	}
	if msg := appErr.Message(); !strings.Contains(msg, "linux/s390x") || strings.Contains(msg, "platform linux/amd64") {
		t.Fatalf("error %q does not name linux/s390x alone", msg)
	}
	if !strings.Contains(logText, "linux/s390x cannot be built") {
		t.Errorf("the build log does not say why:\n%s", logText)
	}
	if strings.Contains(logText, "uname") {
		t.Errorf("the build ran a step before refusing:\n%s", logText)
	}
	r, _ := name.NewRepository(in.Image)
	if tags, err := remote.List(r, operatorAuth()); err == nil && len(tags) > 0 {
		t.Fatalf("a refused build pushed %v", tags)
	}
}

// TestEmulatedStepsStayIsolated runs an emulated linux/arm64 RUN step that tries the control
// plane (loopback and the bridge's address): QEMU runs inside the step's container, so the
// build network's filter holds for it as for a native step.
func TestEmulatedStepsStayIsolated(t *testing.T) {
	if env.stack.BuildBridge == "" {
		t.Fatal("the stack runs builds on the host network: no build network to test")
	}
	w := startWorker(t)
	t.Cleanup(w.stop)
	local := listenProbe(t, "127.0.0.1:0")
	gw := env.stack.BuildGateway.String()
	_, registryPort, _ := net.SplitHostPort(env.stack.Registry)
	_, temporalPort, _ := net.SplitHostPort(env.stack.TemporalAddress)
	targets := []string{env.stack.Registry, env.stack.TemporalAddress, fmt.Sprintf("127.0.0.1:%d", local.port()),
		net.JoinHostPort(gw, registryPort), net.JoinHostPort(gw, temporalPort)}
	script := fmt.Sprintf("uname -m > /arch; for t in %s; do if nc -w 3 ${t%%:*} ${t##*:} </dev/null >/dev/null 2>&1; "+
		"then echo \"reached $t\"; else echo \"blocked $t\"; fi; done > /probes; echo %d >> /probes",
		strings.Join(targets, " "), time.Now().UnixNano())
	owner := "e2e-platform-netprobe"
	srv := &gitserver.Server{Root: env.gitRoot, URL: env.gitURL}
	srv.NewRepo(t, owner, "hello").Commit("main", map[string]string{"Dockerfile": "FROM busybox\nRUN " + script + "\n"})
	in := baseInput(owner)
	in.TagTemplate = "probe"
	in.Platforms = []string{"linux/arm64"}
	if _, logText, err := runBuild(t, "e2e-platform-netprobe", in); err != nil {
		t.Fatalf("probe build failed: %v\nlog:\n%s", err, logText)
	}
	img := pullPlatform(t, in.Image+":probe", "arm64")
	if got := fileOf(t, img, "arch"); got != "aarch64\n" {
		t.Fatalf("the probe did not run emulated: uname -m said %q", got)
	}
	probes := fileOf(t, img, "probes")
	for _, target := range targets {
		if !strings.Contains(probes, "blocked "+target+"\n") {
			t.Errorf("%s from an emulated RUN step was not blocked:\n%s", target, probes)
		}
	}
	if n := local.accepted.Load(); n != 0 {
		t.Errorf("the loopback server took %d connections from the emulated build, want 0", n)
	}
}

// runBuild runs one build to its end and returns its result, its log and its error.
func runBuild(t *testing.T, prefix string, in build.Input) (build.Result, string, error) {
	t.Helper()
	id := fmt.Sprintf("%s-%d", prefix, time.Now().UnixNano())
	run := startBuild(t, id, in)
	ctx, cancel := context.WithTimeout(t.Context(), 8*time.Minute)
	defer cancel()
	var res build.Result
	err := run.Get(ctx, &res)
	return res, readLog(t, id, run.GetRunID()), err
}

// pullIndex reads the image index at ref; it fails the test when ref is a single image.
func pullIndex(t *testing.T, ref string) v1.ImageIndex {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	desc, err := remote.Get(r, operatorAuth())
	if err != nil {
		t.Fatalf("reading %s: %v", ref, err)
	}
	if !desc.MediaType.IsIndex() {
		t.Fatalf("%s is a %s, want an image index", ref, desc.MediaType)
	}
	idx, err := desc.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	return idx
}

// pullPlatform reads the linux/arch image of the index at ref.
func pullPlatform(t *testing.T, ref, arch string) v1.Image {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(r, operatorAuth(), remote.WithPlatform(v1.Platform{OS: "linux", Architecture: arch}))
	if err != nil {
		t.Fatalf("reading %s for linux/%s: %v", ref, arch, err)
	}
	return img
}

func mustDigest(t *testing.T, idx v1.ImageIndex) v1.Hash {
	t.Helper()
	d, err := idx.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// fileOf is the content of the regular file path in img's flattened filesystem, "" if absent.
func fileOf(t *testing.T, img v1.Image, path string) string {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return ""
		}
		if err != nil {
			t.Fatal(err)
		}
		if strings.TrimPrefix(h.Name, "/") == path && h.Typeflag == tar.TypeReg {
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			return string(b)
		}
	}
}
