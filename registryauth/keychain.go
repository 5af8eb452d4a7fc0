package registryauth

import (
	"fmt"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
)

// operatorTTL bounds the tokens of OperatorKeychain: long enough for a push of a large image.
const operatorTTL = time.Hour

// OperatorKeychain gives go-containerregistry a token, minted with the key, for every
// repository of registry: pull, push and delete for the operator's own tools (seeding base
// images, tests, benchmarks, the gateway deleting a repository's images), which hold the key
// anyway. Other registries get anonymous access.
func OperatorKeychain(k *Key, registry string) authn.Keychain {
	return operatorKeychain{key: k, registry: registry}
}

type operatorKeychain struct {
	key      *Key
	registry string
}

func (o operatorKeychain) Resolve(target authn.Resource) (authn.Authenticator, error) {
	if target.RegistryStr() != o.registry {
		return authn.Anonymous, nil
	}
	access := []Access{{Type: "registry", Name: "catalog", Actions: []string{"*"}}}
	if repo, ok := target.(name.Repository); ok {
		access = []Access{{Type: "repository", Name: repo.RepositoryStr(), Actions: []string{Pull, Push, "delete"}}}
	}
	return RepositoryAuth(o.key, "operator", access, operatorTTL)
}

// RepositoryAuth is an authenticator presenting one token minted for access: the worker pushes
// a build's image with one for that image's repository alone.
func RepositoryAuth(k *Key, subject string, access []Access, ttl time.Duration) (authn.Authenticator, error) {
	tok, err := k.Mint(subject, access, ttl)
	if err != nil {
		return nil, fmt.Errorf("minting registry token for %s: %w", subject, err)
	}
	return &authn.Bearer{Token: tok.Raw}, nil
}
