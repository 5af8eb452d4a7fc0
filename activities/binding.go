package activities

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// ErrAccountNotBound is what an Accounts implementation wraps when a build asks for an
// account outside its binding: the account belongs to another namespace, or serves another
// provider than the build's source. No retry changes that.
var ErrAccountNotBound = errors.New("account is not bound to this build")

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

// checkOrigin refuses a remote whose scheme, host or port differ from those of base, the
// provider's configured URL: a token goes to the host its operator configured and nowhere
// else. Hosts compare without case and a missing port is the scheme's default.
func checkOrigin(remote, base string) error {
	r, err := url.Parse(remote)
	if err != nil {
		return fmt.Errorf("remote is not a URL: %w", err)
	}
	b, err := url.Parse(base)
	if err != nil || b.Host == "" {
		return fmt.Errorf("the provider's configured URL %q is not a URL", base)
	}
	rs, bs := strings.ToLower(r.Scheme), strings.ToLower(b.Scheme)
	if rs != bs || !strings.EqualFold(r.Hostname(), b.Hostname()) || originPort(r) != originPort(b) {
		return fmt.Errorf("remote %s is not on the provider's configured host %s://%s", r.Redacted(), bs, b.Host)
	}
	return nil
}

// originPort is u's port, or its scheme's default.
func originPort(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	switch strings.ToLower(u.Scheme) {
	case "http":
		return "80"
	case "https":
		return "443"
	}
	return ""
}
