package gateway

import (
	"context"
	"io"
	"log"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/slipway-dev/slipway/config"
)

// TestImageTags reads the Images tab's tags from a registry: digest, size and creation time
// of each, and none (no error) for a repository nothing was pushed to.
func TestImageTags(t *testing.T) {
	reg := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(reg.Close)
	host := strings.TrimPrefix(reg.URL, "http://")
	a := testServer(config.Config{}, nil, nil, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx := context.Background()

	img, err := random.Image(1024, 2)
	if err != nil {
		t.Fatal(err)
	}
	created := time.Date(2026, 11, 5, 10, 0, 0, 0, time.UTC)
	if img, err = mutate.CreatedAt(img, v1.Time{Time: created}); err != nil {
		t.Fatal(err)
	}
	for _, tag := range []string{"main", "v1"} {
		ref, err := name.NewTag(host+"/team/app:"+tag, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.Write(ref, img); err != nil {
			t.Fatal(err)
		}
	}
	digest, _ := img.Digest()
	size, _ := img.Size()

	tags, err := a.imageTags(ctx, host+"/team/app")
	if err != nil {
		t.Fatal(err)
	}
	if len(tags) != 2 {
		t.Fatalf("tags = %+v", tags)
	}
	for _, tg := range tags {
		if tg.Digest != digest.String() || tg.Size <= size || !tg.Created.Equal(created) {
			t.Errorf("tag %+v, want digest %s, size over the manifest's %d, created %s", tg, digest, size, created)
		}
	}
	none, err := a.imageTags(ctx, host+"/team/empty")
	if err != nil || len(none) != 0 {
		t.Fatalf("empty repository: %+v, %v", none, err)
	}
}
