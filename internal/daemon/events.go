package daemon

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/carpd/carpd/internal/api"
	"github.com/carpd/carpd/internal/carp"
)

// This file is the event stream, the service manager's status line and
// the hooks' view of a state change.

// Sub is one reader of the event stream.
type Sub struct {
	// C delivers the events; it is closed when the reader fell behind
	// (Lagged) or carpd stopped.
	C      <-chan api.Event
	c      chan api.Event
	lagged atomic.Bool
}

// Lagged reports, once C is closed, whether the reader was dropped for
// falling behind.
func (s *Sub) Lagged() bool { return s.lagged.Load() }

// subBuffer is how many events wait for a slow reader before it is
// dropped.
const subBuffer = 1024

// Subscribe starts a reader of the event stream: first one snapshot event
// per vhid (with the sequence number of the last event so far), then every
// event as it happens. A reader that falls behind by subBuffer events is
// dropped: C closes and Lagged is true. The daemon never waits for a
// reader.
func (d *Daemon) Subscribe(ctx context.Context) (*Sub, error) {
	s := &Sub{}
	err := d.do(ctx, func(now time.Time) {
		s.c = make(chan api.Event, subBuffer+len(d.vhosts))
		s.C = s.c
		for _, v := range d.vhosts {
			dem := d.demotionOf(v) // the vhid's: the host's and its checks'
			e := v.event("snapshot")
			e.Version, e.Seq, e.Time = api.Version, d.seq, now
			e.State, e.Demotion, e.Addresses = v.state().String(), &dem, v.addrStrings()
			s.c <- e
		}
		d.subs[s] = struct{}{}
	})
	return s, err
}

// Unsubscribe ends a reader's stream.
func (d *Daemon) Unsubscribe(s *Sub) {
	_ = d.do(context.Background(), func(time.Time) {
		if _, ok := d.subs[s]; ok {
			delete(d.subs, s)
			close(s.c)
		}
	})
}

// emit numbers an event and hands it to every reader, dropping the ones
// that fell behind.
func (d *Daemon) emit(now time.Time, e api.Event) {
	d.seq++
	e.Version, e.Seq, e.Time = api.Version, d.seq, now
	for s := range d.subs {
		select {
		case s.c <- e:
		default:
			s.lagged.Store(true)
			delete(d.subs, s)
			close(s.c)
		}
	}
}

// closeSubs ends every stream, when Run returns.
func (d *Daemon) closeSubs() {
	for s := range d.subs {
		delete(d.subs, s)
		close(s.c)
	}
}

func (d *Daemon) transitioned(now time.Time, v *vhost, t carp.Transition) {
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
		var advSkew, prio int
		if v.vm != nil {
			prio = int(v.vm.Priority())
		} else {
			advSkew = int(v.m.AdvSkew())
			prio = 255 - advSkew
		}
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
