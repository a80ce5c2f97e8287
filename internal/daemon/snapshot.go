package daemon

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"github.com/carpd/carpd/internal/api"
	"github.com/carpd/carpd/internal/electorate"
)

// This file is the loop's published view of itself: status, stats,
// /healthz and the metrics read it without entering the loop, so that a
// reader never takes loop time and never waits for a loop that is busy.
//
// The loop builds a snapshot (the vhids' status, Why in words included)
// at the end of a batch of input that changed something an operator sees
// (a state, a demotion, the configuration, a check, a link, an operator's
// command: publish), never per advert: the counters that move with every
// advert (sent, received, send failures, when the master was last heard,
// and the announcements repeated while a new master settles) are atomics
// the readers load themselves (liveCounters).

// stuckAfter is how long the loop may be busy with one batch of input
// before Healthy says it is stuck (a variable for the tests).
var stuckAfter = 2 * time.Second

// liveCounters are the counters of a vhid that move with every advert:
// written by the loop, loaded by the readers of a snapshot.
type liveCounters struct {
	sent, received [2]atomic.Uint64 // by family
	sendFailed     atomic.Uint64
	announcements  atomic.Uint64
	// heardAt is when the last advert from another host was heard (unix
	// nanoseconds); the rest of it is in the snapshot.
	heardAt atomic.Int64
}

// snapshot is what the loop published: immutable once stored.
type snapshot struct {
	// status has the vhids' live counters as they were when it was
	// built; read loads them afresh.
	status api.Status
	live   []*liveCounters // of status.VHIDs, in order
	ifaces []ifaceSnap
}

// ifaceSnap is an interface as Stats reads it.
type ifaceSnap struct {
	name     string
	counters *electorate.Counters
	vrrp     bool // some VRRP instance is on it
}

// publisher is the loop's side of the snapshots.
type publisher struct {
	snap atomic.Pointer[snapshot]
	// ready is closed with the first snapshot, once Run has started the
	// vhids: the readers wait for it, as they waited for the loop.
	ready chan struct{}
	// changed says that the batch being handled changed what the
	// snapshot shows.
	changed bool
	// busySince is when the loop took the batch it is handling (unix
	// nanoseconds), 0 while it waits.
	busySince atomic.Int64
	// acks are closed once the snapshot that shows the commands run in
	// this batch is published (do waits for them).
	acks []chan struct{}
}

// enter starts a batch: the inputs queued (d.queue) that change what an
// operator sees mark the snapshot to be published at its end. Adverts,
// deadlines and send results do not by themselves: a transition, a
// demotion or a new master they cause does (emit, heard).
func (d *Daemon) enter(now time.Time) {
	d.pub.busySince.Store(now.UnixNano())
	for _, in := range d.queue {
		switch in.(type) {
		case advertIn, tickIn, sendResultIn:
		case addrIn:
			// The kernel's echo of each lifetime renewal: nothing to
			// show, unless the scripts manage the addresses (status
			// lists what the interface holds).
			d.pub.changed = d.pub.changed || d.unmanaged
		default:
			d.pub.changed = true
		}
	}
}

// publish ends a batch: a new snapshot if it changed what it shows, and
// the commands of the batch are answered.
func (d *Daemon) publish(now time.Time) {
	if d.pub.changed || d.pub.snap.Load() == nil {
		d.pub.changed = false
		if d.pub.snap.Swap(d.buildSnapshot(now)) == nil {
			close(d.pub.ready)
		}
	}
	for _, c := range d.pub.acks {
		close(c)
	}
	clear(d.pub.acks)
	d.pub.acks = d.pub.acks[:0]
	d.pub.busySince.Store(0)
}

// buildSnapshot builds the view of the vhids and interfaces as they are.
func (d *Daemon) buildSnapshot(now time.Time) *snapshot {
	s := &snapshot{status: d.status(now)}
	for _, v := range d.vhosts {
		s.live = append(s.live, &v.stats.live)
	}
	for _, ifc := range d.ifaces {
		s.ifaces = append(s.ifaces, ifaceSnap{name: ifc.link.Name, counters: ifc.counters,
			vrrp: slices.ContainsFunc(ifc.vhosts, func(v *vhost) bool { return v.proto() == "vrrp" })})
	}
	return s
}

// read returns the status with the live counters loaded now; the
// snapshot itself is not changed.
func (s *snapshot) read() api.Status {
	st := s.status
	st.VHIDs = slices.Clone(st.VHIDs)
	for i := range st.VHIDs {
		s.live[i].fill(&st.VHIDs[i])
	}
	return st
}

// fill sets the live counters of s.
func (l *liveCounters) fill(s *api.VHID) {
	c := &s.Counters
	c.SentInet, c.SentInet6 = l.sent[0].Load(), l.sent[1].Load()
	c.ReceivedInet, c.ReceivedInet6 = l.received[0].Load(), l.received[1].Load()
	c.SendFailed = l.sendFailed.Load()
	c.Announcements = l.announcements.Load()
	if s.Heard != nil {
		h := *s.Heard
		if at := l.heardAt.Load(); at != 0 {
			h.Time = time.Unix(0, at)
		}
		s.Heard = &h
	}
}

// snapshot returns the last snapshot published, or ErrNotRunning once
// Run has returned. Before the first one (Run has not started the vhids
// yet) it waits for it, or for ctx.
func (d *Daemon) snapshot(ctx context.Context) (*snapshot, error) {
	select {
	case <-d.stopped:
		return nil, ErrNotRunning
	default:
	}
	if d.started() {
		return d.pub.snap.Load(), nil
	}
	select {
	case <-d.pub.ready:
	case <-d.stopped:
		return nil, ErrNotRunning
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return d.pub.snap.Load(), nil
}

// started reports whether the first snapshot is published.
func (d *Daemon) started() bool {
	select {
	case <-d.pub.ready:
		return true
	default:
		return false
	}
}

// Healthy reports whether the event loop runs and is not stuck: nil, or
// why not (not started, stopped, busy with one batch of input for more
// than stuckAfter). It never enters the loop.
func (d *Daemon) Healthy() error {
	select {
	case <-d.stopped:
		return ErrNotRunning
	default:
	}
	if !d.started() {
		return errors.New("the event loop has not started")
	}
	if since := d.pub.busySince.Load(); since != 0 {
		if busy := d.clock.Now().Sub(time.Unix(0, since)); busy > stuckAfter {
			return fmt.Errorf("the event loop has been busy with one input for %v", busy.Round(time.Millisecond))
		}
	}
	return nil
}
