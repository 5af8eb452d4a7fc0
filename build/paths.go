package build

import (
	"fmt"
	"path/filepath"
	"strings"
)

// DefaultDockerfile is the Dockerfile used when a build names none: at the repository root,
// spelled exactly so (paths are case-sensitive).
const DefaultDockerfile = "Dockerfile"

// CheckPath is the part of path resolution that needs no checkout: the gateway calls it when
// a rule is saved and the workflow before it takes a host. field is the JSON name of the path
// ("dockerfile_path", "context_path").
func CheckPath(p, field string) error {
	_, err := CleanPath(p, field)
	return err
}

// CleanPath cleans a path relative to the repository root, refusing one that is absolute,
// climbs out with "..", points into .git or holds a NUL byte; the error is an *InvalidError of
// ErrTypeInvalidPath naming field. The resolve step follows the cleaned path's symlinks.
func CleanPath(p, field string) (string, error) {
	bad := func(why string) error {
		return &InvalidError{Field: field, Type: ErrTypeInvalidPath, Msg: fmt.Sprintf("%s %q %s", field, p, why)}
	}
	switch {
	case strings.ContainsRune(p, 0):
		return "", bad("holds a NUL byte")
	case filepath.IsAbs(p) || strings.HasPrefix(p, "/"):
		return "", bad("is absolute; give it relative to the repository root")
	}
	c := filepath.Clean(p)
	if c == ".." || strings.HasPrefix(c, "../") {
		return "", bad("leaves the repository")
	}
	if c == ".git" || strings.HasPrefix(c, ".git/") {
		return "", bad("points into .git")
	}
	return c, nil
}
