package store_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/slipway-dev/slipway/store"
)

func TestSecrets(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			url := b.url(t)
			s := openStore(t, url)
			seedRepository(t, s, "team", "app")
			seedRepository(t, s, "other", "app")
			const value = "hunter2-s3cr3t-value"

			created, isNew, err := s.PutSecret(ctx, "team", "NPM_TOKEN", []byte(value), "alice")
			if err != nil || !isNew {
				t.Fatalf("put: new=%v, %v", isNew, err)
			}
			if created.Name != "NPM_TOKEN" || created.CreatedBy != "alice" || created.UpdatedBy != "alice" || created.CreatedAt.IsZero() {
				t.Fatalf("created = %+v", created)
			}
			replaced, isNew, err := s.PutSecret(ctx, "team", "NPM_TOKEN", []byte(value+"-2"), "bob")
			if err != nil || isNew {
				t.Fatalf("replace: new=%v, %v", isNew, err)
			}
			if replaced.CreatedBy != "alice" || replaced.UpdatedBy != "bob" || !replaced.CreatedAt.Equal(created.CreatedAt) || !replaced.UpdatedAt.After(created.UpdatedAt) {
				t.Fatalf("replaced = %+v, created %+v", replaced, created)
			}
			if _, _, err := s.PutSecret(ctx, "team", "A_KEY", []byte("other value"), "alice"); err != nil {
				t.Fatal(err)
			}
			if _, _, err := s.PutSecret(ctx, "nope", "X", []byte("v"), "alice"); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("put in a missing namespace: %v", err)
			}

			list, err := s.ListSecrets(ctx, "team")
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, sc := range list {
				names = append(names, sc.Name)
			}
			if !slices.Equal(names, []string{"A_KEY", "NPM_TOKEN"}) {
				t.Fatalf("names = %v", names)
			}
			if other, err := s.ListSecrets(ctx, "other"); err != nil || len(other) != 0 {
				t.Fatalf("other namespace lists %v, %v", other, err)
			}

			vals, err := s.SecretValues(ctx, "team", []string{"NPM_TOKEN"})
			if err != nil || string(vals["NPM_TOKEN"]) != value+"-2" || len(vals) != 1 {
				t.Fatalf("values = %q, %v", vals, err)
			}
			if _, err := s.SecretValues(ctx, "other", []string{"NPM_TOKEN"}); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("another namespace's secret: %v", err)
			}
			_, err = s.SecretValues(ctx, "team", []string{"NPM_TOKEN", "GONE"})
			if !errors.Is(err, store.ErrNotFound) || !strings.Contains(err.Error(), "GONE") || strings.Contains(err.Error(), value) {
				t.Fatalf("missing secret: %v", err)
			}
			missing, err := s.MissingSecrets(ctx, "team", []string{"GONE", "NPM_TOKEN", "ALSO_GONE"})
			if err != nil || !slices.Equal(missing, []string{"GONE", "ALSO_GONE"}) {
				t.Fatalf("missing = %v, %v", missing, err)
			}

			// Sealed at rest: a store with another key opens nothing, and one without a key
			// neither sets nor reads values.
			otherKey := openStore(t, url, store.WithSecretBox(testBox(t, 9)))
			if _, err := otherKey.SecretValues(ctx, "team", []string{"NPM_TOKEN"}); err == nil || strings.Contains(err.Error(), value) {
				t.Fatalf("opened under another key: %v", err)
			}
			noKey := openStore(t, url, store.WithSecretBox(nil))
			if _, _, err := noKey.PutSecret(ctx, "team", "X", []byte("v"), "alice"); err == nil {
				t.Fatal("a store without a box set a secret")
			}

			// Rules keep the names they are given.
			r, err := s.CreateRule(ctx, store.Rule{Namespace: "team", Repository: "app",
				Source: store.Source{Provider: "github", Owner: "octo", Repository: "hello"}, Secrets: []string{"NPM_TOKEN"}})
			if err != nil {
				t.Fatal(err)
			}
			back, err := s.GetRule(ctx, r.ID)
			if err != nil || !slices.Equal(back.Secrets, []string{"NPM_TOKEN"}) {
				t.Fatalf("rule secrets = %v, %v", back.Secrets, err)
			}
			back.Secrets = []string{"NPM_TOKEN", "A_KEY"}
			if u, err := s.UpdateRule(ctx, back); err != nil || !slices.Equal(u.Secrets, []string{"NPM_TOKEN", "A_KEY"}) {
				t.Fatalf("updated rule secrets = %v, %v", u.Secrets, err)
			}
			back.Secrets = nil
			if u, err := s.UpdateRule(ctx, back); err != nil || u.Secrets == nil || len(u.Secrets) != 0 {
				t.Fatalf("cleared rule secrets = %#v, %v", u.Secrets, err)
			}

			if err := s.DeleteSecret(ctx, "team", "NPM_TOKEN"); err != nil {
				t.Fatal(err)
			}
			if err := s.DeleteSecret(ctx, "team", "NPM_TOKEN"); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("second delete: %v", err)
			}
			if err := s.DeleteSecret(ctx, "other", "A_KEY"); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("delete through another namespace: %v", err)
			}
			if list, _ := s.ListSecrets(ctx, "team"); len(list) != 1 || list[0].Name != "A_KEY" {
				t.Fatalf("after delete: %+v", list)
			}
		})
	}
}
