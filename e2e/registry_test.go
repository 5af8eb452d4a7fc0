package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/crane"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"go.temporal.io/sdk/temporal"

	"github.com/slipway-dev/slipway/build"
	"github.com/slipway-dev/slipway/internal/testing/gitserver"
)

// TestRegistryByNamespace holds the registry's boundary between namespaces on the real stack:
// a build pulls in its own namespace but a FROM of another namespace's image fails, saying so
// in the build log; a user's token (as `crane auth login` or `docker login` store it) pulls
// the images of the user's namespaces and the base images, and pushes nowhere else; without a
// token the registry answers 401.
func TestRegistryByNamespace(t *testing.T) {
	w := startWorker(t)
	t.Cleanup(w.stop)
	reg := env.stack.Registry
	srv := &gitserver.Server{Root: env.gitRoot, URL: env.gitURL}
	owner := "e2e-registry"
	repo := srv.NewRepo(t, owner, "hello")
	repo.Commit("main", map[string]string{
		"base/Dockerfile":  "FROM busybox\nRUN echo team-a-private > /private\n",
		"same/Dockerfile":  "FROM " + reg + "/rega/base:main\nRUN cat /private > /seen\n",
		"cross/Dockerfile": "FROM " + reg + "/rega/base:main\nRUN cat /private > /stolen\n",
	})
	runBuild := func(t *testing.T, ns, image, dockerfile string) (string, error) {
		t.Helper()
		in := build.Input{
			Namespace: ns, Repository: image, RuleID: "r-registry",
			Source:         build.Source{Provider: "github", Owner: owner, Repository: "hello"},
			Ref:            build.Ref{Type: build.RefBranch, Name: "main"},
			DockerfilePath: dockerfile,
			Image:          reg + "/" + ns + "/" + image,
			Trigger:        build.TriggerManual,
		}
		id := "e2e-registry-" + ns + "-" + image + "-" + strconv.FormatInt(time.Now().UnixNano(), 36)
		run := startBuild(t, id, in)
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		var res build.Result
		err := run.Get(ctx, &res)
		return readLog(t, id, run.GetRunID()), err
	}

	if log, err := runBuild(t, "rega", "base", "base/Dockerfile"); err != nil {
		t.Fatalf("team A's base image: %v\n%s", err, log)
	}
	t.Run("a build pulls in its own namespace", func(t *testing.T) {
		if log, err := runBuild(t, "rega", "app", "same/Dockerfile"); err != nil {
			t.Fatalf("team A's build FROM its own image: %v\n%s", err, log)
		}
		if got := pull(t, reg+"/rega/app:main").files["seen"]; got != "team-a-private\n" {
			t.Fatalf("/seen = %q", got)
		}
	})
	t.Run("FROM another namespace fails, and the log says why", func(t *testing.T) {
		log, err := runBuild(t, "regb", "app", "cross/Dockerfile")
		var appErr *temporal.ApplicationError
		if !errors.As(err, &appErr) || appErr.Type() != build.ErrTypeBuildFailed {
			t.Fatalf("team B's build FROM team A's image: %v, want %s\n%s", err, build.ErrTypeBuildFailed, log)
		}
		want := "registry access denied: this build may not pull " + reg + "/rega/base"
		if !strings.Contains(log, want) {
			t.Fatalf("the log does not say %q:\n%s", want, log)
		}
		t.Logf("refused: %s", appErr.Message())
		tag, err := name.NewTag(reg + "/regb/app:main")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := remote.Head(tag, operatorAuth()); err == nil {
			t.Fatal("team B's build pushed its image")
		}
	})

	// The token service at the realm the registry names.
	g := startGatewayAt(t, filepath.Join(env.home, "gw-registry"), env.realmAddr)
	var alice, bob struct{ Token string }
	g.call(t, "POST", "/api/v1/users", g.admin, map[string]string{"name": "alice"}, &alice)
	g.call(t, "POST", "/api/v1/users", g.admin, map[string]string{"name": "bob"}, &bob)
	for user, ns := range map[string]struct{ token, ns string }{"alice": {alice.Token, "rega"}, "bob": {bob.Token, "regb"}} {
		if code := g.call(t, "POST", "/api/v1/namespaces", ns.token, map[string]string{"name": ns.ns}, nil); code != 201 {
			t.Fatalf("%s creating namespace %s: %d", user, ns.ns, code)
		}
	}

	// What `crane auth login REGISTRY -u alice -p TOKEN` (or docker login) writes.
	login := func(t *testing.T, user, token string) {
		dir := t.TempDir()
		cfg, _ := json.Marshal(map[string]any{"auths": map[string]any{
			reg: map[string]string{"auth": base64.StdEncoding.EncodeToString([]byte(user + ":" + token))}}})
		if err := os.WriteFile(filepath.Join(dir, "config.json"), cfg, 0o600); err != nil {
			t.Fatal(err)
		}
		t.Setenv("DOCKER_CONFIG", dir)
	}
	keychain := crane.WithAuthFromKeychain(authn.DefaultKeychain)
	status := func(err error) int {
		var terr *transport.Error
		if errors.As(err, &terr) {
			return terr.StatusCode
		}
		return 0
	}

	t.Run("alice pulls her namespace's image and base images, pushes to hers only", func(t *testing.T) {
		login(t, "alice", alice.Token)
		img, err := crane.Pull(reg+"/rega/base:main", keychain)
		if err != nil {
			t.Fatalf("pull of her own image: %v", err)
		}
		if _, err := crane.Pull(reg+"/library/busybox:latest", keychain); err != nil {
			t.Fatalf("pull of busybox: %v", err)
		}
		if err := crane.Push(img, reg+"/rega/copy:1", keychain); err != nil {
			t.Fatalf("push to her own namespace: %v", err)
		}
		if err := crane.Push(img, reg+"/regb/planted:1", keychain); status(err) != http.StatusUnauthorized && status(err) != http.StatusForbidden {
			t.Fatalf("push to bob's namespace: %v, want 401 or 403", err)
		}
		if err := crane.Push(img, reg+"/library/busybox:planted", keychain); status(err) != http.StatusUnauthorized && status(err) != http.StatusForbidden {
			t.Fatalf("push over a base image: %v, want 401 or 403", err)
		}
	})
	t.Run("bob cannot pull alice's image", func(t *testing.T) {
		login(t, "bob", bob.Token)
		if _, err := crane.Pull(reg+"/rega/base:main", keychain); status(err) != http.StatusUnauthorized && status(err) != http.StatusForbidden {
			t.Fatalf("bob pulling team A's image: %v, want 401 or 403", err)
		}
		if _, err := crane.Pull(reg+"/library/busybox:latest", keychain); err != nil {
			t.Fatalf("bob pulling busybox: %v", err)
		}
	})
	t.Run("a wrong token gets no token", func(t *testing.T) {
		login(t, "alice", bob.Token)
		if _, err := crane.Pull(reg+"/library/busybox:latest", keychain); status(err) != http.StatusUnauthorized {
			t.Fatalf("pull with bob's token under alice's name: %v, want 401", err)
		}
	})
	t.Run("no token is 401", func(t *testing.T) {
		resp, err := http.Get("http://" + reg + "/v2/rega/base/manifests/main")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("anonymous pull: %s, want 401", resp.Status)
		}
	})
}
