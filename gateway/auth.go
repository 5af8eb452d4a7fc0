package gateway

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/slipway-dev/slipway/registryauth"
	"github.com/slipway-dev/slipway/store"
)

// Keys of what authenticate leaves in the gin context.
const (
	ctxUser     = "slipway.user"
	ctxUserName = "slipway.user_name"
)

// authenticate resolves the bearer token to a user, or answers 401.
func (a *Server) authenticate(c *gin.Context) {
	token := bearer(c.GetHeader("Authorization"))
	if token == "" {
		c.Header("WWW-Authenticate", `Bearer realm="slipway"`)
		fail(c, http.StatusUnauthorized, "missing bearer token")
		return
	}
	u, err := a.store.UserByToken(c.Request.Context(), token)
	if errors.Is(err, store.ErrNotFound) {
		c.Header("WWW-Authenticate", `Bearer realm="slipway", error="invalid_token"`)
		fail(c, http.StatusUnauthorized, "invalid token")
		return
	}
	if err != nil {
		a.internal(c, "checking token", err)
		return
	}
	u = a.touchToken(c.Request.Context(), u)
	c.Set(ctxUser, u)
	c.Set(ctxUserName, u.Name)
	c.Next()
}

func user(c *gin.Context) store.User {
	u, _ := c.Get(ctxUser)
	return u.(store.User)
}

// requireRole lets a request on, into namespace :ns, only when its caller holds need there.
// A caller with no role there gets 404, as if the namespace did not exist, so names do not
// leak; a role too weak gets 403. Site admins hold every role everywhere.
func (a *Server) requireRole(need store.Role) gin.HandlerFunc {
	return func(c *gin.Context) {
		ns := c.Param("ns")
		if code, msg := a.access(c, ns, need); code != 0 {
			fail(c, code, msg)
			return
		}
		c.Next()
	}
}

// access is requireRole without the answer: 0 when the caller holds need in ns, else the status
// and message to fail with, so a caller that names the resource differently (a build, not its
// namespace) can say so in the one answer it writes.
func (a *Server) access(c *gin.Context, ns string, need store.Role) (int, string) {
	u := user(c)
	if u.SiteAdmin {
		_, err := a.store.GetNamespace(c.Request.Context(), ns)
		switch {
		case errors.Is(err, store.ErrNotFound):
			return http.StatusNotFound, fmt.Sprintf("namespace %q not found", ns)
		case err != nil:
			a.logger.Error("checking namespace", "error", err, "path", c.FullPath())
			return http.StatusInternalServerError, "database error"
		}
		return 0, ""
	}
	role, err := a.store.MemberRole(c.Request.Context(), ns, u.ID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		a.logger.Error("checking role", "error", err, "path", c.FullPath())
		return http.StatusInternalServerError, "checking role"
	}
	if role == "" {
		return http.StatusNotFound, fmt.Sprintf("namespace %q not found", ns)
	}
	if !role.Allows(need) {
		return http.StatusForbidden, fmt.Sprintf("this needs the %s role in namespace %q; you have %s", need, ns, role)
	}
	return 0, ""
}

// storeError maps the store's errors to answers.
func (a *Server) storeError(c *gin.Context, what string, err error) {
	switch {
	case errors.Is(err, store.ErrNotFound):
		fail(c, http.StatusNotFound, what+" not found")
	case errors.Is(err, store.ErrConflict):
		fail(c, http.StatusConflict, what+" already exists")
	case errors.Is(err, store.ErrInvalid):
		fail(c, http.StatusBadRequest, err.Error())
	default:
		a.internal(c, "database error", err)
	}
}

// bindJSON decodes a bounded JSON body strictly: unknown fields are an error, so a typo in a
// field name is reported instead of silently ignored.
func bindJSON(c *gin.Context, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(c.Writer, c.Request.Body, maxAPIBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var tooBig *http.MaxBytesError
		switch {
		case errors.As(err, &tooBig):
			fail(c, http.StatusRequestEntityTooLarge, "body too large")
		case errors.Is(err, io.EOF):
			fail(c, http.StatusBadRequest, "empty body; want a JSON object")
		default:
			fail(c, http.StatusBadRequest, "bad JSON body: "+err.Error())
		}
		return false
	}
	// One JSON value is the whole body: anything after it is a client bug worth saying.
	if dec.More() {
		fail(c, http.StatusBadRequest, "bad JSON body: data after the JSON object")
		return false
	}
	return true
}

type nameBody struct {
	Name string `json:"name"`
}

func (a *Server) createUser(c *gin.Context) {
	if !user(c).SiteAdmin {
		fail(c, http.StatusForbidden, "only the site admin creates users")
		return
	}
	var body nameBody
	if !bindJSON(c, &body) {
		return
	}
	u, token, err := a.store.CreateUser(c.Request.Context(), body.Name, false)
	if err != nil {
		a.storeError(c, fmt.Sprintf("user %q", body.Name), err)
		return
	}
	c.JSON(http.StatusCreated, gin.H{"name": u.Name, "token": token})
}

func (a *Server) createNamespace(c *gin.Context) {
	if !a.checkCreator(c) {
		return
	}
	var body nameBody
	if !bindJSON(c, &body) {
		return
	}
	if body.Name == registryauth.BaseNamespace {
		// Its registry repositories are the base images every user pulls.
		fail(c, http.StatusBadRequest, fmt.Sprintf("namespace name %q is reserved for base images", body.Name))
		return
	}
	ns, err := a.store.CreateNamespace(c.Request.Context(), body.Name, user(c).ID)
	if err != nil {
		a.storeError(c, fmt.Sprintf("namespace %q", body.Name), err)
		return
	}
	c.JSON(http.StatusCreated, gin.H{"name": ns.Name, "created_at": ns.CreatedAt, "role": store.RoleAdmin})
}

func (a *Server) setMember(c *gin.Context) {
	ns, name := c.Param("ns"), c.Param("user")
	var body struct {
		Role store.Role `json:"role"`
	}
	if !bindJSON(c, &body) {
		return
	}
	if !body.Role.Valid() {
		fail(c, http.StatusBadRequest, fmt.Sprintf("role %q is not read, write or admin", body.Role))
		return
	}
	if err := a.store.SetMember(c.Request.Context(), ns, name, body.Role); err != nil {
		a.memberError(c, ns, name, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"namespace": ns, "user": name, "role": body.Role})
}

// repositoryView is an image repository as the API shows it.
type repositoryView struct {
	Namespace string    `json:"namespace"`
	Name      string    `json:"name"`
	Image     string    `json:"image"`
	CreatedAt time.Time `json:"created_at"`
}

func (a *Server) repoView(r store.Repository) repositoryView {
	return repositoryView{Namespace: r.Namespace, Name: r.Name, Image: a.image(r.Namespace, r.Name), CreatedAt: r.CreatedAt}
}

// image is the registry repository builds of ns/name push to.
func (a *Server) image(ns, name string) string {
	return a.cfg.Registry + "/" + ns + "/" + name
}

func (a *Server) createRepository(c *gin.Context) {
	ns := c.Param("ns")
	var body nameBody
	if !bindJSON(c, &body) {
		return
	}
	r, err := a.store.CreateRepository(c.Request.Context(), ns, body.Name)
	if err != nil {
		a.storeError(c, fmt.Sprintf("repository %q", body.Name), err)
		return
	}
	c.JSON(http.StatusCreated, a.repoView(r))
}

func (a *Server) listRepositories(c *gin.Context) {
	ns := c.Param("ns")
	rs, err := a.store.ListRepositories(c.Request.Context(), ns)
	if err != nil {
		a.storeError(c, "namespace "+ns, err)
		return
	}
	out := make([]repositoryView, 0, len(rs))
	for _, r := range rs {
		out = append(out, a.repoView(r))
	}
	c.JSON(http.StatusOK, gin.H{"repositories": out})
}
