// Package accounts connects GitHub and GitLab accounts to namespaces and resolves
// the references builds carry: it seals tokens at rest, opens them for the one call that needs
// them, and hands out provider clients. The gateway and the worker share it.
package accounts

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/slipway-dev/slipway/build"
	"github.com/slipway-dev/slipway/providers"
	"github.com/slipway-dev/slipway/secretbox"
	"github.com/slipway-dev/slipway/store"
)

// Resolver finds accounts, their tokens and clients of their providers.
type Resolver struct {
	store *store.Store
	box   *secretbox.Box
	// apiURLs maps a provider to its API base URL (GitHub Enterprise and self-managed GitLab
	// have their own).
	apiURLs map[string]string
	opts    []providers.Option
}

// New returns a Resolver over the accounts in st, sealed with box.
func New(st *store.Store, box *secretbox.Box, apiURLs map[string]string, opts ...providers.Option) *Resolver {
	return &Resolver{store: st, box: box, apiURLs: apiURLs, opts: opts}
}

// LoadKey returns the box of SLIPWAY_SECRET_KEY or, when it is unset, of the key file
// home/secret-key; with create, a missing file is made with a fresh key (mode 0600), as the
// local stack's gateway does at first start.
func LoadKey(getenv func(string) string, home string, create bool) (*secretbox.Box, error) {
	if strings.TrimSpace(getenv(secretbox.EnvKey)) != "" {
		return secretbox.KeyFromEnv(getenv)
	}
	path := filepath.Join(home, "secret-key")
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) && create {
		key := make([]byte, secretbox.KeySize)
		if _, err := rand.Read(key); err != nil {
			return nil, fmt.Errorf("generating secret key: %w", err)
		}
		b = []byte(base64.StdEncoding.EncodeToString(key))
		if err := os.WriteFile(path, append(b, '\n'), 0o600); err != nil {
			return nil, fmt.Errorf("writing secret key: %w", err)
		}
	} else if err != nil {
		return nil, fmt.Errorf("%s is unset and %s cannot be read: %w", secretbox.EnvKey, path, err)
	}
	text := strings.TrimSpace(string(b))
	box, err := secretbox.KeyFromEnv(func(string) string { return text })
	if err != nil {
		return nil, fmt.Errorf("key file %s: %w", path, err)
	}
	return box, nil
}

// client makes a client of provider acting with token.
func (r *Resolver) client(provider, token string) (providers.Client, error) {
	base, ok := r.apiURLs[provider]
	if !ok {
		return nil, fmt.Errorf("provider %q is not github or gitlab", provider)
	}
	return providers.New(provider, base, token, r.opts...)
}

// Connect checks token against the provider (a revoked or mistyped token is refused here,
// not at the first build), seals it and stores the account in namespace ns.
func (r *Resolver) Connect(ctx context.Context, ns, provider, token, createdBy string) (store.Account, error) {
	c, err := r.client(provider, token)
	if err != nil {
		return store.Account{}, err
	}
	login, err := c.Whoami(ctx)
	if err != nil {
		return store.Account{}, fmt.Errorf("checking the token with %s: %w", provider, err)
	}
	id, err := store.NewAccountID()
	if err != nil {
		return store.Account{}, err
	}
	sealed, err := r.box.Seal([]byte(token), id)
	if err != nil {
		return store.Account{}, fmt.Errorf("sealing token: %w", err)
	}
	return r.store.CreateAccount(ctx, store.Account{
		ID: id, Namespace: ns, Provider: provider, Login: login, CreatedBy: createdBy, TokenSealed: sealed,
	})
}

// Token opens the token of the account ref names, for a build of ref's namespace and provider.
// A missing account wraps build.ErrUnknownAccount; one of another namespace or provider
// wraps build.ErrAccountNotBound, and its token is not even opened.
func (r *Resolver) Token(ctx context.Context, ref build.AccountRef) (string, error) {
	_, token, err := r.openFor(ctx, ref)
	return token, err
}

// openFor opens the account ref names once ref.Check allows it.
func (r *Resolver) openFor(ctx context.Context, ref build.AccountRef) (store.Account, string, error) {
	a, err := r.store.GetAccount(ctx, ref.ID)
	if errors.Is(err, store.ErrNotFound) {
		return store.Account{}, "", fmt.Errorf("account %s: %w", ref.ID, build.ErrUnknownAccount)
	}
	if err != nil {
		return store.Account{}, "", err
	}
	if err := ref.Check(a.Namespace, a.Provider); err != nil {
		return store.Account{}, "", err
	}
	return r.open(ctx, ref.ID)
}

func (r *Resolver) open(ctx context.Context, id string) (store.Account, string, error) {
	a, err := r.store.GetAccount(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return store.Account{}, "", fmt.Errorf("account %s: %w", id, build.ErrUnknownAccount)
	}
	if err != nil {
		return store.Account{}, "", err
	}
	token, err := r.box.Open(a.TokenSealed, a.ID)
	if err != nil {
		return store.Account{}, "", fmt.Errorf("opening the token of account %s (was SLIPWAY_SECRET_KEY changed?): %w", id, err)
	}
	return a, string(token), nil
}

// Client returns account id and a client acting as it.
func (r *Resolver) Client(ctx context.Context, id string) (store.Account, providers.Client, error) {
	a, token, err := r.open(ctx, id)
	if err != nil {
		return store.Account{}, nil, err
	}
	c, err := r.client(a.Provider, token)
	return a, c, err
}

// PostStatus sets a commit status on src through the account ref names, under the same
// binding as Token: the account belongs to ref's namespace and to src's provider, and the
// status goes to that provider's configured API host, the only one a client is made for.
func (r *Resolver) PostStatus(ctx context.Context, ref build.AccountRef, src build.Source, commit string, st build.CommitStatus) error {
	if src.Provider != ref.Provider {
		return fmt.Errorf("account %s: the status is for a source on %q, not %q: %w", ref.ID, src.Provider, ref.Provider, build.ErrAccountNotBound)
	}
	a, token, err := r.openFor(ctx, ref)
	if err != nil {
		return err
	}
	c, err := r.client(a.Provider, token)
	if err != nil {
		return err
	}
	return c.SetStatus(ctx, src.Owner, src.Repository, commit, st)
}
