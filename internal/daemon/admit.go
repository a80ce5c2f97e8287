package daemon

import (
	"context"
	"log/slog"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/carpd/carpd/internal/carp"
	"github.com/carpd/carpd/internal/vrrp"
)

// admitTable is what the socket readers check a received datagram against
// before it is queued: the stateless checks of the vhids of each interface
// (carp.Filter). It is immutable; the daemon stores a new one when its
// interfaces change.
type admitTable struct {
	byIdx map[int]*admitIface
}

type admitIface struct {
	name     string
	counters *ifaceCounters
	filters  [256]*carp.Filter // by vhid
	// vrids are the VRRP instances, by family and VRID; anyVRRP says
	// there is one: without, a VRRP advert is an unknown version (CARP's
	// badver), as in FreeBSD before 15.
	vrids   [2][256]bool
	anyVRRP bool
}

func (d *Daemon) newAdmitTable() *admitTable {
	t := &admitTable{byIdx: map[int]*admitIface{}}
	for _, ifc := range d.ifaces {
		ai := &admitIface{name: ifc.link.Name, counters: ifc.counters}
		for _, v := range ifc.vhosts {
			if v.vm != nil {
				ai.vrids[v.fam][v.cfg.VHID] = true
				ai.anyVRRP = true
				continue
			}
			ai.filters[v.cfg.VHID] = v.m.Filter()
		}
		t.byIdx[ifc.link.Index] = ai
	}
	return t
}

// admitPacket runs, on a socket reader's goroutine, every check of a
// received datagram that needs no state: the decoding (length, version,
// type, checksum), the vhid, the family, the peer or TTL, and the HMAC. It
// counts what fails and returns what passes, for the loop. Datagrams on
// interfaces without vhids are not carpd's business and are ignored. A
// VRRPv3 datagram (version 3) on an interface with VRRP instances goes to
// admitVRRP, which decodes it into scratch (the reader's own).
func (d *Daemon) admitPacket(fam carp.Family, p Packet, scratch *vrrp.Advert) (advertIn, bool) {
	ai := d.admit.Load().byIdx[p.IfIndex]
	if ai == nil {
		return advertIn{}, false
	}
	if ai.anyVRRP && len(p.Payload) > 0 && p.Payload[0]>>4 == vrrp.Version {
		return d.admitVRRP(fam, p, ai, scratch)
	}
	a, err := carp.ParseAdvert(p.Payload)
	ai.counters.received[fam].Add(1)
	if err != nil {
		r, counted := carp.DropReasonOf(err)
		if !counted {
			// VRRPv3: carpd runs no VRRP instance, so it is an
			// unknown version here, as in FreeBSD before 15.
			r = carp.DropVersion
		}
		d.dropped(r, ai.counters, ai.name, p.Src, p.TTL, 0)
		return advertIn{}, false
	}
	f := ai.filters[a.VHID]
	if f == nil {
		d.dropped(carp.DropVHID, ai.counters, ai.name, p.Src, p.TTL, a.VHID)
		return advertIn{}, false
	}
	r := carp.Received{Family: fam, Src: p.Src, TTL: p.TTL, Advert: a}
	if reason, ok := f.Check(r); !ok {
		d.dropped(reason, ai.counters, ai.name, p.Src, p.TTL, a.VHID)
		return advertIn{}, false
	}
	return advertIn{ifindex: p.IfIndex, r: r}, true
}

// dropLogInterval is the least time between two log lines of the drops of
// one reason on one interface: a flood of forged adverts is counted, not
// logged packet by packet.
const dropLogInterval = 10 * time.Second

// dropLog limits the logging of one reason's drops on one interface. It is
// used by the socket readers and the loop at once.
type dropLog struct {
	last       atomic.Int64 // clock reading of the last line, +1; 0: never
	suppressed atomic.Uint64
}

// dropped counts an advert that failed a check. The first drop of a reason
// on an interface is logged, then at most one line every dropLogInterval
// with the number left unlogged in between (suppressed); every drop is
// logged at debug level. Drops of adverts of other vhids (badvhid) are
// normal on a segment that several groups share, and logged at debug
// level only.
func (d *Daemon) dropped(r carp.DropReason, ic *ifaceCounters, ifname string, src netip.Addr, ttl int, vhid uint8) {
	d.stats.drops[r].Add(1)
	ic.drops[r].Add(1)
	d.logDrop(&ic.dropLogs[r], r == carp.DropVHID, "carp", r.String(), ifname, src, ttl, vhid)
}

// logDrop logs a drop of reason on ifname as dropped says (quiet: at
// debug level only), with l the reason's limit on that interface.
func (d *Daemon) logDrop(l *dropLog, quiet bool, proto, reason, ifname string, src netip.Addr, ttl int, vhid uint8) {
	if !quiet {
		now := int64(d.clock.Now().Sub(d.epoch)) + 1
		last := l.last.Load()
		if (last == 0 || now-last >= int64(dropLogInterval)) && l.last.CompareAndSwap(last, now) {
			d.log.Warn(proto+": dropped adverts", "reason", reason, "iface", ifname, "from", src, "ttl", ttl,
				"vhid", vhid, "suppressed", l.suppressed.Swap(0))
			return
		}
		l.suppressed.Add(1)
	}
	if d.log.Enabled(context.Background(), slog.LevelDebug) {
		d.log.Debug(proto+": dropped advert", "reason", reason, "iface", ifname, "from", src, "ttl", ttl, "vhid", vhid)
	}
}
