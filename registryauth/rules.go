package registryauth

import (
	"slices"
	"strings"
)

// BaseNamespace holds the base images (library/busybox) that anyone signed in may pull, and
// that only the site admin may push. `FROM busybox` reads it through buildkitd's docker.io
// mirror.
const BaseNamespace = "library"

// Roles as the store names them.
const (
	RoleRead  = "read"
	RoleWrite = "write"
	RoleAdmin = "admin"
)

// Rules answer which actions on one resource are allowed; Grant intersects them with what a
// request asks for.
type Rules func(resource Access) []string

// Grant is what a token for requested carries under rules: for each resource, the requested
// actions the rules allow; resources with none left are dropped.
func Grant(requested []Access, rules Rules) []Access {
	var out []Access
	for _, r := range requested {
		allowed := rules(r)
		var got []string
		for _, a := range r.Actions {
			if slices.Contains(allowed, a) || slices.Contains(allowed, "*") {
				got = append(got, a)
			}
		}
		if len(got) > 0 {
			out = append(out, Access{Type: r.Type, Name: r.Name, Actions: got})
		}
	}
	return out
}

// Denied lists the requested scopes (resource and actions) that granted does not hold.
func Denied(requested, granted []Access) []Access {
	var out []Access
	for _, r := range requested {
		var missing []string
		for _, a := range r.Actions {
			i := slices.IndexFunc(granted, func(g Access) bool { return g.Type == r.Type && g.Name == r.Name })
			if i < 0 || !slices.Contains(granted[i].Actions, a) {
				missing = append(missing, a)
			}
		}
		if len(missing) > 0 {
			out = append(out, Access{Type: r.Type, Name: r.Name, Actions: missing})
		}
	}
	return out
}

// namespaceOf is the first path segment of a repository name ("demo" of "demo/app"), or ""
// when the name has a single segment, which no namespace owns.
func namespaceOf(repo string) string {
	ns, rest, ok := strings.Cut(repo, "/")
	if !ok || ns == "" || rest == "" {
		return ""
	}
	return ns
}

// UserRules are the rules of a user's token: the site admin (the operator) may do anything,
// the catalog included; others pull the base images, pull in namespaces where they are
// members, and push where they hold write (or admin). role answers the user's role in a
// namespace, "" for none.
func UserRules(siteAdmin bool, role func(namespace string) string) Rules {
	return func(r Access) []string {
		if siteAdmin {
			return []string{"*"}
		}
		if r.Type != "repository" {
			return nil
		}
		ns := namespaceOf(r.Name)
		switch {
		case ns == "":
			return nil
		case ns == BaseNamespace:
			return []string{Pull}
		}
		switch role(ns) {
		case RoleRead:
			return []string{Pull}
		case RoleWrite, RoleAdmin:
			return []string{Pull, Push}
		}
		return nil
	}
}

// BuildRules are the rules of one build of image repository namespace/repository: pull and
// push on its own repository (its registry cache is a tag of it, or a repository below it),
// pull anywhere in its own namespace and of the base images, nothing else.
func BuildRules(namespace, repository string) Rules {
	own := namespace + "/" + repository
	return func(r Access) []string {
		if r.Type != "repository" || namespace == "" || repository == "" {
			return nil
		}
		switch ns := namespaceOf(r.Name); {
		case r.Name == own || strings.HasPrefix(r.Name, own+"/"):
			return []string{Pull, Push}
		case ns == namespace, ns == BaseNamespace:
			return []string{Pull}
		}
		return nil
	}
}

// RegistryConfig is the `auth:` section of a distribution registry config that makes it
// trust tokens of the key whose certificate is at certPath, sending clients to realm for them.
func RegistryConfig(realm, certPath string) string {
	return "auth:\n  token:\n" +
		"    realm: " + quote(realm) + "\n" +
		"    service: " + quote(Service) + "\n" +
		"    issuer: " + quote(Issuer) + "\n" +
		"    rootcertbundle: " + quote(certPath) + "\n"
}

// quote makes s a YAML double-quoted scalar.
func quote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}
