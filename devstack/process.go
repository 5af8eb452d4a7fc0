package devstack

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"
)

// Command is a long-running child to start with StartProcess.
type Command struct {
	// Name names the process in errors; empty means the program's base name.
	Name string
	// Args is the program and its arguments; a prefix such as unshare goes first.
	Args []string
	// Env is the child's environment; nil means this process's.
	Env []string
	// Dir is the child's working directory; empty means this process's.
	Dir string
	// Log is the file the child's stdout and stderr are appended to, so a restarted child's
	// log follows the first one's.
	Log string
}

// Process is a child in its own process group, its output in a log file. Its own group, so
// that stopping it also stops what it started (runc, containers) and a Ctrl-C in the terminal
// reaches only the parent, which stops children in order. The kernel kills it when the
// parent dies (even killed outright), so a crashed test or bench leaves nothing running.
type Process struct {
	name    string
	logPath string
	cmd     *exec.Cmd
	done    chan struct{}
	err     error // the Wait result; read only after done is closed
}

// StartProcess starts c and returns once it runs; a goroutine reaps it.
func StartProcess(c Command) (*Process, error) {
	if len(c.Args) == 0 {
		return nil, errors.New("starting a process: no program")
	}
	name := c.Name
	if name == "" {
		name = filepath.Base(c.Args[0])
	}
	logFile, err := os.OpenFile(c.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening log of %s: %w", name, err)
	}
	fmt.Fprintf(logFile, "\n=== %s: %s\n", time.Now().Format(time.RFC3339), strings.Join(c.Args, " "))

	cmd := exec.Command(c.Args[0], c.Args[1:]...)
	cmd.Env, cmd.Dir = c.Env, c.Dir
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	p := &Process{name: name, logPath: c.Log, cmd: cmd, done: make(chan struct{})}
	started := make(chan error, 1)
	go func() {
		// The kernel sends Pdeathsig when the thread that forked the child ends, not the
		// process: this goroutine keeps its thread until the child exits.
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		p.err = cmd.Wait()
		logFile.Close()
		close(p.done)
	}()
	if err := <-started; err != nil {
		logFile.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	return p, nil
}

// Pid is the process's id, which is also its process group's.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// LogPath is the file the process logs to.
func (p *Process) LogPath() string { return p.logPath }

// Exited is closed once the process has ended and been reaped.
func (p *Process) Exited() <-chan struct{} { return p.done }

// Wait waits until the process ends and returns how it ended (exec.Cmd.Wait's error).
func (p *Process) Wait() error {
	<-p.done
	return p.err
}

// ExitError is nil while the process runs; once it has ended, an error naming it, how it
// ended and the end of its log, for a caller that needed it to keep serving.
func (p *Process) ExitError() error {
	select {
	case <-p.done:
	default:
		return nil
	}
	return fmt.Errorf("%s exited (%v); see %s:\n%s", p.name, p.err, p.logPath, p.Tail(20))
}

// Signal sends sig to the process's group.
func (p *Process) Signal(sig syscall.Signal) error {
	return syscall.Kill(-p.Pid(), sig)
}

// Stop sends SIGTERM to the process group, as an orchestrator would, and SIGKILL if the
// process has not ended after grace. It returns once the process is reaped, with an error
// when it had to be killed; what it started and left in its group is killed either way.
func (p *Process) Stop(grace time.Duration) error {
	var err error
	select {
	case <-p.done:
	default:
		_ = p.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(grace):
			err = fmt.Errorf("%s did not stop within %s of SIGTERM; killed", p.name, grace)
			_ = p.Signal(syscall.SIGKILL)
			<-p.done
		}
	}
	// Children of the leader (runc, containers) may still hold the group.
	_ = p.Signal(syscall.SIGKILL)
	return err
}

// Kill kills the process group at once, as a crash would, and returns once the process is
// reaped.
func (p *Process) Kill() {
	_ = p.Signal(syscall.SIGKILL)
	<-p.done
}

// Bound returns a context that ends when ctx does or when the process exits, with the
// process's ExitError as its cause (context.Cause): a wait for something the process should
// bring about (a poller, a healthy endpoint, a build) then ends at once, saying why.
func (p *Process) Bound(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(ctx)
	go func() {
		select {
		case <-p.done:
			cancel(p.ExitError())
		case <-ctx.Done():
		}
	}()
	return ctx, func() { cancel(context.Canceled) }
}

// Tail returns the last n lines of the process's log (from its last 64 KiB at most), for
// error messages.
func (p *Process) Tail(n int) string { return TailFile(p.logPath, n) }

// TailFile returns the last n lines of the file at path (a log), read from its last 64 KiB,
// for error messages; "" when it cannot be read.
func TailFile(path string, n int) string {
	const maxBytes = 64 << 10
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	cut := false
	if st, err := f.Stat(); err == nil && st.Size() > maxBytes {
		if _, err := f.Seek(-maxBytes, io.SeekEnd); err != nil {
			return ""
		}
		cut = true
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return ""
	}
	if cut {
		// The first line is likely partial.
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		}
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// startProcess runs bin with args, logging to logDir/name.log.
func startProcess(logger *slog.Logger, logDir, name string, env []string, bin string, args ...string) (*Process, error) {
	p, err := StartProcess(Command{Name: name, Args: append([]string{bin}, args...), Env: env,
		Log: filepath.Join(logDir, name+".log")})
	if err != nil {
		return nil, err
	}
	logger.Debug("started process", "name", name, "pid", p.Pid(), "log", p.logPath)
	return p, nil
}

// exited reports whether the process has ended.
func (p *Process) exited() bool { return p.ExitError() != nil }

// waitReady polls check until it succeeds, the process exits, ctx ends or
// timeout passes; errors name the process's log file.
func waitReady(ctx context.Context, p *Process, timeout time.Duration, check func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var lastErr error
	for {
		attemptCtx, attemptCancel := context.WithTimeout(ctx, 5*time.Second)
		lastErr = check(attemptCtx)
		attemptCancel()
		if lastErr == nil {
			return nil
		}
		var perm permanentError
		if errors.As(lastErr, &perm) {
			return fmt.Errorf("%s: %w", p.name, perm.err)
		}
		select {
		case <-p.done:
			return p.ExitError()
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("%s not ready after %s: %w; see %s", p.name, timeout, lastErr, p.logPath)
			}
			return fmt.Errorf("waiting for %s: %w", p.name, ctx.Err())
		case <-tick.C:
		}
	}
}

// permanentError stops waitReady at once: waiting longer cannot fix it.
type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }

func permanent(err error) error { return permanentError{err: err} }
