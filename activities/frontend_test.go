package activities

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.temporal.io/sdk/temporal"

	"github.com/slipway-dev/slipway/build"
)

func TestCheckFrontend(t *testing.T) {
	for _, tt := range []struct {
		name, dockerfile string
		allowed          []string
		// refused is the frontend the error must name; empty means allowed.
		refused string
	}{
		{"no directive", "FROM busybox\nRUN true\n", DefaultFrontends, ""},
		{"docker's frontend", "# syntax=docker/dockerfile:1\nFROM busybox\n", DefaultFrontends, ""},
		{"docker's frontend spelled in full", "# syntax=docker.io/docker/dockerfile:1.7-labs\nFROM busybox\n", DefaultFrontends, ""},
		{"docker's frontend by digest", "# syntax=docker/dockerfile@sha256:" + strings.Repeat("a", 64) + "\nFROM busybox\n", DefaultFrontends, ""},
		{"another host", "# syntax=evil.example/frontend\nFROM busybox\n", DefaultFrontends, "evil.example/frontend"},
		{"look-alike name", "# syntax=docker/dockerfile-evil:1\nFROM busybox\n", DefaultFrontends, "docker/dockerfile-evil:1"},
		{"look-alike owner", "#syntax=evil/dockerfile:1\nFROM busybox\n", DefaultFrontends, "evil/dockerfile:1"},
		{"upper case key and spaces", "# SYNTAX = evil.example/fe:1\nFROM busybox\n", DefaultFrontends, "evil.example/fe:1"},
		{"after a shebang", "#!/usr/bin/env buildctl\n# syntax=evil.example/fe\nFROM busybox\n", DefaultFrontends, "evil.example/fe"},
		{"after a BOM", "\ufeff# syntax=evil.example/fe\nFROM busybox\n", DefaultFrontends, "evil.example/fe"},
		{"after an escape directive", "# escape=`\n# syntax=evil.example/fe\nFROM busybox\n", DefaultFrontends, "evil.example/fe"},
		{"a comment after FROM is no directive", "FROM busybox\n# syntax=evil.example/fe\n", DefaultFrontends, ""},
		{"only the built-in", "# syntax=docker/dockerfile:1\nFROM busybox\n", []string{}, "docker/dockerfile:1"},
		{"operator's own", "# syntax=registry.corp:5000/fe/dockerfile:2\nFROM busybox\n", []string{"registry.corp:5000/fe/*"}, ""},
		{"operator's pattern pins the tag", "# syntax=registry.corp:5000/fe:3\nFROM busybox\n", []string{"registry.corp:5000/fe:2"}, "registry.corp:5000/fe:3"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "Dockerfile")
			if err := os.WriteFile(path, []byte(tt.dockerfile), 0o644); err != nil {
				t.Fatal(err)
			}
			err := CheckFrontend(path, tt.allowed)
			if tt.refused == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var appErr *temporal.ApplicationError
			if !errors.As(err, &appErr) || appErr.Type() != build.ErrTypeFrontendRefused || !appErr.NonRetryable() ||
				!strings.Contains(appErr.Message(), `"`+tt.refused+`"`) {
				t.Fatalf("error = %v, want a non-retryable %s naming %q", err, build.ErrTypeFrontendRefused, tt.refused)
			}
		})
	}
}
