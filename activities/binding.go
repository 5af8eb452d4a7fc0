package activities

import (
	"fmt"
	"net/url"
	"strings"
)

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
