package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"

	"github.com/slipway-dev/slipway/build"
	"github.com/slipway-dev/slipway/internal/testing/gitserver"
	"github.com/slipway-dev/slipway/logstore"
)

// fixture is the repository every build test clones: a Dockerfile at the root, one in
// build/, one using a build arg, a failing one, a slow one and a symlink that leads out.
func fixture(t *testing.T, owner string) (repo *gitserver.Repo, head string) {
	srv := &gitserver.Server{Root: env.gitRoot, URL: env.gitURL}
	repo = srv.NewRepo(t, owner, "hello")
	files := map[string]string{
		"hello.txt":         "hello from the root context\n",
		"Dockerfile":        "FROM busybox\nCOPY hello.txt /hello.txt\nRUN echo root > /built-by\n",
		"build/Dockerfile":  "FROM busybox\nCOPY hello.txt /nested.txt\nRUN echo nested > /built-by\n",
		"args/Dockerfile":   "FROM busybox\nARG GREETING=unset\nRUN echo \"$GREETING\" > /greeting\n",
		"fail/Dockerfile":   "FROM busybox\nRUN echo about to fail && exit 3\n",
		"syntax/Dockerfile": "FROM busybox\nFORM nothing\n",
		"slow/Dockerfile":   "FROM busybox\nRUN sleep 120\n",
		"escape/Dockerfile": "symlink:/etc/hostname",
		"docs/dockerfile":   "FROM busybox\n",
		"ls/Dockerfile":     "FROM busybox\nCOPY . /src\nRUN ls -A /src > /listing\n",
	}
	head = repo.Commit("main", files)
	repo.Tag("main", "v1.0.0", true)
	return repo, head
}

func baseInput(owner string) build.Input {
	return build.Input{
		Namespace: "demo", Repository: owner, RuleID: "r-e2e",
		Source:  build.Source{Provider: "github", Owner: owner, Repository: "hello"},
		Ref:     build.Ref{Type: build.RefBranch, Name: "main"},
		Image:   env.stack.Registry + "/demo/" + owner,
		Trigger: build.TriggerManual,
	}
}

func TestBuilds(t *testing.T) {
	w := startWorker(t)
	t.Cleanup(w.stop) // after the parallel subtests, unlike defer
	owner := "e2e-builds"
	repo, head := fixture(t, owner)
	feature := repo.Commit("feature/login", map[string]string{"feature.txt": "f\n"})

	tests := []struct {
		name     string
		mutate   func(*build.Input)
		wantTags []string
		wantFile map[string]string
		// wantCommit is the commit the build must report; empty means main's head.
		wantCommit string
		wantErr    string // error type of a failed build
		wantLog    string // text the build log must hold
	}{
		{
			name:     "dockerfile at the root",
			wantTags: []string{"main"},
			wantFile: map[string]string{"hello.txt": "hello from the root context\n", "built-by": "root\n"},
			wantLog:  "RUN echo root > /built-by",
		},
		{
			name: "the context holds no .git",
			mutate: func(in *build.Input) {
				in.DockerfilePath = "ls/Dockerfile"
				in.TagTemplate = "ls"
			},
			wantTags: []string{"ls"},
			wantFile: map[string]string{"listing": "Dockerfile\nargs\nbuild\ndocs\nescape\nfail\nhello.txt\nls\nslow\nsyntax\n"},
		},
		{
			name: "dockerfile in build/ with the root as context",
			mutate: func(in *build.Input) {
				in.DockerfilePath = "build/Dockerfile"
				in.TagTemplate = "nested-{short_commit}"
			},
			wantTags: []string{"nested-" + head[:7]},
			wantFile: map[string]string{"nested.txt": "hello from the root context\n", "built-by": "nested\n"},
		},
		{
			name: "build args reach RUN",
			mutate: func(in *build.Input) {
				in.DockerfilePath = "args/Dockerfile"
				in.BuildArgs = map[string]string{"GREETING": "hi from a build arg"}
				in.TagTemplate = "args"
			},
			wantTags: []string{"args"},
			wantFile: map[string]string{"greeting": "hi from a build arg\n"},
		},
		{
			name: "tag build",
			mutate: func(in *build.Input) {
				in.Ref = build.Ref{Type: build.RefTag, Name: "v1.0.0"}
				in.TagTemplate = "{tag},latest"
			},
			wantTags: []string{"v1.0.0", "latest"},
			wantFile: map[string]string{"built-by": "root\n"},
		},
		{
			name: "branch with a slash, sanitized",
			mutate: func(in *build.Input) {
				in.Ref.Name = "feature/login"
				in.SanitizeRef = true
				in.TagTemplate = "{branch}-{short_commit}"
			},
			wantTags:   []string{"feature-login-" + feature[:7]},
			wantCommit: feature,
		},
		{
			name:    "branch with a slash, not sanitized",
			mutate:  func(in *build.Input) { in.Ref.Name = "feature/login" },
			wantErr: build.ErrTypeInvalidTag,
		},
		{
			name:    "missing dockerfile, with a case hint",
			mutate:  func(in *build.Input) { in.DockerfilePath = "docs/Dockerfile" },
			wantErr: build.ErrTypeDockerfileNotFound,
		},
		{
			name:    "path escape with ..",
			mutate:  func(in *build.Input) { in.DockerfilePath = "../../etc/passwd" },
			wantErr: build.ErrTypeInvalidPath,
		},
		{
			name:    "symlink escape",
			mutate:  func(in *build.Input) { in.DockerfilePath = "escape/Dockerfile" },
			wantErr: build.ErrTypeInvalidPath,
		},
		{
			name:    "missing branch",
			mutate:  func(in *build.Input) { in.Ref.Name = "does-not-exist" },
			wantErr: build.ErrTypeRefNotFound,
		},
		{
			name:    "failing RUN",
			mutate:  func(in *build.Input) { in.DockerfilePath = "fail/Dockerfile" },
			wantErr: build.ErrTypeBuildFailed,
			wantLog: "about to fail",
		},
		{
			name:    "dockerfile syntax error",
			mutate:  func(in *build.Input) { in.DockerfilePath = "syntax/Dockerfile" },
			wantErr: build.ErrTypeBuildFailed,
			wantLog: "unknown instruction",
		},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			in := baseInput(owner)
			in.Image = fmt.Sprintf("%s/demo/case%d", env.stack.Registry, i)
			if tt.mutate != nil {
				tt.mutate(&in)
			}
			id := fmt.Sprintf("e2e-build-%d-%d", i, time.Now().UnixNano())
			run := startBuild(t, id, in)
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			var res build.Result
			err := run.Get(ctx, &res)
			logText := readLog(t, id, run.GetRunID())
			if tt.wantLog != "" && !strings.Contains(logText, tt.wantLog) {
				t.Errorf("log lacks %q:\n%s", tt.wantLog, logText)
			}
			if tt.wantErr != "" {
				var appErr *temporal.ApplicationError
				if !errors.As(err, &appErr) || appErr.Type() != tt.wantErr {
					t.Fatalf("error = %v, want %s", err, tt.wantErr)
				}
				t.Logf("refused as expected: %s", appErr.Message())
				return
			}
			if err != nil {
				t.Fatalf("build failed: %v\nlog:\n%s", err, logText)
			}
			wantCommit := tt.wantCommit
			if wantCommit == "" && in.Ref.Type == build.RefBranch {
				wantCommit = head
			}
			if wantCommit != "" && res.Commit != wantCommit {
				t.Fatalf("built commit %s, want %s", res.Commit, wantCommit)
			}
			if !slices.Equal(res.Tags, tt.wantTags) {
				t.Fatalf("tags = %v, want %v", res.Tags, tt.wantTags)
			}
			got := listTags(t, in.Image)
			for _, tag := range tt.wantTags {
				if !slices.Contains(got, tag) {
					t.Fatalf("registry has tags %v, want %s", got, tag)
				}
				p := pull(t, in.Image+":"+tag)
				d, err := p.img.Digest()
				if err != nil {
					t.Fatal(err)
				}
				if d.String() != res.Digest {
					t.Fatalf("%s has digest %s, build reported %s", tag, d, res.Digest)
				}
				for f, want := range tt.wantFile {
					if p.files[f] != want {
						t.Fatalf("%s:%s /%s = %q, want %q", in.Image, tag, f, p.files[f], want)
					}
				}
			}
		})
	}
}

func TestCancelledBuildLeavesNoWorkspace(t *testing.T) {
	w := startWorker(t)
	t.Cleanup(w.stop) // after the parallel subtests, unlike defer
	owner := "e2e-cancel"
	repo, _ := fixture(t, owner)
	// A sleep no other build runs: pgrep below looks at every process on the machine, and
	// other packages' tests (opscheck) run slow builds at the same time.
	sleep := fmt.Sprintf("sleep 120.%d", time.Now().UnixNano()%1_000_000)
	repo.Commit("main", map[string]string{"cancel/Dockerfile": "FROM busybox\nRUN " + sleep + "\n"})
	in := baseInput(owner)
	in.DockerfilePath = "cancel/Dockerfile"
	id := fmt.Sprintf("e2e-cancel-%d", time.Now().UnixNano())
	run := startBuild(t, id, in)

	// Wait for the slow RUN to be under way, then cancel.
	deadline := time.Now().Add(2 * time.Minute)
	for !strings.Contains(readLogQuiet(id, run.GetRunID()), sleep) {
		if time.Now().After(deadline) {
			t.Fatalf("build never reached its RUN step; log:\n%s", readLogQuiet(id, run.GetRunID()))
		}
		time.Sleep(200 * time.Millisecond)
	}
	if n := len(buildWorkspaces(t)); n == 0 {
		t.Fatal("no workspace while the build runs: the test would prove nothing")
	}
	start := time.Now()
	if err := env.temporal.CancelWorkflow(context.Background(), id, ""); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := run.Get(ctx, nil)
	var canceled *temporal.CanceledError
	if !errors.As(err, &canceled) {
		t.Fatalf("error = %v, want canceled", err)
	}
	t.Logf("cancelled in %s", time.Since(start).Round(time.Millisecond))
	desc, err := env.temporal.DescribeWorkflow(ctx, id, "")
	if err != nil {
		t.Fatal(err)
	}
	if s := desc.Status; s != enums.WORKFLOW_EXECUTION_STATUS_CANCELED {
		t.Fatalf("status = %s", s)
	}
	if left := buildWorkspaces(t); len(left) != 0 {
		t.Fatalf("workspaces left behind: %v", left)
	}
	// The solve itself stopped: BuildKit killed the RUN's process.
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		out, _ := exec.Command("pgrep", "-f", sleep).Output()
		if len(strings.TrimSpace(string(out))) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the RUN step still runs after the cancel: pids %s", out)
		}
	}
	if !strings.Contains(readLogQuiet(id, run.GetRunID()), "canceled") {
		t.Errorf("log does not say the build was cancelled:\n%s", readLogQuiet(id, run.GetRunID()))
	}
}

func readLogQuiet(id, runID string) string {
	b, _ := os.ReadFile(logstoreAt().Path(id, runID))
	return string(b)
}

func readLog(t *testing.T, id, runID string) string {
	t.Helper()
	return readLogQuiet(id, runID)
}

func logstoreAt() *logstore.Store {
	s, _ := logstore.New(filepath.Join(env.home, "logs"))
	return s
}

// buildWorkspaces lists the build workspaces on this host: SLIPWAY_HOME/workspaces/worker-WORKERID/ID.
func buildWorkspaces(t *testing.T) []string {
	t.Helper()
	found, err := filepath.Glob(filepath.Join(env.home, "workspaces", "worker-*", "*"))
	if err != nil {
		t.Fatal(err)
	}
	return found
}
