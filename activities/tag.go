package activities

import (
	"context"

	"github.com/slipway-dev/slipway/build"
)

// RenderTag renders the build's tags. It is an activity, not workflow code, so that the
// rendered tags are recorded in history and a bad template fails as a step of its own.
func (a *Activities) RenderTag(_ context.Context, in build.RenderTagInput) (build.RenderTagResult, error) {
	res, err := build.RenderTags(in)
	return res, build.ApplicationError(err)
}
