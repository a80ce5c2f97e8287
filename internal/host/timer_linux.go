package host

import (
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/carpd/carpd/internal/daemon"
	"golang.org/x/sys/unix"
)

// Clock is the daemon's clock on Linux: the system's time, and timers on
// timerfds that the runtime's network poller waits for.
//
// Why not Go's timers: an idle daemon wakes once per advert, a hundred
// times a second at a 10 ms VRRP interval, and with Go's timers each wake
// costs the runtime's monitor thread (sysmon) a wakeup as well: asleep, it
// sleeps until the next runtime timer, and entering a system call the
// usual way wakes it too. A timerfd is not a runtime timer: the thread
// that waits in the poller wakes alone, re-arms the timerfd with a raw
// system call (it need not read it: see fdTimer), and hands the fire to the loop on the same
// processor (carpd runs with GOMAXPROCS=1). With the adverts sent by raw
// system calls too (advsock's sender), an idle master's loop wakes once
// per advert, as keepalived's does.
//
// Where a timerfd cannot be had, NewTimer falls back to Go's timers; where
// arming one fails, that timer wakes through a Go timer from then on (see
// arm): the loop never stops waking.
type Clock struct {
	daemon.SystemClock
	// Log gets the first failure to arm a timerfd (slog.Default when
	// nil).
	Log *slog.Logger
}

// NewTimer returns a timer that fires once, after d.
func (c Clock) NewTimer(d time.Duration) daemon.Timer {
	t, err := newFDTimer()
	if err != nil {
		return c.SystemClock.NewTimer(d)
	}
	t.log = c.Log
	t.Reset(d)
	return t
}

// armFailureLogged: the first failure to arm a timerfd is logged, once
// per process (every timer would report the same).
var armFailureLogged atomic.Bool

// fdTimer is a timer on a timerfd. Its goroutine waits in the poller for
// the timerfd to become readable, and the poller's callback (check)
// delivers the fire on c when the arming's deadline has passed: the
// goroutine never leaves the RawConn's Read, which calls check at its
// start and after each wake. It does not read the timerfd: each arming
// (timerfd_settime) sets its expiration count back to zero, and the
// poller is edge-triggered, so each expiration wakes the goroutine once
// (a read per fire spared). A wake for an earlier arming finds the
// deadline ahead and waits again; a fire is never delivered after a
// Reset that came after its deadline passed: Reset and check hold mu,
// and check delivers under it.
type fdTimer struct {
	f  *os.File
	rc syscall.RawConn
	c  chan time.Time

	mu      sync.Mutex
	stopped bool
	its     unix.ItimerSpec // what arm sets; mu held
	// due is the deadline Reset asked for, as the time since base (the
	// monotonic clock, which the timerfd's CLOCK_MONOTONIC is); 0:
	// disarmed or fired. set is when the timerfd expires (0: expired or
	// disarmed): at or before due. A Reset to a later deadline than set
	// leaves the timerfd alone, and check, woken at set, arms it again
	// for due (see Reset).
	base time.Time
	due  time.Duration
	set  time.Duration

	// The functions given to the RawConn, made once (a closure made at
	// each call would be allocated at each call).
	checkFn func(fd uintptr) bool
	armCtl  func(fd uintptr)

	// settime is timerfd_settime (a test's failing one in its place);
	// armErr its last error, mu held.
	settime func(fd uintptr, its *unix.ItimerSpec) syscall.Errno
	armErr  error
	// backup wakes check in the timerfd's place once an arming failed;
	// nil until then.
	backup *time.Timer
	log    *slog.Logger
}

func newFDTimer() (*fdTimer, error) {
	fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), "timerfd")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, err
	}
	t := &fdTimer{f: f, rc: rc, c: make(chan time.Time, 1), base: time.Now()}
	t.checkFn = t.check
	t.armCtl = t.setTime
	t.settime = settime
	go t.wait()
	return t, nil
}

func (t *fdTimer) C() <-chan time.Time { return t.c }

// Reset makes the timer fire after d, and only then: a fire still
// waiting in c is taken out.
//
// A deadline later than the timerfd's expiration costs no system call:
// the timerfd wakes check at its expiration, which finds the deadline
// ahead and arms it again for the rest. A backup's loop moves its
// master-down deadline later with every advert it hears (25,500 a second
// with 255 vrids at 10 ms), and so arms the timerfd about once per
// master-down interval, not once per advert.
func (t *fdTimer) Reset(d time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped {
		return
	}
	select {
	case <-t.c:
	default:
	}
	// A zero it_value disarms: the shortest wait is a nanosecond.
	d = max(d, time.Nanosecond)
	if t.backup == nil && t.set != 0 {
		// Read before the kernel reads its clock (see arm).
		if due := time.Since(t.base) + d; due >= t.set {
			t.due = due
			return
		}
	}
	t.arm(d)
}

// Stop stops the timer for good: its timerfd is closed and its goroutine
// ends. A Reset after Stop does nothing.
func (t *fdTimer) Stop() {
	t.mu.Lock()
	if t.stopped {
		t.mu.Unlock()
		return
	}
	t.stopped = true
	if t.backup != nil {
		t.backup.Stop()
	}
	t.mu.Unlock()
	_ = t.f.Close() // wakes wait, which ends
}

// arm sets the timerfd to expire once after d (0: disarmed), with a raw
// system call (see Clock); mu held.
func (t *fdTimer) arm(d time.Duration) {
	t.due = 0
	if d > 0 {
		// Read before the kernel reads its clock: the timerfd expires
		// at or after due.
		t.due = time.Since(t.base) + d
	}
	t.set = t.due
	t.its = unix.ItimerSpec{Value: unix.NsecToTimespec(int64(d))}
	t.armErr = nil
	if err := t.rc.Control(t.armCtl); err != nil {
		t.armErr = err
	}
	if t.armErr != nil {
		t.set = 0
	}
	if t.armErr == nil && t.backup == nil {
		return
	}
	if t.armErr != nil {
		t.armFailed()
	}
	// A Go timer wakes check: the timerfd may not expire.
	if t.backup == nil {
		t.backup = time.AfterFunc(d, t.wake)
	} else {
		t.backup.Reset(d)
	}
}

// armFailed reports a failed arming (once per process) and goes on with
// the backup; mu held.
func (t *fdTimer) armFailed() {
	if t.backup != nil || armFailureLogged.Swap(true) {
		return
	}
	log := t.log
	if log == nil {
		log = slog.Default()
	}
	log.Error("carpd: a timerfd cannot be armed; its timer wakes through a Go timer from now on", "err", t.armErr)
}

// wake is the backup's callback.
func (t *fdTimer) wake() { t.check(0) }

// setTime sets the timerfd to t.its; mu held.
func (t *fdTimer) setTime(fd uintptr) {
	if errno := t.settime(fd, &t.its); errno != 0 {
		t.armErr = os.NewSyscallError("timerfd_settime", errno)
	}
}

// settime is timerfd_settime, a raw system call (see Clock).
func settime(fd uintptr, its *unix.ItimerSpec) syscall.Errno {
	_, _, errno := unix.RawSyscall6(unix.SYS_TIMERFD_SETTIME, fd, 0, uintptr(unsafe.Pointer(its)), 0, 0, 0)
	return errno
}

// wait delivers the timerfd's fires until Stop, from check: Read returns
// only when the timerfd is closed.
func (t *fdTimer) wait() {
	_ = t.rc.Read(t.checkFn)
}

// check is Read's callback, at its start and after each wake of the
// poller (and the backup's, with fd 0): when the deadline has passed, it
// delivers the fire (once per Reset); when the timerfd expired before a
// deadline that Reset moved later, it arms the timerfd again for the
// rest. It always answers false: wait in the poller for the next
// expiration's edge.
func (t *fdTimer) check(fd uintptr) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.due == 0 || t.stopped {
		return false
	}
	now := time.Now()
	at := now.Sub(t.base)
	if at >= t.due {
		t.due, t.set = 0, 0
		select {
		case t.c <- now:
		default:
		}
		return false
	}
	if t.backup == nil && fd != 0 && t.set != 0 && at >= t.set {
		// The timerfd expired at an earlier deadline: on to due.
		t.set = t.due
		t.its = unix.ItimerSpec{Value: unix.NsecToTimespec(int64(t.due - at))}
		t.setTime(fd)
		if t.armErr != nil {
			t.set = 0
			t.armFailed()
			t.backup = time.AfterFunc(t.due-at, t.wake)
		}
	}
	return false
}
