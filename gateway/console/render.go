package console

import (
	"bytes"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
)

// page is what every template gets: the layout's parts and the page's own Data.
type page struct {
	// Title is a catalog key.
	Title string
	lang  lang
	// User is the signed-in user's name; empty on the sign-in page.
	User string
	CSRF string
	// Path is the page's own URL, where the language switch comes back to.
	Path string
	// Crumbs lead from the namespaces to the page.
	Crumbs []crumb
	// Tab is the repository tab shown ("rules", "builds", "images", "retention"), or off a
	// repository the namespace's page ("repositories", "notifications", "secrets",
	// "settings").
	Tab  string
	Data any
}

type crumb struct{ Label, Href string }

// T translates key in the page's language.
func (p page) T(key string, args ...any) string { return p.lang.T(key, args...) }

// Lang is the page's language tag, for <html lang>.
func (p page) Lang() string { return p.lang.Tag() }

// Langs lists the languages of the switch.
func (p page) Langs() []langChoice {
	var out []langChoice
	for _, l := range langOrder {
		out = append(out, langChoice{Code: l, Name: catalog[l]["lang.name"], Current: string(p.lang) == l})
	}
	return out
}

type langChoice struct {
	Code, Name string
	Current    bool
}

var funcs = template.FuncMap{
	"short": func(s string) string {
		if len(s) > 7 {
			return s[:7]
		}
		return s
	},
	"when": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format("2006-01-02 15:04:05 UTC")
	},
	"duration": func(start time.Time, end *time.Time) string {
		if start.IsZero() {
			return ""
		}
		e := time.Now()
		if end != nil {
			e = *end
		}
		return e.Sub(start).Round(time.Second).String()
	},
	"esc": esc,
}

// render writes the page template name with p, filling in what every page has.
func (cn *Console) render(c *gin.Context, code int, name string, p page) {
	t, ok := cn.pages[name]
	if !ok {
		cn.fail(c, fmt.Errorf("no template %q", name))
		return
	}
	p.lang = cn.lang(c)
	p.Path = c.Request.URL.RequestURI()
	if s := current(c); s.id != "" {
		p.User = s.User.Name
		p.CSRF = s.CSRFToken
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", p); err != nil {
		cn.fail(c, fmt.Errorf("rendering %s: %w", name, err))
		return
	}
	c.Header("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'; form-action 'self'")
	c.Header("X-Content-Type-Options", "nosniff")
	c.Header("Cache-Control", "no-store")
	c.Data(code, "text/html; charset=utf-8", buf.Bytes())
}

// renderError shows msg on an error page with status code.
func (cn *Console) renderError(c *gin.Context, code int, msg string) {
	cn.render(c, code, "error", page{Title: "error.title", Data: errorData{Code: code, Message: msg}})
}

type errorData struct {
	Code    int
	Message string
}

// fail shows an error: an API answer as it came (its status and message: 404 for a namespace
// the user is not in, 403 for a role too weak), anything else as a 500 whose cause goes to
// the log.
func (cn *Console) fail(c *gin.Context, err error) {
	var ae *apiError
	if errors.As(err, &ae) {
		cn.renderError(c, ae.Status, ae.Message)
		return
	}
	cn.d.Logger.Error("console", "error", err, "path", c.FullPath())
	cn.renderError(c, http.StatusInternalServerError, cn.lang(c).T("error.internal"))
}
