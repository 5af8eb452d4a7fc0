package retention

import (
	"context"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/slipway-dev/slipway/build"
)

// image is a one-layer image whose config records created.
func image(t *testing.T, created time.Time) v1.Image {
	t.Helper()
	layer, err := random.Layer(64, "application/vnd.oci.image.layer.v1.tar")
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		t.Fatal(err)
	}
	img, err = mutate.CreatedAt(img, v1.Time{Time: created})
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func TestListSelectApply(t *testing.T) {
	srv := httptest.NewServer(registry.New())
	defer srv.Close()
	ctx := context.Background()
	repo, err := name.NewRepository(strings.TrimPrefix(srv.URL, "http://") + "/ns/app")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Second)
	push := func(img v1.Image, tags ...string) {
		for _, tg := range tags {
			if err := remote.Write(repo.Tag(tg), img, remote.WithContext(ctx)); err != nil {
				t.Fatal(err)
			}
		}
	}
	old := image(t, now.Add(-72*time.Hour))
	push(old, "main-1", "latest")                    // latest keeps main-1 alive
	push(image(t, now.Add(-48*time.Hour)), "main-2") // deleted
	push(image(t, now.Add(-36*time.Hour)), "main-3") // deleted
	push(image(t, now.Add(-2*time.Hour)), "main-4")  // newest
	push(image(t, now.Add(-500*time.Hour)), "buildcache")

	tags, err := ListTags(ctx, repo)
	if err != nil {
		t.Fatal(err)
	}
	if len(tags) != 6 {
		t.Fatalf("ListTags = %+v, want 6 tags", tags)
	}
	for _, tg := range tags {
		if tg.Created.IsZero() || !strings.HasPrefix(tg.Digest, "sha256:") {
			t.Fatalf("tag %+v lacks its age or digest", tg)
		}
	}
	policy := build.RetentionPolicy{Rules: []build.RetentionRule{{TagPattern: "main-*", KeepLast: 1}}}
	plan, err := Select(tags, policy, ProtectedTags(tags, []RuleView{{ID: "r-1", TagLatest: "default_branch"}}), now)
	if err != nil {
		t.Fatal(err)
	}
	if got := names(plan.Delete); !reflect.DeepEqual(got, []string{"main-2", "main-3"}) {
		t.Fatalf("plan deletes %v", got)
	}
	// A tag pushed onto main-3's image after the plan saves it.
	desc, err := remote.Get(repo.Tag("main-3"), remote.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	img, err := desc.Image()
	if err != nil {
		t.Fatal(err)
	}
	push(img, "hotfix")

	res, err := Apply(ctx, repo, plan)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(res.Tags, []string{"main-2"}) || len(res.Manifests) != 1 || len(res.Skipped) != 1 || res.Skipped[0].Name != "main-3" {
		t.Fatalf("Apply = %+v", res)
	}
	left, err := remote.List(repo, remote.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"buildcache", "hotfix", "latest", "main-1", "main-3", "main-4"}; !reflect.DeepEqual(left, want) {
		t.Fatalf("left %v, want %v", left, want)
	}
	for _, tg := range left {
		if _, err := remote.Image(repo.Tag(tg), remote.WithContext(ctx)); err != nil {
			t.Fatalf("kept tag %s does not pull: %v", tg, err)
		}
	}
}
