package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"regexp"
	"strconv"
	"testing"

	"github.com/slipway-dev/slipway/internal/testing/gitserver"
)

// TestGitCacheSendsOnlyTheChange builds a repository twice, the second time with one file
// changed, on a worker without the git cache and on one with it. BuildKit reports the bytes
// it received for the context ("transferring context: N"): without the cache the second build
// sends the whole tree again (every file is new to BuildKit); with it, the checkout keeps the
// unchanged files as they were and the solve names its slot, so only the change travels. Both
// second images hold the new file.
func TestGitCacheSendsOnlyTheChange(t *testing.T) {
	files := map[string]string{"Dockerfile": "FROM busybox\nCOPY . /src\n"}
	for i := range 200 {
		b := make([]byte, 4096)
		_, _ = rand.Read(b)
		files[fmt.Sprintf("f/%03d.txt", i)] = hex.EncodeToString(b) // 8 KiB each, 1.6 MB in all
	}
	tests := []struct {
		name      string
		env       []string
		wantSmall bool
	}{
		{"without the cache", []string{"SLIPWAY_GIT_CACHE_BYTES=off"}, false},
		{"with the cache", nil, true},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := startWorker(t, tt.env...)
			defer w.stop()
			owner := fmt.Sprintf("e2e-gitcache-%d", i)
			repo := (&gitserver.Server{Root: env.gitRoot, URL: env.gitURL}).NewRepo(t, owner, "hello")
			repo.Commit("main", files)
			in := baseInput(owner)
			first := contextBytes(t, buildTagged(t, in, "first"))
			repo.Commit("main", map[string]string{"f/007.txt": "changed\n"})
			secondLog := buildTagged(t, in, "second")
			second := contextBytes(t, secondLog)
			t.Logf("%s: context sent %d bytes, then %d bytes after a one-file change", tt.name, first, second)
			if first < 1_600_000 {
				t.Fatalf("first build sent %d bytes of context, want the whole tree", first)
			}
			if small := second < first/20; small != tt.wantSmall {
				t.Fatalf("second build sent %d bytes of context after %d (want small: %v):\n%s", second, first, tt.wantSmall, secondLog)
			}
			img := pull(t, in.Image+":second")
			if got := img.files["src/f/007.txt"]; got != "changed\n" {
				t.Fatalf("second image holds %q for the changed file", got)
			}
			if got := img.files["src/f/008.txt"]; got != files["f/008.txt"] {
				t.Fatalf("second image holds %d bytes for an unchanged file", len(got))
			}
		})
	}
}

// transferred is BuildKit's plain progress line for a local mount's bytes.
var transferred = regexp.MustCompile(`transferring context: ([0-9.]+)([kMG]?B)`)

// contextBytes is the last size BuildKit reported receiving for the build's context.
func contextBytes(t *testing.T, log string) int64 {
	t.Helper()
	m := transferred.FindAllStringSubmatch(log, -1)
	if len(m) == 0 {
		t.Fatalf("no context transfer in the build log:\n%s", log)
	}
	last := m[len(m)-1]
	n, err := strconv.ParseFloat(last[1], 64)
	if err != nil {
		t.Fatal(err)
	}
	mult := map[string]float64{"B": 1, "kB": 1e3, "MB": 1e6, "GB": 1e9}[last[2]]
	return int64(n * mult)
}
