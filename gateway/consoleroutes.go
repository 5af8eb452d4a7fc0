package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/gin-gonic/gin"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"golang.org/x/sync/errgroup"

	"github.com/slipway-dev/slipway/gateway/console"
	"github.com/slipway-dev/slipway/providers"
)

// console is the web console over api, which it calls in process through r.
func (a *Server) console(r *gin.Engine) *console.Console {
	cn, err := console.New(console.Deps{
		API: r, Store: a.store, GatewayURL: a.cfg.GatewayURL, Logger: a.logger, Tags: a.imageTags,
		OAuth: a.cfg.OAuthApps(), Identify: a.identify(),
	})
	if err != nil {
		panic(err) // the templates are embedded: an error is a bug caught by every test
	}
	return cn
}

// maxImageTags bounds the tags the Images tab describes: each costs the registry a manifest
// and a config read.
const maxImageTags = 100

// identify is who a provider token belongs to, through the accounts' provider clients; nil
// (no "Sign in with") when accounts are off.
func (a *Server) identify() func(context.Context, string, string) (providers.Identity, error) {
	if a.accounts == nil {
		return nil
	}
	return a.accounts.Identify
}

// imageTags lists image's tags in the registry with the operator's credentials, each with its
// digest, size and creation time; the console asks only after the API let the caller read
// the image's namespace.
func (a *Server) imageTags(ctx context.Context, image string) ([]console.ImageTag, error) {
	repo, err := name.NewRepository(image, name.Insecure)
	if err != nil {
		return nil, fmt.Errorf("parsing image %q: %w", image, err)
	}
	auth := remote.WithAuthFromKeychain(a.registryKeychain)
	tags, err := remote.List(repo, remote.WithContext(ctx), auth)
	var te *transport.Error
	if errors.As(err, &te) && te.StatusCode == http.StatusNotFound {
		return nil, nil // nothing pushed yet
	}
	if err != nil {
		return nil, fmt.Errorf("listing tags of %s: %w", image, err)
	}
	if len(tags) > maxImageTags {
		tags = tags[:maxImageTags]
	}
	out := make([]console.ImageTag, len(tags))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for i, tag := range tags {
		g.Go(func() error {
			out[i] = console.ImageTag{Tag: tag}
			img, err := remote.Image(repo.Tag(tag), remote.WithContext(gctx), auth)
			if err != nil {
				return fmt.Errorf("reading %s:%s: %w", image, tag, err)
			}
			d, err := img.Digest()
			if err != nil {
				return fmt.Errorf("reading %s:%s: %w", image, tag, err)
			}
			m, err := img.Manifest()
			if err != nil {
				return fmt.Errorf("reading %s:%s: %w", image, tag, err)
			}
			size := m.Config.Size
			for _, l := range m.Layers {
				size += l.Size
			}
			cf, err := img.ConfigFile()
			if err != nil {
				return fmt.Errorf("reading %s:%s: %w", image, tag, err)
			}
			out[i].Digest, out[i].Size, out[i].Created = d.String(), size, cf.Created.Time
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return out, nil
}

// toConsole sends a browser that opens a build's API URL without a token (the commit status
// "Details" link, a record's logs_url) to the build's console page, which signs it in and
// brings it back. Scripts, which do not ask for HTML, still get the API's 401.
func (a *Server) toConsole(c *gin.Context) bool {
	route := c.FullPath()
	if c.Request.Method != http.MethodGet || !strings.Contains(c.GetHeader("Accept"), "text/html") ||
		(route != "/api/v1/builds/:id" && route != "/api/v1/builds/:id/logs") {
		return false
	}
	c.Redirect(http.StatusSeeOther, "/builds/"+url.PathEscape(c.Param("id")))
	c.Abort()
	return true
}

// buildURLs are the console pages of builds ids, which a webhook's answer links to: a person
// reading a delivery in the provider's settings opens them.
func (a *Server) buildURLs(ids ...string) []string {
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		out = append(out, a.cfg.GatewayURL+"/builds/"+url.PathEscape(id))
	}
	return out
}
