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
	"time"

	"golang.org/x/oauth2"

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
	// oauth are the OAuth apps, by provider, that refresh expiring tokens (WithOAuth).
	oauth map[string]*oauth2.Config
}

// Grant is a provider token as an OAuth token endpoint answers: the token, and for an expiring
// one (GitLab's) the refresh token and when it expires. A pasted token is a Grant with Token
// only.
type Grant struct {
	Token        string
	RefreshToken string
	// Expiry is zero for a token that does not expire.
	Expiry time.Time
}

// WithOAuth has r refresh the expiring tokens of the providers in apps (ClientID,
// ClientSecret and Endpoint.TokenURL are what a refresh needs) before it hands them out, and
// seal and store the new ones. Both the gateway and the worker set it, from the same
// configuration.
func (r *Resolver) WithOAuth(apps map[string]*oauth2.Config) *Resolver {
	r.oauth = apps
	return r
}

// refreshAAD binds a sealed refresh token to its account, apart from the token.
func refreshAAD(id string) string { return id + "/refresh" }

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
	return r.ConnectGrant(ctx, ns, provider, Grant{Token: token}, createdBy)
}

// ConnectGrant is Connect with an OAuth grant: its refresh token is sealed and kept too.
func (r *Resolver) ConnectGrant(ctx context.Context, ns, provider string, g Grant, createdBy string) (store.Account, error) {
	c, err := r.client(provider, g.Token)
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
	a := store.Account{ID: id, Namespace: ns, Provider: provider, Login: login, CreatedBy: createdBy}
	if err := r.seal(&a, g); err != nil {
		return store.Account{}, err
	}
	return r.store.CreateAccount(ctx, a)
}

// seal puts g, sealed, in a.
func (r *Resolver) seal(a *store.Account, g Grant) error {
	sealed, err := r.box.Seal([]byte(g.Token), a.ID)
	if err != nil {
		return fmt.Errorf("sealing token: %w", err)
	}
	a.TokenSealed, a.RefreshSealed, a.TokenExpiresAt = sealed, "", nil
	if g.RefreshToken != "" {
		if a.RefreshSealed, err = r.box.Seal([]byte(g.RefreshToken), refreshAAD(a.ID)); err != nil {
			return fmt.Errorf("sealing refresh token: %w", err)
		}
	}
	if !g.Expiry.IsZero() {
		e := g.Expiry.UTC()
		a.TokenExpiresAt = &e
	}
	return nil
}

// Reconnect gives the account a new token, checked against its provider and sealed as
// Connect seals one, and keeps its id: the rules naming it keep working, with the new
// token. It returns the account as it is now.
func (r *Resolver) Reconnect(ctx context.Context, a store.Account, g Grant) (store.Account, error) {
	c, err := r.client(a.Provider, g.Token)
	if err != nil {
		return store.Account{}, err
	}
	login, err := c.Whoami(ctx)
	if err != nil {
		return store.Account{}, fmt.Errorf("checking the token with %s: %w", a.Provider, err)
	}
	a.Login = login
	if err := r.seal(&a, g); err != nil {
		return store.Account{}, err
	}
	if _, err := r.store.ReplaceAccountToken(ctx, a, ""); err != nil {
		return store.Account{}, err
	}
	return a, nil
}

// Identify returns who token acts as on provider, for "Sign in with GitHub/GitLab".
func (r *Resolver) Identify(ctx context.Context, provider, token string) (providers.Identity, error) {
	c, err := r.client(provider, token)
	if err != nil {
		return providers.Identity{}, err
	}
	return c.Identity(ctx)
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
	if r.expiring(a) {
		if a, err = r.refresh(ctx, a); err != nil {
			return store.Account{}, "", err
		}
	}
	token, err := r.box.Open(a.TokenSealed, a.ID)
	if err != nil {
		return store.Account{}, "", fmt.Errorf("opening the token of account %s (was SLIPWAY_SECRET_KEY changed?): %w", id, err)
	}
	return a, string(token), nil
}

// refreshMargin is how long before its expiry a token is refreshed: a clone or an API call
// that starts with it has that long to use it.
const refreshMargin = 5 * time.Minute

// expiring reports whether a's token expires soon and can be refreshed.
func (r *Resolver) expiring(a store.Account) bool {
	return a.TokenExpiresAt != nil && a.RefreshSealed != "" && r.oauth[a.Provider] != nil &&
		time.Until(*a.TokenExpiresAt) < refreshMargin
}

// refresh trades a's refresh token for a new token (and, on GitLab, a new refresh token),
// seals both and stores them, and returns a as it is now. Two processes refreshing at once
// both ask; the store keeps the first answer (the refresh token it replaced is the one both
// read) and the other process reads it back.
func (r *Resolver) refresh(ctx context.Context, a store.Account) (store.Account, error) {
	refresh, err := r.box.Open(a.RefreshSealed, refreshAAD(a.ID))
	if err != nil {
		return store.Account{}, fmt.Errorf("opening the refresh token of account %s: %w", a.ID, err)
	}
	// An expired token makes the source refresh at once.
	tok, err := r.oauth[a.Provider].TokenSource(ctx, &oauth2.Token{RefreshToken: string(refresh), Expiry: time.Unix(1, 0)}).Token()
	if err != nil {
		if now, gerr := r.store.GetAccount(ctx, a.ID); gerr == nil && now.RefreshSealed != a.RefreshSealed {
			return now, nil // another process refreshed it, and its refresh token is spent
		}
		return store.Account{}, fmt.Errorf("refreshing the token of account %s with %s (reconnect the account): %w", a.ID, a.Provider, err)
	}
	old := a.RefreshSealed
	g := Grant{Token: tok.AccessToken, RefreshToken: tok.RefreshToken, Expiry: tok.Expiry}
	if g.RefreshToken == "" {
		g.RefreshToken = string(refresh)
	}
	if err := r.seal(&a, g); err != nil {
		return store.Account{}, err
	}
	won, err := r.store.ReplaceAccountToken(ctx, a, old)
	if err != nil {
		return store.Account{}, err
	}
	if !won {
		return r.store.GetAccount(ctx, a.ID)
	}
	return a, nil
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
