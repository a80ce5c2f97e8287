package host

import (
	"bytes"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestFDTimer: the timerfd timer fires once after its duration, a Reset
// drops a fire not yet taken and moves the next, and Stop ends its
// goroutine.
func TestFDTimer(t *testing.T) {
	tm, err := newFDTimer()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	tm.Reset(20 * time.Millisecond)
	waitFire(t, tm, start, 20*time.Millisecond, "the first fire")
	select {
	case <-tm.C():
		t.Fatal("fired twice")
	case <-time.After(50 * time.Millisecond):
	}

	// A fire that is due but not taken is dropped by Reset.
	tm.Reset(time.Millisecond)
	time.Sleep(30 * time.Millisecond)
	start = time.Now()
	tm.Reset(100 * time.Millisecond)
	waitFire(t, tm, start, 100*time.Millisecond, "after a Reset that should have dropped a stale fire")

	// Zero fires at once.
	tm.Reset(0)
	select {
	case <-tm.C():
	case <-time.After(5 * time.Second):
		t.Fatal("Reset(0) did not fire")
	}

	before := runtime.NumGoroutine()
	tm.Stop()
	tm.Reset(time.Millisecond) // does nothing
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() >= before && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n >= before {
		t.Errorf("%d goroutines after Stop, %d before: the timer's goroutine did not end", n, before)
	}
	select {
	case <-tm.C():
		t.Error("fired after Stop")
	case <-time.After(30 * time.Millisecond):
	}
}

// TestFDTimerAllocs: a Reset and a fire allocate nothing (an idle master
// re-arms and takes a fire at every advert; the functions handed to the
// RawConn are made once).
func TestFDTimerAllocs(t *testing.T) {
	tm, err := newFDTimer()
	if err != nil {
		t.Fatal(err)
	}
	defer tm.Stop()
	if n := testing.AllocsPerRun(100, func() { tm.Reset(time.Hour) }); n != 0 {
		t.Errorf("Reset: %v allocs, want 0", n)
	}
	// Fires: the timer's goroutine delivers, the test takes; the
	// allocations of the whole process over 50 of them. Each one must fire
	// (the timerfd is not read: each arming's expiration is a new edge for
	// the poller).
	giveUp := time.After(30 * time.Second) // made once: the count is the timer's
	fire := func() {
		tm.Reset(time.Millisecond)
		select {
		case <-tm.C():
		case <-giveUp:
			t.Fatal("a Reset of 1 ms did not fire (52 fires in 30 s)")
		}
	}
	fire()
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	const fires = 50
	for range fires {
		fire()
	}
	runtime.ReadMemStats(&m1)
	if n := m1.Mallocs - m0.Mallocs; n >= fires {
		t.Errorf("%d allocations over %d fires, want fewer than one per fire", n, fires)
	}
}

// TestClockTimer: the host's clock gives timerfd timers.
func TestClockTimer(t *testing.T) {
	tm := Clock{}.NewTimer(time.Millisecond)
	defer tm.Stop()
	if _, ok := tm.(*fdTimer); !ok {
		t.Errorf("NewTimer gave a %T, want the timerfd timer", tm)
	}
	select {
	case <-tm.C():
	case <-time.After(5 * time.Second):
		t.Fatal("no fire in 5 s")
	}
}

// waitFire waits for tm's fire, which must come no sooner than least
// after start.
func waitFire(t *testing.T, tm *fdTimer, start time.Time, least time.Duration, what string) {
	t.Helper()
	select {
	case <-tm.C():
		if took := time.Since(start); took < least {
			t.Errorf("%s: fired after %v, want %v or more", what, took, least)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("%s: no fire in 5 s", what)
	}
}

// TestFDTimerArmFails: when timerfd_settime fails, the timer still fires
// (through a Go timer), every time it is reset, and the failure is logged
// once.
func TestFDTimerArmFails(t *testing.T) {
	armFailureLogged.Store(false)
	t.Cleanup(func() { armFailureLogged.Store(false) })
	var logs bytes.Buffer
	tm, err := newFDTimer()
	if err != nil {
		t.Fatal(err)
	}
	defer tm.Stop()
	tm.log = slog.New(slog.NewTextHandler(&logs, nil))
	tm.settime = func(uintptr, *unix.ItimerSpec) syscall.Errno { return syscall.EINVAL }
	for i := range 3 {
		start := time.Now()
		tm.Reset(20 * time.Millisecond)
		waitFire(t, tm, start, 20*time.Millisecond, fmt.Sprintf("fire %d with a failing timerfd_settime", i))
	}
	if n := strings.Count(logs.String(), "cannot be armed"); n != 1 || !strings.Contains(logs.String(), "timerfd_settime: invalid argument") {
		t.Errorf("logged %d times, want once with the error:\n%s", n, logs.String())
	}
	// A second timer's failure is not logged again.
	tm2, err := newFDTimer()
	if err != nil {
		t.Fatal(err)
	}
	defer tm2.Stop()
	tm2.log = tm.log
	tm2.settime = tm.settime
	start := time.Now()
	tm2.Reset(10 * time.Millisecond)
	waitFire(t, tm2, start, 10*time.Millisecond, "the second timer")
	if n := strings.Count(logs.String(), "cannot be armed"); n != 1 {
		t.Errorf("logged %d times after a second timer failed, want once", n)
	}
}

// TestFDTimerLaterReset: a Reset to a deadline later than the timerfd's
// expiration costs no system call; the timerfd, woken at its expiration,
// is armed again for the rest, and the fire comes at the last deadline,
// not before. A Reset to an earlier deadline arms at once.
func TestFDTimerLaterReset(t *testing.T) {
	tm, err := newFDTimer()
	if err != nil {
		t.Fatal(err)
	}
	defer tm.Stop()
	calls := 0 // under tm.mu, as settime is called
	tm.mu.Lock()
	tm.settime = func(fd uintptr, its *unix.ItimerSpec) syscall.Errno {
		calls++
		return settime(fd, its)
	}
	tm.mu.Unlock()
	count := func() int {
		tm.mu.Lock()
		defer tm.mu.Unlock()
		return calls
	}
	start := time.Now()
	tm.Reset(20 * time.Millisecond)
	for i := 3; i <= 6; i++ {
		tm.Reset(time.Duration(i)*10*time.Millisecond - time.Since(start))
	}
	if n := count(); n != 1 {
		t.Errorf("%d timerfd_settime calls for a Reset and 4 later ones, want 1", n)
	}
	waitFire(t, tm, start, 60*time.Millisecond, "after Resets to later deadlines")
	if n := count(); n != 2 {
		t.Errorf("%d timerfd_settime calls in all, want 2 (the first arming, the one at its expiration)", n)
	}
	// Earlier: armed at once.
	start = time.Now()
	tm.Reset(time.Hour)
	tm.Reset(10 * time.Millisecond)
	waitFire(t, tm, start, 10*time.Millisecond, "after a Reset to an earlier deadline")
	if n := count(); n != 4 {
		t.Errorf("%d timerfd_settime calls in all, want 4", n)
	}
}
