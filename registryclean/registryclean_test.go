package registryclean_test

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/slipway-dev/slipway/registryclean"
)

func TestDeleteRepository(t *testing.T) {
	srv := httptest.NewServer(registry.New())
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	ctx := context.Background()

	push := func(repo name.Repository, tags ...string) {
		t.Helper()
		img, err := random.Image(256, 1)
		if err != nil {
			t.Fatal(err)
		}
		for _, tag := range tags {
			if err := remote.Write(repo.Tag(tag), img); err != nil {
				t.Fatal(err)
			}
		}
	}
	gone, _ := name.NewRepository(host + "/demo/app")
	kept, _ := name.NewRepository(host + "/demo/other")
	push(gone, "v1", "latest") // one manifest, two tags
	push(gone, "v2")
	push(kept, "v1")

	tests := []struct {
		name          string
		repo          name.Repository
		tags, digests int
	}{
		{"a repository with images", gone, 3, 2},
		{"again: already empty", gone, 0, 0},
		{"one never pushed to", mustRepo(t, host+"/demo/never"), 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := registryclean.DeleteRepository(ctx, tt.repo, authn.NewMultiKeychain())
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Tags) != tt.tags || len(res.Manifests) != tt.digests {
				t.Errorf("deleted %v tags and %v manifests; want %d and %d", res.Tags, res.Manifests, tt.tags, tt.digests)
			}
			if tags, _ := remote.List(tt.repo); len(tags) != 0 {
				t.Errorf("tags left: %v", tags)
			}
		})
	}
	// Another repository keeps its images.
	if _, err := remote.Head(kept.Tag("v1")); err != nil {
		t.Errorf("the other repository's image: %v", err)
	}
}

func mustRepo(t *testing.T, s string) name.Repository {
	t.Helper()
	r, err := name.NewRepository(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}
