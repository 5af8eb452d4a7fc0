package console

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/slipway-dev/slipway/build"
	"github.com/slipway-dev/slipway/store"
)

// TestCatalogComplete keeps every language holding every English key, so no page shows a
// message in the wrong language.
func TestCatalogComplete(t *testing.T) {
	for l, msgs := range catalog {
		for key := range catalog["en"] {
			if msgs[key] == "" {
				t.Errorf("%s lacks %q", l, key)
			}
		}
		for key := range msgs {
			if _, ok := catalog["en"][key]; !ok {
				t.Errorf("%s has %q, which English lacks", l, key)
			}
		}
	}
}

func TestTemplatesParse(t *testing.T) {
	pages, err := parsePages()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"login", "error", "namespaces", "repositories", "rules", "ruleform", "rulecreated", "buildnow", "records", "build", "images", "settings", "notifications", "notification", "secrets"} {
		if pages[name] == nil {
			t.Errorf("no page %q", name)
		}
	}
}

func TestFromAcceptLanguage(t *testing.T) {
	for _, tc := range []struct {
		header string
		want   lang
	}{
		{"", "en"},
		{"zh-CN,zh;q=0.9,en;q=0.8", "zh"},
		{"en-US,en;q=0.9,zh-CN;q=0.8", "en"},
		{"fr-FR, zh;q=0.5", "zh"},
		{"en;q=0.1, zh-TW;q=0.4", "zh"},
		{"zh;q=0, en", "en"},
		{"de", "en"},
	} {
		t.Run(tc.header, func(t *testing.T) {
			if got := fromAcceptLanguage(tc.header); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestLocalPath(t *testing.T) {
	for _, tc := range []struct{ next, want string }{
		{"/builds/x?y=1", "/builds/x?y=1"},
		{"", "/"},
		{"https://evil.example/", "/"},
		{"//evil.example/", "/"},
		{"/\\evil.example/", "/"},
		{"builds", "/"},
	} {
		t.Run(tc.next, func(t *testing.T) {
			if got := localPath(tc.next); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestFieldOf(t *testing.T) {
	for _, tc := range []struct {
		e    apiError
		want string
	}{
		{apiError{Field: "build_args", Message: "x"}, "build_args"},
		{apiError{Message: `source.repository "a b" is not a repository name`}, "repository"},
		{apiError{Message: `source.owner "a b" is not an organization or group path`}, "owner"},
		{apiError{Message: "triggers.branches: bad pattern"}, "branches"},
		{apiError{Message: "triggers.tag_patterns: bad pattern"}, "tag_patterns"},
		{apiError{Message: `run_policy "x" is not parallel, serial or latest_only`}, "run_policy"},
		{apiError{Field: "platforms", Message: `platforms: platform "x" is not OS/ARCH`}, "platforms"},
		{apiError{Message: "something else"}, ""},
	} {
		t.Run(tc.e.Message, func(t *testing.T) {
			if got := fieldOf(&tc.e); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// TestRuleFormRoundTrip keeps the form holding every field of a rule: a stored rule shown in
// the form and saved again unchanged is the same rule.
func TestRuleFormRoundTrip(t *testing.T) {
	r := store.Rule{
		Source: store.Source{Provider: "gitlab", Owner: "group/sub", Repository: "app"},
		Triggers: build.Triggers{Branches: []string{"main", "/^release-(?P<v>\\d+)$/"}, Tags: true, TagPatterns: []string{"v*"},
			Paths: &build.PathFilter{Include: []string{"src/**"}, Ignore: []string{"docs/**"}}},
		TagTemplate: "{ref}-{short_commit}", DockerfilePath: "build/Dockerfile", ContextPath: "build",
		BuildArgs: map[string]string{"A": "1", "B": "x=y"}, SanitizeRef: true, Timeout: "30m", AccountID: "a-abc",
		Cache: "off", TagLatest: "default_branch", Semver: true, SkipMarkers: false, RunPolicy: "serial", ReconcileEvery: "15m",
		Secrets:   []string{"NPM_TOKEN", "SSH_KEY"},
		Platforms: []string{"linux/amd64", "linux/arm64"},
	}
	f := formOfRule(r)
	args, err := parseArgs(f.BuildArgs)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(f.body(args))
	if err != nil {
		t.Fatal(err)
	}
	var got store.Rule
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, r) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, r)
	}
}
