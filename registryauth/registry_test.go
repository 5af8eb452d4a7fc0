package registryauth_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/slipway-dev/slipway/registryauth"
)

// startRegistry runs Debian's docker-registry (distribution 2.8) with token auth trusting key,
// on a free loopback port, and answers its host:port.
func startRegistry(t *testing.T, dir string, key *registryauth.Key) string {
	t.Helper()
	bin, err := exec.LookPath("docker-registry")
	if err != nil {
		t.Fatalf("docker-registry (Debian package docker-registry): %v", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cert := filepath.Join(dir, "bundle.crt")
	if err := os.WriteFile(cert, key.CertificatePEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	conf := fmt.Sprintf("version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: %s\n%s",
		filepath.Join(dir, "storage"), addr, registryauth.RegistryConfig("http://localhost:1/token", cert))
	path := filepath.Join(dir, "registry.yml")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", path)
	logf, err := os.Create(filepath.Join(dir, "registry.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait(); logf.Close() })
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusUnauthorized {
				return addr
			}
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(logf.Name())
			t.Fatalf("registry at %s did not answer 401 on /v2/: %v\n%s", addr, err, log)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// tokenAuth is an authenticator that presents one raw token.
func tokenAuth(raw string) remote.Option {
	return remote.WithAuth(&authn.Bearer{Token: raw})
}

// TestRealRegistry checks the tokens against the real registry: a token of the trusted key
// for a repository pushes and pulls it and nothing else; an expired token, a token of another
// key and no token at all are refused.
func TestRealRegistry(t *testing.T) {
	dir := t.TempDir()
	key, err := registryauth.LoadOrCreate(filepath.Join(dir, "keys", registryauth.KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	other, err := registryauth.LoadOrCreate(filepath.Join(dir, "other", registryauth.KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	addr := startRegistry(t, dir, key)
	ctx := context.Background()
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	tagA, _ := name.NewTag(addr+"/team-a/app:v1", name.Insecure)
	tagB, _ := name.NewTag(addr+"/team-b/app:v1", name.Insecure)
	mint := func(k *registryauth.Key, ttl time.Duration, access ...registryauth.Access) string {
		t.Helper()
		tok, err := k.Mint("test", access, ttl)
		if err != nil {
			t.Fatal(err)
		}
		return tok.Raw
	}
	pushA := registryauth.Access{Type: "repository", Name: "team-a/app", Actions: []string{"pull", "push"}}
	pullA := registryauth.Access{Type: "repository", Name: "team-a/app", Actions: []string{"pull"}}

	if err := remote.Write(tagA, img, remote.WithContext(ctx), tokenAuth(mint(key, time.Minute, pushA))); err != nil {
		t.Fatalf("push with a token of the trusted key: %v", err)
	}
	if _, err := remote.Image(tagA, remote.WithContext(ctx), tokenAuth(mint(key, time.Minute, pullA))); err != nil {
		t.Fatalf("pull with a pull token: %v", err)
	}

	t.Run("no token", func(t *testing.T) {
		resp, err := http.Get("http://" + addr + "/v2/team-a/app/manifests/v1")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("anonymous pull: %s, want 401", resp.Status)
		}
		if got := resp.Header.Get("WWW-Authenticate"); !strings.Contains(got, `service="slipway-registry"`) {
			t.Errorf("challenge %q does not name the service", got)
		}
	})

	// Past the registry's leeway of 60s on exp and nbf.
	key.SetClock(func() time.Time { return time.Now().Add(-2 * time.Minute) })
	expired := mint(key, time.Minute, pushA)
	key.SetClock(time.Now)
	// A new image for each push: an image the registry holds already is not written again.
	fresh := func() remote.Taggable {
		img, err := random.Image(256, 1)
		if err != nil {
			t.Fatal(err)
		}
		return img
	}
	refused := []struct {
		name string
		tag  name.Tag
		opt  remote.Option
		push bool
	}{
		{"another repository", tagB, tokenAuth(mint(key, time.Minute, pushA)), false},
		{"push to another repository", tagB, tokenAuth(mint(key, time.Minute, pushA)), true},
		{"push with a pull token", tagA, tokenAuth(mint(key, time.Minute, pullA)), true},
		{"another key", tagA, tokenAuth(mint(other, time.Minute, pushA)), false},
		{"expired", tagA, tokenAuth(expired), false},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			if tt.push {
				err = remote.Write(tt.tag, fresh().(v1.Image), remote.WithContext(ctx), tt.opt)
			} else {
				_, err = remote.Image(tt.tag, remote.WithContext(ctx), tt.opt)
			}
			var terr *transport.Error
			if !errors.As(err, &terr) || (terr.StatusCode != http.StatusUnauthorized && terr.StatusCode != http.StatusForbidden) {
				t.Fatalf("got %v, want 401 or 403 from the registry", err)
			}
		})
	}
}
