package main

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"

	"github.com/slipway-dev/slipway/internal/testing/gitserver"
)

// benchOwner is the Git owner of the fixture repositories and the gateway namespace of the
// bench's rules.
const benchOwner = "bench"

// fixture is a repository the bench builds. A change rewrites changePath, which a COPY of the
// Dockerfile uses, so BuildKit cannot reuse that COPY or anything after it.
type fixture struct {
	name       string
	files      map[string][]byte
	changePath string
}

// smallFixture is FROM busybox with a few COPY and RUN steps over a few small files: what most
// services' images look like minus their dependencies.
func smallFixture(name string) fixture {
	return fixture{name: name, changePath: "app/version.txt", files: map[string][]byte{
		"Dockerfile": []byte("FROM busybox\nCOPY app/ /app\nCOPY config.txt /etc/app.conf\n" +
			"RUN sha256sum /app/* > /app.sha256\nRUN echo \"built by the slipway bench\" > /built-by\n"),
		"app/main.sh":     []byte("#!/bin/sh\necho hello from the bench\n"),
		"app/data.txt":    []byte(strings.Repeat("some data of the small fixture\n", 64)),
		"app/version.txt": []byte("change 0\n"),
		"config.txt":      []byte("listen=:8080\n"),
		"README.md":       []byte("small fixture of the slipway bench\n"),
	}}
}

// largeFixture is a build context of n files of pseudo-random bytes, mib MiB in all: random
// bytes neither compress nor dedupe, so a changed run moves the whole context through git,
// BuildKit's file sync, the layer and the registry.
func largeFixture(n, mib int) fixture {
	rng := rand.New(rand.NewChaCha8([32]byte{'s', 'l', 'i', 'p', 'w', 'a', 'y'}))
	mean := int64(mib) << 20 / int64(n)
	fx := fixture{name: "large", changePath: "data/stamp.txt", files: map[string][]byte{
		"Dockerfile": []byte("FROM busybox\nCOPY data/ /data\nRUN find /data -type f | sort | xargs sha256sum > /data.sha256\n" +
			"RUN echo \"files: $(find /data -type f | wc -l)\" > /summary\n"),
		"data/stamp.txt": []byte("change 0\n"),
	}}
	for i := range n {
		// Sizes spread from a quarter to seven quarters of the mean, so the total stays near mib.
		b := make([]byte, mean/4+rng.Int64N(mean*3/2+1))
		for j := range b {
			b[j] = byte(rng.Uint32())
		}
		fx.files[fmt.Sprintf("data/d%02d/f%04d.bin", i%10, i)] = b
	}
	return fx
}

// heavyFixture is a build whose cold run does real work: a RUN writes and hashes 64 MiB of
// random bytes, another spins one core for a few seconds; the change is used only by the last
// COPY.
func heavyFixture(name string) fixture {
	return fixture{name: name, changePath: "app/version.txt", files: map[string][]byte{
		"Dockerfile": []byte("FROM busybox\nCOPY deps.txt /deps.txt\n" +
			"RUN dd if=/dev/urandom of=/blob bs=1M count=64 2>/dev/null && sha256sum /blob > /blob.sha256\n" +
			"RUN i=0; while [ $i -lt 1200000 ]; do i=$((i+1)); done; echo \"$i iterations\" > /cpu.txt\n" +
			"COPY app/ /app\n"),
		"deps.txt":        []byte("dependencies of the heavy fixture, version 1\n"),
		"app/main.sh":     []byte("#!/bin/sh\necho hello from the heavy fixture\n"),
		"app/version.txt": []byte("change 0\n"),
	}}
}

// repo is a fixture's repository on the Git server and the head of its main branch.
type repo struct {
	*gitserver.Repository
	fixture fixture
	head    string
	changes int
}

// createRepo creates bench/NAME on the Git server with the fixture as its first commit on main.
func (e *env) createRepo(fx fixture) (*repo, error) {
	gr, err := e.git.CreateRepository(benchOwner, fx.name, filepath.Join(e.home, "work", fx.name))
	if err != nil {
		return nil, err
	}
	files := map[string]string{}
	for p, b := range fx.files {
		files[p] = string(b)
	}
	r := &repo{Repository: gr, fixture: fx}
	r.head, err = gr.Commit("main", files)
	return r, err
}

// change commits a new content of the change file to main; the new head is a commit no build
// has seen.
func (r *repo) change() (string, error) {
	var err error
	r.head, err = r.pushBranch("main")
	return r.head, err
}

// pushBranch commits a new content of the change file to branch and returns the commit.
func (r *repo) pushBranch(branch string) (string, error) {
	r.changes++
	return r.Commit(branch, map[string]string{r.fixture.changePath: fmt.Sprintf("change %d\n", r.changes)})
}
