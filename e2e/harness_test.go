// Package e2e runs Slipway end to end on the real local stack: a Temporal dev server,
// buildkitd, a registry, a smart-HTTP Git server and the worker binary, all on this machine.
package e2e

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"go.temporal.io/sdk/client"

	"github.com/slipway-dev/slipway/build"
	"github.com/slipway-dev/slipway/devstack"
	"github.com/slipway-dev/slipway/internal/testing/gitserver"
	"github.com/slipway-dev/slipway/internal/testing/storetest"
	"github.com/slipway-dev/slipway/registryauth"
)

// env is the stack every test in this package shares.
var env struct {
	stack *devstack.Stack
	// prod is set when the tests run on the production shape (make test-prod): Temporal
	// server built from source on PostgreSQL, gateways on PostgreSQL too.
	prod     bool
	postgres *storetest.Cluster
	server   *devstack.TemporalServer
	// databases maps a gateway's home to its database URL, so a restarted gateway finds
	// its data again; dbMu guards it.
	databases map[string]string
	dbMu      sync.Mutex
	home      string
	tools     string // temporal, buildkitd and buildctl
	bin       string
	temporal  client.Client
	gitURL    string
	gitRoot   string
	// realmAddr is where the registry's token service is expected: a test that logs in to the
	// registry as a user starts a gateway there (startGatewayAt).
	realmAddr string
}

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := setup(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "e2e setup:", err)
		teardown()
		return 1
	}
	for _, hook := range setupHooks {
		if err := hook(); err != nil {
			fmt.Fprintln(os.Stderr, "e2e setup:", err)
			teardown()
			return 1
		}
	}
	code := m.Run()
	if err := teardown(); err != nil {
		// What a test left behind (a mount, a running process) is a failure of the run.
		fmt.Fprintln(os.Stderr, "e2e teardown:", err)
		code = 1
	}
	return code
}

// setupHooks run once the stack is up, before any test; files behind build tags (chaos) add
// to it from init.
var setupHooks []func() error

func setup(ctx context.Context) error {
	root, err := devstack.ModuleRoot()
	if err != nil {
		return err
	}
	env.tools = os.Getenv("SLIPWAY_TOOLS_DIR")
	if env.tools == "" {
		env.tools = filepath.Join(root, ".tools", "bin")
	}
	// Short: buildkitd's socket lives under it and unix socket paths are short.
	env.home, err = os.MkdirTemp("/tmp", "slw-e2e-")
	if err != nil {
		return err
	}
	env.bin = filepath.Join(env.home, "bin")
	if err := devstack.BuildBinaries(ctx, env.bin, "./cmd/worker", "./cmd/gateway"); err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if env.realmAddr, err = devstack.FreeAddr(); err != nil {
		return fmt.Errorf("picking the token service's port: %w", err)
	}
	_, realmPort, _ := net.SplitHostPort(env.realmAddr)
	opts := devstack.Options{Home: env.home, ToolsDir: env.tools, Logger: logger,
		// A host name: go-containerregistry refuses a realm on a loopback IP.
		RegistryTokenRealm: "http://localhost:" + realmPort + registryauth.TokenPath}
	if env.prod = os.Getenv(EnvTopology) == "prod"; env.prod {
		if err := startProd(ctx, root, logger); err != nil {
			return err
		}
		opts.ExternalTemporal, opts.ExternalTemporalUI = env.server.Address, env.server.UIURL
	}
	env.stack, err = devstack.Start(ctx, opts)
	if err != nil {
		return fmt.Errorf("starting stack (tools from %s; run scripts/tools.sh): %w", env.tools, err)
	}
	env.gitRoot = filepath.Join(env.home, "git")
	if err := os.MkdirAll(env.gitRoot, 0o755); err != nil {
		return err
	}
	// Served for the whole run; the test binary's exit ends it.
	git, err := gitserver.New(env.gitRoot, "", "")
	if err != nil {
		return err
	}
	env.gitURL = git.URL
	env.temporal, err = client.Dial(client.Options{HostPort: env.stack.TemporalAddress})
	if err != nil {
		return fmt.Errorf("dialing temporal: %w", err)
	}
	return nil
}

func teardown() error {
	if env.temporal != nil {
		env.temporal.Close()
	}
	var errs []error
	if env.stack != nil {
		errs = append(errs, env.stack.Close())
	}
	if env.server != nil {
		errs = append(errs, env.server.Close())
	}
	if env.postgres != nil {
		errs = append(errs, env.postgres.Stop())
	}
	if env.home != "" && os.Getenv("SLIPWAY_E2E_KEEP") == "" {
		if err := os.RemoveAll(env.home); err != nil {
			errs = append(errs, fmt.Errorf("removing the stack's home: %w", err))
		}
	}
	return errors.Join(errs...)
}

// EnvTopology selects what the tests run on: unset, the Temporal dev server of `make run`;
// "prod" (`make test-prod`), PostgreSQL from Debian's packages and a Temporal server built
// from go.temporal.io/server with its schema applied by temporal-sql-tool, and every gateway
// on a PostgreSQL database of its own.
const EnvTopology = "SLIPWAY_E2E_TOPOLOGY"

// startProd starts PostgreSQL and the Temporal server on it.
func startProd(ctx context.Context, root string, logger *slog.Logger) error {
	var err error
	if env.postgres, err = storetest.StartCluster(ctx); err != nil {
		return fmt.Errorf("starting postgres: %w", err)
	}
	addr, user, password, err := env.postgres.Login()
	if err != nil {
		return err
	}
	env.server, err = devstack.StartTemporalServer(ctx, devstack.ServerOptions{
		Home:      env.home,
		ToolsDir:  env.tools,
		DeployDir: filepath.Join(root, "deploy"),
		Postgres:  addr,
		User:      user,
		Password:  password,
		Logger:    logger,
	})
	if err != nil {
		return fmt.Errorf("starting temporal server (tools from %s; run scripts/tools.sh prod): %w", env.tools, err)
	}
	env.databases = map[string]string{}
	return nil
}

// databaseFor is the SLIPWAY_DATABASE_URL of a gateway whose home is home: a SQLite file in
// it, or on the production shape a PostgreSQL database made for it on first use.
func databaseFor(t *testing.T, home string) string {
	t.Helper()
	if !env.prod {
		return filepath.Join(home, "slipway.db")
	}
	env.dbMu.Lock()
	defer env.dbMu.Unlock()
	if u, ok := env.databases[home]; ok {
		return u
	}
	u, err := env.postgres.CreateDatabase(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	env.databases[home] = u
	return u
}

// worker is a running worker process.
type worker struct{ *devstack.Process }

// startWorker runs the worker binary against the shared stack, with extra environment.
func startWorker(t *testing.T, extra ...string) *worker {
	t.Helper()
	return startWorkerUnder(t, nil, extra...)
}

// startWorkerUnder runs the worker binary as the last argument of the command prefix (such
// as unshare), or alone when prefix is empty.
func startWorkerUnder(t *testing.T, prefix []string, extra ...string) *worker {
	t.Helper()
	p, err := devstack.StartProcess(devstack.Command{
		Name: "worker",
		Args: append(slices.Clone(prefix), filepath.Join(env.bin, "worker")),
		Env: env.stack.WorkerEnv(append([]string{
			"SLIPWAY_GITHUB_URL=" + env.gitURL,
			"SLIPWAY_GITLAB_URL=" + env.gitURL,
			"SLIPWAY_MAX_CONCURRENT_BUILDS=2",
			// Tests share namespace "demo" and some leave builds running; the tests of the
			// namespace limit set their own.
			"SLIPWAY_NAMESPACE_MAX_RUNNING=16",
		}, extra...)...),
		Log: filepath.Join(env.home, "stack-logs", fmt.Sprintf("worker-%d.log", time.Now().UnixNano())),
	})
	if err != nil {
		t.Fatal(err)
	}
	return &worker{p}
}

// id is the worker's id, which names its folders (SLIPWAY_HOME/workspaces/worker-ID and
// SLIPWAY_HOME/images/worker-ID), read from its start line in its log.
func (w *worker) id(t *testing.T) string {
	t.Helper()
	var id string
	err := devstack.Poll(t.Context(), 50*time.Millisecond, time.Minute, func() (bool, error) {
		b, _ := os.ReadFile(w.LogPath())
		if _, rest, ok := strings.Cut(string(b), "worker_id="); ok {
			if id, _, ok = strings.Cut(rest, " "); ok {
				return true, nil
			}
		}
		return false, w.ExitError()
	})
	if err != nil {
		t.Fatalf("no worker_id in %s: %v", w.LogPath(), err)
	}
	return id
}

// stop ends the worker with SIGTERM, as an orchestrator would.
func (w *worker) stop() { _ = w.Stop(40 * time.Second) }

// startBuild starts workflow_docker_builder as the temporal CLI or the gateway would.
func startBuild(t *testing.T, id string, in build.Input) client.WorkflowRun {
	t.Helper()
	run, err := env.temporal.ExecuteWorkflow(context.Background(), client.StartWorkflowOptions{
		ID:        id,
		TaskQueue: build.DefaultTaskQueue,
	}, build.WorkflowName, in)
	if err != nil {
		t.Fatalf("starting %s: %v", id, err)
	}
	return run
}

// pulled is an image read back from the registry.
type pulled struct {
	img   v1.Image
	files map[string]string
}

// pull reads image:tag back and flattens its filesystem.
func pull(t *testing.T, ref string) pulled {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(r, operatorAuth())
	if err != nil {
		t.Fatalf("pulling %s: %v", ref, err)
	}
	rc := mutate.Extract(img)
	defer rc.Close()
	files := map[string]string{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Typeflag != tar.TypeReg || h.Size > 1<<16 {
			files[strings.TrimPrefix(h.Name, "/")] = ""
			continue
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		files[strings.TrimPrefix(h.Name, "/")] = string(b)
	}
	return pulled{img: img, files: files}
}

// listTags lists the tags of an image repository.
func listTags(t *testing.T, repo string) []string {
	t.Helper()
	r, err := name.NewRepository(repo)
	if err != nil {
		t.Fatal(err)
	}
	tags, err := remote.List(r, operatorAuth())
	if err != nil {
		t.Fatalf("listing %s: %v", repo, err)
	}
	return tags
}

// operatorAuth authenticates go-containerregistry to the stack's registry as its operator: a
// token minted with the registry key for each repository.
func operatorAuth() remote.Option {
	return remote.WithAuthFromKeychain(registryauth.OperatorKeychain(env.stack.RegistryKey, env.stack.Registry))
}
