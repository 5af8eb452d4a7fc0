package activities

import (
	"fmt"
)

// RevisionLabel is the image config label that records the commit an image was built from.
// The build step sets it; the push step reads it back from a tag's current image to decide
// whether moving the tag would move it backwards.
const RevisionLabel = "org.opencontainers.image.revision"

// TagOrder is what is known, at push time, about a mutable tag's current image and the
// build's commit.
type TagOrder struct {
	// Exists says the tag exists in the registry.
	Exists bool
	// Current is the commit the tag's image records in RevisionLabel; empty when it records
	// none (built before Slipway recorded it, or pushed by other means).
	Current string
	// Build is the commit the build is pushing.
	Build string
	// CurrentIsAncestor says Current is an ancestor of Build (Build is newer).
	CurrentIsAncestor bool
	// BuildIsAncestor says Build is an ancestor of Current (Build is older).
	BuildIsAncestor bool
	// CurrentOnRef says Current was found in the ref's history as it is now.
	CurrentOnRef bool
}

// MoveTag decides whether a mutable tag may move to the build's commit, and why not:
//   - a tag that does not exist yet, or whose image records no revision, moves: there is no
//     order to keep (images pushed before revisions were recorded would otherwise hold the
//     tag forever);
//   - the same commit moves (a rebuild of the commit the tag carries);
//   - a build whose commit descends from the tag's moves;
//   - a build whose commit is an ancestor of the tag's is older: held;
//   - a commit unrelated to the tag's (neither descends from the other) is held while the
//     tag's commit is still on the ref: moving would drop history the ref still has (two
//     sides of a merge, or a stale build racing a newer one). When the tag's commit is no
//     longer on the ref (the branch was force-pushed, or the tag came from another ref), the
//     ref has left it behind and the tag follows the ref: it moves.
func MoveTag(o TagOrder) (move bool, reason string) {
	switch {
	case !o.Exists:
		return true, "new tag"
	case o.Current == "":
		return true, "the tag's image records no revision"
	case o.Current == o.Build:
		return true, "same commit"
	case o.CurrentIsAncestor:
		return true, "newer than " + o.Current
	case o.BuildIsAncestor:
		return false, fmt.Sprintf("the tag carries %s, which is newer than %s", o.Current, o.Build)
	case o.CurrentOnRef:
		return false, fmt.Sprintf("the tag carries %s, which is on the ref but not an ancestor of %s", o.Current, o.Build)
	}
	return true, fmt.Sprintf("the tag's commit %s is no longer on the ref", o.Current)
}
