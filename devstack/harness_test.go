package devstack

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// alive reports whether a process with pid runs: it exists and is not a zombie waiting for
// its reaper.
func alive(pid int) bool {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return false
	}
	_, rest, _ := strings.Cut(string(b), ") ")
	return !strings.HasPrefix(rest, "Z") && !strings.HasPrefix(rest, "X")
}

func TestProcess(t *testing.T) {
	tests := []struct {
		name string
		// script runs under sh; it may leave a child in its group.
		script string
		end    func(p *Process) error
		// killed says that the process had to be killed (Stop's error).
		killed bool
	}{
		{"stop ends a process that handles SIGTERM", `trap 'exit 0' TERM; echo ready; while :; do sleep 0.05; done`,
			func(p *Process) error { return p.Stop(5 * time.Second) }, false},
		{"stop kills a process that ignores SIGTERM after grace", `trap '' TERM; echo ready; while :; do sleep 0.05; done`,
			func(p *Process) error { return p.Stop(300 * time.Millisecond) }, true},
		{"kill ends it at once", `trap '' TERM; echo ready; while :; do sleep 0.05; done`,
			func(p *Process) error { p.Kill(); return nil }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			grandchild := filepath.Join(dir, "grandchild.pid")
			// A grandchild in the group that outlives its parent's SIGTERM: stopping the
			// process must end it too.
			script := "sh -c 'trap \"\" TERM; echo $$ > " + grandchild + "; exec sleep 600' & " + tt.script
			p, err := StartProcess(Command{Args: []string{"sh", "-c", script}, Log: filepath.Join(dir, "p.log")})
			if err != nil {
				t.Fatal(err)
			}
			var gpid int
			if err := Poll(t.Context(), 20*time.Millisecond, 10*time.Second, func() (bool, error) {
				b, _ := os.ReadFile(grandchild)
				gpid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
				return gpid != 0 && strings.Contains(p.Tail(5), "ready"), p.ExitError()
			}); err != nil {
				t.Fatalf("the process did not start: %v\n%s", err, p.Tail(20))
			}
			if p.ExitError() != nil {
				t.Fatal("ExitError is set while the process runs")
			}
			err = tt.end(p)
			if (err != nil) != tt.killed {
				t.Errorf("end = %v, want killed %v", err, tt.killed)
			}
			select {
			case <-p.Exited():
			default:
				t.Fatal("Exited is open after the process was stopped")
			}
			if p.ExitError() == nil || !strings.Contains(p.ExitError().Error(), "ready") {
				t.Errorf("ExitError = %v, want one with the log's tail", p.ExitError())
			}
			if err := Poll(t.Context(), 20*time.Millisecond, 5*time.Second, func() (bool, error) {
				return !alive(gpid), nil
			}); err != nil {
				t.Errorf("grandchild %d in the group survived: %v", gpid, err)
			}
		})
	}
}

func TestStartProcessFails(t *testing.T) {
	dir := t.TempDir()
	if _, err := StartProcess(Command{Args: []string{filepath.Join(dir, "missing")}, Log: filepath.Join(dir, "log")}); err == nil {
		t.Error("StartProcess of a missing program succeeded")
	}
	if _, err := StartProcess(Command{Log: filepath.Join(dir, "log")}); err == nil {
		t.Error("StartProcess without a program succeeded")
	}
}

func TestTail(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	var lines []string
	for i := range 20000 { // over the 64 KiB read
		lines = append(lines, "line "+strconv.Itoa(i))
	}
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		n    int
		want string
	}{
		{"last line", 1, "line 19999"},
		{"last three", 3, "line 19997\nline 19998\nline 19999"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := TailFile(path, tt.n); got != tt.want {
				t.Errorf("TailFile(%d) = %q, want %q", tt.n, got, tt.want)
			}
		})
	}
	if got := TailFile(path, 1e6); strings.HasPrefix(got, "line 0\n") || !strings.HasPrefix(got, "line ") {
		t.Errorf("a tail over the read limit starts with %q, want a whole line from the file's end", got[:20])
	}
}

func TestGetenv(t *testing.T) {
	getenv := Getenv([]string{"A=1", "B=x=y", "A=2", "EMPTY="})
	tests := []struct{ key, want string }{{"A", "2"}, {"B", "x=y"}, {"EMPTY", ""}, {"MISSING", ""}}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			if got := getenv(tt.key); got != tt.want {
				t.Errorf("getenv(%q) = %q, want %q", tt.key, got, tt.want)
			}
		})
	}
}

func TestStackEnv(t *testing.T) {
	s := &Stack{home: "/h", TemporalAddress: "127.0.0.1:1", TemporalUIURL: "http://127.0.0.1:2",
		BuildkitAddr: "unix:///h/b.sock", Registry: "127.0.0.1:3", RegistryTokenKey: "/h/k",
		BuildCgroup: "slipway-x", BuildBridge: "slwx"}
	tests := []struct {
		name string
		env  []string
		want map[string]string
	}{
		{"worker", s.WorkerEnv("SLIPWAY_REGISTRY=elsewhere:5000"), map[string]string{
			"SLIPWAY_HOME": "/h", "SLIPWAY_TEMPORAL_ADDRESS": "127.0.0.1:1", "SLIPWAY_BUILDKIT_ADDR": "unix:///h/b.sock",
			"SLIPWAY_BUILD_CGROUP": "slipway-x", "SLIPWAY_BUILD_BRIDGE": "slwx", "SLIPWAY_REGISTRY_TOKEN_KEY": "/h/k",
			// extra wins, and base images still come from the stack's registry
			"SLIPWAY_REGISTRY": "elsewhere:5000", "SLIPWAY_REGISTRY_TOKEN_HOSTS": "127.0.0.1:3",
		}},
		{"gateway", s.GatewayEnv("SLIPWAY_HOME=/g"), map[string]string{
			"SLIPWAY_HOME": "/g", "SLIPWAY_TEMPORAL_ADDRESS": "127.0.0.1:1", "SLIPWAY_TEMPORAL_UI_URL": "http://127.0.0.1:2",
			"SLIPWAY_REGISTRY": "127.0.0.1:3", "SLIPWAY_REGISTRY_TOKEN_KEY": "/h/k", "SLIPWAY_BUILDKIT_ADDR": "",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			getenv := Getenv(tt.env)
			for k, want := range tt.want {
				if got := getenv(k); got != want {
					t.Errorf("%s = %q, want %q", k, got, want)
				}
			}
			if !slices.ContainsFunc(tt.env, func(kv string) bool { return strings.HasPrefix(kv, "PATH=") }) {
				t.Error("the environment lacks this process's PATH")
			}
		})
	}
}

func TestPoll(t *testing.T) {
	stop := errors.New("stop")
	tests := []struct {
		name  string
		check func(n int) (bool, error)
		want  func(error) bool
		calls int
	}{
		{"done on the third call", func(n int) (bool, error) { return n == 3, nil }, func(err error) bool { return err == nil }, 3},
		{"an error ends it at once", func(n int) (bool, error) { return false, stop }, func(err error) bool { return errors.Is(err, stop) }, 1},
		{"never done times out", func(n int) (bool, error) { return false, nil }, func(err error) bool { return errors.Is(err, context.DeadlineExceeded) }, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := 0
			err := Poll(t.Context(), 5*time.Millisecond, 200*time.Millisecond, func() (bool, error) { n++; return tt.check(n) })
			if !tt.want(err) {
				t.Errorf("Poll = %v", err)
			}
			if tt.calls >= 0 && n != tt.calls {
				t.Errorf("check called %d times, want %d", n, tt.calls)
			}
		})
	}
}

func TestSignGitHub(t *testing.T) {
	// GitHub's documented example (docs.github.com, "Validating webhook deliveries").
	got := SignGitHub("It's a Secret to Everybody", []byte("Hello, World!"))
	if want := "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"; got != want {
		t.Errorf("SignGitHub = %s, want %s", got, want)
	}
}

func TestModuleRootAndFreeAddr(t *testing.T) {
	root, err := ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "devstack", "harness.go")); err != nil {
		t.Errorf("ModuleRoot = %s, which lacks devstack/harness.go: %v", root, err)
	}
	addr, err := FreeAddr()
	if err != nil || !strings.HasPrefix(addr, "127.0.0.1:") {
		t.Errorf("FreeAddr = %q, %v", addr, err)
	}
}

func TestBoundEndsWithTheProcess(t *testing.T) {
	dir := t.TempDir()
	p, err := StartProcess(Command{Name: "quitter", Args: []string{"sh", "-c", "echo giving up; sleep 0.2; exit 3"},
		Log: filepath.Join(dir, "log")})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := p.Bound(t.Context())
	defer cancel()
	err = Poll(ctx, 10*time.Millisecond, time.Minute, func() (bool, error) { return false, nil })
	if err == nil || !strings.Contains(err.Error(), "quitter exited (exit status 3)") || !strings.Contains(err.Error(), "giving up") {
		t.Errorf("Poll bound to a process that exits = %v, want its ExitError", err)
	}
}
