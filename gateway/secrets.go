package gateway

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/slipway-dev/slipway/build"
)

// secretBody is a build secret's value as a writer sets it. The value is never answered,
// logged or shown again.
type secretBody struct {
	Value *string `json:"value"`
}

// putSecret creates or replaces a build secret of the namespace: 201 when created, 200 when
// replaced, with the name and times only.
func (a *Server) putSecret(c *gin.Context) {
	ns, name := c.Param("ns"), c.Param("name")
	if err := build.CheckSecretName(name); err != nil {
		fail(c, http.StatusBadRequest, err.Error())
		return
	}
	var body secretBody
	if !bindJSON(c, &body) {
		return
	}
	switch {
	case body.Value == nil:
		fail(c, http.StatusBadRequest, "value is required")
		return
	case *body.Value == "":
		fail(c, http.StatusBadRequest, "value is empty")
		return
	case len(*body.Value) > build.MaxSecretValueLen:
		fail(c, http.StatusBadRequest, fmt.Sprintf("value is %d bytes long; at most %d", len(*body.Value), build.MaxSecretValueLen))
		return
	}
	sc, created, err := a.store.PutSecret(c.Request.Context(), ns, name, []byte(*body.Value), user(c).Name)
	if err != nil {
		a.storeError(c, fmt.Sprintf("namespace %q", ns), err)
		return
	}
	code := http.StatusOK
	if created {
		code = http.StatusCreated
	}
	c.JSON(code, sc)
}

// listSecrets lists the namespace's build secrets: names and who set them when, never values.
func (a *Server) listSecrets(c *gin.Context) {
	ns := c.Param("ns")
	list, err := a.store.ListSecrets(c.Request.Context(), ns)
	if err != nil {
		a.storeError(c, fmt.Sprintf("namespace %q", ns), err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"secrets": list})
}

// deleteSecret removes a build secret. Rules naming it keep the name; their builds fail at
// the build step, naming it, until it is set again or the rule drops it.
func (a *Server) deleteSecret(c *gin.Context) {
	ns, name := c.Param("ns"), c.Param("name")
	if err := a.store.DeleteSecret(c.Request.Context(), ns, name); err != nil {
		a.storeError(c, fmt.Sprintf("secret %q", name), err)
		return
	}
	c.Status(http.StatusNoContent)
}

// checkRuleSecrets refuses a rule naming a secret its namespace does not hold, naming it.
func (a *Server) checkRuleSecrets(c *gin.Context, ns string, b ruleBody) bool {
	missing, err := a.store.MissingSecrets(c.Request.Context(), ns, b.Secrets)
	if err != nil {
		a.storeError(c, fmt.Sprintf("namespace %q", ns), err)
		return false
	}
	if len(missing) > 0 {
		fail(c, http.StatusBadRequest, fmt.Sprintf("secrets: namespace %q has no secret %s; set it first (PUT /api/v1/namespaces/%s/secrets/NAME)",
			ns, strings.Join(missing, ", "), ns))
		return false
	}
	return true
}

// secretsRoutes adds the build secrets of a namespace: writers set them, readers list their
// names, admins delete them.
func (a *Server) secretsRoutes(read, write, admin gin.IRoutes) {
	read.GET("/secrets", a.listSecrets)
	write.PUT("/secrets/:name", a.putSecret)
	admin.DELETE("/secrets/:name", a.deleteSecret)
}

// ruleSecrets is the rule's secrets as the rule's body gives them: no field means none.
func ruleSecrets(names []string) []string {
	if names == nil {
		return []string{}
	}
	return names
}
