package console

import (
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/slipway-dev/slipway/store"
)

// listSecrets is the build secrets of namespace ns, names and who set them when: the API
// never answers a value, so the page cannot show one.
func (cn *Console) listSecrets(c *gin.Context, ns string) ([]store.Secret, error) {
	var out struct {
		Secrets []store.Secret `json:"secrets"`
	}
	if err := cn.call(c, http.MethodGet, "/namespaces/"+esc(ns)+"/secrets", nil, nil, &out); err != nil {
		return nil, err
	}
	return out.Secrets, nil
}

// setSecret creates or replaces a build secret, as the API's PUT does (writers).
func (cn *Console) setSecret(c *gin.Context) {
	name := strings.TrimSpace(c.PostForm("name"))
	cn.afterSettings(c, cn.call(c, http.MethodPut, "/namespaces/"+esc(c.Param("ns"))+"/secrets/"+esc(name), nil,
		map[string]string{"value": c.PostForm("value")}, nil))
}

// removeSecret deletes a build secret (admins).
func (cn *Console) removeSecret(c *gin.Context) {
	cn.afterSettings(c, cn.call(c, http.MethodDelete, "/namespaces/"+esc(c.Param("ns"))+"/secrets/"+esc(c.Param("name")), nil, nil, nil))
}
