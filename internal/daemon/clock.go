package daemon

import "time"

// Clock is the daemon's time. The real one reads the system clock, whose
// readings carry the monotonic clock: the timers of the state machines are
// compared on it, so a change of the wall clock neither fires nor delays
// them.
type Clock interface {
	Now() time.Time
	// NewTimer returns a timer that fires once, after d.
	NewTimer(d time.Duration) Timer
}

// Timer is a timer of a Clock, as time.Timer.
type Timer interface {
	C() <-chan time.Time
	// Reset makes the timer fire after d, and only then.
	Reset(d time.Duration)
	// Stop stops the timer for good (the host's may free what it holds).
	Stop()
}

// SystemClock is the system's time with Go's timers: the daemon's clock
// when Options gives none, and the host's where it has no timer of its
// own.
type SystemClock struct{}

func (SystemClock) Now() time.Time { return time.Now() }

func (SystemClock) NewTimer(d time.Duration) Timer { return realTimer{time.NewTimer(d)} }

type realTimer struct{ t *time.Timer }

func (t realTimer) C() <-chan time.Time { return t.t.C }

// Reset relies on Go 1.23's timers: Reset discards a stale fire.
func (t realTimer) Reset(d time.Duration) { t.t.Reset(d) }

func (t realTimer) Stop() { t.t.Stop() }
