package build

import (
	"errors"
	"fmt"
)

// ErrAccountNotBound is what an account resolver wraps when a build asks for an account
// outside its binding: the account belongs to another namespace, or serves another provider
// than the build's source. No retry changes that.
var ErrAccountNotBound = errors.New("account is not bound to this build")

// ErrUnknownAccount is what an account resolver wraps when an account reference names no
// account (it was removed, say): no retry brings it back.
var ErrUnknownAccount = errors.New("account not found")

// AccountRef names an account together with the build that wants it. An account's token is
// lent only to a build of the account's own namespace, for a source on the account's own
// provider: the account id alone is no authority, since ids are shown to every reader of a
// namespace and anyone who can start a workflow can name one.
type AccountRef struct {
	// ID is the account's id.
	ID string
	// Namespace is the namespace of the build that uses the account.
	Namespace string
	// Provider is the provider of the build's source.
	Provider string
}

// Check refuses the account when it belongs to namespace ns and provider other than the
// build's. Its errors wrap ErrAccountNotBound and name only what the build itself said, never
// the namespace the account belongs to.
func (r AccountRef) Check(ns, provider string) error {
	if r.Namespace == "" || ns != r.Namespace {
		return fmt.Errorf("account %s is not an account of namespace %q: %w", r.ID, r.Namespace, ErrAccountNotBound)
	}
	if provider != r.Provider {
		return fmt.Errorf("account %s is a %s account and the source is on %q: %w", r.ID, provider, r.Provider, ErrAccountNotBound)
	}
	return nil
}
