package build

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"go.temporal.io/sdk/temporal"
)

const testCommit = "0123456789abcdef0123456789abcdef01234567"

func goodInput() Input {
	return Input{
		Namespace: "demo", Repository: "app", RuleID: "r-1",
		Source: Source{Provider: ProviderGitHub, Owner: "octo", Repository: "hello"},
		Ref:    Ref{Type: RefBranch, Name: "main"}, Commit: testCommit,
		TagTemplate: "{branch}-{short_commit}", Image: "127.0.0.1:5000/demo/app", Trigger: TriggerManual,
	}
}

func TestValidateAcceptsGoodInputs(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(*Input)
	}{
		{"as it is", func(*Input) {}},
		{"head of the ref", func(in *Input) { in.Commit = "" }},
		{"tag", func(in *Input) { in.Ref = Ref{Type: RefTag, Name: "v1.2.3"}; in.TagTemplate = "{tag}" }},
		{"slash sanitized", func(in *Input) { in.Ref.Name = "feature/login"; in.SanitizeRef = true }},
		{"cache off", func(in *Input) { in.Cache = CacheOff }},
		{"cache of its own repository", func(in *Input) { in.Cache = "127.0.0.1:5000/demo/app:cache" }},
		{"timeout", func(in *Input) { in.Timeout = "30m" }},
		{"paths", func(in *Input) { in.DockerfilePath = "build/Dockerfile"; in.ContextPath = "." }},
		{"build args", func(in *Input) { in.BuildArgs = map[string]string{"GO_VERSION": "1.25", "_x": ""} }},
		{"clone URL without account", func(in *Input) { in.Source.CloneURL = "http://127.0.0.1:1/x.git" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := goodInput()
			tc.mutate(&in)
			if err := in.Validate(); err != nil {
				t.Fatalf("Validate() = %v, want nil", err)
			}
		})
	}
}

func TestValidateRefusesBadInputs(t *testing.T) {
	manyArgs := map[string]string{}
	for i := range MaxBuildArgs + 1 {
		manyArgs[fmt.Sprintf("A%d", i)] = "v"
	}
	for _, tc := range []struct {
		name   string
		mutate func(*Input)
		field  string
		typ    string
		want   string
	}{
		{"timeout no duration", func(in *Input) { in.Timeout = "soon" }, "timeout", ErrTypeInvalidInput, "not a positive duration"},
		{"negative timeout", func(in *Input) { in.Timeout = "-5m" }, "timeout", ErrTypeInvalidInput, "not a positive duration"},
		{"bad image", func(in *Input) { in.Image = "Not A Name" }, "image", ErrTypeInvalidImage, "not a valid repository name"},
		{"empty image", func(in *Input) { in.Image = "" }, "image", ErrTypeInvalidImage, "not a valid repository name"},
		{"cache no reference", func(in *Input) { in.Cache = "Not A Ref" }, "cache", ErrTypeInvalidInput, `not an image reference, nor "off"`},
		{"cache by digest", func(in *Input) { in.Cache = "127.0.0.1:5000/demo/app@sha256:" + strings.Repeat("a", 64) }, "cache", ErrTypeInvalidInput, "names a digest"},
		{"cache in another namespace", func(in *Input) { in.Cache = "127.0.0.1:5000/victim/app:latest" }, "cache", ErrTypeInvalidInput, "outside the image repository"},
		{"cache in another registry", func(in *Input) { in.Cache = "evil.example/demo/app:buildcache" }, "cache", ErrTypeInvalidInput, "outside the image repository"},
		{"build arg with a dash", func(in *Input) { in.BuildArgs = map[string]string{"NO-DASH": "x"} }, "build_args", ErrTypeInvalidInput, `"NO-DASH" is not a valid ARG name`},
		{"build arg with a digit first", func(in *Input) { in.BuildArgs = map[string]string{"1X": "x"} }, "build_args", ErrTypeInvalidInput, "not a valid ARG name"},
		{"BUILDKIT_SYNTAX", func(in *Input) { in.BuildArgs = map[string]string{"BUILDKIT_SYNTAX": "evil.example/fe"} }, "build_args", ErrTypeInvalidInput, `"BUILDKIT_SYNTAX" is reserved`},
		{"lowercase buildkit_", func(in *Input) { in.BuildArgs = map[string]string{"buildkit_inline_cache": "1"} }, "build_args", ErrTypeInvalidInput, "reserved"},
		{"too many build args", func(in *Input) { in.BuildArgs = manyArgs }, "build_args", ErrTypeInvalidInput, "65 arguments"},
		{"build arg name too long", func(in *Input) { in.BuildArgs = map[string]string{strings.Repeat("N", 129): "v"} }, "build_args", ErrTypeInvalidInput, "129 bytes"},
		{"build arg value too long", func(in *Input) { in.BuildArgs = map[string]string{"V": strings.Repeat("v", 4097)} }, "build_args", ErrTypeInvalidInput, "4097 bytes"},
		{"build args too large together", func(in *Input) {
			in.BuildArgs = map[string]string{}
			for i := range 10 {
				in.BuildArgs[fmt.Sprintf("A%d", i)] = strings.Repeat("v", 4000)
			}
		}, "build_args", ErrTypeInvalidInput, "in all"},
		{"clone URL and account", func(in *Input) { in.Source.CloneURL, in.Source.AccountID = "https://attacker.example/x.git", "a-1" }, "source.clone_url", ErrTypeInvalidInput, "both clone_url and account_id"},
		{"ref type", func(in *Input) { in.Ref.Type = "commit" }, "ref.type", ErrTypeInvalidInput, "not branch or tag"},
		{"empty ref name", func(in *Input) { in.Ref.Name = "" }, "ref.name", ErrTypeInvalidInput, "ref.name is empty"},
		{"ref name with dot dot", func(in *Input) { in.Ref.Name = "a..b" }, "ref.name", ErrTypeRefNotFound, `branch "a..b" is not a valid git ref name: it holds ".."`},
		{"ref name as an option", func(in *Input) { in.Ref.Name = "--upload-pack=x" }, "ref.name", ErrTypeRefNotFound, `starts with "-"`},
		{"ref name too long", func(in *Input) { in.Ref.Name = strings.Repeat("b", 5000) }, "ref.name", ErrTypeRefNotFound, "5000 bytes long, more than 255"},
		{"short commit", func(in *Input) { in.Commit = "abc1234" }, "commit", ErrTypeCommitNotOnRef, "not a full 40-hex commit id"},
		{"uppercase commit", func(in *Input) { in.Commit = strings.ToUpper(testCommit) }, "commit", ErrTypeCommitNotOnRef, "not a full 40-hex commit id"},
		{"unknown placeholder", func(in *Input) { in.TagTemplate = "{sha}" }, "tag_template", ErrTypeInvalidTag, "unknown placeholder {sha}"},
		{"unclosed placeholder", func(in *Input) { in.TagTemplate = "{branch" }, "tag_template", ErrTypeInvalidTag, "unclosed"},
		{"template rendering no tag", func(in *Input) { in.TagTemplate = "-{ref}" }, "tag_template", ErrTypeInvalidTag, "not a valid image tag"},
		{"tag placeholder on a branch", func(in *Input) { in.TagTemplate = "{tag}" }, "tag_template", ErrTypeInvalidTag, "not a valid image tag"},
		{"seventeen tags", func(in *Input) { in.TagTemplate = strings.Repeat("{short_commit},", 16) + "latest" }, "tag_template", ErrTypeInvalidTag, "17 tags"},
		{"slash without sanitize_ref", func(in *Input) { in.Ref.Name = "feature/login" }, "ref.name", ErrTypeInvalidTag, "holds '/'"},
		{"absolute dockerfile", func(in *Input) { in.DockerfilePath = "/etc/Dockerfile" }, "dockerfile_path", ErrTypeInvalidPath, "is absolute"},
		{"dockerfile into .git", func(in *Input) { in.DockerfilePath = ".git/config" }, "dockerfile_path", ErrTypeInvalidPath, "points into .git"},
		{"escaping context", func(in *Input) { in.ContextPath = "../x" }, "context_path", ErrTypeInvalidPath, "leaves the repository"},
		{"NUL in context", func(in *Input) { in.ContextPath = "a\x00b" }, "context_path", ErrTypeInvalidPath, "NUL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := goodInput()
			tc.mutate(&in)
			err := in.Validate()
			var ie *InvalidError
			if !errors.As(err, &ie) {
				t.Fatalf("Validate() = %v, want an *InvalidError", err)
			}
			if ie.Field != tc.field || ie.Type != tc.typ || !strings.Contains(ie.Msg, tc.want) {
				t.Fatalf("Validate() = {%s %s %q}, want {%s %s ...%q...}", ie.Field, ie.Type, ie.Msg, tc.field, tc.typ, tc.want)
			}
			var appErr *temporal.ApplicationError
			if !errors.As(ApplicationError(err), &appErr) || !appErr.NonRetryable() ||
				appErr.Type() != tc.typ || appErr.Message() != ie.Msg {
				t.Fatalf("ApplicationError(%v) = %v, want a non-retryable %s with the same message", err, appErr, tc.typ)
			}
		})
	}
}

func TestApplicationErrorLeavesOtherErrors(t *testing.T) {
	plain := errors.New("disk full")
	if got := ApplicationError(plain); got != plain {
		t.Fatalf("ApplicationError(%v) = %v, want it unchanged", plain, got)
	}
	if ApplicationError(nil) != nil {
		t.Fatal("ApplicationError(nil) is not nil")
	}
}

func TestSearchAttributes(t *testing.T) {
	in := goodInput()
	if got := len(SearchAttributes(in)); got != 6 {
		t.Fatalf("%d attributes with a commit, want 6", got)
	}
	in.Commit = ""
	if got := len(SearchAttributes(in)); got != 5 {
		t.Fatalf("%d attributes without a commit, want 5 (the workflow sets it once cloned)", got)
	}
	want := "SlipwayNamespace SlipwayRepository SlipwayRule GitRef GitCommit BuildTrigger"
	if got := strings.Join(AttributeNames(), " "); got != want {
		t.Fatalf("AttributeNames() = %s, want %s", got, want)
	}
}

func TestTimeoutOrDefault(t *testing.T) {
	for _, tc := range []struct {
		timeout string
		want    string
	}{{"", "1h0m0s"}, {"30m", "30m0s"}, {"soon", "1h0m0s"}} {
		if got := (Input{Timeout: tc.timeout}).TimeoutOrDefault().String(); got != tc.want {
			t.Errorf("timeout %q: %s, want %s", tc.timeout, got, tc.want)
		}
	}
}

func TestValidatePathsAndBefore(t *testing.T) {
	for _, tc := range []struct {
		name  string
		edit  func(*Input)
		field string
	}{
		{"before not a commit", func(in *Input) { in.Before = "main" }, "before"},
		{"bad path glob", func(in *Input) { in.Paths = &PathFilter{Include: []string{"src/["}} }, "paths"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := goodInput()
			tc.edit(&in)
			var ie *InvalidError
			if err := in.Validate(); !errors.As(err, &ie) || ie.Field != tc.field {
				t.Fatalf("Validate() = %v, want an *InvalidError of field %s", err, tc.field)
			}
		})
	}
	in := goodInput()
	in.Before, in.Paths = strings.Repeat("0", 40), &PathFilter{Ignore: []string{"docs/"}}
	if err := in.Validate(); err != nil {
		t.Fatalf("a new ref's before and a good filter: %v", err)
	}
}
