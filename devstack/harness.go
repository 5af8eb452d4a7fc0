package devstack

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
)

// WorkerEnv is the environment of a worker on this stack: this process's environment, with
// the stack's home, Temporal, BuildKit, registry, build cgroup and build bridge, then extra
// ("KEY=value"; a later value of a key wins, as with exec).
func (s *Stack) WorkerEnv(extra ...string) []string {
	env := append(s.commonEnv(),
		"SLIPWAY_BUILDKIT_ADDR="+s.BuildkitAddr,
		"SLIPWAY_BUILD_CGROUP="+s.BuildCgroup,
		"SLIPWAY_BUILD_BRIDGE="+s.BuildBridge,
		// The stack's registry, also when extra points SLIPWAY_REGISTRY elsewhere: base
		// images come from it through buildkitd's docker.io mirror.
		"SLIPWAY_REGISTRY_TOKEN_HOSTS="+s.Registry,
	)
	return append(env, extra...)
}

// GatewayEnv is the environment of a gateway on this stack: this process's environment, with
// the stack's home, Temporal and its web UI, and the registry with its token key, then extra
// (a later value of a key wins, as with exec).
func (s *Stack) GatewayEnv(extra ...string) []string {
	env := append(s.commonEnv(), "SLIPWAY_TEMPORAL_UI_URL="+s.TemporalUIURL)
	return append(env, extra...)
}

func (s *Stack) commonEnv() []string {
	return append(os.Environ(),
		"SLIPWAY_HOME="+s.home,
		"SLIPWAY_TEMPORAL_ADDRESS="+s.TemporalAddress,
		"SLIPWAY_REGISTRY="+s.Registry,
		"SLIPWAY_REGISTRY_TOKEN_KEY="+s.RegistryTokenKey,
	)
}

// Home is the stack's SLIPWAY_HOME.
func (s *Stack) Home() string { return s.home }

// Getenv looks keys up in env ("KEY=value" entries) as the child given env would see them:
// the last value of a key wins. It is the getenv of worker.Run and gateway.Run run in process.
func Getenv(env []string) func(string) string {
	m := make(map[string]string, len(env))
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return func(key string) string { return m[key] }
}

// ModuleRoot is the folder of the go.mod above the working directory: tests run in their
// package's folder, and the tools, deploy scripts and packages to build are found from it.
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("finding the module root: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found above the working directory")
		}
		dir = parent
	}
}

// BuildBinaries builds the main packages pkgs (such as "./cmd/worker", relative to the module
// root) into dir, so that tests and benchmarks run the binaries an operator runs.
func BuildBinaries(ctx context.Context, dir string, pkgs ...string) error {
	root, err := ModuleRoot()
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, "go", append([]string{"build", "-o", dir + "/"}, pkgs...)...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("building %s: %w\n%s", strings.Join(pkgs, " "), err, out)
	}
	return nil
}

// FreePort is a loopback TCP port nobody listens on right now. Another process may take it
// before the caller does; the stack's own ports are held while they are picked instead.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// FreeAddr is FreePort as an address, "127.0.0.1:PORT".
func FreeAddr() (string, error) {
	port, err := FreePort()
	if err != nil {
		return "", err
	}
	return loopback(port), nil
}

// Poll calls check at every tick of every until it reports done, returns an error (which Poll
// returns at once), ctx ends (Poll returns its cause, see Process.Bound) or timeout passes. A check that is not done yet and wants its
// reason in the timeout's error returns false with nil and keeps the reason itself.
func Poll(ctx context.Context, every, timeout time.Duration, check func() (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		done, err := check()
		if err != nil {
			return err
		}
		if done {
			return nil
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("not done after %s: %w", timeout, ctx.Err())
			}
			return context.Cause(ctx)
		case <-tick.C:
		}
	}
}

// WaitPoller waits until a worker polls the workflow task queue queue, so that what runs next
// does not pay for a worker's start. It waits as long as ctx allows (bound it to the worker's
// Process with Bound to stop when the worker dies); the error then names ctx's cause and the
// last failure to describe the queue.
func WaitPoller(ctx context.Context, c client.Client, queue string) error {
	var last error
	for {
		resp, err := c.DescribeTaskQueue(ctx, queue, enumspb.TASK_QUEUE_TYPE_WORKFLOW)
		if err == nil && len(resp.GetPollers()) > 0 {
			return nil
		}
		if err != nil {
			last = err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("no worker polls %s (last error: %v): %w", queue, last, context.Cause(ctx))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// SignGitHub is the X-Hub-Signature-256 header GitHub sends with body for a webhook whose
// secret is secret, so tests and benchmarks deliver what GitHub would.
func SignGitHub(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}
