package builds

import (
	"slices"
	"testing"
)

// TestInputOfCarriesSecretNames keeps every start of a rule's build (webhook, build now, the
// reconcile Schedule's template) naming the rule's secrets, and only naming them.
func TestInputOfCarriesSecretNames(t *testing.T) {
	s := New(nil, testSettings)
	for _, tc := range []struct {
		name  string
		names []string
	}{
		{"named", []string{"NPM_TOKEN", "SSH_KEY"}},
		{"none", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := testRule()
			r.Secrets = slices.Clone(tc.names)
			in := s.InputOf(Request{Rule: r})
			if !slices.Equal(in.Secrets, tc.names) && !(len(in.Secrets) == 0 && len(tc.names) == 0) {
				t.Fatalf("input names %v, want %v", in.Secrets, tc.names)
			}
			if len(tc.names) > 0 {
				in.Secrets[0] = "CHANGED"
				if r.Secrets[0] != tc.names[0] {
					t.Fatal("the input shares the rule's slice")
				}
				if p := paramsOf(in); !slices.Equal(p.Secrets, in.Secrets) {
					t.Fatalf("params name %v", p.Secrets)
				}
			}
		})
	}
}
