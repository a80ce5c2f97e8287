package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Proc is a background process started with Host.Start.
type Proc struct {
	Name string

	cmd  *exec.Cmd
	out  Buffer
	done chan struct{} // closed once the process has been waited for
	err  error         // Wait's result, set before done is closed
}

func newProc(name string, cmd *exec.Cmd) *Proc {
	p := &Proc{Name: name, cmd: cmd, done: make(chan struct{})}
	cmd.Stdout = &p.out
	cmd.Stderr = &p.out
	return p
}

// start starts the process and a goroutine that reaps it. If the start
// fails, done is closed at once.
func (p *Proc) start() error {
	if err := StartCmd(p.cmd); err != nil {
		p.err = err
		close(p.done)
		return err
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	return nil
}

// PID returns the process ID (0 if it never started).
func (p *Proc) PID() int {
	if p.cmd.Process == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// Signal sends sig to the process (not to its process group). Signalling a
// process that has exited is not an error.
func (p *Proc) Signal(sig os.Signal) error {
	select {
	case <-p.done:
		return nil
	default:
	}
	if err := p.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("lab: signal %s (pid %d): %w", p.Name, p.PID(), err)
	}
	return nil
}

// Kill sends SIGKILL to the process's group (the process and anything it
// started) and waits for the process to end. It is idempotent.
func (p *Proc) Kill() error {
	return p.kill(10 * time.Second)
}

func (p *Proc) kill(wait time.Duration) error {
	select {
	case <-p.done:
		return nil
	default:
	}
	// Setpgid made the process group ID equal to the PID.
	if err := syscall.Kill(-p.PID(), syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("lab: kill %s (pid %d): %w", p.Name, p.PID(), err)
	}
	select {
	case <-p.done:
		return nil
	case <-time.After(wait):
		return fmt.Errorf("lab: %s (pid %d) still running %v after SIGKILL", p.Name, p.PID(), wait)
	}
}

// Wait waits for the process to end and returns its exit error, as
// exec.Cmd.Wait does (nil for exit status 0).
func (p *Proc) Wait() error {
	<-p.done
	return p.err
}

// Done is closed when the process has ended.
func (p *Proc) Done() <-chan struct{} { return p.done }

// ExitCode returns the exit code, or -1 while running or when killed by a
// signal.
func (p *Proc) ExitCode() int {
	select {
	case <-p.done:
	default:
		return -1
	}
	if p.cmd.ProcessState == nil {
		return -1
	}
	return p.cmd.ProcessState.ExitCode()
}

// Output returns everything the process has written to stdout and stderr
// so far.
func (p *Proc) Output() string { return p.out.String() }

// WaitOutput waits until the output contains substr. It fails when ctx ends
// first or when the process exits without having written it.
func (p *Proc) WaitOutput(ctx context.Context, substr string) error {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		if strings.Contains(p.Output(), substr) {
			return nil
		}
		select {
		case <-p.done:
			if strings.Contains(p.Output(), substr) {
				return nil
			}
			return fmt.Errorf("lab: %s exited (%v) without writing %q; output:\n%s", p.Name, p.err, substr, p.Output())
		case <-ctx.Done():
			return fmt.Errorf("lab: %s: waiting for %q: %w; output:\n%s", p.Name, substr, ctx.Err(), p.Output())
		case <-t.C:
		}
	}
}

// Buffer is a bytes.Buffer safe for several writers and readers: a
// process's output, or a log that goroutines write while a test reads it.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
