package devstack

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"

	"golang.org/x/crypto/bcrypt"

	"github.com/slipway-dev/slipway/registryauth"
)

// registryConfig writes the distribution registry's config file under home and
// returns the arguments that serve it.
func (s *Stack) registryConfig() ([]string, error) {
	conf := fmt.Sprintf(`# Written by devstack at every start; edits are lost.
version: 0.1
log:
  level: info
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
http:
  addr: %s
  # Fixed, so an upload in flight survives a restart (StopRegistry and
  # StartRegistry); the registry only ever listens on loopback.
  secret: slipway-devstack
  headers:
    X-Content-Type-Options: [nosniff]
# Every request needs a token of the gateway's token service (or one the worker mints for a
# build with the same key): scopes per repository, by namespace role.
%s`, filepath.Join(s.home, "registry"), s.Registry, registryauth.RegistryConfig(s.RegistryTokenRealm, registryauth.CertPath(s.RegistryTokenKey)))
	path := filepath.Join(s.home, "registry.yml")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		return nil, fmt.Errorf("writing registry config: %w", err)
	}
	return []string{"serve", path}, nil
}

// StartRegistry starts the registry (after StopRegistry) on the same port and
// storage, and waits until it answers.
func (s *Stack) StartRegistry(ctx context.Context) error {
	p, err := s.launch(&s.registry, "registry", s.registryBin, s.registryArgs)
	if err != nil {
		return err
	}
	url := "http://" + s.Registry + "/v2/"
	if err := waitReady(ctx, p, registryReadyTimeout, func(ctx context.Context) error {
		return httpStatus(ctx, url, http.StatusUnauthorized)
	}); err != nil {
		return fmt.Errorf("starting registry: %w", err)
	}
	s.logger.Info("registry ready", "address", s.Registry)
	return nil
}

// StopRegistry stops the registry gracefully and waits until it is gone.
func (s *Stack) StopRegistry() error {
	return s.halt(&s.registry, "registry", stopGrace)
}

// httpOK answers nil when GET url answers 200.
func httpOK(ctx context.Context, url string) error {
	return httpStatus(ctx, url, http.StatusOK)
}

// httpStatus answers nil when GET url answers want: the registry answers /v2/ with 401 and
// its token challenge once it serves.
func httpStatus(ctx context.Context, url string, want int) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != want {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}

// StartBasicAuthRegistry starts a distribution registry of its own, apart from any stack,
// that takes pushes and pulls only with basic auth as user and password (htpasswd, bcrypt):
// the kind of registry an operator points a rule at with a Docker config. Its storage, config
// and log go under dir; it listens on a free loopback port. It returns once the registry
// answers, with its host:port; stop it with the Process.
func StartBasicAuthRegistry(ctx context.Context, dir, user, password string) (string, *Process, error) {
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		return "", nil, fmt.Errorf("hashing the registry password: %w", err)
	}
	htpasswd := filepath.Join(dir, "htpasswd")
	if err := os.WriteFile(htpasswd, []byte(user+":"+string(hash)+"\n"), 0o600); err != nil {
		return "", nil, fmt.Errorf("writing htpasswd: %w", err)
	}
	addr, err := FreeAddr()
	if err != nil {
		return "", nil, err
	}
	conf := filepath.Join(dir, "registry.yml")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(`# Written by devstack.
version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: %s
http:
  addr: %s
  secret: devstack-basic-auth
auth:
  htpasswd:
    realm: slipway
    path: %s
`, filepath.Join(dir, "data"), addr, htpasswd)), 0o644); err != nil {
		return "", nil, fmt.Errorf("writing registry config: %w", err)
	}
	env := childEnv("")
	bin, err := lookPath(env, "docker-registry")
	if err != nil {
		return "", nil, fmt.Errorf("finding docker-registry (Debian package docker-registry; run scripts/tools.sh): %w", err)
	}
	p, err := StartProcess(Command{Name: "registry with basic auth", Args: []string{bin, "serve", conf},
		Env: env, Log: filepath.Join(dir, "registry.log")})
	if err != nil {
		return "", nil, err
	}
	if err := waitReady(ctx, p, registryReadyTimeout, func(ctx context.Context) error {
		return httpStatus(ctx, "http://"+addr+"/v2/", http.StatusUnauthorized)
	}); err != nil {
		p.Kill()
		return "", nil, err
	}
	return addr, p, nil
}
