package gitserver_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slipway-dev/slipway/internal/testing/gitserver"
)

// lsRemote lists the refs of url as a client sees them over smart HTTP.
func lsRemote(url string) (string, error) {
	cmd := exec.Command("git", "-c", "credential.helper=", "ls-remote", url)
	cmd.Env = append(os.Environ(), "GIT_TERMINAL_PROMPT=0", "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestServer(t *testing.T) {
	tests := []struct {
		name       string
		user, pass string
		// cloneAs is the user:password the client puts in the URL; empty for none.
		cloneAs string
		wantErr bool
	}{
		{"public", "", "", "", false},
		{"private with the right password", "u", "p", "u:p", false},
		{"private without credentials", "u", "p", "", true},
		{"private with a wrong password", "u", "p", "u:wrong", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, err := gitserver.New(t.TempDir(), tt.user, tt.pass)
			if err != nil {
				t.Fatal(err)
			}
			defer srv.Close()
			repo, err := srv.CreateRepository("octo", "hello", filepath.Join(t.TempDir(), "work"))
			if err != nil {
				t.Fatal(err)
			}
			head, err := repo.Commit("main", map[string]string{"Dockerfile": "FROM busybox\n"})
			if err != nil {
				t.Fatal(err)
			}
			if err := repo.Tag("main", "v1", true); err != nil {
				t.Fatal(err)
			}
			url := repo.CloneURL
			if tt.cloneAs != "" {
				url = strings.Replace(url, "http://", "http://"+tt.cloneAs+"@", 1)
			}
			out, err := lsRemote(url)
			if (err != nil) != tt.wantErr {
				t.Fatalf("ls-remote: %v, want error %v\n%s", err, tt.wantErr, out)
			}
			if !tt.wantErr && (!strings.Contains(out, head+"\trefs/heads/main") || !strings.Contains(out, "refs/tags/v1")) {
				t.Errorf("ls-remote lacks main at %s or tag v1:\n%s", head, out)
			}
		})
	}
}

func TestCommitFailsWithAnError(t *testing.T) {
	srv, err := gitserver.New(t.TempDir(), "", "")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	repo, err := srv.CreateRepository("octo", "hello", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := repo.Commit("bad..name", map[string]string{"f": "x"}); err == nil {
		t.Error("Commit on an invalid branch name succeeded")
	}
}
