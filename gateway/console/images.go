package console

import (
	"context"
	"net/http"
	"sort"

	"github.com/gin-gonic/gin"
)

// TagLister lists the tags of an image repository in the registry ("registry/ns/repo").
type TagLister func(ctx context.Context, image string) ([]string, error)

type imagesData struct {
	NS, Repo string
	Image    string
	Tags     []string
	Error    string
}

// imagesPage is the repository's tags in the registry, with the docker pull line. The API's
// repository list checks the caller may read the namespace before the registry is asked.
func (cn *Console) imagesPage(c *gin.Context) {
	ns, repo := c.Param("ns"), c.Param("repo")
	d, err := cn.repositories(c, ns)
	if err != nil {
		cn.fail(c, err)
		return
	}
	out := imagesData{NS: ns, Repo: repo}
	for _, r := range d.Repositories {
		if r.Name == repo {
			out.Image = r.Image
		}
	}
	if out.Image == "" {
		cn.renderError(c, http.StatusNotFound, cn.lang(c).T("error.not_found"))
		return
	}
	if cn.d.Tags != nil {
		tags, err := cn.d.Tags(c.Request.Context(), out.Image)
		if err != nil {
			cn.d.Logger.Warn("listing tags", "image", out.Image, "error", err)
			out.Error = cn.lang(c).T("images.unavailable")
		}
		sort.Strings(tags)
		out.Tags = tags
	}
	cn.render(c, http.StatusOK, "images", page{Title: "tab.images", Crumbs: repoCrumbs(ns, repo), Tab: "images", Data: out})
}
