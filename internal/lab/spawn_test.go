package lab

import (
	"os/exec"
	"runtime"
	"syscall"
	"testing"
	"time"
)

// sleeper is a child that dies with its parent thread (SIGKILL).
func sleeper() *exec.Cmd {
	cmd := exec.Command("sleep", "30")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	return cmd
}

// exited waits up to d for cmd to end and reports whether it did.
func exited(cmd *exec.Cmd, done <-chan struct{}, d time.Duration) bool {
	select {
	case <-done:
		return true
	case <-time.After(d):
		return false
	}
}

func wait(cmd *exec.Cmd) <-chan struct{} {
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	return done
}

// TestStartCmdOutlivesThreads: a child forked from a thread that then
// ends gets its parent-death signal (the kernel's rule, which killed lab
// processes mid-test); one StartCmd forked does not, however many of the
// runtime's threads end meanwhile.
func TestStartCmdOutlivesThreads(t *testing.T) {
	// The rule: forked from a goroutine's locked thread, which ends with
	// the goroutine (unless it is the main thread, which the runtime
	// keeps: hence a few tries).
	died := false
	for try := 0; try < 5 && !died; try++ {
		naive := sleeper()
		started := make(chan error, 1)
		go func() {
			runtime.LockOSThread() // never unlocked: the thread ends here
			started <- naive.Start()
		}()
		if err := <-started; err != nil {
			t.Fatal(err)
		}
		naiveDone := wait(naive)
		if died = exited(naive, naiveDone, 2*time.Second); !died {
			_ = naive.Process.Kill()
			<-naiveDone
		}
	}
	if !died {
		t.Fatal("no child forked from a thread that ended was killed: the premise of StartCmd does not hold here")
	}

	kept := sleeper()
	if err := StartCmd(kept); err != nil {
		t.Fatal(err)
	}
	keptDone := wait(kept)
	defer func() { _ = kept.Process.Kill(); <-keptDone }()
	// End many runtime threads, as canaries and namespace helpers do.
	for range 50 {
		done := make(chan struct{})
		go func() {
			runtime.LockOSThread()
			close(done)
		}()
		<-done
	}
	if exited(kept, keptDone, time.Second) {
		t.Fatalf("the child StartCmd started ended while threads ended: %v", kept.ProcessState)
	}
}
