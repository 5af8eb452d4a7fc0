package activities

import (
	"context"
	"fmt"
	"os"
)

// CleanupInput names the workspace to remove.
type CleanupInput struct {
	Workspace string `json:"workspace"`
}

// Cleanup removes a build's workspace: checkout (or its link into the git cache, whose slot
// it gives back) and image layout. It runs when the build ends, however it ends, so a host
// keeps no sources of finished builds outside its bounded git cache.
func (a *Activities) Cleanup(ctx context.Context, in CleanupInput) error {
	ws, err := a.workspace(in.Workspace)
	if err != nil {
		return err
	}
	if err := os.RemoveAll(ws); err != nil {
		return fmt.Errorf("removing workspace: %w", err)
	}
	if a.Sources != nil {
		// The checkout was a link into the git cache: its slot goes back to the pool.
		a.Sources.Release(ws)
	}
	return nil
}
