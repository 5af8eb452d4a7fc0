package devstack

import (
	"archive/tar"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	bkclient "github.com/moby/buildkit/client"
	"github.com/moby/buildkit/session"
	"github.com/tonistiigi/fsutil"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	"golang.org/x/sync/errgroup"

	"github.com/slipway-dev/slipway/registryauth"
	"github.com/slipway-dev/slipway/registryauth/buildauth"
)

// toolsDir is $SLIPWAY_TOOLS_DIR, or the repository's .tools/bin.
func toolsDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("SLIPWAY_TOOLS_DIR")
	if dir == "" {
		wd, err := os.Getwd()
		if err != nil {
			t.Fatal(err)
		}
		for d := wd; ; d = filepath.Dir(d) {
			if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
				dir = filepath.Join(d, ".tools", "bin")
				break
			}
			if filepath.Dir(d) == d {
				t.Fatalf("no go.mod above %s; set SLIPWAY_TOOLS_DIR", wd)
			}
		}
	}
	for _, tool := range []string{"temporal", "temporal-ui-server", "buildkitd"} {
		if _, err := os.Stat(filepath.Join(dir, tool)); err != nil {
			t.Fatalf("%s missing in %s: run scripts/tools.sh (or set SLIPWAY_TOOLS_DIR)", tool, dir)
		}
	}
	return dir
}

// startStack starts a stack on free ports in a short temporary home (unix
// socket paths are limited to 108 bytes).
func startStack(t *testing.T) *Stack {
	t.Helper()
	tools := toolsDir(t)
	home, err := os.MkdirTemp("/tmp", "sw-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(home) })
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	logger := slog.New(slog.NewTextHandler(t.Output(), nil))
	begin := time.Now()
	s, err := Start(ctx, Options{Home: home, ToolsDir: tools, Logger: logger})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Logf("stack started in %s", time.Since(begin).Round(time.Millisecond))
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func TestStack(t *testing.T) {
	s := startStack(t)

	t.Run("registry serves busybox for linux/amd64", func(t *testing.T) {
		ref, err := name.ParseReference(s.Registry+"/library/busybox:latest", name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := remote.Image(ref, remote.WithContext(t.Context())); err == nil {
			t.Fatal("the registry let an anonymous client pull busybox")
		}
		img, err := remote.Image(ref, remote.WithContext(t.Context()), operator(s))
		if err != nil {
			t.Fatalf("pulling busybox: %v", err)
		}
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if cf.OS != "linux" || cf.Architecture != "amd64" {
			t.Errorf("platform = %s/%s, want linux/amd64", cf.OS, cf.Architecture)
		}
		if !slices.Equal(cf.Config.Cmd, []string{"sh"}) {
			t.Errorf("Cmd = %q, want [sh]", cf.Config.Cmd)
		}
		// The tag's own digest: an index when the stack seeds foreign platforms too.
		head, err := remote.Head(ref, remote.WithContext(t.Context()), operator(s))
		if err != nil {
			t.Fatal(err)
		}
		before := head.Digest
		// A second seed (a warm start) must find the same image in place.
		if err := seedBusybox(t.Context(), s.Registry, s.RegistryKey, s.emulation.busybox); err != nil {
			t.Fatalf("seeding again: %v", err)
		}
		desc, err := remote.Head(ref, remote.WithContext(t.Context()), operator(s))
		if err != nil {
			t.Fatal(err)
		}
		if desc.Digest != before {
			t.Errorf("seeding again changed busybox from %s to %s", before, desc.Digest)
		}
	})

	t.Run("buildkitd builds FROM busybox with RUN and pushes", func(t *testing.T) {
		target := s.Registry + "/test/x:1"
		buildAndPush(t, s, "FROM busybox\nRUN echo hi > /x\n", target)
		if got := fileInImage(t, s, target, "x"); got != "hi\n" {
			t.Errorf("/x in %s = %q, want %q", target, got, "hi\n")
		}
	})

	t.Run("temporal has the search attributes", func(t *testing.T) {
		checkSearchAttributes(t, s.TemporalAddress)
	})

	t.Run("temporal restart keeps data and search attributes", func(t *testing.T) {
		c, err := client.DialContext(t.Context(), client.Options{HostPort: s.TemporalAddress, Logger: quietLogger()})
		if err != nil {
			t.Fatalf("dialing temporal: %v", err)
		}
		defer c.Close()
		// No worker polls this queue: the execution just waits, stored in SQLite.
		run, err := c.ExecuteWorkflow(t.Context(), client.StartWorkflowOptions{
			ID:        "devstack-restart",
			TaskQueue: "devstack-test",
		}, "workflow_docker_builder")
		if err != nil {
			t.Fatalf("starting a workflow: %v", err)
		}
		// A database from before an attribute joined the list lacks it; the
		// restart must add it back.
		if _, err := c.OperatorService().RemoveSearchAttributes(t.Context(), &operatorservice.RemoveSearchAttributesRequest{
			Namespace:        "default",
			SearchAttributes: []string{"BuildTrigger"},
		}); err != nil {
			t.Fatalf("removing a search attribute: %v", err)
		}
		if err := s.StopTemporal(); err != nil {
			t.Fatalf("StopTemporal: %v", err)
		}
		if err := checkHealth(t.Context(), s.TemporalAddress); err == nil {
			t.Fatal("temporal still answers after StopTemporal")
		}
		if err := s.StartTemporal(t.Context()); err != nil {
			t.Fatalf("StartTemporal: %v", err)
		}
		checkSearchAttributes(t, s.TemporalAddress)
		if _, err := c.DescribeWorkflow(t.Context(), run.GetID(), run.GetRunID()); err != nil {
			t.Errorf("workflow started before the restart: %v", err)
		}
	})

	t.Run("buildkitd comes back after kill -9", func(t *testing.T) {
		if err := s.KillBuildkitd(); err != nil {
			t.Fatalf("KillBuildkitd: %v", err)
		}
		if _, err := buildkitdWorkers(t.Context(), s.BuildkitAddr); err == nil {
			t.Fatal("buildkitd still answers after KillBuildkitd")
		}
		if err := s.StartBuildkitd(t.Context()); err != nil {
			t.Fatalf("StartBuildkitd: %v", err)
		}
		buildAndPush(t, s, "FROM busybox\nRUN echo again > /y\n", s.Registry+"/test/y:1")
	})

	t.Run("buildkitd starts cold on an emptied root", func(t *testing.T) {
		if err := s.KillBuildkitd(); err != nil {
			t.Fatalf("KillBuildkitd: %v", err)
		}
		if err := s.EmptyBuildkitdRoot(); err != nil {
			t.Fatalf("EmptyBuildkitdRoot: %v", err)
		}
		if left, err := os.ReadDir(filepath.Join(s.Home(), "buildkit")); err != nil || len(left) != 0 {
			t.Fatalf("buildkitd's root after EmptyBuildkitdRoot: %v, %v; want an empty folder", left, err)
		}
		if err := s.StartBuildkitd(t.Context()); err != nil {
			t.Fatalf("StartBuildkitd: %v", err)
		}
		buildAndPush(t, s, "FROM busybox\nRUN echo cold > /z\n", s.Registry+"/test/z:1")
	})

	t.Run("registry restart keeps its storage", func(t *testing.T) {
		if err := s.StopRegistry(); err != nil {
			t.Fatalf("StopRegistry: %v", err)
		}
		if err := httpStatus(t.Context(), "http://"+s.Registry+"/v2/", http.StatusUnauthorized); err == nil {
			t.Fatal("registry still answers after StopRegistry")
		}
		if err := s.StartRegistry(t.Context()); err != nil {
			t.Fatalf("StartRegistry: %v", err)
		}
		if got := fileInImage(t, s, s.Registry+"/test/x:1", "x"); got != "hi\n" {
			t.Errorf("/x after registry restart = %q, want %q", got, "hi\n")
		}
	})

	t.Run("close is idempotent and stops everything", func(t *testing.T) {
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if err := s.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
		if err := httpStatus(t.Context(), "http://"+s.Registry+"/v2/", http.StatusUnauthorized); err == nil {
			t.Error("registry still answers after Close")
		}
		if err := checkHealth(t.Context(), s.TemporalAddress); err == nil {
			t.Error("temporal still answers after Close")
		}
		if err := httpOK(t.Context(), s.TemporalUIURL); err == nil {
			t.Error("the temporal web UI still answers after Close")
		}
		if err := s.StartRegistry(t.Context()); err == nil {
			t.Error("StartRegistry after Close succeeded")
		}
	})
}

func TestStartFailsClearlyWithoutTools(t *testing.T) {
	_, err := Start(t.Context(), Options{Home: t.TempDir(), ToolsDir: t.TempDir()})
	if err == nil {
		t.Fatal("Start succeeded without tools")
	}
	if want := "scripts/tools.sh"; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not mention %s", err, want)
	}
}

func TestSocketPath(t *testing.T) {
	long := "/tmp/" + strings.Repeat("x", 120)
	tests := []struct {
		name, home string
		inHome     bool
	}{
		{"short home keeps the socket", "/tmp/sw-1", true},
		{"long home moves it to the temp folder", long, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := socketPath(tt.home, "buildkitd.sock")
			if err != nil {
				t.Fatal(err)
			}
			if len(got) > maxSocketPath {
				t.Errorf("socket path %q is %d bytes, over %d", got, len(got), maxSocketPath)
			}
			if inHome := filepath.Dir(got) == tt.home; inHome != tt.inHome {
				t.Errorf("socketPath(%q) = %q, in home %v, want %v", tt.home, got, inHome, tt.inHome)
			}
			again, _ := socketPath(tt.home, "buildkitd.sock")
			if again != got {
				t.Errorf("socketPath is not stable: %q then %q", got, again)
			}
			if !tt.inHome {
				os.Remove(filepath.Dir(got))
			}
		})
	}
}

// buildAndPush builds dockerfile with an empty context and pushes it to target,
// as the worker's build activity does.
func buildAndPush(t *testing.T, s *Stack, dockerfile, target string) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(dockerfile), 0o644); err != nil {
		t.Fatal(err)
	}
	local, err := fsutil.NewFS(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	c, err := bkclient.New(ctx, s.BuildkitAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// The operator's rules: this test pushes where it likes, as the stack's own tools do.
	auth, err := buildauth.New(s.RegistryKey, []string{s.Registry}, "devstack test",
		registryauth.UserRules(true, func(string) string { return "" }), nil)
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan *bkclient.SolveStatus)
	var g errgroup.Group
	g.Go(func() error {
		_, err := c.Solve(ctx, nil, bkclient.SolveOpt{
			Frontend:    "dockerfile.v0",
			LocalMounts: map[string]fsutil.FS{"context": local, "dockerfile": local},
			Session:     []session.Attachable{auth},
			Exports: []bkclient.ExportEntry{{
				Type:  bkclient.ExporterImage,
				Attrs: map[string]string{"name": target, "push": "true"},
			}},
		}, ch)
		return err
	})
	g.Go(func() error {
		for st := range ch {
			for _, l := range st.Logs {
				t.Logf("build: %s", l.Data)
			}
			for _, v := range st.Vertexes {
				if v.Error != "" {
					t.Logf("build step %q: %s", v.Name, v.Error)
				}
			}
		}
		return nil
	})
	if err := g.Wait(); err != nil {
		t.Fatalf("building %s: %v", target, err)
	}
}

// fileInImage returns the content of path in the top layer of image.
func fileInImage(t *testing.T, s *Stack, image, path string) string {
	t.Helper()
	ref, err := name.ParseReference(image, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(ref, remote.WithContext(t.Context()), operator(s))
	if err != nil {
		t.Fatalf("pulling %s: %v", image, err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.Architecture != "amd64" || cf.OS != "linux" {
		t.Errorf("%s platform = %s/%s, want linux/amd64", image, cf.OS, cf.Architecture)
	}
	layers, err := img.Layers()
	if err != nil || len(layers) == 0 {
		t.Fatalf("layers of %s: %v (%d)", image, err, len(layers))
	}
	rc, err := layers[len(layers)-1].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			t.Fatalf("%s has no %s in its top layer", image, path)
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Name == path {
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			return string(b)
		}
	}
}

func checkHealth(ctx context.Context, addr string) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	c, err := client.DialContext(ctx, client.Options{HostPort: addr, Logger: quietLogger()})
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = c.CheckHealth(ctx, &client.CheckHealthRequest{})
	return err
}

func checkSearchAttributes(t *testing.T, addr string) {
	t.Helper()
	c, err := client.DialContext(t.Context(), client.Options{HostPort: addr, Logger: quietLogger()})
	if err != nil {
		t.Fatalf("dialing temporal: %v", err)
	}
	defer c.Close()
	resp, err := c.OperatorService().ListSearchAttributes(t.Context(), &operatorservice.ListSearchAttributesRequest{Namespace: "default"})
	if err != nil {
		t.Fatalf("listing search attributes: %v", err)
	}
	for _, n := range SearchAttributes() {
		if got := resp.GetCustomAttributes()[n]; got != enumspb.INDEXED_VALUE_TYPE_KEYWORD {
			t.Errorf("search attribute %s = %v, want Keyword", n, got)
		}
	}
}

func quietLogger() sdklog.Logger {
	return sdklog.NewStructuredLogger(slog.New(slog.DiscardHandler))
}

func TestUnescapeMountPoint(t *testing.T) {
	tests := []struct{ in, want string }{
		{"/tmp/slw-e2e-1/buildkit/runc-overlayfs/executor/x/rootfs", "/tmp/slw-e2e-1/buildkit/runc-overlayfs/executor/x/rootfs"},
		{`/tmp/with\040space/rootfs`, "/tmp/with space/rootfs"},
		{`/tmp/tab\011and\134backslash`, "/tmp/tab\tand\\backslash"},
		{`/tmp/trailing\04`, `/tmp/trailing\04`},
		{`/tmp/not\999octal`, `/tmp/not\999octal`},
	}
	for _, tt := range tests {
		if got := unescapeMountPoint(tt.in); got != tt.want {
			t.Errorf("unescapeMountPoint(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// operator authenticates go-containerregistry as the stack's operator.
func operator(s *Stack) remote.Option {
	return remote.WithAuthFromKeychain(registryauth.OperatorKeychain(s.RegistryKey, s.Registry))
}
