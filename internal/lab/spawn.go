package lab

import (
	"os/exec"
	"runtime"
	"sync"
)

// Linux sends a child its parent-death signal (SysProcAttr.Pdeathsig) when
// the thread that forked it ends, not the process: a lab's keepalived or
// carpd forked from a Go runtime thread that a goroutine later locks and
// lets die (a canary at a raised priority, a namespace that could not be
// left) was killed mid-test, its peer and its addresses left behind. So
// every child with a parent-death signal is forked from the one thread
// StartCmd keeps for the life of the process.

var (
	spawnOnce sync.Once
	spawns    chan func()
)

// StartCmd starts cmd (exec.Cmd.Start) from a thread that lives as long as
// the process, so that its Pdeathsig comes only when the process ends.
func StartCmd(cmd *exec.Cmd) error {
	spawnOnce.Do(func() {
		spawns = make(chan func())
		go func() {
			// Never unlocked: the thread stays this goroutine's, and
			// the goroutine never returns.
			runtime.LockOSThread()
			for f := range spawns {
				f()
			}
		}()
	})
	errc := make(chan error, 1)
	spawns <- func() { errc <- cmd.Start() }
	return <-errc
}
