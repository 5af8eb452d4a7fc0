package e2e

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/build"
)

// pushedLine is the Push step's last log line: what it cost the network.
var pushedLine = regexp.MustCompile(`==> pushed \S+ in \S+ \((\d+) registry requests, (\d+) bytes sent\)`)

// TestStreamedPush builds an image with a 2 MiB layer of random bytes. Without a registry cache
// and with the streamed push (the default), BuildKit pushes the layers in the build's solve and
// the Push step sends only manifests; with SLIPWAY_STREAMED_PUSH=off the Push step uploads the
// layer itself; with the registry cache, the streamed push sends it when the cache is exported
// after the build (on a git cache slot), and the export in the solve does without the git cache. Either way the registry
// takes the layer once and the tags name the image built.
func TestStreamedPush(t *testing.T) {
	owner := "e2e-streampush"
	repo, _ := fixture(t, owner)
	tests := []struct {
		name   string
		env    []string
		tag    string
		stream bool
		cache  bool
	}{
		{name: "streamed by the build", env: []string{"SLIPWAY_STREAMED_PUSH=on"}, tag: "streamed-{short_commit}", stream: true},
		// On a git cache slot the registry cache is exported after the build, which finds
		// the layers the streamed push sent.
		{name: "with the registry cache", env: []string{"SLIPWAY_STREAMED_PUSH=on", "SLIPWAY_DEFERRED_CACHE_EXPORT=on"}, tag: "cached-{short_commit}", stream: true, cache: true},
		// Without the git cache the registry cache export sends the layers into the
		// repository in the solve: no streamed push beside it.
		{name: "with the registry cache, without the git cache", env: []string{"SLIPWAY_GIT_CACHE_BYTES=off", "SLIPWAY_STREAMED_PUSH=on"}, tag: "cachedslow-{short_commit}", cache: true},
		{name: "uploaded by the Push step (the default)", tag: "uploaded-{short_commit}"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A layer of its own, which no earlier build pushed.
			blob := make([]byte, 2<<20)
			if _, err := rand.Read(blob); err != nil {
				t.Fatal(err)
			}
			head := repo.Commit("main", map[string]string{
				"big/Dockerfile": "FROM busybox\nCOPY big/blob.bin /blob.bin\nRUN echo streamed > /built-by\n",
				"big/blob.bin":   string(blob),
			})
			w := startWorker(t, tt.env...)
			defer w.stop()
			in := baseInput(owner)
			in.DockerfilePath = "big/Dockerfile"
			in.TagTemplate = tt.tag + ",latest"
			// The registry cache export sends the layers to the repository too: without it,
			// what the Push step sends is the push's alone.
			if !tt.cache {
				in.Cache = build.CacheOff
			}
			id := fmt.Sprintf("%s-%d", owner, time.Now().UnixNano())
			run := startBuild(t, id, in)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			var res build.Result
			if err := run.Get(ctx, &res); err != nil {
				t.Fatalf("build: %v\nlog:\n%s", err, readLogQuiet(id, run.GetRunID()))
			}
			logText := readLog(t, id, run.GetRunID())
			m := pushedLine.FindStringSubmatch(logText)
			if m == nil {
				t.Fatalf("no push count in the log:\n%s", logText)
			}
			requests, _ := strconv.Atoi(m[1])
			sent, _ := strconv.Atoi(m[2])
			t.Logf("Push step: %d registry requests, %d bytes sent", requests, sent)
			streamed := strings.Contains(logText, "pushed by the build)")
			if streamed != tt.stream {
				t.Errorf("log says the build pushed the image: %v, want %v:\n%s", streamed, tt.stream, logText)
			}
			if tt.stream && sent >= 64<<10 {
				t.Errorf("Push step sent %d bytes after the build pushed the image, want only manifests", sent)
			}
			if !tt.stream && !tt.cache && sent < len(blob) {
				t.Errorf("Push step sent %d bytes, less than the %d-byte layer it had to upload", sent, len(blob))
			}
			tag := strings.ReplaceAll(tt.tag, "{short_commit}", head[:7])
			p := pull(t, in.Image+":"+tag)
			if _, ok := p.files["blob.bin"]; !ok || p.files["built-by"] != "streamed\n" {
				t.Fatalf("%s holds blob.bin: %v, built-by %q", tag, ok, p.files["built-by"])
			}
			if d, err := p.img.Digest(); err != nil || d.String() != res.Digest {
				t.Fatalf("%s is %s (%v), the build reported %s", tag, d, err, res.Digest)
			}
			layers, err := p.img.Layers()
			if err != nil {
				t.Fatal(err)
			}
			var size, largest int64
			var largestDigest string
			for _, l := range layers {
				n, err := l.Size()
				if err != nil {
					t.Fatal(err)
				}
				size += n
				if n > largest {
					d, err := l.Digest()
					if err != nil {
						t.Fatal(err)
					}
					largest, largestDigest = n, d.String()
				}
			}
			if size < int64(len(blob)) {
				t.Fatalf("%s has %d bytes of layers, less than its %d-byte blob.bin", tag, size, len(blob))
			}
			if tt.cache {
				// A deferred cache export ends after the build: its uploads are counted too.
				waitTag(t, in.Image, "buildcache", time.Minute)
				time.Sleep(time.Second)
			}
			// The build's push, the cache export and the Push step each upload the layer unless
			// it is there already; once is enough.
			if n := blobUploads(t, "demo/"+owner, largestDigest); n != 1 {
				t.Errorf("the registry took %d uploads of the %d-byte layer, want 1", n, largest)
			}
		})
	}
}

// blobUploads counts the uploads of blob dgst to repo the registry completed, from its log.
func blobUploads(t *testing.T, repo, dgst string) int {
	t.Helper()
	b, err := os.ReadFile(env.stack.LogDir() + "/registry.log")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(string(b), "\n") {
		if strings.Contains(line, "http.request.method=PUT") && strings.Contains(line, "/v2/"+repo+"/blobs/uploads/") &&
			strings.Contains(line, "digest="+strings.Replace(dgst, ":", "%3A", 1)) && strings.Contains(line, "http.response.status=201") {
			n++
		}
	}
	return n
}
