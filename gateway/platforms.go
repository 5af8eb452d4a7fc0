package gateway

import "github.com/slipway-dev/slipway/build"

// normalizeRulePlatforms refuses platforms no build could make (the 400 names the platform)
// and stores the others in the normal form images name them by, so "linux/aarch64" and
// "linux/arm64" are one rule.
func normalizeRulePlatforms(b *ruleBody) error {
	p, err := build.NormalizePlatforms(b.Platforms)
	if err != nil {
		return err
	}
	b.Platforms = p
	return nil
}
