package webhook

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/slipway-dev/slipway/build"
)

// seedFixtures adds every fixture under testdata/dir to f's seed corpus with
// each of eventTypes, so the fuzzer starts from real payloads.
func seedFixtures(f *testing.F, dir string, eventTypes ...string) {
	names, err := filepath.Glob(filepath.Join("testdata", dir, "*.json"))
	if err != nil || len(names) == 0 {
		f.Fatalf("no fixtures in testdata/%s: %v", dir, err)
	}
	for _, name := range names {
		body, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		for _, et := range eventTypes {
			f.Add(et, body)
		}
	}
}

func FuzzParseGitHub(f *testing.F) {
	seedFixtures(f, "github", "push", "create", "ping", "issues")
	f.Add("push", []byte(`{"ref":"refs/heads/main","after":"0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c","repository":{"name":"hello","owner":{"login":"octo"}}}`))
	f.Add("push", []byte(`{"ref":"refs/tags/v1","after":"0000000000000000000000000000000000000000","deleted":true,"repository":{"name":"hello","owner":{"name":"octo"}}}`))
	f.Add("create", []byte(`{"ref":"v1","ref_type":"tag","repository":{"name":"hello","owner":{"login":"octo"}}}`))
	f.Add("push", []byte(`{"ref":"refs/tags/v1","after":"6113728f27ae82c7b1a177c8d03f9e96e0adf246","head_commit":{"id":"0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c"},"repository":{"name":"hello","owner":{"login":"octo"},"custom_properties":{"team":["a"]}}}`))
	f.Fuzz(func(t *testing.T, eventType string, body []byte) {
		// Every body also goes through the event types that read it, so
		// mutations of the body are not wasted on an unknown header.
		for _, et := range []string{eventType, "push", "create", "ping"} {
			ev, err := ParseGitHub(et, body)
			checkParsed(t, build.ProviderGitHub, ev, err)
		}
	})
}

// checkParsed asserts the contract of both parsers on any input.
func checkParsed(t *testing.T, provider string, ev Event, err error) {
	t.Helper()
	if err != nil {
		if !errors.Is(err, ErrMalformed) {
			t.Fatalf("error %v does not wrap ErrMalformed", err)
		}
		if !reflect.DeepEqual(ev, Event{}) {
			t.Fatalf("error %v comes with event %+v", err, ev)
		}
		return
	}
	checkEvent(t, provider, ev)
	checkID(t, BuildID("r-1", ev))
}

func FuzzParseGitLab(f *testing.F) {
	seedFixtures(f, "gitlab", "Push Hook", "Tag Push Hook", "System Hook")
	f.Add("Tag Push Hook", []byte(`{"object_kind":"tag_push","ref":"refs/tags/v2","after":"82b3d5ae55f7080f1e6022629cdb57bfae7cccc7","checkout_sha":null,"project":{"path_with_namespace":"a/b/c"}}`))
	f.Add("Push Hook", []byte(`{"object_kind":"push","ref":"refs/heads/main","after":"da1560886d4f094c3e6c9ef40349f7d38b5d27d7","checkout_sha":"da1560886d4f094c3e6c9ef40349f7d38b5d27d7","project":{"path_with_namespace":"mike/diaspora"},"commits":[{"timestamp":"x"}]}`))
	f.Fuzz(func(t *testing.T, eventType string, body []byte) {
		for _, et := range []string{eventType, "Push Hook", "Tag Push Hook"} {
			ev, err := ParseGitLab(et, body)
			checkParsed(t, build.ProviderGitLab, ev, err)
		}
	})
}

func FuzzVerifyGitHub(f *testing.F) {
	body := []byte(`{"zen":"Design for failure."}`)
	f.Add("s3cret", body, signGitHub("s3cret", body))
	f.Add("s3cret", body, signGitHub("other", body))
	f.Add("s3cret", body, "sha1=0123456789abcdef0123456789abcdef01234567")
	f.Add("", body, signGitHub("", body))
	f.Add("s3cret", body, "")
	f.Add("s3cret", []byte{}, "sha256=")
	f.Fuzz(func(t *testing.T, secret string, body []byte, signature string) {
		err := VerifyGitHub(secret, body, signature)
		want := signGitHub(secret, body)
		if err == nil {
			if secret == "" {
				t.Fatal("empty secret validated")
			}
			if strings.ToLower(signature) != want {
				t.Fatalf("signature %q validated, want %q", signature, want)
			}
		} else if secret != "" && signature == want {
			t.Fatalf("the correct signature was refused: %v", err)
		}
		// The right signature always validates, whatever the body.
		if secret != "" {
			if err := VerifyGitHub(secret, body, want); err != nil {
				t.Fatalf("the correct signature was refused: %v", err)
			}
		}
		if err := VerifyGitLab(secret, signature); (err == nil) != (secret != "" && secret == signature) {
			t.Fatalf("VerifyGitLab(%q, %q) = %v", secret, signature, err)
		}
	})
}

func FuzzBuildID(f *testing.F) {
	f.Add("r-1", "branch", "main", "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c", "")
	f.Add("r-1", "tag", "v1.2.0", "", "72d3162e-cc78-11e3-81ab-4c9367dc0958")
	f.Add("r-1", "branch", "feature/a$b", "", "d")
	f.Add("r/1 ", "ignore", "发布/版本", "zz", "")
	f.Add("", "", "", "", "")
	f.Fuzz(func(t *testing.T, rule, kind, ref, commit, delivery string) {
		ev := Event{Kind: Kind(kind), Ref: ref, Commit: commit, Delivery: delivery}
		id := BuildID(rule, ev)
		checkID(t, id)
		if BuildID(rule, ev) != id {
			t.Fatal("BuildID is not deterministic")
		}
		// What identifies a build is the rule, the kind and the ref; the
		// delivery never matters once there is a commit, and never for tags.
		if ev.Kind == KindTag || (ev.Kind == KindBranch && ev.Commit != "") {
			other := ev
			other.Delivery += "x"
			if BuildID(rule, other) != id {
				t.Fatal("a redelivery changes the build ID")
			}
		}
		if ev.Kind == KindBranch || ev.Kind == KindTag {
			other := ev
			other.Ref += "x"
			if BuildID(rule, other) == id {
				t.Fatal("two refs share a build ID")
			}
		}
		m := ManualBuildID(rule, delivery)
		checkID(t, m)
		if m == id {
			t.Fatal("a manual build shares a webhook build's ID")
		}
	})
}
