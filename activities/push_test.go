package activities

import (
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/slipway-dev/slipway/build"
	"github.com/slipway-dev/slipway/logstore"
)

// testRegistry is an in-memory registry that records the requests it serves and refuses, with
// 403 DENIED, the manifest writes of the tags in refuse.
type testRegistry struct {
	url string

	mu     sync.Mutex
	reqs   []string // "METHOD PATH"
	refuse map[string]bool
}

func startRegistry(t *testing.T) *testRegistry {
	t.Helper()
	r := &testRegistry{refuse: map[string]bool{}}
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.reqs = append(r.reqs, req.Method+" "+req.URL.Path)
		refused := req.Method == http.MethodPut && strings.Contains(req.URL.Path, "/manifests/") &&
			r.refuse[req.URL.Path[strings.LastIndex(req.URL.Path, "/")+1:]]
		r.mu.Unlock()
		if refused {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusForbidden)
			io.WriteString(w, `{"errors":[{"code":"DENIED","message":"tag is protected"}]}`)
			return
		}
		reg.ServeHTTP(w, req)
	}))
	t.Cleanup(srv.Close)
	r.url = strings.TrimPrefix(srv.URL, "http://")
	return r
}

// setRefused makes the registry refuse (or accept again) manifest writes of tag.
func (r *testRegistry) setRefused(tag string, refused bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.refuse[tag] = refused
}

// uploads counts the blob uploads the registry saw, and forgets the requests.
func (r *testRegistry) uploads() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, q := range r.reqs {
		if strings.HasPrefix(q, "POST ") && strings.Contains(q, "/blobs/uploads") {
			n++
		}
	}
	r.reqs = nil
	return n
}

// builtWorkspace writes a random image as the build step would leave it in workspace key.
func builtWorkspace(t *testing.T, root, key string) v1.Hash {
	t.Helper()
	img, err := random.Image(512, 2)
	if err != nil {
		t.Fatal(err)
	}
	p, err := layout.Write(filepath.Join(root, key, imageDir), empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img); err != nil {
		t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// pushEnv runs Push in Temporal's activity test environment.
func pushEnv(t *testing.T) (*Activities, func(PushInput) (PushResult, error)) {
	t.Helper()
	logs, err := logstore.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	act := &Activities{WorkspaceRoot: t.TempDir(), Logs: logs, Keychain: authn.NewMultiKeychain(), TagLockDir: t.TempDir()}
	var suite testsuite.WorkflowTestSuite
	return act, func(in PushInput) (PushResult, error) {
		env := suite.NewTestActivityEnvironment()
		env.RegisterActivity(act)
		v, err := env.ExecuteActivity(act.Push, in)
		if err != nil {
			return PushResult{}, err
		}
		var res PushResult
		if err := v.Get(&res); err != nil {
			t.Fatal(err)
		}
		return res, nil
	}
}

// tagDigest is the digest tag names in the registry.
func tagDigest(t *testing.T, ref string) (v1.Hash, error) {
	t.Helper()
	tag, err := name.NewTag(ref)
	if err != nil {
		t.Fatal(err)
	}
	desc, err := remote.Head(tag)
	if err != nil {
		return v1.Hash{}, err
	}
	return desc.Digest, nil
}

func TestPush(t *testing.T) {
	reg := startRegistry(t)
	reg.setRefused("protected", true)
	act, push := pushEnv(t)
	tests := []struct {
		name    string
		in      PushInput
		want    []string // the tags written
		wantErr string   // in the error; "" means the push succeeds
		errType string   // the error's type when it is non-retryable
	}{
		{name: "several tags", in: PushInput{Tags: []string{"v1", "latest", "sha-0123abc"}},
			want: []string{"v1", "latest", "sha-0123abc"}},
		{name: "tag the registry refuses", in: PushInput{Tags: []string{"v2", "protected"}},
			wantErr: "tagging " + reg.url + "/demo/app:protected"},
		{name: "refused first tag", in: PushInput{Tags: []string{"protected"}},
			wantErr: "pushing " + reg.url + "/demo/app:protected"},
		{name: "mutable tag not yet in the registry", in: PushInput{Tags: []string{"v3", "main"}, Mutable: []string{"main"},
			Commit: strings.Repeat("a", 40)}, want: []string{"v3", "main"}},
		{name: "removing the workspace", in: PushInput{Tags: []string{"v4"}, RemoveWorkspace: true}, want: []string{"v4"}},
		{name: "no tag", in: PushInput{}, errType: build.ErrTypeInvalidTag},
		{name: "invalid tag", in: PushInput{Tags: []string{"-x"}}, errType: build.ErrTypeInvalidTag},
		{name: "no built image", in: PushInput{Workspace: "unbuilt", Tags: []string{"v5"}}, errType: build.ErrTypeWorkspaceLost},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := tt.in
			in.Image = reg.url + "/demo/app"
			var digest v1.Hash
			if in.Workspace == "" {
				in.Workspace = "b" + string(rune('0'+i))
				digest = builtWorkspace(t, act.WorkspaceRoot, in.Workspace)
			}
			res, err := push(in)
			var appErr *temporal.ApplicationError
			switch {
			case tt.errType != "":
				if !errors.As(err, &appErr) || appErr.Type() != tt.errType || !appErr.NonRetryable() {
					t.Fatalf("error = %v, want non-retryable %s", err, tt.errType)
				}
				return
			case tt.wantErr != "":
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tt.wantErr)
				}
				if errors.As(err, &appErr) && appErr.NonRetryable() {
					t.Fatalf("a refused write is retried, but the error is non-retryable: %v", err)
				}
				return
			case err != nil:
				t.Fatal(err)
			}
			if res.Digest != digest.String() || strings.Join(res.Tags, ",") != strings.Join(tt.want, ",") {
				t.Fatalf("result = %+v, want digest %s and tags %v", res, digest, tt.want)
			}
			for _, tag := range tt.want {
				if got, err := tagDigest(t, in.Image+":"+tag); err != nil || got != digest {
					t.Errorf("%s names %s (%v), want %s", tag, got, err, digest)
				}
			}
			_, statErr := os.Stat(filepath.Join(act.WorkspaceRoot, in.Workspace))
			if removed := errors.Is(statErr, os.ErrNotExist); removed != in.RemoveWorkspace || res.WorkspaceRemoved != in.RemoveWorkspace {
				t.Fatalf("workspace removed = %v, result says %v, want %v", removed, res.WorkspaceRemoved, in.RemoveWorkspace)
			}
		})
	}
}

// A push retried after the registry refused it reads the same workspace again: nothing is
// built again, and the blobs the first attempt sent are not sent twice.
func TestPushRetryDoesNotRebuild(t *testing.T) {
	reg := startRegistry(t)
	act, push := pushEnv(t)
	digest := builtWorkspace(t, act.WorkspaceRoot, "b1")
	in := PushInput{Workspace: "b1", Image: reg.url + "/demo/app", Tags: []string{"v1"}}

	reg.setRefused("v1", true)
	if _, err := push(in); err == nil {
		t.Fatal("the first attempt succeeded although the registry refused its tag")
	}
	if n := reg.uploads(); n == 0 {
		t.Fatal("the first attempt uploaded no blob, so the retry proves nothing")
	}
	reg.setRefused("v1", false)
	res, err := push(in)
	if err != nil {
		t.Fatal(err)
	}
	if res.Digest != digest.String() {
		t.Fatalf("retry pushed %s, want the built %s", res.Digest, digest)
	}
	if n := reg.uploads(); n != 0 {
		t.Fatalf("retry uploaded %d blobs the registry already held", n)
	}
	if got, err := tagDigest(t, in.Image+":v1"); err != nil || got != digest {
		t.Fatalf("v1 names %s (%v), want %s", got, err, digest)
	}
}
