package daemon

import (
	"net/netip"
	"time"

	"github.com/carpd/carpd/internal/api"
	"github.com/carpd/carpd/internal/carp"
	"github.com/carpd/carpd/internal/vrrp"
)

// This file is the daemon's side of VRRPv3 (carpver 3): a VRRP instance is
// a vhost like a CARP vhid, with internal/vrrp's machine (one per address
// family of the vhid) in place of internal/carp's. The loop feeds it the
// same events (vrrpEvent), carries out the same actions (the addresses,
// the announcements, the demotions, the transitions' events and hooks)
// and sends and receives on the same protocol-112 sockets: a received
// datagram goes to one protocol or the other by its version nibble.

// vrrpDrop is why a VRRP datagram was dropped: the codec's reasons
// (vrrp.DropReasonOf) and the machine's (vrrp.DropReason), as one set of
// counters, labelled proto="vrrp".
type vrrpDrop uint8

const (
	vrrpDropHeader   vrrpDrop = iota // hdrops: shorter than the header
	vrrpDropVersion                  // badver: not version 3, or not an advertisement
	vrrpDropLength                   // badlen: the count does not match the length
	vrrpDropChecksum                 // badsum
	vrrpDropInterval                 // badinterval: interval 0
	vrrpDropFamily                   // badaf: addresses of no family, or of the other
	vrrpDropTTL                      // badttl: TTL or hop limit not 255
	vrrpDropVRID                     // badvrid: no instance of that VRID and family here
	vrrpDropLoop                     // loop: our own advert came back
	vrrpDropOther                    // other

	numVRRPDrops = iota
)

var vrrpDropNames = [numVRRPDrops]string{
	"hdrops", "badver", "badlen", "badsum", "badinterval", "badaf", "badttl", "badvrid", "loop", "other",
}

func (r vrrpDrop) String() string { return vrrpDropNames[r] }

// vrrpDropOf is the drop of a codec reason's name (vrrp.DropReasonOf).
func vrrpDropOf(name string) vrrpDrop {
	for r, n := range vrrpDropNames {
		if n == name {
			return vrrpDrop(r)
		}
	}
	return vrrpDropOther
}

// machineDrop is the drop of a machine's drop reason.
func machineDrop(r vrrp.DropReason) vrrpDrop {
	switch r {
	case vrrp.DropVRID:
		return vrrpDropVRID
	case vrrp.DropFamily:
		return vrrpDropFamily
	case vrrp.DropTTL:
		return vrrpDropTTL
	case vrrp.DropInterval:
		return vrrpDropInterval
	case vrrp.DropLoop:
		return vrrpDropLoop
	}
	return vrrpDropOther
}

// droppedVRRP counts and logs a VRRP datagram dropped, as dropped does
// CARP's: adverts of VRIDs not configured here (badvrid) are normal on a
// shared segment and logged at debug level only.
func (d *Daemon) droppedVRRP(r vrrpDrop, ic *ifaceCounters, ifname string, src netip.Addr, ttl int, vrid uint8) {
	d.stats.vrrpDrops[r].Add(1)
	ic.vrrpDrops[r].Add(1)
	d.logDrop(&ic.vrrpDropLogs[r], r == vrrpDropVRID, "vrrp", r.String(), ifname, src, ttl, vrid)
}

// admitVRRP runs the stateless checks of a VRRPv3 datagram on a reader's
// goroutine: the codec's (length, version, type, count, checksum with the
// pseudo-header, interval), the TTL and an instance of that VRID and
// family on the interface. The address list is not queued: the machine
// does not judge it (RFC 5798 section 7.1 leaves that optional; keepalived
// only logs a mismatch).
func (d *Daemon) admitVRRP(fam carp.Family, p Packet, ai *admitIface, scratch *vrrp.Advert) (advertIn, bool) {
	ai.counters.vrrpReceived[fam].Add(1)
	if err := vrrp.ParseInto(p.Payload, p.Src, p.Dst, scratch); err != nil {
		name, _ := vrrp.DropReasonOf(err)
		d.droppedVRRP(vrrpDropOf(name), ai.counters, ai.name, p.Src, p.TTL, 0)
		return advertIn{}, false
	}
	if err := vrrp.CheckTTL(p.TTL); err != nil {
		d.droppedVRRP(vrrpDropTTL, ai.counters, ai.name, p.Src, p.TTL, scratch.VRID)
		return advertIn{}, false
	}
	if !ai.vrids[fam][scratch.VRID] {
		d.droppedVRRP(vrrpDropVRID, ai.counters, ai.name, p.Src, p.TTL, scratch.VRID)
		return advertIn{}, false
	}
	a := vrrp.Advert{VRID: scratch.VRID, Priority: scratch.Priority, Interval: scratch.Interval}
	return advertIn{ifindex: p.IfIndex, vrrp: true, fam: fam, vr: vrrp.Received{Src: p.Src, TTL: p.TTL, Advert: a}}, true
}

// receivedVRRP hands a checked VRRP advert to its instance.
func (d *Daemon) receivedVRRP(now time.Time, ifc *iface, in advertIn) {
	v := ifc.byVRID[in.fam][in.vr.Advert.VRID]
	if v == nil {
		d.droppedVRRP(vrrpDropVRID, ifc.counters, ifc.link.Name, in.vr.Src, in.vr.TTL, in.vr.Advert.VRID)
		return
	}
	d.syncPrimary(now, v)
	if in.vr.Src != v.vm.Config().PrimaryIP {
		v.stats.received[in.fam]++
		a := in.vr.Advert
		v.stats.setHeard(in.vr.Src, api.Heard{Time: now, Priority: int(a.Priority), Interval: int(a.Interval)})
	}
	d.stepVRRPWith(now, v, in.vr, &in.vr)
}

// vrrpEvent is a CARP event in internal/vrrp's words; nil for one a VRRP
// instance does not take (a CARP advert).
func vrrpEvent(ev carp.Event) vrrp.Event {
	switch ev := ev.(type) {
	case carp.Tick:
		return vrrp.Tick{}
	case carp.LinkUp:
		return vrrp.LinkUp{Again: ev.Again}
	case carp.LinkDown:
		return vrrp.LinkDown{}
	case carp.Force:
		return vrrp.Force{State: ev.State}
	case carp.SetDemotion:
		return vrrp.SetDemotion{Demotion: ev.Demotion}
	case carp.Shutdown:
		return vrrp.Shutdown{}
	case carp.SendResult:
		return vrrp.SendResult{Err: ev.Err}
	case carp.Release:
		return vrrp.Release{On: ev.On}
	}
	return nil
}

// stepVRRP feeds one event to a VRRP instance and carries out its actions.
func (d *Daemon) stepVRRP(now time.Time, v *vhost, ev vrrp.Event) {
	d.syncPrimary(now, v)
	d.stepVRRPWith(now, v, ev, nil)
	if _, ok := ev.(vrrp.SetDemotion); ok {
		d.noteOwner(v)
	}
}

// stepVRRPWith feeds ev to v's instance and carries out its actions, in
// the daemon's reused slice (taken while they run, as step's); r is the
// advert ev is, if it is one.
func (d *Daemon) stepVRRPWith(now time.Time, v *vhost, ev vrrp.Event, r *vrrp.Received) {
	acts := v.vm.AppendStep(d.vrrpActs, now, ev)
	d.vrrpActs = nil
	d.runVRRPActions(now, v, acts, r)
	clear(acts)
	d.vrrpActs = acts[:0]
}

// noteOwner logs when the address owner (vrrpprio 255) is demoted below
// the owner rule, and when it is the owner again: a demoted owner is an
// ordinary router (it no longer takes over at once nor always preempts).
func (d *Daemon) noteOwner(v *vhost) {
	if v.vm.Config().Priority != vrrp.OwnerPriority {
		return
	}
	demoted := v.vm.Priority() != vrrp.OwnerPriority
	if demoted == v.ownerDemoted {
		return
	}
	v.ownerDemoted = demoted
	if demoted {
		v.log.Warn("vrrp: the address owner (priority 255) is demoted: it advertises a lower priority and is an ordinary router until the demotion is gone",
			"priority", v.vm.Priority())
	} else {
		v.log.Info("vrrp: the address owner (priority 255) is no longer demoted")
	}
}

// syncPrimary gives v's machine the interface's primary address of its
// family (the source of its adverts: the primary IPv4 address, the IPv6
// link-local one), for the tie-break and to know its own adverts, when it
// changed. An interface without one leaves the last known.
func (d *Daemon) syncPrimary(now time.Time, v *vhost) {
	ifc := v.iface
	if ifc.gone || ifc.link.Index == 0 {
		return
	}
	src, err := d.source(ifc, carp.Group(v.fam))
	if err != nil || src == v.vm.Config().PrimaryIP {
		return
	}
	cfg := v.vm.Config()
	cfg.PrimaryIP = src
	acts, err := v.vm.Reconfigure(now, cfg)
	if err != nil {
		v.log.Error("vrrp: primary address", "addr", src, "err", err)
		return
	}
	v.log.Debug("vrrp: primary address", "addr", src)
	d.runVRRPActions(now, v, acts, nil)
}

// runVRRPActions carries out the actions of a VRRP instance (r is the
// advert that caused them, if any), as runActions does CARP's.
func (d *Daemon) runVRRPActions(now time.Time, v *vhost, acts []vrrp.Action, r *vrrp.Received) {
	d.stepped = true
	for _, a := range acts {
		switch a := a.(type) {
		case vrrp.Transition:
			d.transition(now, v, carp.Transition(a))
		case vrrp.SendAdvert:
			d.toSend = append(d.toSend, pendingSend{v: v, isVRRP: true, vrrp: a})
		case vrrp.Demote:
			d.enqueue(demoteIn{v: v, delta: a.Delta, source: a.Source, reason: a.Reason})
		case vrrp.HoldAddresses:
			d.hold(v, a.Hold)
		case vrrp.Announce:
			d.announced(now, v)
		case vrrp.Drop:
			var src netip.Addr
			ttl := 0
			if r != nil {
				src, ttl = r.Src, r.TTL
			}
			d.droppedVRRP(machineDrop(a.Reason), v.iface.counters, v.cfg.Interface, src, ttl, v.cfg.VHID)
		}
	}
}

// sendVRRP sends a VRRP advert to 224.0.0.18 or ff02::12 from the
// interface's primary or link-local address: the checksum's pseudo-header
// needs both.
func (d *Daemon) sendVRRP(v *vhost, a vrrp.SendAdvert) error {
	ifc := v.iface
	dst := carp.Group(v.fam)
	src, err := d.source(ifc, dst)
	if err == nil {
		v.sendBuf, err = a.Advert.AppendMarshal(v.sendBuf[:0], src, dst)
	}
	if err == nil {
		err = d.host.Conns[v.fam].WriteAdvert(ifc.link.Index, src, dst, v.sendBuf)
	}
	if err != nil {
		v.log.Warn("vrrp: sending advert failed", "family", v.fam.String(), "dst", dst, "err", err)
	}
	return err
}
