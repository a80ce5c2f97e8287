package hooks

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"

	"golang.org/x/sys/unix"
)

// ExecCommand is the argument that makes carpd exec a hook (see
// ExecWithoutCapabilities): carpd __hook-exec SCRIPT ARGS...
const ExecCommand = "__hook-exec"

// ExecWithoutCapabilities clears the ambient capabilities of this process
// and execs argv: a hook must not inherit CAP_NET_ADMIN and CAP_NET_RAW
// from a carpd that runs as an unprivileged user with them (systemd's
// AmbientCapabilities). Go cannot clear them between fork and exec, so
// carpd runs itself with ExecCommand to do it. It returns only on error.
//
// The command also starts at nice 0 again: carpd's threads run at a raised
// priority (host.LoopNice), which a new process takes from the thread that
// started it, and a hook or a check must not compete with carpd's adverts
// at that priority (keepalived resets its scripts' priority likewise).
func ExecWithoutCapabilities(argv []string) error {
	if len(argv) == 0 {
		return errors.New("no command")
	}
	// The nice value is the thread's: the one that calls exec(2) keeps it.
	runtime.LockOSThread()
	_ = unix.Setpriority(unix.PRIO_PROCESS, 0, 0) // lowering one's priority needs no privilege
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil {
		return fmt.Errorf("clearing the ambient capabilities: %w", err)
	}
	if os.Getuid() != 0 {
		// Nothing inheritable either: an executable with file
		// capabilities gets only its own.
		hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
		var data [2]unix.CapUserData
		if err := unix.Capget(&hdr, &data[0]); err == nil {
			data[0].Inheritable, data[1].Inheritable = 0, 0
			_ = unix.Capset(&hdr, &data[0])
		}
	}
	path, err := exec.LookPath(argv[0])
	if err != nil {
		return err
	}
	return unix.Exec(path, argv, os.Environ())
}

// hasCapSetuid reports whether this process may change its uid
// (CAP_SETUID in its effective set).
func hasCapSetuid() bool {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return false
	}
	return data[0].Effective&(1<<unix.CAP_SETUID) != 0
}
