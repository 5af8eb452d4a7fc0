package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/slipway-dev/slipway/gateway/console"
)

// console is the web console over api, which it calls in process through r.
func (a *api) console(r *gin.Engine) *console.Console {
	cn, err := console.New(console.Deps{
		API: r, Store: a.store, GatewayURL: a.cfg.GatewayURL, Logger: a.logger, Tags: a.imageTags,
	})
	if err != nil {
		panic(err) // the templates are embedded: an error is a bug caught by every test
	}
	return cn
}

// imageTags lists image's tags in the registry with the operator's credentials; the console
// asks only after the API let the caller read the image's namespace.
func (a *api) imageTags(ctx context.Context, image string) ([]string, error) {
	repo, err := name.NewRepository(image, name.Insecure)
	if err != nil {
		return nil, fmt.Errorf("parsing image %q: %w", image, err)
	}
	tags, err := remote.List(repo, remote.WithContext(ctx), remote.WithAuthFromKeychain(a.registryKeychain))
	var te *transport.Error
	if errors.As(err, &te) && te.StatusCode == http.StatusNotFound {
		return nil, nil // nothing pushed yet
	}
	if err != nil {
		return nil, fmt.Errorf("listing tags of %s: %w", image, err)
	}
	return tags, nil
}
