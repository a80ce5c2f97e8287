package host

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// The kernel's autogroups (kernel.sched_autogroup_enabled, on in Debian's
// kernels) put the processes of each session in a scheduling group of
// their own, and share the CPU between the groups first: a thread's nice
// value ranks it only among the threads of its own session. systemd starts
// every service in a session of its own, so carpd's threads' nice -10
// would not count against a busy process of another service: carpd as a
// whole would get no more than that service when both want the CPU. When
// carpd leads its session (a service, or started by setsid), it gives its
// autogroup LoopNice too; started from a shell, it leaves the shell's
// session alone.

// autogroupEnabled is the kernel's switch; autogroupSelf is carpd's group.
var (
	autogroupEnabled = "/proc/sys/kernel/sched_autogroup_enabled"
	autogroupSelf    = "/proc/self/autogroup"
)

// errNoAutogroup: the process is in no autogroup of its own but in the
// kernel's default group (the root task group), as the sessions of init
// and of processes it started without a session of their own are; the
// kernel shows an empty /proc/self/autogroup then, and refuses to renice
// the root group.
var errNoAutogroup = errors.New("in the kernel's default scheduling group, no autogroup")

// raiseAutogroup gives carpd's autogroup the nice value LoopNice when
// carpd leads its session, the kernel has autogroups and carpd is in one;
// otherwise it does nothing. It needs CAP_SYS_NICE.
func raiseAutogroup() error {
	if sid, err := unix.Getsid(0); err != nil || sid != unix.Getpid() {
		return nil
	}
	on, err := os.ReadFile(autogroupEnabled)
	if err != nil || strings.TrimSpace(string(on)) != "1" {
		return nil
	}
	if _, err := autogroupNice(); errors.Is(err, errNoAutogroup) {
		return nil
	}
	if err := os.WriteFile(autogroupSelf, []byte(strconv.Itoa(LoopNice)), 0); err != nil {
		return fmt.Errorf("setting the nice value of carpd's autogroup (its session's scheduling group) to %d: %w", LoopNice, err)
	}
	return nil
}

// autogroupNice reads the nice value of carpd's autogroup
// ("/autogroup-123 nice -10"); errNoAutogroup when the file is empty.
func autogroupNice() (int, error) {
	data, err := os.ReadFile(autogroupSelf)
	if err != nil {
		return 0, err
	}
	f := strings.Fields(string(data))
	if len(f) == 0 {
		return 0, fmt.Errorf("%s: %w", autogroupSelf, errNoAutogroup)
	}
	if len(f) != 3 || f[1] != "nice" {
		return 0, fmt.Errorf("%s: unexpected %q", autogroupSelf, data)
	}
	return strconv.Atoi(f[2])
}
