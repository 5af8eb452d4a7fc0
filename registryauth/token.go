package registryauth

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Issuer and Service name the token service and the registry in every token; the registry's
// config (auth.token.issuer and .service) must say the same.
const (
	Issuer  = "slipway"
	Service = "slipway-registry"
)

// Actions on a repository.
const (
	Pull   = "pull"
	Push   = "push"
	Delete = "delete"
)

// Access is one resource a token grants actions on: the "access" claim of the Docker registry
// token protocol, and what one requested scope ("repository:demo/app:pull,push") asks for.
type Access struct {
	Type    string   `json:"type"`
	Name    string   `json:"name"`
	Actions []string `json:"actions"`
}

// Scope is the access as a scope string.
func (a Access) Scope() string {
	return a.Type + ":" + a.Name + ":" + strings.Join(a.Actions, ",")
}

// ParseScopes reads the scope parameters of a token request. Each may hold several scopes
// separated by spaces; each scope is TYPE:NAME:ACTIONS, where NAME may itself hold colons
// (a repository on a registry with a port). Scopes of one resource are merged.
func ParseScopes(params []string) ([]Access, error) {
	var out []Access
	for _, p := range params {
		for _, s := range strings.Fields(p) {
			typ, rest, ok := strings.Cut(s, ":")
			i := strings.LastIndex(rest, ":")
			if !ok || i <= 0 || typ == "" {
				return nil, fmt.Errorf("scope %q is not TYPE:NAME:ACTIONS", s)
			}
			name, actions := rest[:i], strings.Split(rest[i+1:], ",")
			actions = slices.DeleteFunc(actions, func(a string) bool { return a == "" })
			merged := false
			for j := range out {
				if out[j].Type == typ && out[j].Name == name {
					out[j].Actions = union(out[j].Actions, actions)
					merged = true
				}
			}
			if !merged {
				out = append(out, Access{Type: typ, Name: name, Actions: union(nil, actions)})
			}
		}
	}
	return out, nil
}

func union(a, b []string) []string {
	for _, x := range b {
		if !slices.Contains(a, x) {
			a = append(a, x)
		}
	}
	return a
}

// claims are the claims the registry reads. aud is one string: distribution 2.8 reads the
// audience as a string.
type claims struct {
	Issuer    string           `json:"iss"`
	Subject   string           `json:"sub"`
	Audience  string           `json:"aud"`
	ExpiresAt *jwt.NumericDate `json:"exp"`
	NotBefore *jwt.NumericDate `json:"nbf"`
	IssuedAt  *jwt.NumericDate `json:"iat"`
	ID        string           `json:"jti"`
	Access    []Access         `json:"access"`
}

func (c claims) GetExpirationTime() (*jwt.NumericDate, error) { return c.ExpiresAt, nil }
func (c claims) GetNotBefore() (*jwt.NumericDate, error)      { return c.NotBefore, nil }
func (c claims) GetIssuedAt() (*jwt.NumericDate, error)       { return c.IssuedAt, nil }
func (c claims) GetIssuer() (string, error)                   { return c.Issuer, nil }
func (c claims) GetSubject() (string, error)                  { return c.Subject, nil }
func (c claims) GetAudience() (jwt.ClaimStrings, error)       { return jwt.ClaimStrings{c.Audience}, nil }

// Token is a minted registry token.
type Token struct {
	// Raw is the signed JWT.
	Raw      string
	IssuedAt time.Time
	TTL      time.Duration
}

// Mint signs a token for subject that grants access (entries with no action are left out)
// from now for ttl. The certificate goes in the x5c header, which every distribution version
// checks against its rootcertbundle.
func (k *Key) Mint(subject string, access []Access, ttl time.Duration) (Token, error) {
	if ttl <= 0 {
		return Token{}, errors.New("minting registry token: ttl is not positive")
	}
	jti := make([]byte, 16)
	if _, err := rand.Read(jti); err != nil {
		return Token{}, fmt.Errorf("minting registry token: %w", err)
	}
	granted := make([]Access, 0, len(access))
	for _, a := range access {
		if len(a.Actions) > 0 {
			granted = append(granted, a)
		}
	}
	now := time.Now()
	if k.now != nil {
		now = k.now()
	}
	now = now.Truncate(time.Second)
	c := claims{
		Issuer:   Issuer,
		Subject:  subject,
		Audience: Service,
		// A second of slack for clocks of processes on other hosts of the stack.
		NotBefore: jwt.NewNumericDate(now.Add(-time.Second)),
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
		ID:        hex.EncodeToString(jti),
		Access:    granted,
	}
	t := jwt.NewWithClaims(jwt.SigningMethodES256, c)
	t.Header["x5c"] = []string{base64.StdEncoding.EncodeToString(k.certDER)}
	raw, err := t.SignedString(k.priv)
	if err != nil {
		return Token{}, fmt.Errorf("signing registry token: %w", err)
	}
	return Token{Raw: raw, IssuedAt: now, TTL: ttl}, nil
}

// Verify checks a token this key signed and answers what it grants; tests use it, the registry
// verifies on its own.
func (k *Key) Verify(raw string) ([]Access, string, error) {
	var c claims
	_, err := jwt.ParseWithClaims(raw, &c, func(*jwt.Token) (any, error) { return &k.priv.PublicKey, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodES256.Alg()}),
		jwt.WithIssuer(Issuer), jwt.WithAudience(Service), jwt.WithExpirationRequired())
	if err != nil {
		return nil, "", fmt.Errorf("verifying registry token: %w", err)
	}
	return c.Access, c.Subject, nil
}

// Response is the token service's answer (the Docker registry token protocol): token and
// access_token are the same JWT, for old and OAuth-minded clients.
type Response struct {
	Token       string `json:"token"`
	AccessToken string `json:"access_token"`
	ExpiresIn   int    `json:"expires_in"`
	IssuedAt    string `json:"issued_at"`
}

// Response is the token as the token service answers it.
func (t Token) Response() Response {
	return Response{Token: t.Raw, AccessToken: t.Raw, ExpiresIn: int(t.TTL / time.Second),
		IssuedAt: t.IssuedAt.UTC().Format(time.RFC3339)}
}

// TokenPath is the gateway's token service route; the registry's realm points at it.
const TokenPath = "/auth/registry/token"
