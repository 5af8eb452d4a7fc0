package console

import (
	"net/http"

	"github.com/gin-gonic/gin"
)

// OAuthConfig is the OAuth apps "Connect GitHub/GitLab" authorizes with.
type OAuthConfig struct {
	GitHub, GitLab OAuthApp
}

// OAuthApp is one provider's OAuth application.
type OAuthApp struct {
	ClientID, ClientSecret string
	// BaseURL is the provider's web address (https://github.com, a GitHub Enterprise or a
	// self-managed GitLab).
	BaseURL string
}

// providers lists the providers with an app configured.
func (o OAuthConfig) providers() []string {
	var out []string
	if o.GitHub.ClientID != "" {
		out = append(out, "github")
	}
	if o.GitLab.ClientID != "" {
		out = append(out, "gitlab")
	}
	return out
}

func (cn *Console) oauthStart(c *gin.Context) {
	cn.renderError(c, http.StatusNotFound, cn.lang(c).T("error.not_found"))
}

func (cn *Console) oauthCallback(c *gin.Context) {
	cn.renderError(c, http.StatusNotFound, cn.lang(c).T("error.not_found"))
}
