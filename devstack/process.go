package devstack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// process is one child of the stack: its own process group, its output in a
// log file under Home/stack-logs, reaped by a goroutine that closes done.
type process struct {
	name    string
	logPath string
	cmd     *exec.Cmd
	done    chan struct{}
	err     error // the Wait result; read only after done is closed
}

// startProcess runs bin with args in its own process group, appending its
// stdout and stderr to logDir/name.log.
func startProcess(logger *slog.Logger, logDir, name string, env []string, bin string, args ...string) (*process, error) {
	logPath := filepath.Join(logDir, name+".log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening log of %s: %w", name, err)
	}
	fmt.Fprintf(logFile, "\n=== %s: %s %s\n", time.Now().Format(time.RFC3339), bin, strings.Join(args, " "))

	cmd := exec.Command(bin, args...)
	cmd.Env = env
	cmd.Stdin = nil
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{
		// Its own group, so stopping it also stops what it started (runc,
		// containers) and a Ctrl-C in the terminal reaches only us.
		Setpgid: true,
		// Nothing outlives a test binary that crashed or was killed.
		Pdeathsig: syscall.SIGKILL,
	}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &process{name: name, logPath: logPath, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		logFile.Close()
		close(p.done)
	}()
	logger.Debug("started process", "name", name, "pid", cmd.Process.Pid, "log", logPath)
	return p, nil
}

// exited reports whether the process has ended.
func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends sig to the process group and waits up to grace for the leader to
// exit; then it kills the whole group. It returns once the leader is reaped.
func (p *process) stop(sig syscall.Signal, grace time.Duration) {
	pgid := p.cmd.Process.Pid
	if !p.exited() {
		_ = syscall.Kill(-pgid, sig)
		select {
		case <-p.done:
		case <-time.After(grace):
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			<-p.done
		}
	}
	// Children of the leader (runc, containers) may still hold the group.
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
}

// exitError describes a process that ended while it should have been serving.
func (p *process) exitError() error {
	return fmt.Errorf("%s exited early (%v); see %s:\n%s", p.name, p.err, p.logPath, logTail(p.logPath))
}

// logTail returns the last lines of a log file, for error messages.
func logTail(path string) string {
	const maxBytes = 2048
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() > maxBytes {
		if _, err := f.Seek(-maxBytes, io.SeekEnd); err != nil {
			return ""
		}
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return ""
	}
	s := string(b)
	if len(b) == maxBytes {
		if i := strings.IndexByte(s, '\n'); i >= 0 {
			s = s[i+1:]
		}
	}
	return strings.TrimRight(s, "\n")
}

// waitReady polls check until it succeeds, the process exits, ctx ends or
// timeout passes; errors name the process's log file.
func waitReady(ctx context.Context, p *process, timeout time.Duration, check func(ctx context.Context) error) error {
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
			return p.exitError()
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
