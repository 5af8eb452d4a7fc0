package build

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestNormalizePlatforms(t *testing.T) {
	tests := []struct {
		name    string
		in      []string
		want    []string
		wantErr string
	}{
		{name: "none is the worker's own", in: nil, want: nil},
		{name: "two", in: []string{"linux/amd64", "linux/arm64"}, want: []string{"linux/amd64", "linux/arm64"}},
		{name: "order kept", in: []string{"linux/arm64", "linux/amd64"}, want: []string{"linux/arm64", "linux/amd64"}},
		{name: "aliases", in: []string{"Linux/x86_64", "linux/aarch64", "linux/armhf"}, want: []string{"linux/amd64", "linux/arm64", "linux/arm/v7"}},
		{name: "variant", in: []string{"linux/arm/v6", "linux/arm64/v8", "linux/amd64/v1"}, want: []string{"linux/arm/v6", "linux/arm64", "linux/amd64"}},
		{name: "arm means v7", in: []string{"linux/arm"}, want: []string{"linux/arm/v7"}},
		{name: "spaces trimmed", in: []string{" linux/s390x "}, want: []string{"linux/s390x"}},
		{name: "no os", in: []string{"arm64"}, wantErr: "is not OS/ARCH"},
		{name: "too many parts", in: []string{"linux/arm/v7/x"}, wantErr: "is not OS/ARCH"},
		{name: "empty part", in: []string{"linux/"}, wantErr: "empty part"},
		{name: "bad character", in: []string{"linux/arm 64"}, wantErr: "character outside"},
		{name: "unknown os", in: []string{"beos/amd64"}, wantErr: `"beos" is no operating system`},
		{name: "unknown arch", in: []string{"linux/z80"}, wantErr: `"z80" is no architecture`},
		{name: "empty string", in: []string{""}, wantErr: "is not OS/ARCH"},
		{name: "twice through an alias", in: []string{"linux/amd64", "linux/x86_64"}, wantErr: "names linux/amd64 twice"},
		{name: "too many", in: slices.Repeat([]string{"linux/amd64"}, MaxPlatforms+1), wantErr: "at most"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := NormalizePlatforms(tt.in)
			if tt.wantErr != "" {
				var ie *InvalidError
				if !errors.As(err, &ie) || ie.Field != "platforms" || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("NormalizePlatforms(%q) = %v, want an InvalidError of platforms saying %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil || !slices.Equal(got, tt.want) {
				t.Fatalf("NormalizePlatforms(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestValidateRefusesBadPlatforms(t *testing.T) {
	in := Input{Image: "127.0.0.1:5000/demo/app", TagTemplate: "{branch}", Ref: Ref{Type: RefBranch, Name: "main"},
		Platforms: []string{"linux/amd64", "nonsense"}}
	var ie *InvalidError
	if err := in.Validate(); !errors.As(err, &ie) || ie.Field != "platforms" {
		t.Fatalf("Validate() = %v, want an InvalidError of platforms", err)
	}
	in.Platforms = []string{"linux/amd64", "linux/arm64"}
	if err := in.Validate(); err != nil {
		t.Fatalf("Validate() with two good platforms = %v", err)
	}
}
