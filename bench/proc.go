package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
)

// process is a binary the bench started, in its own process group, its output in a log file.
type process struct {
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error // the Wait result; read only after done is closed
}

// startProcess starts bin with environ; a bench killed outright takes it along (parent-death
// signal), a Ctrl-C reaches only the bench, which stops it in order.
func startProcess(bin, logPath string, environ []string) (*process, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("creating log of %s: %w", bin, err)
	}
	cmd := exec.Command(bin)
	cmd.Env = environ
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("starting %s: %w", bin, err)
	}
	p := &process{cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	return p, nil
}

// pid is the process's id.
func (p *process) pid() int { return p.cmd.Process.Pid }

// exited reports whether the process has ended.
func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM to the group, as an orchestrator would, and SIGKILL after grace.
func (p *process) stop(grace time.Duration) {
	if p == nil {
		return
	}
	if !p.exited() {
		_ = syscall.Kill(-p.pid(), syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(grace):
		}
	}
	_ = syscall.Kill(-p.pid(), syscall.SIGKILL)
	<-p.done
}

// tail is the end of the process's log, for error messages.
func (p *process) tail() string { return tailFile(p.log, 0) }

// tailFile is what a file holds after offset off, at most its last 4 KiB, for error messages.
func tailFile(path string, off int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size()-off > 4096 {
		off = st.Size() - 4096
	}
	_, _ = f.Seek(off, io.SeekStart)
	b, _ := io.ReadAll(f)
	return strings.TrimSpace(string(b))
}

// moduleRoot is the folder holding go.mod, found upwards from the working directory.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("finding working directory: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		if filepath.Dir(dir) == dir {
			return "", errors.New("go.mod not found above the working directory: run the bench inside the module")
		}
		dir = filepath.Dir(dir)
	}
}

// buildBinaries builds the module's commands named into bin.
func buildBinaries(ctx context.Context, root, bin string, names ...string) error {
	args := []string{"build", "-o", bin + "/"}
	for _, n := range names {
		args = append(args, "./cmd/"+n)
	}
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("building %v: %w\n%s", names, err, out)
	}
	return nil
}

// poll calls check every interval until it reports done, it fails, or timeout passes.
func poll(ctx context.Context, every, timeout time.Duration, check func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	for {
		done, err := check()
		if done || err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not done after %s", timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(every):
		}
	}
}

// waitPoller waits until the worker process polls queue under its own identity ("PID@host@"):
// pollers of a stopped worker stay listed for minutes, so any poller would not do.
func waitPoller(ctx context.Context, tc client.Client, queue string, w *process) error {
	prefix := strconv.Itoa(w.pid()) + "@"
	err := poll(ctx, 100*time.Millisecond, time.Minute, func() (bool, error) {
		if w.exited() {
			return false, fmt.Errorf("worker exited at start (%v)", w.err)
		}
		resp, err := tc.DescribeTaskQueue(ctx, queue, enumspb.TASK_QUEUE_TYPE_WORKFLOW)
		if err != nil {
			return false, nil
		}
		for _, p := range resp.GetPollers() {
			if strings.HasPrefix(p.GetIdentity(), prefix) {
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		return fmt.Errorf("worker %d polling %s: %w; log:\n%s", w.pid(), queue, err, w.tail())
	}
	return nil
}
