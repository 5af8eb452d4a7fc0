// Package buildauth answers BuildKit's registry auth questions for one build: for the local
// registry it mints, with the registry key, a token for each scope BuildKit asks for, as far as
// the build's rules allow, and refuses the rest with a message that lands in the build log.
// Other registries are left to the worker's Docker config. It is apart from registryauth so
// that the gateway links no BuildKit.
package buildauth

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/moby/buildkit/session"
	"github.com/moby/buildkit/session/auth"
	"golang.org/x/crypto/nacl/sign"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/slipway-dev/slipway/registryauth"
)

// TokenTTL bounds each token a build gets; BuildKit asks again when one runs out.
const TokenTTL = 10 * time.Minute

// Provider is the auth service of one build's BuildKit session.
type Provider struct {
	auth.UnimplementedAuthServer
	key     *registryauth.Key
	hosts   []string
	subject string
	rules   registryauth.Rules
	other   auth.AuthServer
	// authority is this session's own token authority. BuildKit shares a fetched token with any
	// other session that proves the same authority, so each build has a key of its own: one
	// build's tokens never serve another.
	authority ed25519.PrivateKey
}

// New is the auth service of a build called subject (its id), whose requests to any of hosts
// (the local registry's names) get tokens under rules, and to other registries go to other (the
// worker's Docker config provider; nil refuses them credentials).
func New(key *registryauth.Key, hosts []string, subject string, rules registryauth.Rules, other session.Attachable) (*Provider, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("making build token authority: %w", err)
	}
	p := &Provider{key: key, hosts: hosts, subject: subject, rules: rules, authority: priv}
	if o, ok := other.(auth.AuthServer); ok {
		p.other = o
	}
	return p, nil
}

// Register puts the auth service on the session's server.
func (p *Provider) Register(server *grpc.Server) {
	auth.RegisterAuthServer(server, p)
}

func (p *Provider) local(host string) bool {
	for _, h := range p.hosts {
		if h == host {
			return true
		}
	}
	return false
}

// Credentials gives no password for the local registry (its tokens come from FetchToken).
func (p *Provider) Credentials(ctx context.Context, req *auth.CredentialsRequest) (*auth.CredentialsResponse, error) {
	if p.local(req.Host) || p.other == nil {
		return &auth.CredentialsResponse{}, nil
	}
	return p.other.Credentials(ctx, req)
}

// FetchToken mints the token of the requested scopes, or refuses the whole request naming what
// the build may not do.
func (p *Provider) FetchToken(ctx context.Context, req *auth.FetchTokenRequest) (*auth.FetchTokenResponse, error) {
	if !p.local(req.Host) {
		if p.other == nil {
			return nil, status.Errorf(codes.PermissionDenied, "no credentials for registry %s", req.Host)
		}
		return p.other.FetchToken(ctx, req)
	}
	requested, err := registryauth.ParseScopes(req.Scopes)
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "registry %s: %v", req.Host, err)
	}
	granted := registryauth.Grant(requested, p.rules)
	if denied := registryauth.Denied(requested, granted); len(denied) > 0 && !mountSourcesOnly(granted, denied) {
		what := make([]string, 0, len(denied))
		for _, d := range denied {
			what = append(what, strings.Join(d.Actions, ",")+" "+req.Host+"/"+d.Name)
		}
		return nil, status.Errorf(codes.PermissionDenied,
			"registry access denied: this build may not %s (a build pulls only from its own namespace and library/, and pushes only to its own repository)",
			strings.Join(what, "; "))
	}
	tok, err := p.key.Mint(p.subject, granted, TokenTTL)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "minting registry token: %v", err)
	}
	return &auth.FetchTokenResponse{Token: tok.Raw, ExpiresIn: int64(tok.TTL / time.Second), IssuedAt: tok.IssuedAt.Unix()}, nil
}

// GetTokenAuthority makes BuildKit ask this session for the local registry's tokens.
func (p *Provider) GetTokenAuthority(ctx context.Context, req *auth.GetTokenAuthorityRequest) (*auth.GetTokenAuthorityResponse, error) {
	if !p.local(req.Host) {
		if p.other == nil {
			return nil, status.Error(codes.Unimplemented, "no token authority")
		}
		return p.other.GetTokenAuthority(ctx, req)
	}
	return &auth.GetTokenAuthorityResponse{PublicKey: p.authority.Public().(ed25519.PublicKey)}, nil
}

// VerifyTokenAuthority proves this session's authority by signing BuildKit's payload.
func (p *Provider) VerifyTokenAuthority(ctx context.Context, req *auth.VerifyTokenAuthorityRequest) (*auth.VerifyTokenAuthorityResponse, error) {
	if !p.local(req.Host) {
		if p.other == nil {
			return nil, status.Error(codes.Unimplemented, "no token authority")
		}
		return p.other.VerifyTokenAuthority(ctx, req)
	}
	priv := new([64]byte)
	copy(priv[:], p.authority)
	return &auth.VerifyTokenAuthorityResponse{Signed: sign.Sign(nil, req.Payload, priv)}, nil
}

// mountSourcesOnly tells a push that also asks to read other repositories, which BuildKit does
// to mount a blob it knows from there instead of uploading it, from a request the build may
// not make: the push (a granted push) gets a token without the denied reads, the registry
// refuses the mount, and BuildKit uploads the blob instead. Anything else denied, a push or a
// read of a base image, refuses the request with its reason.
func mountSourcesOnly(granted, denied []registryauth.Access) bool {
	push := slices.ContainsFunc(granted, func(g registryauth.Access) bool { return slices.Contains(g.Actions, registryauth.Push) })
	return push && !slices.ContainsFunc(denied, func(d registryauth.Access) bool {
		return d.Type != "repository" || len(d.Actions) != 1 || d.Actions[0] != registryauth.Pull
	})
}
