package console

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"time"

	"github.com/gin-gonic/gin"
)

// TagLister lists the tags of an image repository in the registry ("registry/ns/repo").
type TagLister func(ctx context.Context, image string) ([]ImageTag, error)

// ImageTag is one tag of an image repository as the registry describes it.
type ImageTag struct {
	Tag    string
	Digest string
	// Size is the compressed size of the image: its config and layers.
	Size    int64
	Created time.Time
	// BuildID is the build that pushed this digest, among the repository's recent builds.
	BuildID string
}

// SizeText is Size for people.
func (t ImageTag) SizeText() string {
	const unit = 1024
	if t.Size < unit {
		return fmt.Sprintf("%d B", t.Size)
	}
	div, exp := int64(unit), 0
	for n := t.Size / unit; n >= unit; n /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(t.Size)/float64(div), "KMGTPE"[exp])
}

type imagesData struct {
	NS, Repo string
	Image    string
	Tags     []ImageTag
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
		// Newest first; the builds that pushed each digest from the recent records.
		sort.SliceStable(tags, func(i, j int) bool { return tags[i].Created.After(tags[j].Created) })
		var recs struct {
			Builds []record `json:"builds"`
		}
		if len(tags) > 0 && cn.call(c, http.MethodGet, "/namespaces/"+esc(ns)+"/repositories/"+esc(repo)+"/builds",
			url.Values{"limit": {"100"}, "status": {"succeeded"}}, nil, &recs) == nil {
			byDigest := map[string]string{}
			for _, b := range recs.Builds {
				if _, seen := byDigest[b.Digest]; !seen && b.Digest != "" {
					byDigest[b.Digest] = b.ID
				}
			}
			for i := range tags {
				tags[i].BuildID = byDigest[tags[i].Digest]
			}
		}
		out.Tags = tags
	}
	cn.render(c, http.StatusOK, "images", page{Title: "tab.images", Crumbs: repoCrumbs(ns, repo), Tab: "images", Data: out})
}
