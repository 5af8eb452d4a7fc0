package build

import (
	"errors"
	"strings"
	"testing"
)

func TestCheckSecrets(t *testing.T) {
	many := make([]string, MaxRuleSecrets+1)
	for i := range many {
		many[i] = "S" + strings.Repeat("X", i)
	}
	tests := []struct {
		name    string
		names   []string
		wantErr string // "" means valid
	}{
		{"none", nil, ""},
		{"env var names", []string{"NPM_TOKEN", "_x", "a1"}, ""},
		{"leading digit", []string{"1TOKEN"}, `"1TOKEN" is not an environment variable name`},
		{"dash", []string{"NPM-TOKEN"}, "NPM-TOKEN"},
		{"path", []string{"../etc/passwd"}, "../etc/passwd"},
		{"empty", []string{""}, `"" is not`},
		{"comma, as a frontend attribute would split it", []string{"A,B"}, "A,B"},
		{"too long", []string{strings.Repeat("A", MaxSecretNameLen+1)}, "bytes long"},
		{"twice", []string{"A", "A"}, `"A" is named twice`},
		{"too many", many, "at most 32"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckSecrets(tt.names)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("CheckSecrets(%q) = %v", tt.names, err)
				}
				return
			}
			var ie *InvalidError
			if !errors.As(err, &ie) || ie.Field != "secrets" || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("CheckSecrets(%q) = %v, want an InvalidError of secrets saying %q", tt.names, err, tt.wantErr)
			}
			in := Input{Image: "127.0.0.1:5000/demo/app", Ref: Ref{Type: RefBranch, Name: "main"}, Secrets: tt.names}
			if err := in.Validate(); err == nil {
				t.Fatal("Input.Validate accepted the names")
			}
		})
	}
}
