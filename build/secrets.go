package build

import (
	"errors"
	"fmt"
	"regexp"
)

// Limits of a namespace's build secrets. A value is a credential or a small key file, not a
// payload: BuildKit hands it to a RUN step through a tmpfs file, and every build of the rule
// reads it from the database.
const (
	// MaxSecretNameLen bounds a secret's name.
	MaxSecretNameLen = 128
	// MaxSecretValueLen bounds a secret's value, in bytes.
	MaxSecretValueLen = 64 << 10
	// MaxRuleSecrets bounds how many secrets one rule's builds get.
	MaxRuleSecrets = 32
)

// ErrTypeSecretMissing says a build names a secret its namespace no longer holds (it was
// deleted after the rule was saved): no retry brings it back.
const ErrTypeSecretMissing = "SecretMissing"

// ErrUnknownSecret is what a secret resolver wraps when a build names a secret its namespace
// does not hold.
var ErrUnknownSecret = errors.New("secret not found")

// secretName is an environment variable's name: what `RUN --mount=type=secret,id=NAME,env=NAME`
// can export, and a plain file name under /run/secrets.
var secretName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// CheckSecretName refuses a secret name that is not an environment variable's name (letters,
// digits and "_", not starting with a digit) or is longer than MaxSecretNameLen.
func CheckSecretName(name string) error {
	if len(name) > MaxSecretNameLen {
		return fmt.Errorf("secret name %.32q... is %d bytes long; at most %d", name, len(name), MaxSecretNameLen)
	}
	if !secretName.MatchString(name) {
		return fmt.Errorf("secret name %q is not an environment variable name (letters, digits and _, not starting with a digit)", name)
	}
	return nil
}

// CheckSecrets refuses a list of secret names a build cannot be given: a bad name, a name
// given twice, or more than MaxRuleSecrets. The names are what travel in a build's input;
// the values never do.
func CheckSecrets(names []string) error {
	if len(names) > MaxRuleSecrets {
		return invalid("secrets", "secrets: %d names; at most %d", len(names), MaxRuleSecrets)
	}
	seen := map[string]bool{}
	for _, n := range names {
		if err := CheckSecretName(n); err != nil {
			return invalid("secrets", "secrets: %v", err)
		}
		if seen[n] {
			return invalid("secrets", "secrets: %q is named twice", n)
		}
		seen[n] = true
	}
	return nil
}
