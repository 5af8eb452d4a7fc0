package activities

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"go.temporal.io/sdk/temporal"

	"github.com/slipway-dev/slipway/build"
)

// contextRoot is the folder a build's mounts are opened on: the checkout itself, or the git
// cache's slot its link points at. A slot gets a shared key naming it to BuildKit, which keeps
// the snapshot of each local mount under "NAME:HINT:SHAREDKEY" and, on the next solve with the
// same key, receives only the files whose size or modification time changed (fsutil's diff
// copy): the slot's checkout keeps unchanged files' times, so that is only what the commit
// changed. A workspace's own checkout gets none, as before: a key per build would only leave
// BuildKit one more snapshot to collect.
func (a *Activities) contextRoot(link string) (root, sharedKey string, err error) {
	if a.Sources == nil {
		return link, "", nil
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		return link, "", nil
	}
	root, err = filepath.EvalSymlinks(link)
	if err != nil {
		return "", "", fmt.Errorf("resolving checkout: %w", err)
	}
	cache, err := filepath.EvalSymlinks(a.Sources.Dir)
	if err != nil {
		return "", "", fmt.Errorf("resolving git cache: %w", err)
	}
	rel, err := filepath.Rel(cache, root)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		// Only Clone makes the link, and only into the cache.
		return "", "", temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("checkout %s links out of the git cache", link), build.ErrTypeWorkspaceLost, nil)
	}
	sum := sha256.Sum256([]byte(root))
	return root, "slipway-slot-" + hex.EncodeToString(sum[:16]), nil
}
