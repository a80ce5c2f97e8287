package daemon

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/carpd/carpd/internal/elect"
	"github.com/carpd/carpd/internal/etcd"
)

// step feeds one event to a vhid's electorate and carries out its
// actions, in order. What they cause is queued.
func (d *Daemon) step(now time.Time, v *vhost, ev elect.Event) {
	// The actions go in the daemon's reused slice (taken while they run,
	// should carrying one out step a machine again).
	acts := v.el.AppendStep(d.acts, now, ev)
	d.acts = nil
	d.runActions(now, v, acts)
	clear(acts)
	d.acts = acts[:0]
}

// runActions carries out the actions of v's machine, in order: those of
// internal/elect here, any other (an advert) by the electorate's Send once
// the holds are synced (flushSends).
func (d *Daemon) runActions(now time.Time, v *vhost, acts []elect.Action) {
	d.stepped = true
	d.deadlines.Touch(v)
	for _, a := range acts {
		switch a := a.(type) {
		case elect.Transition:
			d.transition(now, v, a)
		case elect.Demote:
			d.enqueue(demoteIn{v: v, delta: a.Delta, source: a.Source, reason: a.Reason})
		case elect.HoldAddresses:
			d.hold(v, a)
		case elect.Announce:
			d.announced(now, v)
		case elect.Drop:
			d.drops.Drop(v.drops, v.drops.Index(a.Reason), v.iface.counters, v.cfg.Interface, d.from.Src, d.from.TTL, v.cfg.VHID)
		default:
			d.toSend = append(d.toSend, pendingSend{v: v, a: a})
		}
	}
}

// transition logs a transition and records it.
func (d *Daemon) transition(now time.Time, v *vhost, a elect.Transition) {
	// FreeBSD's message, as operators grep for it (FreeBSD 15 writes it
	// for VRRP vhids too); the same facts as attributes.
	v.log.Info(fmt.Sprintf("carp: %d@%s: %s -> %s (%s)", v.cfg.VHID, v.cfg.Interface, a.From, a.To, a.Reason),
		"from", a.From.String(), "state", a.To.String(), "reason", a.Reason)
	d.transitioned(now, v, a)
}

// sent counts an advert of family f (-1: none) sent (err == nil) or not, queues the
// renewal of a master's addresses' lifetime, at most every refreshEvery,
// and the send's result for the machine.
func (d *Daemon) sent(now time.Time, v *vhost, f int, err error) {
	if err != nil {
		v.stats.live.sendFailed.Add(1)
	} else if f >= 0 {
		v.stats.live.sent[f].Add(1)
	}
	if v.hold && v.until.IsZero() && !v.refresh && !d.unmanaged && now.Sub(v.refreshed) >= d.refreshEvery {
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
// An etcd holder's addresses (a non-zero Until) are synced again at each
// HoldAddresses, which renews their lifetime (syncLeased).
func (d *Daemon) hold(v *vhost, a elect.HoldAddresses) {
	hold := a.Hold
	if v.until != a.Until || !a.Until.IsZero() {
		v.until = a.Until
		if hold && v.hold && !a.Until.IsZero() {
			// Held, and held on: only the lifetime changes.
			d.queueLease(v)
		} else {
			d.queueSync(v.iface)
		}
		if v.mv != nil && hold && v.hold {
			// A renewed lease moves D: the mover's fence too.
			d.toMove = append(d.toMove, v)
		}
	}
	if v.hold != hold {
		v.hold = hold
		if v.mv != nil {
			d.toMove = append(d.toMove, v)
		}
		if hold {
			// The sync adds the missing addresses with a whole lifetime
			// but leaves one already present as it is: the first advert
			// renews them (sent).
			v.refreshed = time.Time{}
		}
		d.queueSync(v.iface)
	}
}

// queueLease queues the renewal of the lifetime of v's addresses
// (renewLease) once the input is handled.
func (d *Daemon) queueLease(v *vhost) {
	if !v.toLease {
		v.toLease = true
		d.toLease = append(d.toLease, v)
	}
}

// renewLease renews the lifetime of a held etcd vhid's addresses, a
// request each (vip.Manager's Lease), without reading the interface's
// addresses back as a sync does: a renewal every second on an idle
// holder. An address removed underneath is put back by the monitor's
// restore. With less than a second of lifetime left, or no Leaser, the
// interface is synced instead (syncLeased removes them).
func (d *Daemon) renewLease(v *vhost) {
	v.toLease = false
	if d.unmanaged || v.iface.gone || !v.leased() {
		return
	}
	l, lft, ok := d.fenceLease(v)
	if !ok {
		d.syncAddresses(v.iface)
		return
	}
	d.lease(v, l, lft)
}

// fenceLease returns the Leaser of v's addresses and the lifetime that
// ends before v's fence deadline; ok is false when they must go instead
// (less than a second of lifetime left, or no Leaser: l is nil then).
func (d *Daemon) fenceLease(v *vhost) (l Leaser, lft time.Duration, ok bool) {
	lft, ok = etcd.AddressLifetime(v.until, d.clock.Now())
	l, leaser := d.host.Addresses.(Leaser)
	return l, lft, ok && leaser
}

// lease gives v's addresses the lifetime lft (adding those missing), and
// reports whether the kernel took it.
func (d *Daemon) lease(v *vhost, l Leaser, lft time.Duration) bool {
	if err := l.Lease(v.home().Name, v.prefixes, lft); err != nil {
		v.log.Error("carp: holding the addresses with their fence lifetime failed", "dev", v.home().Name, "err", err)
		return false
	}
	return true
}

// queueSync queues ifc's addresses to be synced once the input is handled.
func (d *Daemon) queueSync(ifc *iface) {
	if !ifc.toSync {
		ifc.toSync = true
		d.toSync = append(d.toSync, ifc)
	}
}

// flushHolds syncs the addresses of the interfaces whose vhids changed
// while handling an input, then sends the announcements asked for
// meanwhile: an address is on the interface before it is announced.
func (d *Daemon) flushHolds() {
	d.syncHolds()
	clear(d.toSync)
	d.toSync = d.toSync[:0]
	d.flushAnnounces()
}

// flushAnnounces sends the announcements asked for so far.
func (d *Daemon) flushAnnounces() {
	for i := 0; i < len(d.toAnnounce); i++ { // pace may add to it
		d.announce(d.toAnnounce[i])
		d.pace(i)
	}
	clear(d.toAnnounce)
	d.toAnnounce = d.toAnnounce[:0]
}

// pendingSend is an action of a machine's own (an advert) it asked for
// while handling an input.
type pendingSend struct {
	v *vhost
	a elect.Action
}

// flushSends sends the adverts the machines asked for: first the
// addresses of the vhids whose holds changed are synced, once per
// interface, so that a new master holds its addresses before the old one
// hears it and releases them (make before break), however many vhids
// changed at once (255 vrids taking over at 10 ms must not cost 255
// address dumps before their adverts). The announcements asked for go out
// between the two: a master that bowed out lets its addresses go as soon
// as it hears the new master's advert, so the neighbours must have been
// told already, or a packet they send to the old master's MAC meanwhile
// is lost (the gratuitous ARP after the advert, 2 ms later on a loaded
// machine, cost a 10 ms probe in some planned hand-overs).
// The results are queued as inputs.
func (d *Daemon) flushSends(now time.Time) {
	d.syncHolds()
	d.flushAnnounces()
	sends := d.toSend
	d.toSend = d.spareSend[:0]
	for _, s := range sends {
		f, err := s.v.el.Send(s.a)
		d.sent(now, s.v, f, err)
	}
	clear(sends)
	d.spareSend = sends[:0]
}

// syncHolds syncs the addresses of the interfaces on which a hold changed
// since their last sync, once each.
func (d *Daemon) syncHolds() {
	d.pacing = true
	defer func() { d.pacing = false }()
	for i := 0; i < len(d.toSync); i++ { // a paced sync may add to it
		if ifc := d.toSync[i]; ifc.toSync {
			ifc.toSync = false
			d.syncAddresses(ifc)
		}
	}
	for _, v := range d.toLease {
		if v.toLease { // not synced with its interface meanwhile
			d.renewLease(v)
		}
	}
	clear(d.toLease)
	d.toLease = d.toLease[:0]
	// The movers run once the addresses are in place: a route is
	// announced for an address the interface holds.
	for _, v := range d.toMove {
		if v.mv != nil {
			v.mv.Ask(v.hold, v.until)
		}
	}
	clear(d.toMove)
	d.toMove = d.toMove[:0]
}

// announced queues the announcement of v's addresses (flushHolds sends
// it), and counts and tells it.
func (d *Daemon) announced(now time.Time, v *vhost) {
	d.toAnnounce = append(d.toAnnounce, v)
	v.stats.live.announcements.Add(1)
	e := v.event("announce")
	e.Addresses = v.addrStrings()
	d.emit(now, e)
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
		if ifc.src[dst] != src {
			d.pub.changed = true // status shows a VRRP instance's primary address
		}
		ifc.src[dst] = src
	}
	return src, err
}

// wire is a vhid's transport (elect.Wire): the protocol-112 sockets on
// its interface, and the loop.
type wire struct {
	d   *Daemon
	ifc *iface
	v   *vhost
}

func (w *wire) Post(ctx context.Context, ev elect.Event) error {
	return w.d.do(ctx, func(now time.Time) {
		if !w.v.reaped {
			w.d.step(now, w.v, ev)
		}
	})
}

var errGone = errors.New("interface gone")

func (w *wire) Source(dst netip.Addr) (netip.Addr, error) {
	if w.ifc.gone || w.ifc.link.Index == 0 {
		return netip.Addr{}, errGone
	}
	return w.d.source(w.ifc, dst)
}

// Own: from an address this host sends adverts from, a reflection.
func (w *wire) Own(a netip.Addr) bool {
	for _, src := range w.ifc.src {
		if src == a {
			return true
		}
	}
	return false
}

func (w *wire) Write(src, dst netip.Addr, b []byte) error {
	return w.d.host.Conns[familyOf(dst)].WriteAdvert(w.ifc.link.Index, src, dst, b)
}

func (d *Daemon) announce(v *vhost) {
	if v.mv != nil {
		return // the peers route the addresses here: no MAC moves
	}
	home := v.home()
	if err := d.host.Announcer.Announce(home.Index, home.MAC, v.addrs); err != nil {
		v.log.Warn("carp: announcing addresses failed", "dev", home.Name, "err", err)
	}
}

// refreshAddresses renews the lifetime of the addresses of the masters
// that advertised. It runs after every advert that was due, so that with
// many vhids an advert does not wait behind the others' netlink requests.
func (d *Daemon) refreshAddresses(now time.Time) {
	for i := 0; i < len(d.toRefresh); i++ { // pace may add to it
		v := d.toRefresh[i]
		d.pace(i)
		v.refresh = false
		if !v.hold {
			continue
		}
		v.refreshed = now
		if err := d.host.Addresses.Refresh(v.home().Name, v.prefixes); err != nil {
			v.log.Error("carp: renewing the addresses' lifetime failed", "err", err)
		}
		if v.mv != nil {
			v.mv.Ask(true, v.until) // re-asserts what a failed Acquire left out
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
		d.releaseNow(v)
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
		if v.leased() {
			continue // syncLeased's
		}
		managed = append(managed, v.prefixes...)
		if v.holds() && !v.cfg.VirtualMAC {
			want = append(want, v.prefixes...)
		}
	}
	n := d.setAddresses(ifc.link.Name, slices.Clip(managed), want)
	for _, v := range ifc.vhosts {
		if v.leased() {
			n += d.syncLeased(v)
			continue
		}
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

// leased reports whether v holds its addresses under a fence deadline
// of its own (an etcd holder).
func (v *vhost) leased() bool { return v.hold && !v.until.IsZero() }

// Leaser is implemented by an Addresses that can add or renew addresses
// with a lifetime of their own, rounded down (vip.Manager's Lease): the
// fence of an etcd vhid.
type Leaser interface {
	Lease(ifname string, want []netip.Prefix, valid time.Duration) error
}

// syncLeased adds or renews a held etcd vhid's addresses with a kernel
// lifetime that ends before its fence deadline, or removes them when less
// than a second of lifetime would remain (D is near or past: the machine
// releases at D). It returns the number of addresses added or removed.
func (d *Daemon) syncLeased(v *vhost) int {
	v.toLease = false // renewed here
	home := v.home().Name
	l, lft, ok := d.fenceLease(v)
	if !ok {
		if l == nil {
			v.log.Error("carp: the addresses cannot be given a lifetime of their own: not held")
		}
		return d.setAddresses(home, v.prefixes, nil)
	}
	n := 0
	if lister, ok := d.host.Addresses.(AddressLister); ok {
		if held, err := lister.List(home); err == nil {
			for _, p := range v.prefixes {
				if !slices.Contains(held, p) {
					n++
				}
			}
		}
	}
	if !d.lease(v, l, lft) {
		return n
	}
	if n > 0 {
		v.log.Info("carp: addresses changed", "dev", home, "cmd", "ip addr replace", "addrs", v.prefixes, "valid_lft", lft)
	}
	return n
}

func (d *Daemon) setAddresses(ifname string, managed, want []netip.Prefix) int {
	changes, err := d.set(ifname, managed, want)
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
