package console

import (
	"errors"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/slipway-dev/slipway/store"
)

type settingsData struct {
	NS       string
	Access   access
	Members  []store.Member
	Accounts []account
	Roles    []store.Role
	Error    string
	OAuth    []string
}

// CanOAuth reports whether provider has an OAuth app, for a Reconnect by OAuth.
func (d settingsData) CanOAuth(provider string) bool {
	for _, p := range d.OAuth {
		if p == provider {
			return true
		}
	}
	return false
}

func (cn *Console) settingsPage(c *gin.Context) { cn.showSettings(c, http.StatusOK, "") }

// showSettings is the namespace's members and connected accounts, for its admins.
func (cn *Console) showSettings(c *gin.Context, code int, msg string) {
	ns := c.Param("ns")
	acc, ok := cn.requireRole(c, ns, store.RoleAdmin)
	if !ok {
		return
	}
	d := settingsData{NS: ns, Access: acc, Roles: []store.Role{store.RoleRead, store.RoleWrite, store.RoleAdmin},
		Error: msg, OAuth: cn.d.OAuth.providers()}
	var ms struct {
		Members []store.Member `json:"members"`
	}
	if err := cn.call(c, http.MethodGet, "/namespaces/"+esc(ns)+"/members", nil, nil, &ms); err != nil {
		cn.fail(c, err)
		return
	}
	d.Members = ms.Members
	var as struct {
		Accounts []account `json:"accounts"`
	}
	if err := cn.call(c, http.MethodGet, "/namespaces/"+esc(ns)+"/accounts", nil, nil, &as); err != nil {
		cn.fail(c, err)
		return
	}
	d.Accounts = as.Accounts
	cn.render(c, code, "settings", page{Title: "nav.settings", Crumbs: nsCrumbs(ns), Tab: "settings", Data: d})
}

// afterSettings shows a 400 or 409 of the API on the settings page and goes back to it
// otherwise.
func (cn *Console) afterSettings(c *gin.Context, err error) {
	var ae *apiError
	if errors.As(err, &ae) && (ae.Status == http.StatusBadRequest || ae.Status == http.StatusConflict ||
		ae.Status == http.StatusBadGateway || ae.Status == http.StatusUnprocessableEntity) {
		cn.showSettings(c, ae.Status, ae.Message)
		return
	}
	if err != nil {
		cn.fail(c, err)
		return
	}
	c.Redirect(http.StatusSeeOther, "/ns/"+esc(c.Param("ns"))+"/settings")
}

func (cn *Console) setMember(c *gin.Context) {
	user := strings.TrimSpace(c.PostForm("user"))
	cn.afterSettings(c, cn.call(c, http.MethodPut, "/namespaces/"+esc(c.Param("ns"))+"/members/"+esc(user), nil,
		map[string]string{"role": c.PostForm("role")}, nil))
}

func (cn *Console) removeMember(c *gin.Context) {
	cn.afterSettings(c, cn.call(c, http.MethodDelete, "/namespaces/"+esc(c.Param("ns"))+"/members/"+esc(c.Param("user")), nil, nil, nil))
}

// connectAccount connects an account with a pasted token, as the API does.
func (cn *Console) connectAccount(c *gin.Context) {
	cn.afterSettings(c, cn.call(c, http.MethodPost, "/namespaces/"+esc(c.Param("ns"))+"/accounts", nil,
		map[string]string{"provider": c.PostForm("provider"), "token": strings.TrimSpace(c.PostForm("token"))}, nil))
}

// reconnectAccount gives an account a new pasted token, keeping its id.
func (cn *Console) reconnectAccount(c *gin.Context) {
	cn.afterSettings(c, cn.call(c, http.MethodPut, "/namespaces/"+esc(c.Param("ns"))+"/accounts/"+esc(c.Param("account")), nil,
		map[string]string{"token": strings.TrimSpace(c.PostForm("token"))}, nil))
}

func (cn *Console) removeAccount(c *gin.Context) {
	cn.afterSettings(c, cn.call(c, http.MethodDelete, "/namespaces/"+esc(c.Param("ns"))+"/accounts/"+esc(c.Param("account")), nil, nil, nil))
}
