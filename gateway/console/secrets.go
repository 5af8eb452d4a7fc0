package console

import (
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/slipway-dev/slipway/store"
)

// secretsData is the namespace's build secrets page. It never holds a value: the API answers
// none, and a value typed into the form is not shown again, even after a 400.
type secretsData struct {
	NS      string
	Access  access
	Secrets []store.Secret
	// Name is the form's name, kept after a 400; Set names the secret just set.
	Name  string
	Set   string
	Error string
}

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

// secretsPage lists the build secrets to readers, with the set form for writers and remove
// for admins: the roles of the API's PUT and DELETE.
func (cn *Console) secretsPage(c *gin.Context) {
	cn.showSecrets(c, http.StatusOK, secretsData{Set: c.Query("set")})
}

func (cn *Console) showSecrets(c *gin.Context, code int, d secretsData) {
	ns := c.Param("ns")
	acc, ok := cn.requireRole(c, ns, store.RoleRead)
	if !ok {
		return
	}
	secrets, err := cn.listSecrets(c, ns)
	if err != nil {
		cn.fail(c, err)
		return
	}
	d.NS, d.Access, d.Secrets = ns, acc, secrets
	cn.render(c, code, "secrets", page{Title: "nav.secrets", Crumbs: nsCrumbs(ns), Tab: "secrets", Data: d})
}

// setSecret creates or replaces a build secret, as the API's PUT does (writers). The value
// goes from the form to the API and nowhere else: the redirect names the secret only.
func (cn *Console) setSecret(c *gin.Context) {
	ns, name := c.Param("ns"), strings.TrimSpace(c.PostForm("name"))
	err := cn.call(c, http.MethodPut, "/namespaces/"+esc(ns)+"/secrets/"+esc(name), nil,
		map[string]string{"value": c.PostForm("value")}, nil)
	if cn.secretFailed(c, err, name) {
		return
	}
	c.Redirect(http.StatusSeeOther, "/ns/"+esc(ns)+"/secrets?"+url.Values{"set": {name}}.Encode())
}

// removeSecret deletes a build secret (admins).
func (cn *Console) removeSecret(c *gin.Context) {
	ns := c.Param("ns")
	err := cn.call(c, http.MethodDelete, "/namespaces/"+esc(ns)+"/secrets/"+esc(c.Param("name")), nil, nil, nil)
	if cn.secretFailed(c, err, "") {
		return
	}
	c.Redirect(http.StatusSeeOther, "/ns/"+esc(ns)+"/secrets")
}

// secretFailed answers err, when there is one: the API's 400 on the page (the name kept, the
// value not), anything else as the error page.
func (cn *Console) secretFailed(c *gin.Context, err error, name string) bool {
	var ae *apiError
	switch {
	case err == nil:
		return false
	case errors.As(err, &ae) && ae.Status == http.StatusBadRequest:
		cn.showSecrets(c, ae.Status, secretsData{Name: name, Error: ae.Message})
	default:
		cn.fail(c, err)
	}
	return true
}
