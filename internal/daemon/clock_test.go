package daemon

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/carpd/carpd/internal/carp"
	"github.com/carpd/carpd/internal/lab"
)

// This file checks that the daemon's timers run on the monotonic clock: a
// jump of the wall clock (settimeofday, an NTP step, `date -s`) neither
// fires nor delays them. The real clock's readings (time.Now) carry a
// monotonic reading, on which time.Time's Sub, Before and After compute
// when both sides have one; a deadline computed from a reading that lost it
// (Round(0), UTC(), time.Unix, a round trip through a string) would move
// with the wall clock. fakeClock's readings carry a monotonic reading too,
// and its wall clock can be set apart from it.

// wallSet returns t with its wall clock reading moved by jump and its
// monotonic reading unchanged: what time.Now returns once the system's
// clock has been set by jump. The time package cannot express that, so
// this writes the monotonic reading of t into t.Add(jump) (whose wall and
// monotonic readings both moved), relying on time.Time's layout: wall
// (uint64), ext (int64: the monotonic reading when wall's top bit is
// set), loc. checkWallSet verifies the result before a test relies on it.
func wallSet(t time.Time, jump time.Duration) time.Time {
	j := t.Add(jump)
	(*timeLayout)(unsafe.Pointer(&j)).ext = (*timeLayout)(unsafe.Pointer(&t)).ext
	return j
}

// timeLayout is time.Time's layout (Go 1.9 and later).
type timeLayout struct {
	wall uint64
	ext  int64
	loc  *time.Location
}

// checkWallSet fails the test unless wallSet does what it says on this Go
// version.
func checkWallSet(t *testing.T) {
	t.Helper()
	if unsafe.Sizeof(time.Time{}) != unsafe.Sizeof(timeLayout{}) {
		t.Fatal("time.Time's layout changed: wallSet cannot set the wall clock apart")
	}
	now := time.Now()
	for _, jump := range []time.Duration{time.Hour, -time.Hour} {
		j := wallSet(now, jump)
		if d := j.Sub(now); d != 0 {
			t.Fatalf("wallSet(now, %v).Sub(now) = %v, want 0 (the monotonic readings)", jump, d)
		}
		if d := j.Round(0).Sub(now.Round(0)); d != jump {
			t.Fatalf("the wall clock moved by %v, want %v", d, jump)
		}
		if later := wallSet(now.Add(time.Second), jump); !later.After(now) || later.Sub(now) != time.Second {
			t.Fatalf("a second later with the wall clock set by %v: Sub = %v, want 1s", jump, later.Sub(now))
		}
	}
}

// fakeClock is a Clock that moves when the test says so. Its readings carry
// a monotonic reading (unless strip is set: then they carry the wall
// clock only, as a broken deadline computation would see them), and its
// wall clock can be set apart from it (setWall). Its timers run on the
// monotonic clock, as the runtime's do.
type fakeClock struct {
	mu      sync.Mutex
	base    time.Time     // a reading of time.Now: it has a monotonic reading
	elapsed time.Duration // monotonic time since base
	wall    time.Duration // how far the wall clock was set, in all
	strip   bool
	timers  []*fakeTimer
	resets  int // Reset calls: one per turn of the daemon's loop
}

func newFakeClock() *fakeClock { return &fakeClock{base: time.Now()} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nowLocked()
}

func (c *fakeClock) nowLocked() time.Time {
	t := wallSet(c.base.Add(c.elapsed), c.wall)
	if c.strip {
		t = t.Round(0)
	}
	return t
}

func (c *fakeClock) NewTimer(d time.Duration) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{c: c, ch: make(chan time.Time, 1)}
	c.timers = append(c.timers, t)
	t.arm(d)
	return t
}

// setWall sets the wall clock by jump, as `date -s` does; no timer fires.
func (c *fakeClock) setWall(jump time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.wall += jump
}

// advance moves the clock by d, fires the timers that are due and returns
// the Reset count as it was before they fired.
func (c *fakeClock) advance(d time.Duration) (fired bool, resets int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.elapsed += d
	resets = c.resets
	for _, t := range c.timers {
		fired = t.fireIfDue() || fired
	}
	return fired, resets
}

// state returns the Reset count, the monotonic time and the earliest
// deadline of an armed timer (or -1).
func (c *fakeClock) state() (resets int, elapsed, next time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	next = -1
	for _, t := range c.timers {
		if t.armed && (next < 0 || t.at < next) {
			next = t.at
		}
	}
	return c.resets, c.elapsed, next
}

type fakeTimer struct {
	c     *fakeClock
	ch    chan time.Time
	at    time.Duration // on the monotonic clock
	armed bool
}

func (t *fakeTimer) C() <-chan time.Time { return t.ch }

// Reset discards a fire not yet received, as Go 1.23's timers do.
func (t *fakeTimer) Reset(d time.Duration) {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	t.c.resets++
	select {
	case <-t.ch:
	default:
	}
	t.arm(d)
}

func (t *fakeTimer) arm(d time.Duration) {
	t.at, t.armed = t.c.elapsed+d, true
	t.fireIfDue()
}

func (t *fakeTimer) Stop() {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	t.armed = false
}

func (t *fakeTimer) fireIfDue() bool {
	if !t.armed || t.at > t.c.elapsed {
		return false
	}
	t.armed = false
	select {
	case t.ch <- t.c.nowLocked():
	default:
	}
	return true
}

// jumpRun drives a Daemon (testConfig: advbase 1, advskew 200) on the fake
// host and the fake clock, in steps of jumpStep, and notes the monotonic
// time of its transitions to MASTER and of its adverts.
type jumpRun struct {
	t      *testing.T
	clk    *fakeClock
	f      *fakeHost
	d      *Daemon
	logs   *lab.Buffer
	spin   bool            // the loop waited for a deadline already past
	master []time.Duration // when it became MASTER
	sent   []time.Duration // when it advertised
	seen   int             // adverts seen so far
}

// jumpStep is the fake clock's largest step; jumpSlack is how far from
// its due time the test lets a timer fire.
const (
	jumpStep  = 10 * time.Millisecond
	jumpSlack = time.Millisecond
)

func startJumpRun(t *testing.T, strip bool) *jumpRun {
	t.Helper()
	clk := newFakeClock()
	clk.strip = strip
	r := &jumpRun{t: t, clk: clk, f: newFakeHost(), logs: &lab.Buffer{}}
	d, err := New(testConfig(), r.f.host(), Options{Log: testLog(r.logs), Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	r.d = d
	ctx, cancel := context.WithCancel(context.Background())
	done, _ := started(t, d, r.f, ctx)
	t.Cleanup(func() {
		cancel()
		// Bowing out waits for a new master that never comes: release
		// at once.
		d.Abort()
		<-done
	})
	r.waitTurn(0) // the loop waits for its first deadline
	waitLog(t, r.logs, "INIT -> BACKUP (initialization complete)")
	return r
}

// waitTurn waits until the loop has come round to waiting again, after the
// Reset count was resets.
func (r *jumpRun) waitTurn(resets int) {
	r.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		n, elapsed, next := r.clk.state()
		if n > resets {
			if next >= 0 && next <= elapsed {
				r.spin = true
			}
			break
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("the loop did not come round in 5 s (resets %d)", n)
		}
		time.Sleep(100 * time.Microsecond)
	}
	r.note()
}

// note records what the daemon did since the last look.
func (r *jumpRun) note() {
	_, elapsed, _ := r.clk.state()
	if got := strings.Count(r.logs.String(), "BACKUP -> MASTER"); got > len(r.master) {
		r.master = append(r.master, elapsed)
	}
	var adverts int
	for _, op := range r.f.opsSince(0) {
		if strings.HasPrefix(op, "advert if2 ") && strings.HasSuffix(op, "advskew=200") {
			adverts++
		}
	}
	for ; r.seen < adverts; r.seen++ {
		r.sent = append(r.sent, elapsed)
	}
}

// until runs the clock to at, in steps of at most jumpStep that stop at
// each deadline of the loop's timer, as the real clock would.
func (r *jumpRun) until(at time.Duration) {
	for {
		_, elapsed, next := r.clk.state()
		if elapsed >= at {
			return
		}
		step := min(jumpStep, at-elapsed)
		if next > elapsed {
			step = min(step, next-elapsed)
		}
		if fired, resets := r.clk.advance(step); fired {
			r.waitTurn(resets)
		}
	}
}

// hear hands the daemon an advert of a better master (advskew 100) and
// waits for the loop to handle it.
func (r *jumpRun) hear() {
	resets, _, _ := r.clk.state()
	r.f.in <- advert("lampros", 1, 100, 255)
	r.waitTurn(resets)
}

// status makes an operator's call through the loop (SIGUSR1's status
// log; `carpctl status` reads the snapshot and wakes nothing) 100 ms from
// now: an input that wakes the loop but moves no deadline, so that a
// deadline the wall clock made look past would fire then.
func (r *jumpRun) status() {
	_, elapsed, _ := r.clk.state()
	r.until(elapsed + 100*time.Millisecond)
	resets, _, _ := r.clk.state()
	if err := r.d.LogStatus(context.Background()); err != nil {
		r.t.Fatal(err)
	}
	r.waitTurn(resets)
}

// Timeline of the scenario, on the monotonic clock (the wall clock is set
// by jump at three moments):
const (
	// A master advertises every 1 + 100/256 s from 0.5 s, five times.
	firstHeard = 500 * time.Millisecond
	heardEvery = time.Second + 100*time.Second/256
	lastHeard  = firstHeard + 4*heardEvery // 6.06 s
	// The backup's master-down interval: 3 × 1 + 200/256 s, and the tie
	// offset of its source, 192.0.2.22 (carp.TieOffset: 1 + 22 mod 16
	// steps).
	jumpMasterDown = 3*time.Second + 200*time.Second/256 + 7*carp.TieOffsetStep
	// Its advert interval as MASTER: 1 + 200/256 s.
	ownEvery = time.Second + 200*time.Second/256
)

// runJumpScenario runs the scenario: the wall clock is set by jump (1) while
// BACKUP, between two adverts of the master (its master-down timer then
// due at a wall time already past, or an hour away); (2) after the
// master's last advert, before its master-down timer runs out; (3) while
// MASTER, between two of its adverts. After each, an operator's call
// wakes the loop.
func runJumpScenario(t *testing.T, jump time.Duration, strip bool) *jumpRun {
	r := startJumpRun(t, strip)
	for i := range 5 {
		r.until(firstHeard + time.Duration(i)*heardEvery)
		r.hear()
		if i == 1 {
			r.until(firstHeard + time.Duration(i)*heardEvery + 600*time.Millisecond)
			r.clk.setWall(jump) // (1), at 2.49 s
			r.status()
		}
	}
	r.until(lastHeard + time.Second)
	r.clk.setWall(jump) // (2), at 7.06 s
	r.status()
	r.until(lastHeard + jumpMasterDown + 500*time.Millisecond)
	_, now, _ := r.clk.state()
	if len(r.master) == 0 || r.master[len(r.master)-1]+500*time.Millisecond < now {
		return r // not MASTER as it should be: the test says so
	}
	r.until(r.master[0] + 500*time.Millisecond)
	r.clk.setWall(jump) // (3)
	r.status()
	r.until(r.master[0] + 4*ownEvery + 500*time.Millisecond)
	return r
}

// TestWallClockJump: the wall clock set an hour forward, or an hour back,
// three times during a run (as BACKUP between the master's adverts, after
// the master's last advert, as MASTER between its own adverts) neither
// fires nor delays a timer.
//
// Expected: the backup stays BACKUP while the master advertises; it
// becomes MASTER one master-down interval (3.78125 s) after the master's
// last advert; as MASTER it advertises at once and then every 1.78125 s;
// and the loop
// never waits for a deadline already past (it would spin). The fake
// clock stops at each deadline of the loop's timer, so these times are
// exact (within jumpSlack).
func TestWallClockJump(t *testing.T) {
	checkWallSet(t)
	for _, tc := range []struct {
		name string
		jump time.Duration
	}{{"forward", time.Hour}, {"backward", -time.Hour}} {
		t.Run(tc.name, func(t *testing.T) {
			r := runJumpScenario(t, tc.jump, false)
			want := lastHeard + jumpMasterDown
			if len(r.master) != 1 {
				t.Fatalf("became MASTER at %v, want once, at %v:\n%s", r.master, want, r.logs.String())
			}
			if got := r.master[0]; got < want || got > want+jumpSlack {
				t.Errorf("became MASTER at %v, want at %v", got, want)
			}
			if len(r.sent) != 5 {
				t.Errorf("adverts at %v, want 5", r.sent)
			}
			for i, at := range r.sent {
				want := r.master[0] + time.Duration(i)*ownEvery
				if at < want || at > want+jumpSlack {
					t.Errorf("advert %d at %v, want at %v; all: %v", i+1, at, want, r.sent)
				}
			}
			if r.spin {
				t.Error("the loop waited for a deadline already past")
			}
		})
	}
}

// TestWallClockJumpDetected checks the scenario itself: when the daemon's
// clock readings lack the monotonic reading (as a deadline computed after
// Round(0), UTC() or time.Unix would), the jumps show. Forward, the
// master-down timer fires at the first wake-up after the jump (the
// operator's call at 2.59 s) while the master is alive; backward, it waits
// an hour.
func TestWallClockJumpDetected(t *testing.T) {
	checkWallSet(t)
	r := runJumpScenario(t, time.Hour, true)
	if want := firstHeard + heardEvery + 700*time.Millisecond; len(r.master) == 0 || r.master[0] != want {
		t.Errorf("forward, without monotonic readings: MASTER at %v, want at %v (fired early)", r.master, want)
	}
	r = runJumpScenario(t, -time.Hour, true)
	if len(r.master) != 0 {
		t.Errorf("backward, without monotonic readings: MASTER at %v, want never (delayed by an hour)", r.master)
	}
}
