package daemon

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/carpd/carpd/internal/api"
	"github.com/carpd/carpd/internal/carp"
	"github.com/carpd/carpd/internal/elect"
	"github.com/carpd/carpd/internal/stream"
)

// This file is the event stream, the service manager's status line and
// the hooks' view of a state change.

// Sub is one reader of the event stream (stream.Sub).
type Sub = stream.Sub

// ErrTooManyReaders is returned by Subscribe when stream.MaxSubs readers
// are reading already.
var ErrTooManyReaders = stream.ErrTooManyReaders

// Subscribe starts a reader of the event stream: first one snapshot event
// per vhid (with the sequence number of the last event so far), then every
// event as it happens. A reader that falls behind by stream.Buffer events
// is dropped: C closes and Lagged is true. The daemon never waits for a
// reader. Beyond stream.MaxSubs readers, Subscribe fails with
// ErrTooManyReaders.
func (d *Daemon) Subscribe(ctx context.Context) (*Sub, error) {
	var s *Sub
	var serr error
	err := d.do(ctx, func(now time.Time) {
		first := make([]api.Event, 0, len(d.vhosts))
		for _, v := range d.vhosts {
			dem := d.demotionOf(v) // the vhid's: the host's and its checks'
			e := v.event("snapshot")
			e.Version, e.Seq, e.Time = api.Version, d.seq, now
			e.State, e.Demotion, e.Addresses = v.state().String(), &dem, v.addrStrings()
			first = append(first, e)
		}
		s, serr = d.subs.Add(first)
	})
	if err = errors.Join(err, serr); err != nil {
		return nil, err
	}
	return s, nil
}

// Unsubscribe ends a reader's stream.
func (d *Daemon) Unsubscribe(s *Sub) {
	_ = d.do(context.Background(), func(time.Time) { d.subs.Remove(s) })
}

// emit numbers an event and hands it to every reader (stream.Hub.Send).
func (d *Daemon) emit(now time.Time, e api.Event) {
	// Every event but an announcement (counted in liveCounters, and
	// repeated while a new master settles) is a change status shows.
	d.pub.changed = d.pub.changed || e.Type != "announce"
	d.seq++
	e.Version, e.Seq, e.Time = api.Version, d.seq, now
	d.subs.Send(e)
}

func (d *Daemon) transitioned(now time.Time, v *vhost, t elect.Transition) {
	st := &v.stats
	if st.transitions == nil {
		st.transitions = map[transitionKey]uint64{}
	}
	st.transitions[transitionKey{t.To.String(), t.Reason}]++
	st.transitionsTotal++
	st.lastChange = &api.Transition{Time: now, From: t.From.String(), To: t.To.String(), Reason: t.Reason}
	if t.To == carp.Master {
		st.masterSince = now
	}
	e := v.event("transition")
	e.From, e.To, e.Reason = t.From.String(), t.To.String(), t.Reason
	d.emit(now, e)
	if !d.leaving {
		d.tell("STATUS=" + d.statusLine())
	}
	if d.host.Hooks != nil {
		advSkew, prio := v.el.Rank()
		d.host.Hooks.Transition(HookEvent{
			VHID: v.cfg.VHID, Interface: v.cfg.Interface,
			From: t.From.String(), To: t.To.String(), Reason: t.Reason,
			Addresses: slices.Clone(v.prefixes), AdvSkew: advSkew, Proto: v.proto(), Priority: prio,
		})
	}
}

// tell sends a notification to the service manager, if any.
func (d *Daemon) tell(state string) {
	if d.notify != nil {
		d.notify(state)
	}
}

// statusLine sums the vhids up for systemd's STATUS=: "2 vhids: 1 MASTER,
// 1 BACKUP".
func (d *Daemon) statusLine() string {
	var n [3]int
	for _, v := range d.vhosts {
		n[v.state()]++
	}
	parts := []string{}
	for _, s := range []carp.State{carp.Master, carp.Backup, carp.Init} {
		if n[s] > 0 {
			parts = append(parts, fmt.Sprintf("%d %v", n[s], s))
		}
	}
	word := "vhids"
	if len(d.vhosts) == 1 {
		word = "vhid"
	}
	return fmt.Sprintf("%d %s: %s", len(d.vhosts), word, strings.Join(parts, ", "))
}

// HookEvent is a state change as the hooks see it.
type HookEvent struct {
	VHID      uint8
	Interface string
	From, To  string // INIT, BACKUP, MASTER
	Reason    string
	Addresses []netip.Prefix
	// AdvSkew is the advertised skew of a CARP vhid.
	AdvSkew int
	// Proto is "carp" or "vrrp".
	Proto string
	// Priority is what keepalived's notify gets as the priority: a VRRP
	// instance's priority in force, 255 - advskew for a CARP vhid.
	Priority int
}

// Hooks runs the operator's scripts on state changes.
type Hooks interface {
	// Transition queues the hooks of a state change. It never blocks: the
	// hooks run on their own, strictly in order for each vhid.
	Transition(HookEvent)
}

// hookIn is the result of a hook, reported back for the events and the
// counters.
type hookIn struct{ e api.Event }

func (hookIn) isInput() {}

// HookDone reports the result of a hook run (Type "hook"): it is counted
// and goes into the event stream. It never blocks; results that find the
// queue full are counted only.
func (d *Daemon) HookDone(e api.Event) {
	d.stats.hookRuns.Add(1)
	if e.Result != "ok" {
		d.stats.hookFailures.Add(1)
	}
	select {
	case d.hookResults <- hookIn{e}:
	default:
	}
}
