package electorate

import (
	"net/netip"
	"sync/atomic"

	"github.com/carpd/carpd/internal/carp"
	"github.com/carpd/carpd/internal/elect"
	"github.com/carpd/carpd/internal/vrrp"
)

// This file is the socket readers' side of the electorates: the checks a
// received protocol-112 datagram passes before it is queued for the loop.
// CARP and VRRPv3 share the sockets: a datagram goes to one protocol or
// the other by its version nibble.

// Packet is a datagram received on a protocol-112 socket.
type Packet struct {
	// IfIndex is the index of the interface it arrived on.
	IfIndex int
	// Src and Dst are the IP source and destination addresses, without
	// zone (VRRP's checksum covers both).
	Src, Dst netip.Addr
	// TTL is the IPv4 TTL or the IPv6 hop limit it arrived with.
	TTL int
	// Payload is the datagram after the IP header. It is valid until the
	// next ReadBatch of the same Conn.
	Payload []byte
}

// Admitted is an advert that passed the readers' checks: Event, for vhid
// or VRID Num of Slot on interface IfIndex (0 for CARP, 1 + the family
// for VRRP); Src, TTL and Drops are for the counters if the loop drops
// it.
type Admitted struct {
	IfIndex   int
	Slot, Num uint8
	Event     elect.Event
	Src       netip.Addr
	TTL       int
	Drops     *DropSet
}

// Admission is what the socket readers check a received datagram against
// before it is queued: the stateless checks of the vhids of each interface
// (carp.Filter). It is immutable once built; the loop builds a new one
// when its interfaces change.
type Admission struct {
	drops *Drops
	byIdx map[int]*AdmitIface
}

// AdmitIface is an interface's part of an Admission.
type AdmitIface struct {
	name     string
	counters *Counters
	filters  [256]*carp.Filter // by vhid
	// vrids are the VRRP instances, by family and VRID; anyVRRP says
	// there is one: without, a VRRP advert is an unknown version (CARP's
	// badver), as in FreeBSD before 15.
	vrids   [2][256]bool
	anyVRRP bool
}

// NewAdmission returns an empty admission that counts its drops in drops.
func NewAdmission(drops *Drops) *Admission {
	return &Admission{drops: drops, byIdx: map[int]*AdmitIface{}}
}

// Interface adds interface index, named name, with its counters c.
func (t *Admission) Interface(index int, name string, c *Counters) *AdmitIface {
	ai := &AdmitIface{name: name, counters: c}
	t.byIdx[index] = ai
	return ai
}

// Add admits the adverts of el, an electorate of vhid num: a CARP vhid's
// through its filter, a VRRP instance's by its VRID and family.
func (ai *AdmitIface) Add(num uint8, el elect.Electorate) {
	if f, ok := el.(interface{ Filter() *carp.Filter }); ok {
		ai.filters[num] = f.Filter()
		return
	}
	switch el.Family() {
	case "inet":
		ai.vrids[carp.IPv4][num] = true
	case "inet6":
		ai.vrids[carp.IPv6][num] = true
	default:
		return
	}
	ai.anyVRRP = true
}

// Admit runs, on a socket reader's goroutine, every check of a datagram
// of family fam that needs no state: the decoding (length, version, type,
// checksum), the vhid, the family, the peer or TTL, and the HMAC. It
// counts what fails and returns what passes, for the loop. Datagrams on
// interfaces without vhids are not carpd's business and are ignored. A
// VRRPv3 datagram (version 3) on an interface with VRRP instances goes to
// admitVRRP, which decodes it into scratch (the reader's own).
func (t *Admission) Admit(fam carp.Family, p Packet, scratch *vrrp.Advert) (Admitted, bool) {
	ai := t.byIdx[p.IfIndex]
	if ai == nil {
		return Admitted{}, false
	}
	if ai.anyVRRP && len(p.Payload) > 0 && p.Payload[0]>>4 == vrrp.Version {
		return t.admitVRRP(fam, p, ai, scratch)
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
		t.drops.Drop(&carpDrops, int(r), ai.counters, ai.name, p.Src, p.TTL, 0)
		return Admitted{}, false
	}
	f := ai.filters[a.VHID]
	if f == nil {
		t.drops.Drop(&carpDrops, int(carp.DropVHID), ai.counters, ai.name, p.Src, p.TTL, a.VHID)
		return Admitted{}, false
	}
	r := carp.Received{Family: fam, Src: p.Src, TTL: p.TTL, Advert: a}
	if reason, ok := f.Check(r); !ok {
		t.drops.Drop(&carpDrops, int(reason), ai.counters, ai.name, p.Src, p.TTL, a.VHID)
		return Admitted{}, false
	}
	return Admitted{IfIndex: p.IfIndex, Num: a.VHID, Event: r, Src: p.Src, TTL: p.TTL, Drops: &carpDrops}, true
}

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

var vrrpDrops = DropSet{
	proto: "vrrp", names: vrrpDropNames[:], none: int(vrrpDropVRID),
	total: func(d *Drops) []atomic.Uint64 { return d.VRRP[:] },
	iface: func(ic *Counters) ([]atomic.Uint64, []dropLog) { return ic.vrrpDrops[:], ic.vrrpDropLogs[:] },
}

// admitVRRP runs the stateless checks of a VRRPv3 datagram on a reader's
// goroutine: the codec's (length, version, type, count, checksum with the
// pseudo-header, interval), the TTL and an instance of that VRID and
// family on the interface. The address list is not queued: the machine
// does not judge it (RFC 5798 section 7.1 leaves that optional; keepalived
// only logs a mismatch).
func (t *Admission) admitVRRP(fam carp.Family, p Packet, ai *AdmitIface, scratch *vrrp.Advert) (Admitted, bool) {
	ai.counters.vrrpReceived[fam].Add(1)
	if err := vrrp.ParseInto(p.Payload, p.Src, p.Dst, scratch); err != nil {
		name, _ := vrrp.DropReasonOf(err)
		t.drops.Drop(&vrrpDrops, vrrpDrops.Index(name), ai.counters, ai.name, p.Src, p.TTL, 0)
		return Admitted{}, false
	}
	if err := vrrp.CheckTTL(p.TTL); err != nil {
		t.drops.Drop(&vrrpDrops, int(vrrpDropTTL), ai.counters, ai.name, p.Src, p.TTL, scratch.VRID)
		return Admitted{}, false
	}
	if !ai.vrids[fam][scratch.VRID] {
		t.drops.Drop(&vrrpDrops, int(vrrpDropVRID), ai.counters, ai.name, p.Src, p.TTL, scratch.VRID)
		return Admitted{}, false
	}
	a := vrrp.Advert{VRID: scratch.VRID, Priority: scratch.Priority, Interval: scratch.Interval}
	return Admitted{IfIndex: p.IfIndex, Slot: uint8(fam) + 1, Num: a.VRID, Event: vrrp.Received{Src: p.Src, TTL: p.TTL, Advert: a},
		Src: p.Src, TTL: p.TTL, Drops: &vrrpDrops}, true
}
