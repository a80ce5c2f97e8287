package daemon

import (
	"cmp"
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/carpd/carpd/internal/api"
	"github.com/carpd/carpd/internal/carp"
	"github.com/carpd/carpd/internal/config"
	"github.com/carpd/carpd/internal/electorate"
)

// This file is what an operator sees: the status and counters of the
// vhids.

// vhostStats are one vhid's counters and history, owned by the loop.
type vhostStats struct {
	// live are the counters that move with every advert, which the
	// readers of a snapshot load themselves.
	live             liveCounters
	transitions      map[transitionKey]uint64
	restores         uint64
	moverFailures    uint64 // the mover's calls that failed (mover = "bgp")
	lastChange       *api.Transition
	masterSince      time.Time
	transitionsTotal uint64
	// heard is the last valid advert from another host (when heardOK),
	// from heardSrc: recorded in place, its Source string made once per
	// source, so that an advert heard allocates nothing.
	heard    api.Heard
	heardSrc netip.Addr
	heardOK  bool
}

// setHeard records h, an advert heard from src. It reports whether what
// status shows of it changed (another master, or what it advertises), not
// only its time.
func (st *vhostStats) setHeard(src netip.Addr, h api.Heard) bool {
	changed := !st.heardOK || src != st.heardSrc
	if changed {
		h.Source = src.String()
	} else {
		h.Source = st.heard.Source
		was := st.heard
		was.Time = h.Time
		changed = was != h
	}
	st.heard, st.heardSrc, st.heardOK = h, src, true
	st.live.heardAt.Store(h.Time.UnixNano())
	return changed
}

// heard records a valid advert of family f from src, another host, at v:
// counted, and its source and values shown in the snapshot when they
// changed.
func (d *Daemon) heard(v *vhost, f carp.Family, src netip.Addr, h api.Heard) {
	v.stats.live.received[f].Add(1)
	if v.stats.setHeard(src, h) {
		d.pub.changed = true
	}
}

// lastHeard returns a copy of the last advert heard, nil if none.
func (st *vhostStats) lastHeard() *api.Heard {
	if !st.heardOK {
		return nil
	}
	h := st.heard
	return &h
}

type transitionKey struct{ to, reason string }

// Status returns the state of every vhid and of the demotion, as the loop
// last published it (with the counters as they are): it never waits for
// the loop once Run has started the vhids (before, it waits for that, or
// for ctx). It fails with ErrNotRunning once Run has returned.
func (d *Daemon) Status(ctx context.Context) (api.Status, error) {
	s, err := d.snapshot(ctx)
	if err != nil {
		return api.Status{}, err
	}
	st := s.read()
	st.BGP = d.routesStatus(ctx)
	return st, nil
}

// status builds the state of every vhid and of the demotion, on the loop.
func (d *Daemon) status(now time.Time) api.Status {
	st := api.Status{Version: api.Version, Demotion: d.demotion, Demotions: []api.Demotion{}, VHIDs: []api.VHID{}}
	for k, e := range d.demotions {
		dm := api.Demotion{Source: k.source, Delta: e.delta, Reason: e.reason, Since: e.since}
		if k.v != nil {
			dm.VHID, dm.Interface = int(k.v.cfg.VHID), k.v.cfg.Interface
		}
		st.Demotions = append(st.Demotions, dm)
	}
	slices.SortFunc(st.Demotions, func(a, b api.Demotion) int {
		return cmp.Or(strings.Compare(a.Source, b.Source), strings.Compare(a.Interface, b.Interface), cmp.Compare(a.VHID, b.VHID))
	})
	for _, v := range d.vhosts {
		st.VHIDs = append(st.VHIDs, d.vhidStatus(now, v))
	}
	st.Checks = d.checkStatus()
	return st
}

func (d *Daemon) vhidStatus(now time.Time, v *vhost) api.VHID {
	s := api.VHID{
		Interface: v.cfg.Interface, VHID: int(v.cfg.VHID), Protocol: v.proto(),
		State: v.state().String(), Demotion: d.demotionOf(v), Released: v.releases > 0,
		LastChange: v.stats.lastChange, Heard: v.stats.lastHeard(),
	}
	v.el.Status(&s)
	s.Addresses = d.shownAddresses(v)
	if v.state() == carp.Master && !v.stats.masterSince.IsZero() {
		t := v.stats.masterSince
		s.MasterSince = &t
	}
	s.Why = d.why(v)
	v.stats.live.fill(&s)
	c := &s.Counters
	c.Transitions = v.stats.transitionsTotal
	c.AddressRestores = v.stats.restores
	c.MoverFailures = v.stats.moverFailures
	if v.cfg.MoverOf() == config.MoverBGP {
		s.Mover = config.MoverBGP
	}
	for k, n := range v.stats.transitions {
		c.TransitionsByKind = append(c.TransitionsByKind, api.TransitionCount{To: k.to, Reason: k.reason, Count: n})
	}
	slices.SortFunc(c.TransitionsByKind, func(a, b api.TransitionCount) int {
		return strings.Compare(a.To+a.Reason, b.To+b.Reason)
	})
	return s
}

// why says in words why v is in its state.
func (d *Daemon) why(v *vhost) string {
	if v.state() == carp.Init {
		if !v.iface.link.Up {
			return fmt.Sprintf("INIT: %s is not up and running", v.cfg.Interface)
		}
		if d.leaving {
			return "INIT: carpd is leaving"
		}
		return "INIT"
	}
	return v.el.Why(v.stats.lastHeard(), d.leaving)
}

// Stats returns the host's counters, from the snapshot the loop last
// published and the counters as they are: it never waits for the loop.
func (d *Daemon) Stats(ctx context.Context) (api.Stats, error) {
	s, err := d.snapshot(ctx)
	if err != nil {
		return api.Stats{}, err
	}
	return d.stats.read(s, d.drops), nil
}

func (c *counters) read(s *snapshot, drops *electorate.Drops) api.Stats {
	st := api.Stats{Version: api.Version}
	for _, ifc := range s.ifaces {
		ifc.counters.FillStats(&st, ifc.name, ifc.vrrp)
	}
	drops.FillStats(&st)
	for _, v := range s.read().VHIDs {
		k := v.Counters
		if v.Protocol == "vrrp" {
			st.VRRP.SentInet += k.SentInet
			st.VRRP.SentInet6 += k.SentInet6
			st.VRRP.SendFailed += k.SendFailed
		} else {
			st.SentInet += k.SentInet
			st.SentInet6 += k.SentInet6
			st.SendFailed += k.SendFailed
		}
		st.Transitions += k.Transitions
		st.Announcements += k.Announcements
		st.AddressRestores += k.AddressRestores
	}
	st.DroppedQueueFull = c.queueFull.Load()
	st.MonitorResyncs = c.resyncs.Load()
	st.HookRuns = c.hookRuns.Load()
	st.HookFailures = c.hookFailures.Load()
	st.ConfigLastReloadSuccessful = !c.reloadFailed.Load()
	st.ConfigLastReloadSuccess = time.Unix(0, c.loaded.Load())
	return st
}
func (v *vhost) addrStrings() []string {
	out := make([]string, len(v.prefixes))
	for i, p := range v.prefixes {
		out[i] = p.String()
	}
	return out
}

// transitioned records a transition: counters, history, event, hooks.
