package build

import (
	"strings"
	"testing"
)

func TestCheckRefName(t *testing.T) {
	for _, tc := range []struct {
		name    string
		ref     string
		wantErr string // empty: valid
	}{
		{"plain", "main", ""},
		{"nested", "release/1.2", ""},
		{"version tag", "v1.2.3", ""},
		{"unicode", "feature/größe", ""},
		{"longest", strings.Repeat("a", MaxRefNameLen), ""},
		{"empty", "", "is empty"},
		{"too long", strings.Repeat("a", MaxRefNameLen+1), "256 bytes long"},
		{"5000 bytes", strings.Repeat("b", 5000), "5000 bytes long"},
		{"dot dot", "a..b", `".."`},
		{"lock", "x.lock", `".lock"`},
		{"lock inside", "x.lock/y", `".lock"`},
		{"leading dash", "-x", `starts with "-"`},
		{"option", "--upload-pack=touch", `starts with "-"`},
		{"at brace", "a@{1}", `"@{"`},
		{"at", "@", `"@"`},
		{"trailing slash", "a/", `"/"`},
		{"leading slash", "/a", `"/"`},
		{"double slash", "a//b", `"//"`},
		{"trailing dot", "a.", `ends with "."`},
		{"hidden component", "a/.b", `starting with "."`},
		{"space", "a b", `' '`},
		{"tilde", "a~1", `'~'`},
		{"caret", "a^", `'^'`},
		{"colon", "a:b", `':'`},
		{"question", "a?", `'?'`},
		{"star", "a*", `'*'`},
		{"bracket", "a[", `'['`},
		{"backslash", `a\b`, `'\\'`},
		{"newline", "a\nb", "control character U+000A"},
		{"delete", "a\x7fb", "control character U+007F"},
		{"bad utf-8", "a\xffb", "not valid UTF-8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckRefName(tc.ref)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("CheckRefName(%q) = %v, want nil", tc.ref, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("CheckRefName(%q) = %v, want an error saying %s", tc.ref, err, tc.wantErr)
			}
		})
	}
}
