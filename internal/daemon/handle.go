package daemon

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/carpd/carpd/internal/api"
	"github.com/carpd/carpd/internal/carp"
	"github.com/carpd/carpd/internal/elect"
	"github.com/carpd/carpd/internal/electorate"
)

// input is one input of the event loop.
type input interface{ isInput() }

// advertIn is an advert that passed a reader's checks (admitPacket), for
// a vhid of slot (vhost.slot) on the interface.
type advertIn struct{ electorate.Admitted }

// tickIn says that a deadline of some machine has passed.
type tickIn struct{}

// linkIn is a link's new state.
type linkIn struct{ link Link }

// linkGoneIn says that a link was deleted; link is its last state.
type linkGoneIn struct{ link Link }

// addrIn is an address added or removed underneath.
type addrIn struct{ change AddrChange }

// resyncIn says that the monitor lost changes and was resubscribed: the
// state it feeds is read afresh.
type resyncIn struct{ cause error }

// shutdownIn starts the bow-out.
type shutdownIn struct{}

// abortIn stops waiting for the new masters while bowing out.
type abortIn struct{}

// commandIn is an operator's call, run on the loop.
type commandIn struct {
	run  func(now time.Time)
	done chan struct{}
}

// sendResultIn is the result of an advert sent for v.
type sendResultIn struct {
	v      *vhost
	failed bool
}

// demoteIn is a demotion change asked for by a machine.
type demoteIn struct {
	v      *vhost
	delta  int
	source string
	reason string
}

func (advertIn) isInput()     {}
func (tickIn) isInput()       {}
func (linkIn) isInput()       {}
func (linkGoneIn) isInput()   {}
func (addrIn) isInput()       {}
func (resyncIn) isInput()     {}
func (shutdownIn) isInput()   {}
func (abortIn) isInput()      {}
func (commandIn) isInput()    {}
func (sendResultIn) isInput() {}
func (demoteIn) isInput()     {}

// handle handles one input at time now, then the inputs it caused, in
// order; the adverts asked for go out once the changed holds are synced
// (flushSends); then the announcements, the renewal of the lifetime of the
// addresses of the masters that advertised, and the next deadline.
func (d *Daemon) handle(now time.Time, in input) {
	d.queue = append(d.queue, in)
	d.handleQueued(now)
}

// handleQueued handles the inputs queued (handle, takeQueued) as one.
func (d *Daemon) handleQueued(now time.Time) {
	d.enter(now)
	start, at := d.clock.Now(), now
	d.batchAt, d.batchStart = at, start // sendDue's time
	for {
		for i := 0; i < len(d.queue); i++ {
			d.dispatch(now, d.queue[i])
		}
		clear(d.queue)
		d.queue = d.queue[:0]
		if len(d.toSend) > 0 {
			// The adverts go out after the holds are synced; their
			// results are the next inputs, at the time they went out:
			// the machines measure a stall from there (the sync of 255
			// addresses on a busy machine takes longer than a stall's
			// bound at 10 ms).
			d.flushSends(now)
			now = at.Add(d.clock.Now().Sub(start))
			continue
		}
		if !d.reap(now, false) {
			break
		}
	}
	d.flushHolds()
	d.refreshAddresses(now)
	if d.stepped {
		// Only a step moves a deadline: most address changes (the
		// kernel's echo of each lifetime renewal) move none.
		d.next = d.nextDeadline()
		d.stepped = false
	}
	d.publish(now)
}

// enqueue queues an input caused by the one being handled.
func (d *Daemon) enqueue(in input) { d.queue = append(d.queue, in) }

func (d *Daemon) dispatch(now time.Time, in input) {
	switch in := in.(type) {
	case advertIn:
		d.received(now, in)
	case tickIn:
		for _, v := range d.vhosts {
			if dl := v.el.NextDeadline(); !dl.IsZero() && !now.Before(dl) {
				d.step(now, v, elect.Tick{})
			}
		}
	case linkIn:
		d.linkChanged(now, in.link)
	case linkGoneIn:
		if ifc := d.byIdx[in.link.Index]; ifc != nil {
			d.lose(now, ifc, "")
		}
	case addrIn:
		d.addrChanged(now, in.change)
	case resyncIn:
		d.resync(now, in.cause)
	case shutdownIn:
		// Masters bow out and keep their addresses until the new master
		// is heard (make before break); the loop goes on until every
		// vhid has left.
		d.tell("STOPPING=1\nSTATUS=stopping: bowing out")
		d.leaving = true
		for _, v := range d.vhosts {
			if !d.withdrawFirst(v) {
				d.step(now, v, elect.Shutdown{})
			}
		}
	case abortIn:
		d.abort = true
	case commandIn:
		in.run(now)
		close(in.done)
	case sendResultIn:
		if !in.v.reaped {
			d.step(now, in.v, elect.SendResult{Err: in.failed})
		}
	case demoteIn:
		if !in.v.reaped {
			d.adjustDemotion(now, in.delta, in.reason, in.source, in.v)
		}
	case hookIn:
		d.emit(now, in.e)
	case moverIn:
		d.moved(now, in)
	case checkIn:
		d.checkChanged(now, in)
	}
}

// nextDeadline is the earliest deadline of every machine, or the zero time.
func (d *Daemon) nextDeadline() time.Time { return d.deadlines.Next(d.vhosts) }

// start brings the vhids up once the sockets are open: each vhid whose
// interface is up and running leaves INIT, then takes its forced state.
func (d *Daemon) start(now time.Time) {
	for _, ifc := range d.ifaces {
		// The state may have changed since New.
		l, err := d.host.Links.Link(ifc.link.Name)
		switch {
		case errors.Is(err, ErrNoInterface):
			d.lose(now, ifc, "")
		case err == nil && l.Index == ifc.link.Index:
			ifc.link = l
		case err == nil:
			// Made again since New: followed; the vhids are still INIT.
			ifc.link.Up = false
			d.follow(now, ifc, l)
		}
		for _, v := range ifc.vhosts {
			if ifc.link.Up {
				d.step(now, v, elect.LinkUp{})
			} else {
				v.log.Info("carp: waiting for the interface to be up and running")
			}
			switch v.cfg.State {
			case "master":
				d.step(now, v, elect.Force{State: elect.Master})
			case "backup":
				d.step(now, v, elect.Force{State: elect.Backup})
			}
		}
	}
}

// finished reports whether the bow-out is over: every vhid has left, or
// the operator does not want to wait.
func (d *Daemon) finished() bool {
	if !d.leaving {
		return false
	}
	if d.abort {
		return true
	}
	for _, v := range d.vhosts {
		if !v.el.Left() {
			return false
		}
	}
	return true
}

// adjustDemotion adds delta to the demotion of source (of vhid from, for
// the sources of a vhid) and hands the new total to every machine.
func (d *Daemon) adjustDemotion(now time.Time, delta int, reason, source string, from *vhost) {
	if delta == 0 {
		return
	}
	d.demotion += delta
	k := demotionKey{source: source, v: from}
	e := d.demotions[k]
	if e == nil {
		e = &demotionEntry{since: now}
		d.demotions[k] = e
	}
	e.delta += delta
	e.reason = reason
	if e.delta == 0 {
		delete(d.demotions, k)
	}
	log := d.log
	ev := api.Event{Type: "demotion", Delta: delta, Source: source, Reason: reason}
	if from != nil {
		log = from.log
		e := from.event("demotion")
		ev.VHID, ev.Interface, ev.Proto, ev.Family = e.VHID, e.Interface, e.Proto, e.Family
	}
	total := d.demotion
	ev.Demotion = &total
	// FreeBSD's carp_demote_adj message.
	log.Info(fmt.Sprintf("carp: demoted by %d to %d (%s)", delta, d.demotion, reason),
		"delta", delta, "demotion", d.demotion, "source", source, "reason", reason)
	d.emit(now, ev)
	for _, v := range d.vhosts {
		d.step(now, v, elect.SetDemotion{Demotion: d.demotionOf(v)})
	}
}

// received hands a checked advert to its vhid.
func (d *Daemon) received(now time.Time, in advertIn) {
	ifc := d.byIdx[in.IfIndex]
	if ifc == nil {
		return // the interface went away since the reader checked it
	}
	v := ifc.byNum[in.Slot][in.Num]
	if v == nil {
		d.drops.Drop(in.Drops, in.Drops.None(), ifc.counters, ifc.link.Name, in.Src, in.TTL, in.Num)
		return
	}
	if h, src, f, ok := v.el.Heard(now, in.Event); ok {
		d.heard(v, carp.Family(f), src, h)
	}
	d.from = in
	d.step(now, v, in.Event)
	d.from = advertIn{}
}

// linkChanged handles a link's new state, which may carry a new name.
//
// carpd follows its interfaces by the names configured, as a carpd started
// afresh would find them, not by their index: an interface deleted and
// made again under the same name (a new index), or renamed and named so
// again, is taken back, and one renamed away is lost as a deleted one is.
// FreeBSD's carp is bound to the ifnet and stays on a renamed interface;
// carpd's configuration, like rc.conf, names interfaces, and carpd never
// holds a virtual address on an interface its configuration does not name.
func (d *Daemon) linkChanged(now time.Time, l Link) {
	if ifc := d.byIdx[l.Index]; ifc != nil && l.Name != ifc.link.Name {
		d.lose(now, ifc, l.Name)
	}
	ifc := d.byName[l.Name]
	if ifc == nil {
		return
	}
	if ifc.gone || l.Index != ifc.link.Index {
		d.follow(now, ifc, l)
		return
	}
	d.setLink(now, ifc, l)
}

// setLink sets the state of ifc's link, l, of the same index, and tells
// its vhids when it went up or down.
func (d *Daemon) setLink(now time.Time, ifc *iface, l Link) {
	was := ifc.link.Up
	if l.Up && !was && !d.ready(ifc) {
		l.Up = false // not usable yet: tried again at its next change
	}
	ifc.link = l
	clear(ifc.src)
	if was == l.Up {
		return
	}
	for _, v := range ifc.vhosts {
		if l.Up {
			d.step(now, v, elect.LinkUp{Again: true})
		} else {
			d.step(now, v, elect.LinkDown{})
		}
	}
}

// lose handles the loss of ifc's interface: deleted, or renamed to
// renamed. Its vhids go INIT, as for a link down, and its virtual
// addresses go: the kernel removed them with a deleted interface, and
// carpd removes them from a renamed one. The vhids wait for an interface
// of the configured name (follow).
func (d *Daemon) lose(now time.Time, ifc *iface, renamed string) {
	old := ifc.link
	if renamed != "" {
		d.log.Warn("carp: interface renamed; its vhids wait for an interface of that name",
			"iface", old.Name, "ifindex", old.Index, "new-name", renamed)
	} else {
		d.log.Warn("carp: interface gone; its vhids wait for it to come back", "iface", old.Name, "ifindex", old.Index)
	}
	delete(d.byIdx, old.Index)
	ifc.gone = true
	ifc.joined = 0
	ifc.link = Link{Name: old.Name}
	clear(ifc.src)
	for _, v := range ifc.vhosts {
		if v.vmac == nil {
			continue
		}
		// The kernel deletes a virtual MAC interface with its parent;
		// a renamed parent keeps it, and its addresses with it.
		delete(d.vmacIdx, v.vmac.Index)
		if renamed != "" {
			if err := d.host.VirtualMACs.Remove(v.vmac.Name); err != nil {
				v.log.Warn("carp: removing the virtual MAC interface failed", "dev", v.vmac.Name, "err", err)
			}
		}
		v.vmac = nil
	}
	if old.Up {
		for _, v := range ifc.vhosts {
			d.step(now, v, elect.LinkDown{})
		}
	}
	if renamed != "" && !d.unmanaged {
		var managed []netip.Prefix
		for _, v := range ifc.vhosts {
			managed = append(managed, v.prefixes...)
		}
		d.setAddresses(renamed, managed, nil)
	}
	d.admit.Store(d.newAdmission())
}

// follow takes l, an interface of a configured name with an index other
// than the one ifc knows (made again, or named so again), as ifc's
// interface: the readers admit adverts from its index, and once it is up
// the protocol sockets join the groups on it and the vhids leave INIT.
func (d *Daemon) follow(now time.Time, ifc *iface, l Link) {
	if !ifc.gone {
		// Its loss went unseen (the monitor lost changes).
		d.lose(now, ifc, "")
	}
	d.log.Info("carp: interface back; following it", "iface", l.Name, "ifindex", l.Index)
	ifc.gone = false
	ifc.link = Link{Index: l.Index, Name: l.Name, MAC: l.MAC}
	d.byIdx[l.Index] = ifc
	d.admit.Store(d.newAdmission())
	d.setLink(now, ifc, l)
}

// ready makes ifc's interface usable by its vhids, as setUp does at start:
// the protocol sockets join the groups on its index, and the vhids in
// virtual MAC mode get their virtual MAC interface on it. It reports
// whether that is done.
func (d *Daemon) ready(ifc *iface) bool {
	if ifc.joined != ifc.link.Index {
		for f, conn := range d.host.Conns {
			if !d.families[f] || conn == nil {
				continue
			}
			if err := conn.Join(ifc.link.Index); err != nil {
				d.log.Error("carp: joining the group failed; the interface stays down for carp",
					"iface", ifc.link.Name, "group", carp.Group(carp.Family(f)), "err", err)
				return false
			}
		}
		ifc.joined = ifc.link.Index
	}
	for _, v := range ifc.vhosts {
		if !v.cfg.VirtualMAC || v.vmac != nil {
			continue
		}
		l, err := d.host.VirtualMACs.Ensure(ifc.link.Name, v.cfg.VHID)
		if err != nil {
			v.log.Error("carp: virtual MAC interface failed; the interface stays down for carp", "err", err)
			return false
		}
		v.vmac = &l
		d.vmacIdx[l.Index] = ifc
		v.log.Info("carp: virtual MAC interface", "dev", l.Name, "mac", l.MAC.String())
	}
	return true
}

// addrChanged reacts to addresses changed underneath carpd (an `ip addr
// flush`, systemd-networkd): a virtual address removed from a master is put
// back and announced again; one added to a non-master is removed.
func (d *Daemon) addrChanged(now time.Time, c AddrChange) {
	if d.unmanaged {
		return // the scripts' business
	}
	ifc := d.byIdx[c.LinkIndex]
	if ifc == nil {
		ifc = d.vmacIdx[c.LinkIndex]
	}
	if ifc == nil {
		return
	}
	if c.LinkIndex == ifc.link.Index && !slices.Contains(ifc.vips, c.Prefix.Addr()) {
		clear(ifc.src) // the host's own addresses changed
	}
	for _, v := range ifc.vhosts {
		if !slices.Contains(v.prefixes, c.Prefix) {
			continue
		}
		atHome := c.LinkIndex == v.home().Index
		missing := c.Removed && atHome && v.hold    // ours went missing
		stray := !c.Removed && (!v.hold || !atHome) // one this host must not hold
		if missing || stray {
			// The event may be older than the current state: sync, and
			// speak only if something had to change.
			d.restore(now, ifc, v, c.Prefix, c.Removed)
		}
		return
	}
}

// restore makes the interface hold what it must after p was removed or
// added underneath v, and when that changed something, logs it and
// announces the addresses of the masters again.
func (d *Daemon) restore(now time.Time, ifc *iface, v *vhost, p netip.Prefix, removed bool) {
	if d.syncAddresses(ifc) == 0 {
		return
	}
	what, ev := "carp: address removed underneath carpd; restored", "address-restored"
	if !removed {
		what, ev = "carp: address added underneath carpd; removed", "address-removed"
	}
	v.log.Warn(what, "addr", p)
	v.stats.restores++
	e := v.event(ev)
	e.Addresses = []string{p.String()}
	d.emit(now, e)
	d.announceHolders(ifc)
}

// announceHolders announces the addresses of the masters on ifc again.
func (d *Daemon) announceHolders(ifc *iface) {
	for _, v := range ifc.vhosts {
		if v.hold {
			d.announce(v)
		}
	}
}

// resyncLogInterval is the least time between two warnings about the
// monitor losing changes; the next warning counts those held back in
// between ("suppressed").
const resyncLogInterval = 10 * time.Second

// resync reads afresh everything the monitor feeds, after it lost changes:
// the state of every interface, acted on as if it had changed, and the
// addresses, put right.
func (d *Daemon) resync(now time.Time, cause error) {
	d.stats.resyncs.Add(1)
	d.emit(now, api.Event{Type: "resync", Reason: cause.Error()})
	if d.lastResyncLog.IsZero() || now.Sub(d.lastResyncLog) >= resyncLogInterval {
		d.log.Warn("carp: link and address monitor lost changes; resubscribed and resynchronised",
			"cause", cause, "suppressed", d.resyncsUnlogged)
		d.lastResyncLog, d.resyncsUnlogged = now, 0
	} else {
		d.resyncsUnlogged++
	}
	for _, ifc := range d.ifaces {
		l, err := d.host.Links.Link(ifc.link.Name)
		switch {
		case errors.Is(err, ErrNoInterface):
			// Deleted or renamed away: as a deletion (a renamed one
			// keeps the addresses until their lifetime runs out).
			if !ifc.gone {
				d.lose(now, ifc, "")
			}
		case err != nil:
			// Unreadable: as good as down, until it changes again.
			d.log.Warn("carp: interface unreadable", "iface", ifc.link.Name, "err", err)
			if !ifc.gone {
				l = ifc.link
				l.Up = false
				d.setLink(now, ifc, l)
			}
		default:
			// Made again under the same name (a new index): followed.
			d.linkChanged(now, l)
		}
	}
	for _, ifc := range d.ifaces {
		if n := d.syncAddresses(ifc); n > 0 {
			d.log.Warn("carp: addresses put right after lost changes", "iface", ifc.link.Name, "changes", n)
			d.announceHolders(ifc)
		}
	}
}
