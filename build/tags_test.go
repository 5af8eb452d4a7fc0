package build

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestRenderTags(t *testing.T) {
	commit := "0123456789abcdef0123456789abcdef01234567"
	at := time.Date(2026, 11, 27, 3, 4, 5, 0, time.FixedZone("CET", 3600))
	tests := []struct {
		name     string
		template string
		ref      Ref
		sanitize bool
		want     []string
		wantErr  string
	}{
		{"default is the ref", "", Ref{RefBranch, "main"}, false, []string{"main"}, ""},
		{"branch and short commit", "{branch}-{short_commit}", Ref{RefBranch, "main"}, false, []string{"main-0123456"}, ""},
		{"tag", "{tag}", Ref{RefTag, "v1.2.3"}, false, []string{"v1.2.3"}, ""},
		{"branch is empty for a tag", "x{branch}", Ref{RefTag, "v1"}, false, []string{"x"}, ""},
		{"full commit", "{commit}", Ref{RefBranch, "main"}, false, []string{commit}, ""},
		{"time is UTC", "{time}", Ref{RefBranch, "main"}, false, []string{"20261127020405"}, ""},
		{"several tags, repeats dropped", "{ref}, latest ,{branch}", Ref{RefBranch, "main"}, false, []string{"main", "latest"}, ""},
		{"slash fails and names it", "{branch}", Ref{RefBranch, "feature/login"}, false, nil, `holds '/'`},
		{"dollar fails and names it", "{ref}", Ref{RefBranch, "a$b"}, false, nil, `holds '$'`},
		{"slash sanitized", "{branch}-{short_commit}", Ref{RefBranch, "feature/login"}, true, []string{"feature-login-0123456"}, ""},
		{"unicode sanitized", "{ref}", Ref{RefBranch, "café"}, true, []string{"caf-"}, ""},
		{"unknown placeholder", "{sha}", Ref{RefBranch, "main"}, false, nil, "unknown placeholder {sha}"},
		{"unclosed placeholder", "{branch", Ref{RefBranch, "main"}, false, nil, "unclosed"},
		{"stray brace", "a}b", Ref{RefBranch, "main"}, false, nil, "without '{'"},
		{"leading dot is no tag", "{ref}", Ref{RefBranch, ".hidden"}, false, nil, "not a valid image tag"},
		{"too long", "{commit}{commit}{commit}{commit}", Ref{RefBranch, "main"}, false, nil, "not a valid image tag"},
		{"empty render", "{tag}", Ref{RefBranch, "main"}, false, nil, "not a valid image tag"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := RenderTags(RenderTagInput{TagTemplate: tt.template, Ref: tt.ref, Commit: commit, Time: at, SanitizeRef: tt.sanitize})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tt.wantErr)
				}
				var ie *InvalidError
				if !errors.As(err, &ie) || ie.Type != ErrTypeInvalidTag {
					t.Fatalf("error %v is not an *InvalidError of %s", err, ErrTypeInvalidTag)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(got.Tags, ",") != strings.Join(tt.want, ",") {
				t.Fatalf("tags = %q, want %q", got.Tags, tt.want)
			}
		})
	}
}

func FuzzRenderTags(f *testing.F) {
	for _, s := range []string{"{branch}-{short_commit}", "{ref}", "{", "}{", "{time},{tag}", "a,,b"} {
		f.Add(s, "feature/x", true)
	}
	f.Fuzz(func(t *testing.T, template, ref string, sanitize bool) {
		res, err := RenderTags(RenderTagInput{TagTemplate: template, Ref: Ref{RefBranch, ref}, Commit: strings.Repeat("a", 40), SanitizeRef: sanitize})
		if err != nil {
			return
		}
		for _, tag := range res.Tags {
			if !tagPattern.MatchString(tag) {
				t.Fatalf("rendered invalid tag %q", tag)
			}
		}
	})
}

func TestMutableTemplate(t *testing.T) {
	tests := []struct {
		template string
		mutable  bool
	}{
		{"", true}, // the default, {ref}
		{"{ref}", true},
		{"{branch}", true},
		{"{tag}", true},
		{"latest", true},
		{" latest ", true},
		{"v1", true},
		{"{branch}-stable", true},
		{"{commit}", false},
		{"{short_commit}", false},
		{"{time}", false},
		{"{branch}-{short_commit}", false},
		{"{ref}-{time}", false},
		{"sha-{commit}", false},
	}
	for _, tt := range tests {
		t.Run(tt.template, func(t *testing.T) {
			if got := MutableTemplate(tt.template); got != tt.mutable {
				t.Errorf("MutableTemplate(%q) = %v, want %v", tt.template, got, tt.mutable)
			}
		})
	}
}

func TestRenderTagsMarksMutable(t *testing.T) {
	res, err := RenderTags(RenderTagInput{
		TagTemplate: "{branch}, {short_commit}, latest, {branch}-{time}, {ref}",
		Ref:         Ref{RefBranch, "main"}, Commit: "0123456789abcdef0123456789abcdef01234567",
		Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(res.Tags, ","), "main,0123456,latest,main-20260102030405"; got != want {
		t.Errorf("tags %s, want %s", got, want)
	}
	if got, want := strings.Join(res.Mutable, ","), "main,latest"; got != want {
		t.Errorf("mutable %s, want %s", got, want)
	}
}
