package daemon

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/carpd/carpd/internal/carp"
	"github.com/carpd/carpd/internal/vrrp"
)

// step feeds one event to a vhid's machine and carries out its actions, in
// order. What they cause is queued. A VRRP instance gets the event in its
// own package's words (vrrpEvent).
func (d *Daemon) step(now time.Time, v *vhost, ev carp.Event) {
	if v.vm != nil {
		if e := vrrpEvent(ev); e != nil {
			d.stepVRRP(now, v, e)
		}
		return
	}
	switch ev.(type) {
	case carp.Received, carp.LinkUp:
		d.syncSources(now, v)
	}
	// The actions go in the daemon's reused slice (taken while they run,
	// should carrying one out step a machine again).
	acts := v.m.AppendStep(d.carpActs, now, ev)
	d.carpActs = nil
	d.runActions(now, v, acts, ev)
	clear(acts)
	d.carpActs = acts[:0]
}

// syncSources gives v's machine the addresses its adverts leave from, for
// the tie-break between equal adverts and the master-down offset
// (carp.Config.Source4), when they changed: before an advert is judged and
// when the link comes up. A family whose source is not known (no address
// yet) keeps the last known.
func (d *Daemon) syncSources(now time.Time, v *vhost) {
	ifc := v.iface
	if ifc.gone || ifc.link.Index == 0 {
		return
	}
	cfg := v.m.Config()
	src4, ok4 := d.advertSource(v, carp.IPv4)
	src6, ok6 := d.advertSource(v, carp.IPv6)
	if (!ok4 || src4 == cfg.Source4) && (!ok6 || src6 == cfg.Source6) {
		return
	}
	if ok4 {
		cfg.Source4 = src4
	}
	if ok6 {
		cfg.Source6 = src6
	}
	acts, err := v.m.Reconfigure(now, cfg)
	if err != nil {
		v.log.Error("carp: advert source", "err", err)
		return
	}
	v.log.Debug("carp: advert source", "v4", cfg.Source4, "v6", cfg.Source6)
	d.runActions(now, v, acts, nil)
}

// advertSource is the address v's adverts of family f leave from; ok is
// false if v has no address of f or the interface none to send from.
func (d *Daemon) advertSource(v *vhost, f carp.Family) (netip.Addr, bool) {
	if !v.m.HasFamily(f) {
		return netip.Addr{}, false
	}
	dst := v.m.Peer(f)
	if !dst.IsValid() {
		dst = carp.Group(f)
	}
	src, err := d.source(v.iface, dst)
	return src, err == nil && src.IsValid()
}

// runActions carries out the actions of v's machine (ev is the event that
// caused them, if any), in order.
func (d *Daemon) runActions(now time.Time, v *vhost, acts []carp.Action, ev carp.Event) {
	d.stepped = true
	for _, a := range acts {
		switch a := a.(type) {
		case carp.Transition:
			d.transition(now, v, a)
		case carp.SendAdvert:
			d.toSend = append(d.toSend, pendingSend{v: v, carp: a})
		case carp.Demote:
			d.enqueue(demoteIn{v: v, delta: a.Delta, source: a.Source, reason: a.Reason})
		case carp.HoldAddresses:
			d.hold(v, a.Hold)
		case carp.Announce:
			d.announced(now, v)
		case carp.Drop:
			r, _ := ev.(carp.Received)
			d.dropped(a.Reason, v.iface.counters, v.cfg.Interface, r.Src, r.TTL, v.cfg.VHID)
		}
	}
}

// transition logs a transition and records it.
func (d *Daemon) transition(now time.Time, v *vhost, a carp.Transition) {
	// FreeBSD's message, as operators grep for it (FreeBSD 15 writes it
	// for VRRP vhids too); the same facts as attributes.
	v.log.Info(fmt.Sprintf("carp: %d@%s: %s -> %s (%s)", v.cfg.VHID, v.cfg.Interface, a.From, a.To, a.Reason),
		"from", a.From.String(), "state", a.To.String(), "reason", a.Reason)
	d.transitioned(now, v, a)
}

// sent counts an advert of family f sent (err == nil) or not, queues the
// renewal of a master's addresses' lifetime, at most every refreshEvery,
// and the send's result for the machine.
func (d *Daemon) sent(now time.Time, v *vhost, f carp.Family, err error) {
	if err != nil {
		v.stats.sendFailed++
	} else {
		v.stats.sent[f]++
	}
	if v.hold && !v.refresh && !d.unmanaged && now.Sub(v.refreshed) >= d.refreshEvery {
		v.refresh = true
		d.toRefresh = append(d.toRefresh, v)
	}
	if err == nil {
		// Made once: an interface holding a sendResultIn allocates.
		if v.sentOK == nil {
			v.sentOK = sendResultIn{v: v}
		}
		d.enqueue(v.sentOK)
	} else {
		d.enqueue(sendResultIn{v: v, failed: true})
	}
}

// hold makes v's addresses held or not: its interface is synced once the
// input is handled (flushHolds), once for every vhid that changed, so that
// 255 vhids changing at once cost one address dump, not 255.
func (d *Daemon) hold(v *vhost, hold bool) {
	if v.hold != hold {
		v.hold = hold
		if hold {
			// The sync adds the missing addresses with a whole lifetime
			// but leaves one already present as it is: the first advert
			// renews them (sent).
			v.refreshed = time.Time{}
		}
		if !v.iface.toSync {
			v.iface.toSync = true
			d.toSync = append(d.toSync, v.iface)
		}
	}
}

// flushHolds syncs the addresses of the interfaces whose vhids changed
// while handling an input, then sends the announcements asked for
// meanwhile: an address is on the interface before it is announced.
func (d *Daemon) flushHolds() {
	d.syncHolds()
	clear(d.toSync)
	d.toSync = d.toSync[:0]
	for _, v := range d.toAnnounce {
		d.announce(v)
	}
	clear(d.toAnnounce)
	d.toAnnounce = d.toAnnounce[:0]
}

// pendingSend is an advert a machine asked for while handling an input:
// CARP's, or a VRRP instance's (isVRRP).
type pendingSend struct {
	v      *vhost
	isVRRP bool
	carp   carp.SendAdvert
	vrrp   vrrp.SendAdvert
}

// flushSends sends the adverts the machines asked for: first the
// addresses of the vhids whose holds changed are synced, once per
// interface, so that a new master holds its addresses before the old one
// hears it and releases them (make before break), however many vhids
// changed at once (255 vrids taking over at 10 ms must not cost 255
// address dumps before their adverts). The results are queued as inputs.
func (d *Daemon) flushSends(now time.Time) {
	d.syncHolds()
	sends := d.toSend
	d.toSend = d.spareSend[:0]
	for _, s := range sends {
		if s.isVRRP {
			d.sent(now, s.v, s.v.fam, d.sendVRRP(s.v, s.vrrp))
		} else {
			d.sent(now, s.v, s.carp.Family, d.sendAdvert(s.v, s.carp))
		}
	}
	clear(sends)
	d.spareSend = sends[:0]
}

// syncHolds syncs the addresses of the interfaces on which a hold changed
// since their last sync, once each.
func (d *Daemon) syncHolds() {
	for _, ifc := range d.toSync {
		if ifc.toSync {
			ifc.toSync = false
			d.syncAddresses(ifc)
		}
	}
}

// announced queues the announcement of v's addresses (flushHolds sends
// it), and counts and tells it.
func (d *Daemon) announced(now time.Time, v *vhost) {
	d.toAnnounce = append(d.toAnnounce, v)
	v.stats.announcements++
	e := v.event("announce")
	e.Addresses = v.addrStrings()
	d.emit(now, e)
}

func (d *Daemon) sendAdvert(v *vhost, a carp.SendAdvert) error {
	ifc := v.iface
	dst := v.m.Peer(a.Family)
	if !dst.IsValid() {
		dst = carp.Group(a.Family)
	}
	src, err := d.source(ifc, dst)
	if err == nil {
		conn := d.host.Conns[a.Family]
		v.sendBuf = a.Advert.AppendMarshal(v.sendBuf[:0])
		err = conn.WriteAdvert(ifc.link.Index, src, dst, v.sendBuf)
	}
	if err != nil {
		v.log.Warn("carp: sending advert failed", "family", a.Family.String(), "dst", dst, "err", err)
	}
	return err
}

// source is the address adverts to dst leave ifc from, cached until the
// interface or its addresses change. Adverts leave from the parent, also
// in virtual MAC mode (as keepalived's vmac_xmit_base): a Linux macvlan
// consumes multicast whose source MAC is its own, so a peer's macvlan with
// the same virtual MAC would hide the master's adverts from the backup.
func (d *Daemon) source(ifc *iface, dst netip.Addr) (netip.Addr, error) {
	if src, ok := ifc.src[dst]; ok {
		return src, nil
	}
	src, err := d.host.Links.Source(ifc.link.Index, dst, ifc.vips)
	if err == nil {
		ifc.src[dst] = src
	}
	return src, err
}

func (d *Daemon) announce(v *vhost) {
	home := v.home()
	if err := d.host.Announcer.Announce(home.Index, home.MAC, v.addrs); err != nil {
		v.log.Warn("carp: announcing addresses failed", "dev", home.Name, "err", err)
	}
}

// refreshAddresses renews the lifetime of the addresses of the masters
// that advertised. It runs after every advert that was due, so that with
// many vhids an advert does not wait behind the others' netlink requests.
func (d *Daemon) refreshAddresses(now time.Time) {
	for _, v := range d.toRefresh {
		v.refresh = false
		if !v.hold {
			continue
		}
		v.refreshed = now
		if err := d.host.Addresses.Refresh(v.home().Name, v.prefixes); err != nil {
			v.log.Error("carp: renewing the addresses' lifetime failed", "err", err)
		}
	}
	clear(d.toRefresh)
	d.toRefresh = d.toRefresh[:0]
}

// releaseAll removes every virtual address at once, for a daemon that can
// no longer run the protocol.
func (d *Daemon) releaseAll() {
	for _, v := range d.vhosts {
		v.hold = false
	}
	for _, ifc := range d.ifaces {
		d.syncAddresses(ifc)
	}
}

// syncAddresses makes the interface hold the addresses of exactly the
// vhids that are MASTER. The parent never holds the addresses of a vhid in
// virtual MAC mode. It returns the number of addresses added or removed.
// An interface that is gone holds nothing to sync.
func (d *Daemon) syncAddresses(ifc *iface) int {
	if d.unmanaged || ifc.gone {
		return 0
	}
	var managed, want []netip.Prefix
	for _, v := range ifc.vhosts {
		managed = append(managed, v.prefixes...)
		if v.hold && !v.cfg.VirtualMAC {
			want = append(want, v.prefixes...)
		}
	}
	n := d.setAddresses(ifc.link.Name, slices.Clip(managed), want)
	for _, v := range ifc.vhosts {
		if v.vmac != nil {
			want = nil
			if v.hold {
				want = v.prefixes
			}
			n += d.setAddresses(v.vmac.Name, v.prefixes, want)
		}
	}
	return n
}

func (d *Daemon) setAddresses(ifname string, managed, want []netip.Prefix) int {
	changes, err := d.host.Addresses.Set(ifname, managed, want)
	for _, c := range changes {
		d.log.Info("carp: addresses changed", "dev", ifname, "cmd", c)
	}
	if err != nil {
		// An interface deleted meanwhile (a parent, or a virtual MAC
		// interface that went with its parent): its addresses went with
		// it, and the monitor tells of it next, which puts the vhids in
		// INIT. Releasing from it, or taking over on it at that moment,
		// is no error.
		if _, lerr := d.host.Links.Link(ifname); errors.Is(lerr, ErrNoInterface) {
			d.log.Debug("carp: interface gone; addresses not set", "dev", ifname, "err", err)
			return len(changes)
		}
	}
	if err != nil {
		d.log.Error("carp: setting addresses failed", "dev", ifname, "err", err)
	}
	return len(changes)
}
