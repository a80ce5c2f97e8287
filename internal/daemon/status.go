package daemon

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"sync/atomic"
	"time"

	"github.com/carpd/carpd/internal/api"
	"github.com/carpd/carpd/internal/carp"
)

// This file is what an operator sees: the status and counters of the
// vhids.

// vhostStats are one vhid's counters and history, owned by the loop.
type vhostStats struct {
	sent, received   [2]uint64 // by family
	sendFailed       uint64
	transitions      map[transitionKey]uint64
	announcements    uint64
	restores         uint64
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

// setHeard records h, an advert heard from src.
func (st *vhostStats) setHeard(src netip.Addr, h api.Heard) {
	if st.heardOK && src == st.heardSrc {
		h.Source = st.heard.Source
	} else {
		h.Source = src.String()
	}
	st.heard, st.heardSrc, st.heardOK = h, src, true
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

// ifaceCounters are one interface's drop and receive counters, written by
// the socket readers and the loop.
type ifaceCounters struct {
	drops    [carp.NumDropReasons]atomic.Uint64
	received [2]atomic.Uint64 // datagrams, by family
	dropLogs [carp.NumDropReasons]dropLog
	// VRRP's, of the datagrams that went to VRRP (version 3 on an
	// interface with VRRP instances).
	vrrpDrops    [numVRRPDrops]atomic.Uint64
	vrrpReceived [2]atomic.Uint64
	vrrpDropLogs [numVRRPDrops]dropLog
}

// Status returns the state of every vhid and of the demotion.
func (d *Daemon) Status(ctx context.Context) (api.Status, error) {
	var st api.Status
	err := d.do(ctx, func(now time.Time) { st = d.status(now) })
	return st, err
}

func (d *Daemon) status(now time.Time) api.Status {
	st := api.Status{Version: api.Version, Demotion: d.demotion, Demotions: []api.Demotion{}, VHIDs: []api.VHID{}}
	for k, e := range d.demotions {
		dm := api.Demotion{Source: k.source, Delta: e.delta, Reason: e.reason, Since: e.since}
		if k.v != nil {
			dm.VHID, dm.Interface = int(k.v.cfg.VHID), k.v.cfg.Interface
		}
		st.Demotions = append(st.Demotions, dm)
	}
	sort.Slice(st.Demotions, func(i, j int) bool {
		a, b := st.Demotions[i], st.Demotions[j]
		if a.Source != b.Source {
			return a.Source < b.Source
		}
		if a.Interface != b.Interface {
			return a.Interface < b.Interface
		}
		return a.VHID < b.VHID
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
	if v.vm != nil {
		c := v.vm.Config()
		s.Family = afName(v.fam)
		s.Priority, s.AdvertisedPriority = int(c.Priority), int(v.vm.Priority())
		s.Interval, s.MasterAdverInterval = int(c.Interval), int(v.vm.MasterAdverInterval())
		s.Preempt, s.TieBreak = c.Preempt, c.TieBreak
		s.Peer = carp.Group(v.fam).String()
		if c.PrimaryIP.IsValid() {
			s.PrimaryAddress = c.PrimaryIP.String()
		}
	} else {
		peer := func(f carp.Family) string {
			if p := v.m.Peer(f); p.IsValid() {
				return p.String()
			}
			return carp.Group(f).String()
		}
		s.AdvBase, s.AdvSkew, s.AdvertisedSkew = int(v.cfg.AdvBase), int(v.cfg.AdvSkew), int(v.m.AdvSkew())
		s.Peer, s.Peer6 = peer(carp.IPv4), peer(carp.IPv6)
	}
	s.Addresses = d.shownAddresses(v)
	if v.state() == carp.Master && !v.stats.masterSince.IsZero() {
		t := v.stats.masterSince
		s.MasterSince = &t
	}
	s.Why = d.why(v)
	c := &s.Counters
	c.SentInet, c.SentInet6 = v.stats.sent[carp.IPv4], v.stats.sent[carp.IPv6]
	c.SendFailed = v.stats.sendFailed
	c.ReceivedInet, c.ReceivedInet6 = v.stats.received[carp.IPv4], v.stats.received[carp.IPv6]
	c.Transitions = v.stats.transitionsTotal
	c.Announcements, c.AddressRestores = v.stats.announcements, v.stats.restores
	for k, n := range v.stats.transitions {
		c.TransitionsByKind = append(c.TransitionsByKind, api.TransitionCount{To: k.to, Reason: k.reason, Count: n})
	}
	sort.Slice(c.TransitionsByKind, func(i, j int) bool {
		a, b := c.TransitionsByKind[i], c.TransitionsByKind[j]
		return a.To+a.Reason < b.To+b.Reason
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
	if v.vm != nil {
		return d.whyVRRP(v)
	}
	ours := v.m.AdvSkew()
	h := v.stats.lastHeard()
	switch v.m.State() {
	case carp.Backup:
		if h == nil {
			return fmt.Sprintf("BACKUP: no master heard yet; takes over after %v without one (advbase %d advskew %d)",
				v.m.MasterDownInterval(), v.cfg.AdvBase, ours)
		}
		return fmt.Sprintf("BACKUP: master %s advertises advbase %d advskew %d, ours %d", h.Source, h.AdvBase, h.AdvSkew, ours)
	default:
		if d.leaving {
			return fmt.Sprintf("MASTER: bowed out, holding the addresses until a new master is heard (advskew %d)", ours)
		}
		if h != nil {
			return fmt.Sprintf("MASTER: advertising advbase %d advskew %d; last heard %s with advbase %d advskew %d",
				v.cfg.AdvBase, ours, h.Source, h.AdvBase, h.AdvSkew)
		}
		return fmt.Sprintf("MASTER: advertising advbase %d advskew %d; no other host heard", v.cfg.AdvBase, ours)
	}
}

// whyVRRP is why for a VRRP instance, in its words: priorities and
// intervals (centiseconds).
func (d *Daemon) whyVRRP(v *vhost) string {
	m := v.vm
	ours := m.Priority()
	h := v.stats.lastHeard()
	if m.State() == carp.Backup {
		if h == nil {
			return fmt.Sprintf("BACKUP: no master heard yet; takes over after %v without one (priority %d)", m.MasterDownInterval(), ours)
		}
		return fmt.Sprintf("BACKUP: master %s advertises priority %d interval %d, ours %d; takes over after %v without it",
			h.Source, h.Priority, h.Interval, ours, m.MasterDownInterval())
	}
	if d.leaving {
		return "MASTER: resigned (priority 0), holding the addresses until a new master is heard"
	}
	if h != nil {
		return fmt.Sprintf("MASTER: advertising priority %d interval %d; last heard %s with priority %d interval %d",
			ours, m.Config().Interval, h.Source, h.Priority, h.Interval)
	}
	return fmt.Sprintf("MASTER: advertising priority %d interval %d; no other router heard", ours, m.Config().Interval)
}

// Stats returns the host's counters.
func (d *Daemon) Stats(ctx context.Context) (api.Stats, error) {
	var st api.Stats
	err := d.do(ctx, func(time.Time) { st = d.stats.snapshot(d) })
	return st, err
}

func (c *counters) snapshot(d *Daemon) api.Stats {
	st := api.Stats{Version: api.Version}
	drops := map[carp.DropReason]uint64{}
	for _, ifc := range d.ifaces {
		ic := ifc.counters
		st.ReceivedInet += ic.received[carp.IPv4].Load()
		st.ReceivedInet6 += ic.received[carp.IPv6].Load()
		byReason := map[string]uint64{}
		for r := carp.DropReason(1); r < carp.NumDropReasons; r++ {
			n := ic.drops[r].Load()
			drops[r] += n
			byReason[r.String()] = n
		}
		st.DropsByInterface = append(st.DropsByInterface, api.InterfaceDrops{Interface: ifc.link.Name, Drops: byReason})
		if !slices.ContainsFunc(ifc.vhosts, func(v *vhost) bool { return v.vm != nil }) {
			continue
		}
		st.VRRP.ReceivedInet += ic.vrrpReceived[carp.IPv4].Load()
		st.VRRP.ReceivedInet6 += ic.vrrpReceived[carp.IPv6].Load()
		byReason = map[string]uint64{}
		for r := range vrrpDrop(numVRRPDrops) {
			byReason[r.String()] = ic.vrrpDrops[r].Load()
		}
		st.DropsByInterface = append(st.DropsByInterface, api.InterfaceDrops{Interface: ifc.link.Name, Proto: "vrrp", Drops: byReason})
	}
	st.VRRP.Drops = map[string]uint64{}
	for r := range vrrpDrop(numVRRPDrops) {
		st.VRRP.Drops[r.String()] = c.vrrpDrops[r].Load()
	}
	st.DroppedWrongTTL = drops[carp.DropTTL]
	st.DroppedShortHeader = drops[carp.DropHeader]
	st.DroppedBadChecksum = drops[carp.DropChecksum]
	st.DroppedBadVersion = drops[carp.DropVersion]
	st.DroppedShortPacket = drops[carp.DropShort]
	st.DroppedBadAuth = drops[carp.DropAuth]
	st.DroppedBadVHID = drops[carp.DropVHID]
	st.DroppedLoop = drops[carp.DropLoop]
	st.DroppedReplay = drops[carp.DropReplay]
	st.DroppedBadPeer = drops[carp.DropPeer]
	for _, v := range d.vhosts {
		if v.vm != nil {
			st.VRRP.SentInet += v.stats.sent[carp.IPv4]
			st.VRRP.SentInet6 += v.stats.sent[carp.IPv6]
			st.VRRP.SendFailed += v.stats.sendFailed
		} else {
			st.SentInet += v.stats.sent[carp.IPv4]
			st.SentInet6 += v.stats.sent[carp.IPv6]
			st.SendFailed += v.stats.sendFailed
		}
		st.Transitions += v.stats.transitionsTotal
		st.Announcements += v.stats.announcements
		st.AddressRestores += v.stats.restores
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

// heardFrom records a valid advert from another host.
func (v *vhost) heardFrom(now time.Time, r carp.Received) {
	v.stats.received[r.Family]++
	v.stats.setHeard(r.Src, api.Heard{Time: now, AdvBase: int(r.Advert.AdvBase), AdvSkew: int(r.Advert.AdvSkew)})
}

// transitioned records a transition: counters, history, event, hooks.
