package activities

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/slipway-dev/slipway/build"
)

// ResolveInput names the paths to check inside a build's checkout.
type ResolveInput struct {
	Workspace      string `json:"workspace"`
	DockerfilePath string `json:"dockerfile_path"`
	ContextPath    string `json:"context_path"`
}

// ResolveResult holds the checked paths, relative to the repository root and cleaned.
type ResolveResult struct {
	DockerfilePath string `json:"dockerfile_path"`
	ContextPath    string `json:"context_path"`
}

// ResolveDockerfile checks that the Dockerfile and the build context lie inside the checkout.
func (a *Activities) ResolveDockerfile(ctx context.Context, in ResolveInput) (ResolveResult, error) {
	root, err := a.checkout(in.Workspace)
	if err != nil {
		return ResolveResult{}, err
	}
	res, err := ResolvePaths(root, in.DockerfilePath, in.ContextPath)
	if err != nil {
		return ResolveResult{}, err
	}
	activity.GetLogger(ctx).Info("resolved paths", "dockerfile", res.DockerfilePath, "context", res.ContextPath)
	return res, nil
}

// ResolvePaths checks a Dockerfile path and a context path against the checkout at root. Both
// are relative to root; an absolute path, a path that climbs out with "..", a symlink that
// leads out, a path into .git, or a missing file is refused with the offending path named.
func ResolvePaths(root, dockerfile, contextPath string) (ResolveResult, error) {
	if dockerfile == "" {
		dockerfile = build.DefaultDockerfile
	}
	if contextPath == "" {
		contextPath = "."
	}
	df, err := resolveInside(root, dockerfile, "dockerfile_path")
	if err != nil {
		return ResolveResult{}, err
	}
	cx, err := resolveInside(root, contextPath, "context_path")
	if err != nil {
		return ResolveResult{}, err
	}
	fi, err := os.Stat(filepath.Join(root, df))
	switch {
	case errors.Is(err, os.ErrNotExist):
		return ResolveResult{}, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("dockerfile_path %q: no such file in the repository%s", dockerfile, caseHint(root, df)),
			build.ErrTypeDockerfileNotFound, nil)
	case err != nil:
		return ResolveResult{}, fmt.Errorf("checking dockerfile_path %q: %w", dockerfile, err)
	case !fi.Mode().IsRegular():
		return ResolveResult{}, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("dockerfile_path %q is not a regular file", dockerfile), build.ErrTypeInvalidPath, nil)
	}
	fi, err = os.Stat(filepath.Join(root, cx))
	switch {
	case errors.Is(err, os.ErrNotExist):
		return ResolveResult{}, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("context_path %q: no such folder in the repository", contextPath), build.ErrTypeInvalidPath, nil)
	case err != nil:
		return ResolveResult{}, fmt.Errorf("checking context_path %q: %w", contextPath, err)
	case !fi.IsDir():
		return ResolveResult{}, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("context_path %q is not a folder", contextPath), build.ErrTypeInvalidPath, nil)
	}
	return ResolveResult{DockerfilePath: df, ContextPath: cx}, nil
}

// resolveInside cleans p and follows its symlinks, refusing any that lead out of root.
func resolveInside(root, p, field string) (string, error) {
	c, err := build.CleanPath(p, field)
	if err != nil {
		return "", build.ApplicationError(err)
	}
	realRoot, err := filepath.EvalSymlinks(root)
	if err != nil {
		return "", fmt.Errorf("resolving checkout %s: %w", root, err)
	}
	real, err := filepath.EvalSymlinks(filepath.Join(realRoot, c))
	if errors.Is(err, os.ErrNotExist) {
		return c, nil // reported as missing by the caller, with a better message
	}
	if err != nil {
		return "", temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("%s %q cannot be resolved: %v", field, p, err), build.ErrTypeInvalidPath, nil)
	}
	rel, err := filepath.Rel(realRoot, real)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return "", temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("%s %q is a symlink that leads out of the repository", field, p), build.ErrTypeInvalidPath, nil)
	}
	// CleanPath saw only the path as given; a symlink can still lead into .git.
	if rel == ".git" || strings.HasPrefix(rel, ".git/") {
		return "", temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("%s %q is a symlink that points into .git", field, p), build.ErrTypeInvalidPath, nil)
	}
	return rel, nil
}

// caseHint names a file that differs from the wanted one only by case, since "dockerfile" for
// "Dockerfile" is the commonest cause of a missing Dockerfile.
func caseHint(root, rel string) string {
	entries, err := os.ReadDir(filepath.Join(root, filepath.Dir(rel)))
	if err != nil {
		return ""
	}
	base := filepath.Base(rel)
	for _, e := range entries {
		if e.Name() != base && strings.EqualFold(e.Name(), base) {
			return fmt.Sprintf(" (found %q: names are case-sensitive)", filepath.Join(filepath.Dir(rel), e.Name()))
		}
	}
	return ""
}
