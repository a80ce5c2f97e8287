package daemon

import (
	"errors"

	"github.com/carpd/carpd/internal/carp"
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
}

func (d *Daemon) newAdmitTable() *admitTable {
	t := &admitTable{byIdx: map[int]*admitIface{}}
	for _, ifc := range d.ifaces {
		ai := &admitIface{name: ifc.link.Name, counters: ifc.counters}
		for _, v := range ifc.vhosts {
			ai.filters[v.cfg.VHID] = v.m.Filter()
		}
		t.byIdx[ifc.link.Index] = ai
	}
	return t
}

// admit runs, on a socket reader's goroutine, every check of a received
// datagram that needs no state: the decoding (length, version, type,
// checksum), the vhid, the family, the peer or TTL, and the HMAC. It
// counts what fails and returns what passes, for the loop. Datagrams on
// interfaces without vhids are not carpd's business and are ignored, as
// VRRP packets are.
func (d *Daemon) admitPacket(fam carp.Family, p Packet) (advertIn, bool) {
	ai := d.admit.Load().byIdx[p.IfIndex]
	if ai == nil {
		return advertIn{}, false
	}
	a, err := carp.ParseAdvert(p.Payload)
	if errors.Is(err, carp.ErrNotCARP) {
		return advertIn{}, false // VRRP's, not counted
	}
	ai.counters.received[fam].Add(1)
	if err != nil {
		if r, counted := carp.DropReasonOf(err); counted {
			d.dropped(r, ai.counters, ai.name, p.Src, p.TTL, 0)
		}
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
