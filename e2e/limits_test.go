package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/slipway-dev/slipway/build"
	"github.com/slipway-dev/slipway/internal/testing/gitserver"
)

// teamInput is a build of owner's "hello" repository into namespace ns, image repository repo.
func teamInput(ns, repo, owner string) build.Input {
	in := baseInput(owner)
	in.Namespace, in.Repository = ns, repo
	in.Image = env.stack.Registry + "/" + ns + "/" + repo
	in.Cache = build.CacheOff
	return in
}

// buildErr runs a build to its end and returns its error (nil when it succeeded).
func buildErr(t *testing.T, in build.Input, timeout time.Duration) (error, string) {
	t.Helper()
	id := fmt.Sprintf("%s-%s-%d", in.Namespace, in.Repository, time.Now().UnixNano())
	run := startBuild(t, id, in)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	err := run.Get(ctx, nil)
	if ctx.Err() != nil {
		t.Fatalf("build %s still running after %s", id, timeout)
	}
	return err, readLogQuiet(id, run.GetRunID())
}

// appError is the application error at the bottom of a build's failure.
func appError(err error) *temporal.ApplicationError {
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		return appErr
	}
	return nil
}

// TestCacheMountsStayInTheirRepository plants a file in a cache mount from one team's build;
// another team's build mounting the same cache id finds it empty, while the planting team's
// next build finds it (so the test would see a shared cache).
func TestCacheMountsStayInTheirRepository(t *testing.T) {
	w := startWorker(t)
	t.Cleanup(w.stop)
	nonce := fmt.Sprint(time.Now().UnixNano())
	srv := &gitserver.Server{Root: env.gitRoot, URL: env.gitURL}
	plant := srv.NewRepo(t, "e2e-cm-plant", "hello")
	plant.Commit("main", map[string]string{
		"Dockerfile":       "FROM busybox\nRUN --mount=type=cache,id=shared,target=/c echo secret-" + nonce + " > /c/planted\n",
		"check/Dockerfile": "FROM busybox\nRUN --mount=type=cache,id=shared,target=/c (echo \"files:$(ls -A /c | tr '\\n' ,)\"; cat /c/planted 2>/dev/null; echo " + nonce + ") > /seen; true\n",
	})
	victim := srv.NewRepo(t, "e2e-cm-victim", "hello")
	victim.Commit("main", map[string]string{
		"Dockerfile": "FROM busybox\nRUN --mount=type=cache,id=shared,target=/c (echo \"files:$(ls -A /c | tr '\\n' ,)\"; cat /c/planted 2>/dev/null; echo " + nonce + ") > /seen; true\n",
	})

	attacker := teamInput("team-red", "app", "e2e-cm-plant")
	buildTagged(t, attacker, "plant")
	other := teamInput("team-blue", "app", "e2e-cm-victim")
	buildTagged(t, other, "look")
	seen := pull(t, other.Image+":look").files["seen"]
	if !strings.Contains(seen, "files:\n") || strings.Contains(seen, "secret-"+nonce) {
		t.Fatalf("team-blue's build saw team-red's cache mount:\n%s", seen)
	}
	if !strings.Contains(seen, nonce) {
		t.Fatalf("team-blue's RUN step did not run: %q", seen)
	}
	attacker.DockerfilePath = "check/Dockerfile"
	buildTagged(t, attacker, "check")
	if own := pull(t, attacker.Image+":check").files["seen"]; !strings.Contains(own, "files:planted,") || !strings.Contains(own, "secret-"+nonce) {
		t.Fatalf("the same repository's next build did not find its own cache mount:\n%s", own)
	}
}

// TestRefusedFrontendsArgsAndCaches: a `# syntax=` frontend off the allow-list fails the build
// at once, naming it; BUILDKIT_* args and a cache in another namespace, started with the CLI
// past the gateway, fail before any step.
func TestRefusedFrontendsArgsAndCaches(t *testing.T) {
	w := startWorker(t)
	t.Cleanup(w.stop)
	srv := &gitserver.Server{Root: env.gitRoot, URL: env.gitURL}
	repo := srv.NewRepo(t, "e2e-refused", "hello")
	repo.Commit("main", map[string]string{
		"Dockerfile":       "# syntax=evil.example/frontend\nFROM busybox\nRUN true\n",
		"plain/Dockerfile": "FROM busybox\nRUN true\n",
	})
	for _, tt := range []struct {
		name    string
		mutate  func(*build.Input)
		errType string
		want    string
	}{
		{"syntax directive", func(*build.Input) {}, build.ErrTypeFrontendRefused, `frontend "evil.example/frontend"`},
		{"BUILDKIT_SYNTAX arg", func(in *build.Input) {
			in.DockerfilePath = "plain/Dockerfile"
			in.BuildArgs = map[string]string{"BUILDKIT_SYNTAX": "evil.example/frontend"}
		}, build.ErrTypeInvalidInput, `"BUILDKIT_SYNTAX" is reserved`},
		{"BUILDKIT_CACHE_MOUNT_NS arg", func(in *build.Input) {
			in.DockerfilePath = "plain/Dockerfile"
			in.BuildArgs = map[string]string{"BUILDKIT_CACHE_MOUNT_NS": "slipway/team-blue/app"}
		}, build.ErrTypeInvalidInput, `"BUILDKIT_CACHE_MOUNT_NS" is reserved`},
		{"cache in another namespace", func(in *build.Input) {
			in.DockerfilePath = "plain/Dockerfile"
			in.Cache = env.stack.Registry + "/team-blue/app:latest"
		}, build.ErrTypeInvalidInput, "outside the image repository"},
		{"timeout over the longest", func(in *build.Input) {
			in.DockerfilePath = "plain/Dockerfile"
			in.Timeout = "4h"
		}, build.ErrTypeInvalidInput, "longer than this service allows (3h0m0s)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			in := teamInput("team-red", "refused", "e2e-refused")
			tt.mutate(&in)
			start := time.Now()
			err, log := buildErr(t, in, 2*time.Minute)
			took := time.Since(start)
			appErr := appError(err)
			if appErr == nil || appErr.Type() != tt.errType || !strings.Contains(appErr.Message(), tt.want) {
				t.Fatalf("error = %v, want %s naming %q; log:\n%s", err, tt.errType, tt.want, log)
			}
			if tt.errType == build.ErrTypeFrontendRefused && !strings.Contains(log, tt.want) {
				t.Errorf("the build log does not say the frontend was refused:\n%s", log)
			}
			if strings.Contains(log, "evil.example") && strings.Contains(log, "resolve image config") {
				t.Fatalf("buildkitd went for the frontend:\n%s", log)
			}
			t.Logf("refused in %s", took.Round(time.Millisecond))
			if took > 30*time.Second {
				t.Errorf("refused after %s, want at once", took)
			}
		})
	}
}

// TestRunStepLimits runs a fork loop and a memory hog under a worker with small per-build
// limits: both RUN steps fail, killed by their repository's cgroup, and a plain build on the same
// worker still succeeds. The fork loop passes without the pids limit, so the limit is what
// stops it.
func TestRunStepLimits(t *testing.T) {
	srv := &gitserver.Server{Root: env.gitRoot, URL: env.gitURL}
	repo := srv.NewRepo(t, "e2e-limits", "hello")
	nonce := fmt.Sprint(time.Now().UnixNano())
	repo.Commit("main", map[string]string{
		// 200 sleepers: far past a pids.max of 64, cheap without it; the container's end
		// kills them.
		"forks/Dockerfile": "FROM busybox\nRUN set -e; echo " + nonce + "; i=0; while [ $i -lt 200 ]; do sleep 60 & i=$((i+1)); done; echo forked $i\n",
		// 256 MiB held in a shell variable, past a memory limit of 64 MiB.
		"memory/Dockerfile": "FROM busybox\nRUN echo " + nonce + "; x=$(head -c 268435456 /dev/zero | tr '\\0' a); echo held ${#x}\n",
		"plain/Dockerfile":  "FROM busybox\nRUN echo " + nonce + " > /ok\n",
	})
	runBuild := func(t *testing.T, dockerfile string) (error, string) {
		in := teamInput("team-red", "limits", "e2e-limits")
		in.DockerfilePath = dockerfile
		in.TagTemplate = strings.TrimSuffix(dockerfile, "/Dockerfile")
		return buildErr(t, in, 3*time.Minute)
	}

	t.Run("bounded", func(t *testing.T) {
		w := startWorker(t, "SLIPWAY_BUILD_PIDS=64", "SLIPWAY_BUILD_MEMORY=64m", "SLIPWAY_BUILD_CPUS=1")
		defer w.stop()
		for _, tt := range []struct{ dockerfile, want string }{
			{"forks/Dockerfile", "can't fork"},
			{"memory/Dockerfile", "exit code: 137"},
		} {
			start := time.Now()
			err, log := runBuild(t, tt.dockerfile)
			appErr := appError(err)
			if appErr == nil || appErr.Type() != build.ErrTypeBuildFailed {
				t.Fatalf("%s: error = %v, want %s; log:\n%s", tt.dockerfile, err, build.ErrTypeBuildFailed, log)
			}
			if !strings.Contains(log, tt.want) && !strings.Contains(appErr.Message(), tt.want) {
				t.Errorf("%s failed without %q: %v; log:\n%s", tt.dockerfile, tt.want, appErr.Message(), log)
			}
			t.Logf("%s stopped in %s", tt.dockerfile, time.Since(start).Round(time.Millisecond))
		}
		err, log := runBuild(t, "plain/Dockerfile")
		if err != nil {
			t.Fatalf("a plain build after them failed: %v; log:\n%s", err, log)
		}
		if got := cgroupFile(t, log, "pids", "pids.max"); got != "64" {
			t.Errorf("the repository's cgroup has pids.max %q, want 64", got)
		}
	})
	t.Run("unbounded pids", func(t *testing.T) {
		w := startWorker(t, "SLIPWAY_BUILD_PIDS=0")
		defer w.stop()
		err, log := runBuild(t, "forks/Dockerfile")
		if err != nil || !strings.Contains(log, "forked 200") {
			t.Fatalf("the fork loop failed without a pids limit: %v; log:\n%s", err, log)
		}
		if got := cgroupFile(t, log, "pids", "pids.max"); got != "max" {
			t.Errorf("the repository's cgroup has pids.max %q, want max", got)
		}
	})
}

// TestNamespaceFloodLeavesSlots floods one namespace with more builds than its limit through
// the gateway: the extra builds are queued, with the reason in their build records, while
// another namespace's build starts and finishes at once.
func TestNamespaceFloodLeavesSlots(t *testing.T) {
	const limit, flood = 2, 4
	w := startWorker(t, fmt.Sprintf("SLIPWAY_NAMESPACE_MAX_RUNNING=%d", limit),
		// One session more than the namespace limit: without the limit the flood would take
		// every session and the other namespace's build would wait.
		fmt.Sprintf("SLIPWAY_MAX_CONCURRENT_BUILDS=%d", limit+1))
	t.Cleanup(w.stop)
	gw := startGateway(t)
	suffix := fmt.Sprint(time.Now().UnixNano() % 1e8)
	floodNS, otherNS := "flood-"+suffix, "calm-"+suffix
	srv := &gitserver.Server{Root: env.gitRoot, URL: env.gitURL}
	slow := srv.NewRepo(t, "e2e-flood", "hello")
	slow.Commit("main", map[string]string{"Dockerfile": "FROM busybox\nRUN echo " + suffix + " && sleep 600\n"})
	quick := srv.NewRepo(t, "e2e-calm", "hello")
	quick.Commit("main", map[string]string{"Dockerfile": "FROM busybox\nRUN echo " + suffix + " > /calm\n"})

	team := func(user, ns string) string {
		var u struct{ Token string }
		if code := gw.call(t, http.MethodPost, "/api/v1/users", gw.admin, map[string]string{"name": user}, &u); code != http.StatusCreated {
			t.Fatalf("creating user %s: %d", user, code)
		}
		if code := gw.call(t, http.MethodPost, "/api/v1/namespaces", u.Token, map[string]string{"name": ns}, nil); code != http.StatusCreated {
			t.Fatalf("creating namespace %s: %d", ns, code)
		}
		if code := gw.call(t, http.MethodPost, "/api/v1/namespaces/"+ns+"/repositories", u.Token, map[string]string{"name": "app"}, nil); code != http.StatusCreated {
			t.Fatalf("creating repository %s/app: %d", ns, code)
		}
		return u.Token
	}
	floodTok, otherTok := team("flooder-"+suffix, floodNS), team("calm-"+suffix, otherNS)
	rule := func(tok, ns, owner string) string {
		var r struct{ ID string }
		if code := gw.call(t, http.MethodPost, "/api/v1/namespaces/"+ns+"/repositories/app/build-rules", tok, map[string]any{
			"source":   map[string]any{"provider": "github", "owner": owner, "repository": "hello"},
			"triggers": map[string]any{}, "tag_template": "{short_commit}-{time}", "cache": "off",
		}, &r); code != http.StatusCreated {
			t.Fatalf("creating rule in %s: %d", ns, code)
		}
		return r.ID
	}
	buildNow := func(tok, ns, ruleID string) string {
		var started struct{ ID string }
		if code := gw.call(t, http.MethodPost, "/api/v1/namespaces/"+ns+"/repositories/app/build-rules/"+ruleID+"/builds",
			tok, map[string]string{"branch": "main"}, &started); code != http.StatusAccepted {
			t.Fatalf("build now in %s: %d", ns, code)
		}
		return started.ID
	}
	floodRule, otherRule := rule(floodTok, floodNS, "e2e-flood"), rule(otherTok, otherNS, "e2e-calm")

	var ids []string
	for range flood {
		ids = append(ids, buildNow(floodTok, floodNS, floodRule))
	}
	t.Cleanup(func() {
		for _, id := range ids {
			_ = env.temporal.CancelWorkflow(context.Background(), id, "")
		}
	})
	// Wait until the flood holds its slots: two builds past the queue, two queued.
	type rec struct {
		Status, Reason string
	}
	records := func() (running, queued []string, reasons []string) {
		for _, id := range ids {
			var r rec
			if code := gw.call(t, http.MethodGet, "/api/v1/builds/"+id, floodTok, nil, &r); code != http.StatusOK {
				t.Fatalf("GET build %s: %d", id, code)
			}
			switch r.Status {
			case "queued":
				queued, reasons = append(queued, id), append(reasons, r.Reason)
			case "running":
				running = append(running, id)
			}
		}
		return running, queued, reasons
	}
	deadline := time.Now().Add(90 * time.Second)
	var queued, reasons []string
	for {
		var running []string
		running, queued, reasons = records()
		if len(queued) == flood-limit && len(running) == limit {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("flood never settled at %d running and %d queued: running %v, queued %v", limit, flood-limit, running, queued)
		}
		time.Sleep(300 * time.Millisecond)
	}
	for _, r := range reasons {
		if want := fmt.Sprintf("namespace %s runs %d of %d builds", floodNS, limit, limit); !strings.Contains(r, want) {
			t.Errorf("queued reason %q does not say %q", r, want)
		}
	}
	// The queued builds have run no step: no clone, nothing on any host.
	for _, id := range queued {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		v, err := env.temporal.QueryWorkflow(ctx, id, "", build.StatusQuery)
		cancel()
		var st build.Status
		if err != nil || v.Get(&st) != nil {
			t.Fatalf("querying %s: %v", id, err)
		}
		if st.Step != "queued" || len(st.Steps) != 0 || st.QueuedReason == "" {
			t.Errorf("queued build %s: status %+v", id, st)
		}
	}

	start := time.Now()
	otherID := buildNow(otherTok, otherNS, otherRule)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	err := env.temporal.GetWorkflow(ctx, otherID, "").Get(ctx, nil)
	cancel()
	if err != nil {
		t.Fatalf("the other namespace's build: %v", err)
	}
	t.Logf("the other namespace's build took %s while %s ran %d and queued %d", time.Since(start).Round(time.Millisecond), floodNS, limit, flood-limit)
	if _, q, _ := records(); len(q) != flood-limit {
		t.Errorf("the flood's queue changed while the other build ran: queued %v", q)
	}

	// A cancelled running build gives its slot to one of the queued ones (the first in the
	// slots workflow's queue, which is not always the first started).
	running, _, _ := records()
	if err := env.temporal.CancelWorkflow(context.Background(), running[0], ""); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(60 * time.Second)
	for {
		r, q, _ := records()
		if len(r) == limit && len(q) == flood-limit-1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the freed slot was not given on: running %v, queued %v", r, q)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// cgroupFile reads file of the cgroup a build's log names ("==> RUN steps limited to ...
// (cgroup PATH)"), in controller's hierarchy on a cgroup v1 host.
func cgroupFile(t *testing.T, log, controller, file string) string {
	t.Helper()
	_, rest, ok := strings.Cut(log, "(cgroup ")
	path, _, ok2 := strings.Cut(rest, ")")
	if !ok || !ok2 {
		t.Fatalf("the build log names no cgroup:\n%s", log)
	}
	dir := filepath.Join("/sys/fs/cgroup", path)
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err != nil {
		dir = filepath.Join("/sys/fs/cgroup", controller, path)
	}
	b, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		t.Fatalf("reading the build's cgroup: %v", err)
	}
	return strings.TrimSpace(string(b))
}
