package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/slipway-dev/slipway/internal/testing/gitserver"
)

// history sizes the repository of the "history" scenario: a long history of mib MiB of
// incompressible blobs over commits commits, of which the head tree holds a small part.
type history struct {
	commits, mib int
}

const (
	// historyFiles is how many files the head tree holds; a third are under app/, the only
	// folder the Dockerfile copies.
	historyFiles = 240
	// historyTouched is how many files each commit after the first rewrites.
	historyTouched = 3
	// historyFormat names the generator: change it when the generated history changes, so
	// that a cached repository of the older shape is not reused.
	historyFormat = "v1"
	// historyDockerfile copies app/ only: the rest of the tree (assets/, vendor/) and all of
	// the history are what a clone may fetch for nothing.
	historyDockerfile = "FROM busybox\nCOPY app/ /app\nRUN find /app -type f | sort | xargs sha256sum > /app.sha256\n"
)

// key names the generated repository after everything that shapes it.
func (h history) key() string {
	return fmt.Sprintf("history-%s-c%d-m%d.git", historyFormat, h.commits, h.mib)
}

// fixture is the scenario's fixture: its name, and the file a changed run rewrites (copied).
func (h history) fixture() fixture {
	return fixture{name: "history", changePath: "app/version.txt"}
}

// historyPath is the i-th file of the tree: the files spread over app/, assets/ and vendor/.
func historyPath(i int) string {
	dir := []string{"app", "assets", "vendor"}[i%3]
	return fmt.Sprintf("%s/m%02d/f%04d.bin", dir, i%16, i)
}

// writeStream writes the repository as a git fast-import stream: a first commit with every
// file, then commits each rewriting historyTouched files picked at random with new random
// bytes (which neither compress nor delta), all with fixed dates, so the same sizes give the
// same commit ids. Blob sizes average mib MiB over every blob written.
func (h history) writeStream(w io.Writer) error {
	bw := bufio.NewWriterSize(w, 1<<20)
	rng := rand.New(rand.NewChaCha8([32]byte{'h', 'i', 's', 't', 'o', 'r', 'y'}))
	mean := int64(h.mib) << 20 / int64(historyFiles+(h.commits-1)*historyTouched)
	buf := make([]byte, mean/4+mean*3/2+1)
	blob := func(path string) {
		b := buf[:mean/4+rng.Int64N(mean*3/2+1)]
		for j := 0; j+8 <= len(b); j += 8 {
			v := rng.Uint64()
			for k := range 8 {
				b[j+k] = byte(v >> (8 * k))
			}
		}
		fmt.Fprintf(bw, "M 100644 inline %s\ndata %d\n", path, len(b))
		bw.Write(b)
		bw.WriteString("\n")
	}
	when := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	for c := range h.commits {
		msg := fmt.Sprintf("change %d of the history fixture", c)
		who := fmt.Sprintf("Slipway Bench <bench@slipway.invalid> %d +0000", when+int64(c)*600)
		fmt.Fprintf(bw, "commit refs/heads/main\nauthor %s\ncommitter %s\ndata %d\n%s\n", who, who, len(msg), msg)
		if c == 0 {
			fmt.Fprintf(bw, "M 100644 inline Dockerfile\ndata %d\n%s\n", len(historyDockerfile), historyDockerfile)
			fmt.Fprintf(bw, "M 100644 inline app/version.txt\ndata 9\nchange 0\n\n")
			for i := range historyFiles {
				blob(historyPath(i))
			}
			continue
		}
		for range historyTouched {
			blob(historyPath(rng.IntN(historyFiles)))
		}
	}
	return bw.Flush()
}

// generate writes the history into a new bare repository at dir with git fast-import.
func (h history) generate(ctx context.Context, dir string) error {
	if out, err := exec.CommandContext(ctx, "git", "init", "-q", "--bare", "--initial-branch=main", dir).CombinedOutput(); err != nil {
		return fmt.Errorf("git init %s: %w: %s", dir, err, out)
	}
	cmd := exec.CommandContext(ctx, "git", "-C", dir, "fast-import", "--quiet")
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null")
	in, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting git fast-import: %w", err)
	}
	werr := h.writeStream(in)
	in.Close()
	if err := cmd.Wait(); err != nil || werr != nil {
		return fmt.Errorf("git fast-import: %w %v: %s", err, werr, stderr.String())
	}
	return nil
}

// cached returns the generated bare repository under work, generating it the first time:
// into a temporary folder renamed when complete, so an interrupted run leaves no half
// repository under the key.
func (h history) cached(ctx context.Context, e *env, work string) (string, error) {
	dir := filepath.Join(work, h.key())
	if _, err := os.Stat(filepath.Join(dir, "refs", "heads", "main")); err == nil {
		return dir, nil
	}
	if err := os.MkdirAll(work, 0o755); err != nil {
		return "", fmt.Errorf("creating %s: %w", work, err)
	}
	tmp, err := os.MkdirTemp(work, "generating-")
	if err != nil {
		return "", fmt.Errorf("creating a folder under %s: %w", work, err)
	}
	defer os.RemoveAll(tmp)
	start := time.Now()
	if err := h.generate(ctx, tmp); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, dir); err != nil {
		return "", fmt.Errorf("keeping the generated history: %w", err)
	}
	e.logger.Info("history generated", "path", dir, "commits", h.commits, "MiB", h.mib, "took", time.Since(start).Round(time.Millisecond))
	return dir, nil
}

// historyRepo serves the cached history as bench/history on the Git server: a bare clone
// sharing the cache's objects (so nothing is copied and new commits stay out of the cache),
// and a working clone whose commits the changed runs push.
func (e *env) historyRepo(ctx context.Context, h history, work string) (*repo, error) {
	src, err := h.cached(ctx, e, work)
	if err != nil {
		return nil, err
	}
	fx := h.fixture()
	gr := &gitserver.Repository{Dir: filepath.Join(e.home, "work", fx.name), Bare: filepath.Join(e.git.Root, benchOwner, fx.name+".git"),
		CloneURL: e.git.URL + "/" + benchOwner + "/" + fx.name + ".git"}
	for _, args := range [][]string{{"clone", "-q", "--bare", "--shared", src, gr.Bare}, {"clone", "-q", "--shared", gr.Bare, gr.Dir}} {
		if out, err := exec.CommandContext(ctx, "git", args...).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("git %s: %w: %s", strings.Join(args, " "), err, out)
		}
	}
	head, err := exec.CommandContext(ctx, "git", "-C", gr.Dir, "rev-parse", "HEAD").Output()
	if err != nil {
		return nil, fmt.Errorf("reading the history's head: %w", err)
	}
	return &repo{Repository: gr, fixture: fx, head: strings.TrimSpace(string(head))}, nil
}
