package webhook

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-github/v62/github"
	gitlab "gitlab.com/gitlab-org/api/client-go"

	"github.com/slipway-dev/slipway/build"
)

func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// checkEvent asserts what every caller of a parser relies on, whatever the
// input: a known kind, and refs and commits that are safe to put in build
// IDs, search attributes and logs.
func checkEvent(t testing.TB, provider string, ev Event) {
	t.Helper()
	if ev.Provider != provider {
		t.Errorf("Provider = %q, want %q", ev.Provider, provider)
	}
	switch ev.Kind {
	case KindBranch, KindTag:
		if !validRefName(ev.Ref) {
			t.Errorf("Ref = %q, not a valid ref name", ev.Ref)
		}
		if strings.HasPrefix(ev.Ref, "refs/heads/") || strings.HasPrefix(ev.Ref, "refs/tags/") {
			t.Errorf("Ref = %q still has its prefix", ev.Ref)
		}
		if !validName(ev.Owner) || !validName(ev.Repository) || strings.Contains(ev.Repository, "/") {
			t.Errorf("source = %q/%q, not a valid owner and repository", ev.Owner, ev.Repository)
		}
		if ev.Deleted && ev.Commit != "" {
			t.Errorf("deleted ref has Commit %q", ev.Commit)
		}
		if ev.Commit != "" {
			if h, ok := commitHash(ev.Commit); !ok || h != ev.Commit || zeroHash(h) {
				t.Errorf("Commit = %q, not a lowercase object name", ev.Commit)
			}
		} else if !ev.Deleted && (provider != build.ProviderGitHub || ev.Kind != KindTag) {
			t.Errorf("live %s %q has no commit", ev.Kind, ev.Ref)
		}
		if ev.Reason != "" {
			t.Errorf("%s event has Reason %q", ev.Kind, ev.Reason)
		}
	case KindIgnore:
		if ev.Reason == "" {
			t.Error("ignored event has no Reason")
		}
		if ev.Ref != "" || ev.Commit != "" || ev.Deleted {
			t.Errorf("ignored event carries ref %q, commit %q, deleted %v", ev.Ref, ev.Commit, ev.Deleted)
		}
	case KindPing:
		if ev.Ref != "" || ev.Commit != "" || ev.Deleted {
			t.Errorf("ping carries ref %q, commit %q, deleted %v", ev.Ref, ev.Commit, ev.Deleted)
		}
	default:
		t.Errorf("Kind = %q", ev.Kind)
	}
}

func TestParseGitHub(t *testing.T) {
	tests := []struct {
		name      string
		eventType string
		fixture   string // file under testdata, or
		body      string // an inline body
		want      Event
		wantErr   bool
	}{
		{
			name: "push to a branch", eventType: "push", fixture: "github/push_branch.json",
			want: Event{Provider: "github", Kind: KindBranch, Owner: "octo", Repository: "hello", Ref: "main",
				Commit: "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c"},
		},
		{
			// after names the annotated tag object; the build wants the commit.
			name: "push of an annotated tag", eventType: "push", fixture: "github/push_tag.json",
			want: Event{Provider: "github", Kind: KindTag, Owner: "octo", Repository: "hello", Ref: "v1.2.0",
				Commit: "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c"},
		},
		{
			name: "branch deletion", eventType: "push", fixture: "github/push_branch_deleted.json",
			want: Event{Provider: "github", Kind: KindBranch, Owner: "octo", Repository: "hello", Ref: "feature/old-ui", Deleted: true},
		},
		{
			name: "tag deletion", eventType: "push", fixture: "github/push_tag_deleted.json",
			want: Event{Provider: "github", Kind: KindTag, Owner: "octo", Repository: "hello", Ref: "v1.1.0", Deleted: true},
		},
		{
			name: "create of a tag: its push decides", eventType: "create", fixture: "github/create_tag.json",
			want: Event{Provider: "github", Kind: KindIgnore, Owner: "octo", Repository: "hello", Reason: "tag creation; its push event decides about the build"},
		},
		{
			name: "create of a branch", eventType: "create", fixture: "github/create_branch.json",
			want: Event{Provider: "github", Kind: KindIgnore, Reason: "branch creation; its push event decides about the build"},
		},
		{
			name: "ping", eventType: "ping", fixture: "github/ping.json",
			want: Event{Provider: "github", Kind: KindPing, Owner: "octo", Repository: "hello"},
		},
		{
			name: "ping of an organization hook", eventType: "ping",
			body: `{"zen":"Keep it logically awesome.","hook_id":1,"hook":{"type":"Organization","id":1,"name":"web","active":true,"events":["push"],"config":{"content_type":"json","insecure_ssl":"0","url":"https://slipway.example.com/webhooks/github/r-1"}},"organization":{"login":"octo","id":1}}`,
			want: Event{Provider: "github", Kind: KindPing},
		},
		{
			// go-github v62 cannot decode multi-select custom properties;
			// the delivery must build all the same.
			name: "push from a repository with multi-select custom properties", eventType: "push", fixture: "github/push_custom_properties.json",
			want: Event{Provider: "github", Kind: KindBranch, Owner: "octo", Repository: "hello", Ref: "main",
				Commit: "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c"},
		},
		{
			name: "issues event", eventType: "issues", fixture: "github/issues.json",
			want: Event{Provider: "github", Kind: KindIgnore, Reason: `github event "issues" does not start builds`},
		},
		{
			name: "delete event", eventType: "delete", body: `{"ref":"v1.0.0","ref_type":"tag","pusher_type":"user"}`,
			want: Event{Provider: "github", Kind: KindIgnore, Reason: `github event "delete" does not start builds`},
		},
		{
			name: "legacy owner without login", eventType: "push",
			body: `{"ref":"refs/heads/main","after":"0D1A26E67D8F5EAF1F6BA5C57FC3C7D91AC0FD1C","repository":{"name":"hello","owner":{"name":"octo","email":null}}}`,
			want: Event{Provider: "github", Kind: KindBranch, Owner: "octo", Repository: "hello", Ref: "main",
				Commit: "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c"},
		},
		{
			name: "push to a branch with slashes and a dollar", eventType: "push",
			body: `{"ref":"refs/heads/feature/a$b","after":"0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c","repository":{"name":"hello","owner":{"login":"octo"}}}`,
			want: Event{Provider: "github", Kind: KindBranch, Owner: "octo", Repository: "hello", Ref: "feature/a$b",
				Commit: "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c"},
		},
		{
			name: "sha-256 repository", eventType: "push",
			body: `{"ref":"refs/heads/main","after":"` + strings.Repeat("ab", 32) + `","repository":{"name":"hello","owner":{"login":"octo"}}}`,
			want: Event{Provider: "github", Kind: KindBranch, Owner: "octo", Repository: "hello", Ref: "main", Commit: strings.Repeat("ab", 32)},
		},
		{
			name: "push to another ref namespace", eventType: "push",
			body: `{"ref":"refs/notes/commits","after":"0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c","repository":{"name":"hello","owner":{"login":"octo"}}}`,
			want: Event{Provider: "github", Kind: KindIgnore, Owner: "octo", Repository: "hello", Reason: `push to "refs/notes/commits", which is neither a branch nor a tag`},
		},
		// Wrong event header for the body.
		{name: "push header on a ping body", eventType: "push", fixture: "github/ping.json", wantErr: true},
		{
			name: "ping header on a push body", eventType: "ping", fixture: "github/push_branch.json",
			want: Event{Provider: "github", Kind: KindPing, Owner: "octo", Repository: "hello"},
		},
		{
			name: "create header on a push body", eventType: "create", fixture: "github/push_branch.json",
			want: Event{Provider: "github", Kind: KindIgnore, Reason: `creation of a "" does not start builds`},
		},
		{name: "missing event header", eventType: "", fixture: "github/push_branch.json", wantErr: true},
		// Malformed bodies.
		{name: "truncated JSON", eventType: "push", body: `{"ref":"refs/heads/main",`, wantErr: true},
		{name: "not JSON", eventType: "push", body: `ref=refs/heads/main`, wantErr: true},
		{name: "form-encoded ignored event", eventType: "issues", body: `payload=%7B%7D`, wantErr: true},
		{name: "empty body", eventType: "push", body: ``, wantErr: true},
		{name: "null", eventType: "push", body: `null`, wantErr: true},
		{name: "array", eventType: "push", body: `[]`, wantErr: true},
		{name: "ref of the wrong type", eventType: "push", body: `{"ref":7}`, wantErr: true},
		{name: "no repository", eventType: "push", body: `{"ref":"refs/heads/main","after":"0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c"}`, wantErr: true},
		{name: "after is not a hash", eventType: "push", body: `{"ref":"refs/heads/main","after":"HEAD","repository":{"name":"hello","owner":{"login":"octo"}}}`, wantErr: true},
		{name: "after is short", eventType: "push", body: `{"ref":"refs/heads/main","after":"0d1a26e","repository":{"name":"hello","owner":{"login":"octo"}}}`, wantErr: true},
		{name: "no after", eventType: "push", body: `{"ref":"refs/heads/main","repository":{"name":"hello","owner":{"login":"octo"}}}`, wantErr: true},
		{name: "ref with dot-dot", eventType: "push", body: `{"ref":"refs/heads/a..b","after":"0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c","repository":{"name":"hello","owner":{"login":"octo"}}}`, wantErr: true},
		{name: "ref with newline", eventType: "push", body: `{"ref":"refs/heads/a\nb","after":"0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c","repository":{"name":"hello","owner":{"login":"octo"}}}`, wantErr: true},
		{name: "empty branch name", eventType: "push", body: `{"ref":"refs/heads/","after":"0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c","repository":{"name":"hello","owner":{"login":"octo"}}}`, wantErr: true},
		{name: "repository name with a slash", eventType: "push", body: `{"ref":"refs/heads/main","after":"0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c","repository":{"name":"a/b","owner":{"login":"octo"}}}`, wantErr: true},
		{name: "create of a tag without repository", eventType: "create", body: `{"ref":"v1","ref_type":"tag"}`, wantErr: true},
		{name: "create of an invalid tag name", eventType: "create", body: `{"ref":"v1~1","ref_type":"tag","repository":{"name":"hello","owner":{"login":"octo"}}}`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := []byte(tt.body)
			if tt.fixture != "" {
				body = fixture(t, tt.fixture)
			}
			got, err := ParseGitHub(tt.eventType, body)
			if tt.wantErr {
				if !errors.Is(err, ErrMalformed) {
					t.Fatalf("ParseGitHub() = %+v, %v; want an error wrapping ErrMalformed", got, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseGitHub() error = %v", err)
			}
			if core(got) != core(tt.want) {
				t.Errorf("ParseGitHub() =\n %+v\nwant\n %+v", got, tt.want)
			}
			checkEvent(t, build.ProviderGitHub, got)
		})
	}
}

func TestParseGitLab(t *testing.T) {
	tests := []struct {
		name      string
		eventType string
		fixture   string
		body      string
		want      Event
		wantErr   bool
	}{
		{
			name: "push hook", eventType: "Push Hook", fixture: "gitlab/push.json",
			want: Event{Provider: "gitlab", Kind: KindBranch, Owner: "mike", Repository: "diaspora", Ref: "master",
				Commit: "da1560886d4f094c3e6c9ef40349f7d38b5d27d7"},
		},
		{
			name: "tag push hook", eventType: "Tag Push Hook", fixture: "gitlab/tag_push.json",
			want: Event{Provider: "gitlab", Kind: KindTag, Owner: "jsmith", Repository: "example", Ref: "v1.0.0",
				Commit: "82b3d5ae55f7080f1e6022629cdb57bfae7cccc7"},
		},
		{
			// after is the tag object; checkout_sha the commit it tags.
			name: "annotated tag", eventType: "Tag Push Hook", fixture: "gitlab/tag_push_annotated.json",
			want: Event{Provider: "gitlab", Kind: KindTag, Owner: "jsmith", Repository: "example", Ref: "v1.1.0",
				Commit: "5937ac0a7beb003549fc5fd26fc247adbce4a52e"},
		},
		{
			name: "tag deletion in a subgroup", eventType: "Tag Push Hook", fixture: "gitlab/tag_push_deleted.json",
			want: Event{Provider: "gitlab", Kind: KindTag, Owner: "acme/platform", Repository: "hello", Ref: "v1.0.0", Deleted: true},
		},
		{
			name: "branch deletion", eventType: "Push Hook", fixture: "gitlab/push_deleted.json",
			want: Event{Provider: "gitlab", Kind: KindBranch, Owner: "mike", Repository: "diaspora", Ref: "feature/old-ui", Deleted: true},
		},
		{
			name: "checkout_sha null alone", eventType: "Tag Push Hook",
			body: `{"object_kind":"tag_push","ref":"refs/tags/v2","after":"82b3d5ae55f7080f1e6022629cdb57bfae7cccc7","checkout_sha":null,"project":{"path_with_namespace":"jsmith/example"}}`,
			want: Event{Provider: "gitlab", Kind: KindTag, Owner: "jsmith", Repository: "example", Ref: "v2", Deleted: true},
		},
		{
			name: "merge request hook", eventType: "Merge Request Hook", fixture: "gitlab/merge_request.json",
			want: Event{Provider: "gitlab", Kind: KindIgnore, Reason: `gitlab event "Merge Request Hook" does not start builds`},
		},
		{
			name: "system hook", eventType: "System Hook", fixture: "gitlab/push.json",
			want: Event{Provider: "gitlab", Kind: KindIgnore, Reason: `gitlab event "System Hook" does not start builds`},
		},
		{
			// client-go wants RFC 3339 commit timestamps; we never read them.
			name: "field client-go cannot decode", eventType: "Push Hook",
			body: `{"object_kind":"push","ref":"refs/heads/main","after":"da1560886d4f094c3e6c9ef40349f7d38b5d27d7","checkout_sha":"da1560886d4f094c3e6c9ef40349f7d38b5d27d7","project":{"path_with_namespace":"group/sub/app"},"commits":[{"id":"da1560886d4f094c3e6c9ef40349f7d38b5d27d7","timestamp":"2024-01-02 03:04:05 UTC"}]}`,
			want: Event{Provider: "gitlab", Kind: KindBranch, Owner: "group/sub", Repository: "app", Ref: "main",
				Commit: "da1560886d4f094c3e6c9ef40349f7d38b5d27d7"},
		},
		{
			name: "push hook for a tag ref", eventType: "Push Hook",
			body: `{"object_kind":"push","ref":"refs/tags/v1","after":"da1560886d4f094c3e6c9ef40349f7d38b5d27d7","checkout_sha":"da1560886d4f094c3e6c9ef40349f7d38b5d27d7","project":{"path_with_namespace":"mike/diaspora"}}`,
			want: Event{Provider: "gitlab", Kind: KindIgnore, Owner: "mike", Repository: "diaspora", Reason: `gitlab push event for "refs/tags/v1", outside refs/heads/`},
		},
		// Wrong event header for the body.
		{name: "push header on a tag body", eventType: "Push Hook", fixture: "gitlab/tag_push.json", wantErr: true},
		{name: "tag header on a push body", eventType: "Tag Push Hook", fixture: "gitlab/push.json", wantErr: true},
		{name: "push header on a merge request body", eventType: "Push Hook", fixture: "gitlab/merge_request.json", wantErr: true},
		{name: "missing event header", eventType: "", fixture: "gitlab/push.json", wantErr: true},
		// Malformed bodies.
		{name: "truncated JSON", eventType: "Push Hook", body: `{"object_kind":"push"`, wantErr: true},
		{name: "empty body", eventType: "Push Hook", body: ``, wantErr: true},
		{name: "null", eventType: "Push Hook", body: `null`, wantErr: true},
		{name: "ref of the wrong type", eventType: "Push Hook", body: `{"object_kind":"push","ref":[]}`, wantErr: true},
		{name: "no namespace", eventType: "Push Hook", body: `{"object_kind":"push","ref":"refs/heads/main","after":"da1560886d4f094c3e6c9ef40349f7d38b5d27d7","checkout_sha":"da1560886d4f094c3e6c9ef40349f7d38b5d27d7","project":{"path_with_namespace":"diaspora"}}`, wantErr: true},
		{name: "no project", eventType: "Push Hook", body: `{"object_kind":"push","ref":"refs/heads/main","after":"da1560886d4f094c3e6c9ef40349f7d38b5d27d7","checkout_sha":"da1560886d4f094c3e6c9ef40349f7d38b5d27d7"}`, wantErr: true},
		{name: "checkout_sha is not a hash", eventType: "Push Hook", body: `{"object_kind":"push","ref":"refs/heads/main","after":"da1560886d4f094c3e6c9ef40349f7d38b5d27d7","checkout_sha":"main","project":{"path_with_namespace":"mike/diaspora"}}`, wantErr: true},
		{name: "invalid branch name", eventType: "Push Hook", body: `{"object_kind":"push","ref":"refs/heads/a b","after":"da1560886d4f094c3e6c9ef40349f7d38b5d27d7","checkout_sha":"da1560886d4f094c3e6c9ef40349f7d38b5d27d7","project":{"path_with_namespace":"mike/diaspora"}}`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := []byte(tt.body)
			if tt.fixture != "" {
				body = fixture(t, tt.fixture)
			}
			got, err := ParseGitLab(tt.eventType, body)
			if tt.wantErr {
				if !errors.Is(err, ErrMalformed) {
					t.Fatalf("ParseGitLab() = %+v, %v; want an error wrapping ErrMalformed", got, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseGitLab() error = %v", err)
			}
			if core(got) != core(tt.want) {
				t.Errorf("ParseGitLab() =\n %+v\nwant\n %+v", got, tt.want)
			}
			checkEvent(t, build.ProviderGitLab, got)
		})
	}
}

// TestFallbackDecoders makes sure the payloads that test the fallback
// decoders still need them: if go-github or client-go learn to decode these
// payloads, the fallbacks can go.
func TestFallbackDecoders(t *testing.T) {
	if _, err := github.ParseWebHook("push", fixture(t, "github/push_branch.json")); err != nil {
		t.Errorf("go-github cannot decode the documented push payload: %v", err)
	}
	if _, err := github.ParseWebHook("push", fixture(t, "github/push_custom_properties.json")); err == nil {
		t.Error("go-github decodes multi-select custom properties now; the fallback in decodeGitHub is no longer exercised")
	}
	if _, err := gitlab.ParseWebhook(gitlab.EventTypePush, fixture(t, "gitlab/push.json")); err != nil {
		t.Errorf("client-go cannot decode the documented push payload: %v", err)
	}
	odd := `{"object_kind":"push","commits":[{"timestamp":"2024-01-02 03:04:05 UTC"}]}`
	if _, err := gitlab.ParseWebhook(gitlab.EventTypePush, []byte(odd)); err == nil {
		t.Error("client-go decodes non-RFC 3339 timestamps now; the fallback in decodeGitLab is no longer exercised")
	}
}

// core is the part of an Event the parse tables compare; the push details have their own
// table (TestPushDetails).
func core(ev Event) eventCore {
	return eventCore{Provider: ev.Provider, Kind: ev.Kind, Owner: ev.Owner, Repository: ev.Repository, Ref: ev.Ref,
		Commit: ev.Commit, Deleted: ev.Deleted, Delivery: ev.Delivery, Reason: ev.Reason}
}

type eventCore struct {
	Provider               string
	Kind                   Kind
	Owner, Repository, Ref string
	Commit                 string
	Deleted                bool
	Delivery, Reason       string
}
