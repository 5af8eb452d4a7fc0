package devstack

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"syscall"

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
	return s.halt(&s.registry, "registry", syscall.SIGTERM, stopGrace)
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
