package main

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// benchOwner is the Git owner of the fixture repositories; clone URLs are
// {git URL}/bench/{fixture}.git as for github.com.
const benchOwner = "bench"

// fixture is a repository the bench builds. A "changed" run rewrites changePath, which the
// Dockerfile copies, so BuildKit cannot reuse the COPY layer or anything after it.
type fixture struct {
	name        string
	description string
	files       map[string][]byte
	changePath  string
	totalBytes  int64
}

// smallFixture is a Dockerfile FROM busybox with a few COPY and RUN steps over a few small
// files: what most services' images look like minus their dependencies.
func smallFixture() fixture {
	files := map[string][]byte{
		"Dockerfile": []byte(`FROM busybox
COPY app/ /app
COPY config.txt /etc/app.conf
RUN sha256sum /app/* > /app.sha256
RUN echo "built by the slipway bench" > /built-by
`),
		"app/main.sh":     []byte("#!/bin/sh\necho hello from the bench\n"),
		"app/data.txt":    []byte(strings.Repeat("some data of the small fixture\n", 64)),
		"app/version.txt": []byte("change 0\n"),
		"config.txt":      []byte("listen=:8080\n"),
		"README.md":       []byte("small fixture of the slipway bench\n"),
	}
	return fixture{
		name:        "small",
		description: "Dockerfile `FROM busybox`, COPY app/ and a config file, RUN sha256sum over app/, RUN echo; 6 files",
		files:       files,
		changePath:  "app/version.txt",
		totalBytes:  sumSizes(files),
	}
}

// largeFixture is a build context of n files of deterministic pseudo-random bytes, mib MiB in
// all, in ten folders. Random bytes neither compress nor dedupe, so every changed run moves
// the whole context through git, BuildKit's file sync, the layer and the registry.
func largeFixture(n, mib int) fixture {
	rng := rand.New(rand.NewChaCha8([32]byte{'s', 'l', 'i', 'p', 'w', 'a', 'y'}))
	mean := int64(mib) << 20 / int64(n)
	files := map[string][]byte{
		"Dockerfile": []byte(`FROM busybox
COPY data/ /data
RUN find /data -type f | sort | xargs sha256sum > /data.sha256
RUN echo "files: $(find /data -type f | wc -l)" > /summary
`),
		"data/stamp.txt": []byte("change 0\n"),
		"README.md":      []byte("large-context fixture of the slipway bench, generated at run time\n"),
	}
	for i := range n {
		// Sizes spread from a quarter to seven quarters of the mean, so the total stays near mib.
		size := mean/4 + rng.Int64N(mean*3/2+1)
		b := make([]byte, size)
		for j := 0; j < len(b); j += 8 {
			v := rng.Uint64()
			for k := 0; k < 8 && j+k < len(b); k++ {
				b[j+k] = byte(v >> (8 * k))
			}
		}
		files[fmt.Sprintf("data/d%02d/f%04d.bin", i%10, i)] = b
	}
	total := sumSizes(files)
	return fixture{
		name: "large",
		description: fmt.Sprintf("Dockerfile `FROM busybox`, COPY data/ (%d files of pseudo-random bytes, %.1f MiB), "+
			"RUN sha256sum over all of them, RUN echo", n+1, float64(total)/(1<<20)),
		files:      files,
		changePath: "data/stamp.txt",
		totalBytes: total,
	}
}

func sumSizes(files map[string][]byte) int64 {
	var n int64
	for _, b := range files {
		n += int64(len(b))
	}
	return n
}

// repo is a fixture's working repository; commits are pushed to the bare repository the Git
// server serves.
type repo struct {
	fixture  fixture
	dir      string
	cloneURL string
	head     string
	changes  int
}

// createRepo creates bench/NAME on the Git server with the fixture as its first commit on main.
func (e *env) createRepo(ctx context.Context, fx fixture) (*repo, error) {
	bare := filepath.Join(e.gitRoot, benchOwner, fx.name+".git")
	r := &repo{
		fixture:  fx,
		dir:      filepath.Join(e.home, "work", fx.name),
		cloneURL: e.gitURL + "/" + benchOwner + "/" + fx.name + ".git",
	}
	for _, d := range []string{bare, r.dir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("creating %s: %w", d, err)
		}
	}
	if _, err := git(ctx, bare, "init", "-q", "--bare", "--initial-branch=main"); err != nil {
		return nil, err
	}
	if _, err := git(ctx, r.dir, "init", "-q", "--initial-branch=main"); err != nil {
		return nil, err
	}
	if _, err := git(ctx, r.dir, "remote", "add", "origin", bare); err != nil {
		return nil, err
	}
	for p, b := range fx.files {
		full := filepath.Join(r.dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return nil, fmt.Errorf("creating fixture folder: %w", err)
		}
		if err := os.WriteFile(full, b, 0o644); err != nil {
			return nil, fmt.Errorf("writing fixture file: %w", err)
		}
	}
	if err := r.commit(ctx, "fixture "+fx.name); err != nil {
		return nil, err
	}
	e.logger.Info("fixture pushed", "repo", r.cloneURL, "files", len(fx.files),
		"mib", fmt.Sprintf("%.1f", float64(fx.totalBytes)/(1<<20)), "commit", r.head)
	return r, nil
}

// change rewrites the fixture's change file with new content, commits and pushes; the new
// head is a commit no build has seen.
func (r *repo) change(ctx context.Context) (string, error) {
	r.changes++
	full := filepath.Join(r.dir, r.fixture.changePath)
	if err := os.WriteFile(full, fmt.Appendf(nil, "change %d\n", r.changes), 0o644); err != nil {
		return "", fmt.Errorf("writing change: %w", err)
	}
	if err := r.commit(ctx, fmt.Sprintf("change %d", r.changes)); err != nil {
		return "", err
	}
	return r.head, nil
}

func (r *repo) commit(ctx context.Context, msg string) error {
	if _, err := git(ctx, r.dir, "add", "-A"); err != nil {
		return err
	}
	if _, err := git(ctx, r.dir, "-c", "user.name=Slipway Bench", "-c", "user.email=bench@slipway.invalid",
		"commit", "-q", "-m", msg); err != nil {
		return err
	}
	if _, err := git(ctx, r.dir, "push", "-q", "origin", "HEAD:refs/heads/main"); err != nil {
		return err
	}
	head, err := git(ctx, r.dir, "rev-parse", "HEAD")
	if err != nil {
		return err
	}
	r.head = head
	return nil
}

// gitEnv keeps the machine's git configuration out of the bench, on both sides.
func gitEnv() []string {
	return append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null", "GIT_TERMINAL_PROMPT=0")
}

// git runs git in dir and returns its trimmed stdout.
func git(ctx context.Context, dir string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	cmd.Env = gitEnv()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("git %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(stdout.String()), nil
}
