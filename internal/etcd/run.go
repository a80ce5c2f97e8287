package etcd

import (
	"context"
	"time"
)

// stopTimeout bounds the planned stop's requests (resign, revoke).
const stopTimeout = 3 * time.Second

// Run drives el until ctx ends, then makes the planned stop (release,
// delete the leader key guarded by the tenure, revoke the lease) and
// returns when it is over. decide is called, on Run's goroutine, with
// every Hold and Observe and the time it was decided; inputs (may be nil)
// carries the caller's events (SetHealth). It is the loop a daemon would
// run around an Electorate, and what the tests run.
func Run(ctx context.Context, el *Electorate, inputs <-chan Event, decide func(time.Time, Action)) {
	tell := func(now time.Time, acts []Action) {
		for _, a := range acts {
			decide(now, a)
		}
	}
	now := time.Now()
	tell(now, el.Start(now))
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		arm(timer, el.NextDeadline())
		var ev Event
		select {
		case <-ctx.Done():
			now := time.Now()
			acts, done := el.Stop(now)
			tell(now, acts)
			<-done
			return
		case ev = <-el.Events():
		case ev = <-inputs:
		case <-timer.C:
			ev = Tick{}
		}
		now := time.Now()
		tell(now, el.Handle(now, ev))
	}
}

// arm sets t to fire at d (a zero d: in an hour, as a quiet wake-up).
func arm(t *time.Timer, d time.Time) {
	wait := time.Hour
	if !d.IsZero() {
		wait = max(time.Until(d), 0)
	}
	t.Reset(wait)
}
