package activities

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"go.temporal.io/sdk/testsuite"

	"github.com/slipway-dev/slipway/build"
	"github.com/slipway-dev/slipway/retention"
)

type fakeRetention map[string]RetentionTarget

func (f fakeRetention) RetentionTarget(_ context.Context, ns, repo string) (RetentionTarget, error) {
	t, ok := f[ns+"/"+repo]
	if !ok {
		return RetentionTarget{}, fmt.Errorf("%s/%s: %w", ns, repo, ErrNoRetentionPolicy)
	}
	return t, nil
}

func TestApplyRetention(t *testing.T) {
	srv := httptest.NewServer(registry.New())
	defer srv.Close()
	image := strings.TrimPrefix(srv.URL, "http://") + "/demo/app"
	repo, err := name.NewRepository(image)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for i, tag := range []string{"main-1", "main-2", "main-3", "latest"} {
		img, err := random.Image(32, 1)
		if err != nil {
			t.Fatal(err)
		}
		if img, err = mutate.CreatedAt(img, v1.Time{Time: now.Add(time.Duration(i-10) * time.Hour)}); err != nil {
			t.Fatal(err)
		}
		if err := remote.Write(repo.Tag(tag), img); err != nil {
			t.Fatal(err)
		}
	}
	a := &Activities{Keychain: authn.NewMultiKeychain(), Retention: fakeRetention{"demo/app": {
		Image:  image,
		Policy: build.RetentionPolicy{Rules: []build.RetentionRule{{TagPattern: "*", KeepLast: 1}}},
		Rules:  []retention.RuleView{{ID: "r-1", TagLatest: "default_branch"}},
	}}}
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(a)

	val, err := env.ExecuteActivity(a.ApplyRetention, build.RetentionInput{Namespace: "demo", Repository: "app"})
	if err != nil {
		t.Fatal(err)
	}
	var res RetentionResult
	if err := val.Get(&res); err != nil {
		t.Fatal(err)
	}
	var deleted []string
	for _, d := range res.Deleted {
		deleted = append(deleted, d.Name)
	}
	// latest is protected; main-3 is the newest of the rest.
	if got := strings.Join(deleted, ","); got != "main-1,main-2" || res.Kept != 2 || len(res.Manifests) != 2 || !res.Policy {
		t.Fatalf("ApplyRetention = %+v", res)
	}
	left, err := remote.List(repo)
	if err != nil || strings.Join(left, ",") != "latest,main-3" {
		t.Fatalf("tags left %v, %v", left, err)
	}

	// A repository without a policy: nothing happens.
	val, err = env.ExecuteActivity(a.ApplyRetention, build.RetentionInput{Namespace: "demo", Repository: "other"})
	if err != nil {
		t.Fatal(err)
	}
	if err := val.Get(&res); err != nil || res.Policy || len(res.Deleted) != 0 {
		t.Fatalf("without a policy: %+v, %v", res, err)
	}
}
