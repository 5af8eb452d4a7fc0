package accounts

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/slipway-dev/slipway/build"
	"github.com/slipway-dev/slipway/store"
)

// SecretValues opens the build secrets names of namespace ns for the build step (the worker's
// activities.Secrets). Names the namespace does not hold are an error wrapping
// build.ErrUnknownSecret that names them, never a value.
func (r *Resolver) SecretValues(ctx context.Context, ns string, names []string) (map[string][]byte, error) {
	missing, err := r.store.MissingSecrets(ctx, ns, names)
	if err != nil {
		return nil, err
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("namespace %s has no secret %s: %w", ns, strings.Join(missing, ", "), build.ErrUnknownSecret)
	}
	values, err := r.store.SecretValues(ctx, ns, names)
	if errors.Is(err, store.ErrNotFound) {
		// Deleted since the look above.
		return nil, fmt.Errorf("%w: %w", build.ErrUnknownSecret, err)
	}
	return values, err
}
