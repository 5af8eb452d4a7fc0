package activities

import (
	"errors"
	"slices"
	"testing"

	"github.com/containerd/platforms"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"go.temporal.io/sdk/temporal"

	"github.com/slipway-dev/slipway/build"
)

// TestParsePlatformAgreesWithContainerd keeps build.ParsePlatform, which the gateway uses
// without linking containerd, spelling platforms as containerd's Parse and Normalize do.
func TestParsePlatformAgreesWithContainerd(t *testing.T) {
	for _, s := range []string{"linux/amd64", "linux/arm64", "linux/x86_64", "linux/aarch64", "linux/arm",
		"linux/arm/7", "linux/arm/v6", "linux/armhf", "linux/armel", "linux/arm64/v8", "linux/amd64/v1",
		"linux/amd64/v3", "linux/i386", "linux/386", "linux/s390x", "linux/ppc64le", "linux/riscv64",
		"LINUX/AMD64", "windows/amd64", "linux/arm64/9", "linux/mips64le", "freebsd/amd64"} {
		t.Run(s, func(t *testing.T) {
			got, err := build.ParsePlatform(s)
			if err != nil {
				t.Fatalf("build.ParsePlatform(%q): %v", s, err)
			}
			p, err := platforms.Parse(s)
			if err != nil {
				t.Fatalf("platforms.Parse(%q): %v", s, err)
			}
			if want := platforms.Format(platforms.Normalize(p)); got != want {
				t.Fatalf("build.ParsePlatform(%q) = %q, containerd says %q", s, got, want)
			}
		})
	}
	// Containerd's syntax refuses these; build refuses them too.
	for _, s := range []string{"linux/arm 64", "linux//amd64", "linux/amd64/v2/x"} {
		t.Run("refused "+s, func(t *testing.T) {
			if _, err := platforms.Parse(s); err == nil {
				t.Fatalf("containerd accepts %q", s)
			}
			if _, err := build.ParsePlatform(s); err == nil {
				t.Fatalf("build.ParsePlatform(%q) accepted it", s)
			}
		})
	}
}

func TestFrontendAttrsPlatforms(t *testing.T) {
	for _, tt := range []struct {
		name      string
		platforms []string
		// want is the platform attribute; empty means none is set.
		want    string
		wantErr bool
	}{
		{name: "none: the worker's own platform, as before", platforms: nil, want: ""},
		{name: "two in one solve", platforms: []string{"linux/amd64", "linux/arm64"}, want: "linux/amd64,linux/arm64"},
		{name: "aliases in normal form", platforms: []string{"linux/x86_64", "linux/aarch64"}, want: "linux/amd64,linux/arm64"},
		{name: "one", platforms: []string{"linux/arm64"}, want: "linux/arm64"},
		{name: "a comma smuggled into one entry", platforms: []string{"linux/amd64,linux/s390x"}, wantErr: true},
		{name: "nonsense", platforms: []string{"linux"}, wantErr: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			attrs, err := frontendAttrs(BuildInput{Workspace: "ws", Platforms: tt.platforms}, "Dockerfile")
			if tt.wantErr {
				var appErr *temporal.ApplicationError
				if !errors.As(err, &appErr) || !appErr.NonRetryable() {
					t.Fatalf("frontendAttrs(%q) = %v, want a non-retryable error", tt.platforms, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, set := attrs[platformAttr]
			if got != tt.want || set != (tt.want != "") {
				t.Fatalf("platform attribute = %q (set %v), want %q", got, set, tt.want)
			}
			if n := len(attrPlatforms(attrs)); n != len(tt.platforms) {
				t.Fatalf("attrPlatforms = %q, want %d platforms", attrPlatforms(attrs), len(tt.platforms))
			}
		})
	}
}

func TestUnavailablePlatforms(t *testing.T) {
	amd64 := ocispec.Platform{OS: "linux", Architecture: "amd64"}
	amd64v3 := ocispec.Platform{OS: "linux", Architecture: "amd64", Variant: "v3"}
	arm64 := ocispec.Platform{OS: "linux", Architecture: "arm64"}
	for _, tt := range []struct {
		name string
		want []string
		have []ocispec.Platform
		out  []string
	}{
		{"native only", []string{"linux/amd64"}, []ocispec.Platform{amd64}, nil},
		{"emulated arm64 listed", []string{"linux/amd64", "linux/arm64"}, []ocispec.Platform{amd64, arm64}, nil},
		{"no emulator for arm64", []string{"linux/amd64", "linux/arm64"}, []ocispec.Platform{amd64, amd64v3}, []string{"linux/arm64"}},
		{"s390x and riscv64 missing", []string{"linux/s390x", "linux/amd64", "linux/riscv64"}, []ocispec.Platform{amd64, arm64}, []string{"linux/s390x", "linux/riscv64"}},
		{"an arm64 worker runs arm/v7", []string{"linux/arm/v7"}, []ocispec.Platform{arm64}, nil},
		{"no worker platform at all", []string{"linux/amd64"}, nil, []string{"linux/amd64"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := unavailablePlatforms(tt.want, tt.have)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tt.out) {
				t.Fatalf("unavailablePlatforms(%q) = %q, want %q", tt.want, got, tt.out)
			}
		})
	}
}
