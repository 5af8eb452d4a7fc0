package gateway

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slipway-dev/slipway/store"
)

func TestCheckAdminToken(t *testing.T) {
	generated, err := store.NewToken()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, token string
		wantErr     string
	}{
		{"generated", generated, ""},
		{"openssl rand -hex 32", "3f9c1e0b7a4d2c8e5f6a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e", ""},
		{"openssl rand -hex 16", "9b1e4c7a0d3f6e2b8a5c1d4e7f0a3b6c", ""},
		{"empty", "", "0 characters long"},
		{"short", "s3cr3t-Token!", "13 characters long"},
		{"31 random", "9b1e4c7a0d3f6e2b8a5c1d4e7f0a3b6", "31 characters long"},
		{"one character", strings.Repeat("a", 64), "not random enough"},
		{"repeated word", strings.Repeat("password", 5), "not random enough"},
		{"two characters", strings.Repeat("ab", 40), "not random enough"},
		{"repeated random", strings.Repeat("9b1e4c7a0d3f", 3), "not random enough"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkAdminToken(tc.token)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want one saying %q", err, tc.wantErr)
			}
			if tc.token != "" && strings.Contains(err.Error(), tc.token) {
				t.Errorf("the error holds the token: %v", err)
			}
		})
	}
}

func TestEnsureAdminRefusesWeakToken(t *testing.T) {
	ctx := context.Background()
	home := t.TempDir()
	st, err := store.Open(ctx, filepath.Join(home, "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	_, err = ensureAdmin(ctx, st, home, "admin")
	if err == nil || !strings.Contains(err.Error(), "$SLIPWAY_ADMIN_TOKEN is 5 characters long") {
		t.Fatalf("ensureAdmin with a weak SLIPWAY_ADMIN_TOKEN = %v, want a refusal naming it", err)
	}
	// A weak token written into the file by hand is refused too.
	if err := os.WriteFile(filepath.Join(home, "admin-token"), []byte("changeme\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ensureAdmin(ctx, st, home, ""); err == nil || !strings.Contains(err.Error(), "admin-token is 8 characters long") {
		t.Fatalf("ensureAdmin with a weak admin-token file = %v, want a refusal naming it", err)
	}
}
