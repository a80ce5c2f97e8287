package mover

import (
	"context"
	"sync"
	"time"
)

// Timeout bounds one Acquire or Release that a Runner makes.
const Timeout = 10 * time.Second

// Runner runs the Acquire and Release of one vhid's Mover off its caller's
// event loop, in the order the loop asks for them, and reports each result
// (Run). The loop states what it wants (Ask); the worker carries out the
// latest wish, so that a hold that flaps while an Acquire blocks ends in
// the last state asked for, never in an older one. Every method but Run is
// the loop's, called from one goroutine.
type Runner struct {
	m Mover
	// routed says that the routes may be announced: set when the loop
	// asks for an Acquire, cleared when a Release asked for later
	// succeeded (Done). The loop keeps the addresses on the interface
	// while it is set, so that the routes are withdrawn before the
	// addresses go.
	routed bool
	// leaving says that the host stops: the routes were withdrawn first
	// (Withdraw) and are not announced again; left that the vhid was
	// then told to bow out.
	leaving, left bool

	mu   sync.Mutex
	want bool // guarded by mu: the worker's next call
	// until is the fence deadline of the next Acquire (an etcd vhid's
	// D: the mover withdraws on its own then unless renewed); zero for
	// CARP and VRRP. Guarded by mu.
	until time.Time
	seq   uint64
	kick  chan struct{}
}

// Result is the outcome of a Runner's call: an Acquire (Acquire) or a
// Release, which the loop asked for as wish Seq.
type Result struct {
	Acquire bool
	Seq     uint64
	Err     error
}

// Next is what the loop does about a Result (Done).
type Next int

const (
	// Wait: nothing to do.
	Wait Next = iota
	// BowOut: the routes of a leaving host are withdrawn; the vhid bows
	// out now.
	BowOut
	// LetGo: the routes are withdrawn as the latest wish asked; the
	// addresses may go.
	LetGo
)

// NewRunner returns m's runner; its worker starts with Run.
func NewRunner(m Mover) *Runner {
	return &Runner{m: m, kick: make(chan struct{}, 1)}
}

// Run is the worker: it carries out the wishes until Stop, giving each
// result to report, and returns early when report returns false (the loop
// has stopped).
func (r *Runner) Run(report func(Result) bool) {
	for range r.kick {
		r.mu.Lock()
		want, until, seq := r.want, r.until, r.seq
		r.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), Timeout)
		var err error
		if want {
			// An etcd vhid's Acquire renews the fence at D; CARP
			// and VRRP have none (zero).
			err = r.m.Acquire(ctx, Tenure{Deadline: until})
		} else {
			err = r.m.Release(ctx)
		}
		cancel()
		if !report(Result{Acquire: want, Seq: seq, Err: err}) {
			return
		}
	}
}

// Ask makes want the worker's next call, with the fence deadline until
// for an Acquire. An Acquire asked for after Withdraw is ignored.
func (r *Runner) Ask(want bool, until time.Time) {
	if want && r.leaving {
		return
	}
	if want {
		r.routed = true
	}
	r.mu.Lock()
	r.want, r.until = want, until
	r.seq++
	r.mu.Unlock()
	select {
	case r.kick <- struct{}{}:
	default: // a kick is pending: the worker reads the wish then
	}
}

// Routed says that the routes may be announced: the addresses stay.
func (r *Runner) Routed() bool { return r.routed }

// Done takes a result in the loop, hold saying whether the vhid holds its
// addresses now, and tells what follows: a Release that is still the
// latest wish lets the addresses go, or bows a leaving vhid out.
func (r *Runner) Done(res Result, hold bool) Next {
	r.mu.Lock()
	latest := res.Seq == r.seq
	r.mu.Unlock()
	if !res.Acquire && latest && r.leaving && !r.left {
		r.left = true
		return BowOut
	}
	if res.Acquire || !latest || hold || !r.routed {
		return Wait
	}
	// A failed withdrawal leaves the routes to the session's end; the
	// addresses go anyway, as the loop asked.
	r.routed = false
	return LetGo
}

// Withdraw starts a leaving host's bow-out of a vhid whose routes may be
// announced by withdrawing them, and reports whether it did: Done says
// BowOut once the withdrawal is done. Break before make, as BGP wants it:
// the router never has two paths, and the old holder keeps its addresses,
// answering what is still on its way, until the new one is heard.
func (r *Runner) Withdraw() bool {
	if !r.routed {
		return false
	}
	r.leaving = true
	r.Ask(false, time.Time{})
	return true
}

// Stop stops the worker and withdraws the routes at once, on the caller's
// goroutine: for the paths that remove the addresses at once. Closing the
// mover first waits for a call of the worker in progress and makes any
// later Acquire fail, so that no announcement follows the withdrawal. It
// returns the Close's error and the Release's.
func (r *Runner) Stop() (closeErr, releaseErr error) {
	close(r.kick)
	closeErr = r.m.Close()
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	return closeErr, r.m.Release(ctx)
}
