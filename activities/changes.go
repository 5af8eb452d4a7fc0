package activities

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// beforePattern is a push's previous head: a SHA-1 or SHA-256 object name.
var beforePattern = regexp.MustCompile(`^(?:[0-9a-f]{40}|[0-9a-f]{64})$`)

// newRef reports whether before names no commit: a push that created its ref says all zeros.
func newRef(before string) bool { return strings.Trim(before, "0") == "" }

// changedFiles lists the files a push changed, read from git: from before to commit, before
// being found on the ref or, after a force push, fetched on its own. With no before (a new
// branch) or one the remote no longer serves, the files come from the merge-base with the
// remote's default branch; with none (or when commit is on the default branch), every file of
// commit. base names what the files are compared with, for the log and the skip reason.
func (g gitRunner) changedFiles(ctx context.Context, remote, refspec, commit, before string) (files []string, base string, err error) {
	if !newRef(before) {
		found := true
		if err := g.deepenUntil(ctx, remote, refspec, before); errors.Is(err, errNotOnRef) {
			// A force push: the old head is off the ref, and the remote may still serve it.
			found = g.run(ctx, "fetch", "--depth=1", "--no-tags", "--no-recurse-submodules", remote, before) == nil
		} else if err != nil {
			return nil, "", err
		}
		if found {
			files, err := g.diffNames(ctx, before, commit)
			return files, "commit " + before, err
		}
	}
	// Both histories, as deep as a commit is ever looked for, to find where the ref left the
	// default branch. Two fetches: one fetch of both would leave the ref's shallow boundary.
	deep := fmt.Sprintf("--depth=%d", maxDeepen)
	if err := g.run(ctx, "fetch", deep, "--no-tags", "--no-recurse-submodules", remote, refspec); err != nil {
		return nil, "", err
	}
	if err := g.run(ctx, "fetch", deep, "--no-tags", "--no-recurse-submodules", remote, "+HEAD:refs/slipway/default"); err == nil {
		if mb, err := g.output(ctx, "merge-base", commit, "refs/slipway/default"); err == nil && mb != "" && mb != commit {
			files, err := g.diffNames(ctx, mb, commit)
			return files, "the default branch (" + mb + ")", err
		}
	}
	out, err := g.output(ctx, "ls-tree", "-r", "--name-only", "-z", commit)
	if err != nil {
		return nil, "", err
	}
	return splitNUL(out), "nothing (every file of the commit)", nil
}

// diffNames lists the paths changed between two commits, renames as both names.
func (g gitRunner) diffNames(ctx context.Context, from, to string) ([]string, error) {
	out, err := g.output(ctx, "diff", "--name-only", "--no-renames", "-z", from, to)
	if err != nil {
		return nil, err
	}
	return splitNUL(out), nil
}

func splitNUL(s string) []string {
	var out []string
	for _, f := range strings.Split(s, "\x00") {
		if f != "" {
			out = append(out, f)
		}
	}
	return out
}
