package build

import (
	"fmt"
	"regexp"
	"strings"
)

// ErrTypePlatformUnavailable says the worker's BuildKit can build none of a platform the build
// asks for: it is not the worker's own and the worker has no emulator for it. Another try on
// the same worker cannot mend it.
const ErrTypePlatformUnavailable = "PlatformUnavailable"

// MaxPlatforms bounds a rule's platforms: each one is a whole build of the Dockerfile.
const MaxPlatforms = 8

// platformPart is one part of a platform as containerd's platforms.Parse accepts it.
var platformPart = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)

// knownOS and knownArch are the names containerd's platform matching knows (its
// platforms/database.go): a platform outside them matches no image of any registry.
var (
	knownOS = map[string]bool{"aix": true, "android": true, "darwin": true, "dragonfly": true, "freebsd": true,
		"hurd": true, "illumos": true, "ios": true, "js": true, "linux": true, "nacl": true, "netbsd": true,
		"openbsd": true, "plan9": true, "solaris": true, "windows": true, "zos": true}
	knownArch = map[string]bool{"386": true, "amd64": true, "amd64p32": true, "arm": true, "armbe": true,
		"arm64": true, "arm64be": true, "ppc64": true, "ppc64le": true, "loong64": true, "mips": true,
		"mipsle": true, "mips64": true, "mips64le": true, "mips64p32": true, "mips64p32le": true, "ppc": true,
		"riscv": true, "riscv64": true, "s390": true, "s390x": true, "sparc": true, "sparc64": true, "wasm": true}
)

// ParsePlatform reads one platform as "OS/ARCH" or "OS/ARCH/VARIANT" (containerd's syntax,
// with the OS always named so a rule means the same on every worker) and returns it in
// containerd's normal form: lowercase, with the aliases Docker users write spelled as images
// name them ("linux/x86_64" is "linux/amd64", "linux/aarch64" "linux/arm64", "linux/arm"
// "linux/arm/v7").
func ParsePlatform(s string) (string, error) {
	parts := strings.Split(strings.TrimSpace(s), "/")
	if len(parts) < 2 || len(parts) > 3 {
		return "", fmt.Errorf("platform %q is not OS/ARCH or OS/ARCH/VARIANT, such as linux/arm64", s)
	}
	for _, p := range parts {
		if !platformPart.MatchString(p) {
			return "", fmt.Errorf("platform %q has an empty part or a character outside letters, digits, '_', '.' and '-'", s)
		}
	}
	osName := strings.ToLower(parts[0])
	if osName == "macos" {
		osName = "darwin"
	}
	variant := ""
	if len(parts) == 3 {
		variant = parts[2]
	}
	arch, variant := normalizeArch(parts[1], variant)
	if !knownOS[osName] {
		return "", fmt.Errorf("platform %q: %q is no operating system an image names (linux, windows, ...)", s, parts[0])
	}
	if !knownArch[arch] {
		return "", fmt.Errorf("platform %q: %q is no architecture an image names (amd64, arm64, arm, ppc64le, s390x, riscv64, ...)", s, parts[1])
	}
	if variant != "" {
		return osName + "/" + arch + "/" + variant, nil
	}
	return osName + "/" + arch, nil
}

// normalizeArch is containerd's normalizeArch: the aliases of an architecture and its variant.
func normalizeArch(arch, variant string) (string, string) {
	arch, variant = strings.ToLower(arch), strings.ToLower(variant)
	switch arch {
	case "i386":
		arch, variant = "386", ""
	case "x86_64", "x86-64", "amd64":
		arch = "amd64"
		if variant == "v1" {
			variant = ""
		}
	case "aarch64", "arm64":
		arch = "arm64"
		switch variant {
		case "8", "v8", "v8.0":
			variant = ""
		case "9", "9.0", "v9.0":
			variant = "v9"
		}
	case "armhf":
		arch, variant = "arm", "v7"
	case "armel":
		arch, variant = "arm", "v6"
	case "arm":
		switch variant {
		case "", "7":
			variant = "v7"
		case "5", "6", "8":
			variant = "v" + variant
		}
	}
	return arch, variant
}

// NormalizePlatforms checks a rule's or a build's platforms and returns them in normal form,
// in the order given. None means the worker's own platform, as before platforms existed; a
// platform named twice (also through an alias) is refused, since an image index holds one
// image per platform.
func NormalizePlatforms(in []string) ([]string, error) {
	if len(in) == 0 {
		return nil, nil
	}
	if len(in) > MaxPlatforms {
		return nil, invalid("platforms", "platforms names %d platforms; at most %d", len(in), MaxPlatforms)
	}
	out := make([]string, 0, len(in))
	seen := map[string]string{}
	for _, s := range in {
		p, err := ParsePlatform(s)
		if err != nil {
			return nil, invalid("platforms", "platforms: %v", err)
		}
		if first, dup := seen[p]; dup {
			return nil, invalid("platforms", "platforms names %s twice (%q and %q)", p, first, s)
		}
		seen[p] = s
		out = append(out, p)
	}
	return out, nil
}
