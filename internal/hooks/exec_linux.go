package hooks

import (
	"errors"
	"fmt"
	"io"
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
	// Lowering one's priority needs no privilege; should it fail all the
	// same, the command runs at carpd's priority: worth a line, not a
	// refusal.
	if err := setpriority(unix.PRIO_PROCESS, 0, 0); err != nil {
		fmt.Fprintf(warnings, "carpd: hook: %s runs at carpd's raised priority: resetting the nice value: %v\n", argv[0], err)
	}
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil {
		return fmt.Errorf("clearing the ambient capabilities: %w", err)
	}
	if getuid() != 0 {
		// Nothing inheritable either: an executable with file
		// capabilities gets only its own. A command that would keep
		// carpd's does not run.
		if err := dropInheritable(); err != nil {
			return err
		}
	}
	path, err := exec.LookPath(argv[0])
	if err != nil {
		return err
	}
	return unix.Exec(path, argv, os.Environ())
}

// The system calls of ExecWithoutCapabilities; tests make them fail.
var (
	setpriority           = unix.Setpriority
	capget                = unix.Capget
	capset                = unix.Capset
	getuid                = os.Getuid
	warnings    io.Writer = os.Stderr
)

// dropInheritable empties this process's inheritable capabilities.
func dropInheritable() error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := capget(&hdr, &data[0]); err != nil {
		return fmt.Errorf("reading the capabilities to clear the inheritable ones: %w", err)
	}
	data[0].Inheritable, data[1].Inheritable = 0, 0
	if err := capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("clearing the inheritable capabilities: %w", err)
	}
	return nil
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
