package electorate

import (
	"context"
	"log/slog"
	"net/netip"
	"slices"
	"sync/atomic"
	"time"

	"github.com/carpd/carpd/internal/api"
	"github.com/carpd/carpd/internal/carp"
)

// This file is the counting of the adverts dropped, by protocol and
// reason: the host's totals and each interface's (Counters), with a limit
// on their log lines.

// Counters are one interface's drop and receive counters, written by the
// socket readers and the loop.
type Counters struct {
	drops    [carp.NumDropReasons]atomic.Uint64
	received [2]atomic.Uint64 // datagrams, by family
	dropLogs [carp.NumDropReasons]dropLog
	// VRRP's, of the datagrams that went to VRRP (version 3 on an
	// interface with VRRP instances).
	vrrpDrops    [numVRRPDrops]atomic.Uint64
	vrrpReceived [2]atomic.Uint64
	vrrpDropLogs [numVRRPDrops]dropLog
}

// Drops counts and logs a host's dropped adverts: the totals by reason
// here, each interface's in its Counters. Its methods are safe for
// concurrent use (the socket readers and the loop).
type Drops struct {
	// CARP and VRRP are the totals, by reason.
	CARP [carp.NumDropReasons]atomic.Uint64
	VRRP [numVRRPDrops]atomic.Uint64

	log   *slog.Logger
	clock interface{ Now() time.Time }
	epoch time.Time
}

// NewDrops returns the drop counters of a host that logs to log and reads
// the time from clock.
func NewDrops(log *slog.Logger, clock interface{ Now() time.Time }) *Drops {
	return &Drops{log: log, clock: clock, epoch: clock.Now()}
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

// DropSet is one protocol's drop counters, by reason (an index of names):
// the host's (total) and each interface's, with their log limits. none is
// the reason of an advert for a vhid not configured here.
type DropSet struct {
	proto string
	names []string
	none  int
	total func(*Drops) []atomic.Uint64
	iface func(*Counters) ([]atomic.Uint64, []dropLog)
}

// Index is the reason of name, a machine's Drop.
func (s *DropSet) Index(name string) int {
	if i := slices.Index(s.names, name); i >= 0 {
		return i
	}
	return len(s.names) - 1
}

// None is the reason of an advert for a vhid not configured here.
func (s *DropSet) None() int { return s.none }

// DropsOf returns the drop counters of protocol proto (an Electorate's
// Proto), nil for one that receives nothing of its own.
func DropsOf(proto string) *DropSet { return dropSets[proto] }

var dropSets = map[string]*DropSet{"carp": &carpDrops, "vrrp": &vrrpDrops}

var carpDrops = DropSet{
	proto: "carp", none: int(carp.DropVHID),
	names: func() []string {
		n := make([]string, carp.NumDropReasons)
		for r := carp.DropReason(1); r < carp.NumDropReasons; r++ {
			n[r] = r.String()
		}
		return n
	}(),
	total: func(d *Drops) []atomic.Uint64 { return d.CARP[:] },
	iface: func(ic *Counters) ([]atomic.Uint64, []dropLog) { return ic.drops[:], ic.dropLogs[:] },
}

// Drop counts an advert that failed a check, of reason r of set. The
// first drop of a reason on an interface is logged, then at most one line
// every dropLogInterval with the number left unlogged in between
// (suppressed); every drop is logged at debug level. Drops of adverts of
// other vhids (set.none) are normal on a segment that several groups
// share, and logged at debug level only.
func (d *Drops) Drop(set *DropSet, r int, ic *Counters, ifname string, src netip.Addr, ttl int, vhid uint8) {
	if set == nil {
		return // an electorate that receives nothing of its own
	}
	set.total(d)[r].Add(1)
	drops, logs := set.iface(ic)
	drops[r].Add(1)
	d.logDrop(&logs[r], r == set.none, set.proto, set.names[r], ifname, src, ttl, vhid)
}

// logDrop logs a drop of reason on ifname as Drop says (quiet: at debug
// level only), with l the reason's limit on that interface.
func (d *Drops) logDrop(l *dropLog, quiet bool, proto, reason, ifname string, src netip.Addr, ttl int, vhid uint8) {
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

// FillStats adds the counters of interface name to st (VRRP's when vrrp,
// some VRRP instance being on it): the host's CARP drops are the sum of
// its interfaces'.
func (ic *Counters) FillStats(st *api.Stats, name string, vrrp bool) {
	st.ReceivedInet += ic.received[carp.IPv4].Load()
	st.ReceivedInet6 += ic.received[carp.IPv6].Load()
	byReason := map[string]uint64{}
	for r := carp.DropReason(1); r < carp.NumDropReasons; r++ {
		byReason[r.String()] = ic.drops[r].Load()
	}
	st.DropsByInterface = append(st.DropsByInterface, api.InterfaceDrops{Interface: name, Drops: byReason})
	st.DroppedWrongTTL += ic.drops[carp.DropTTL].Load()
	st.DroppedShortHeader += ic.drops[carp.DropHeader].Load()
	st.DroppedBadChecksum += ic.drops[carp.DropChecksum].Load()
	st.DroppedBadVersion += ic.drops[carp.DropVersion].Load()
	st.DroppedShortPacket += ic.drops[carp.DropShort].Load()
	st.DroppedBadAuth += ic.drops[carp.DropAuth].Load()
	st.DroppedBadVHID += ic.drops[carp.DropVHID].Load()
	st.DroppedLoop += ic.drops[carp.DropLoop].Load()
	st.DroppedReplay += ic.drops[carp.DropReplay].Load()
	st.DroppedBadPeer += ic.drops[carp.DropPeer].Load()
	if !vrrp {
		return
	}
	st.VRRP.ReceivedInet += ic.vrrpReceived[carp.IPv4].Load()
	st.VRRP.ReceivedInet6 += ic.vrrpReceived[carp.IPv6].Load()
	byReason = map[string]uint64{}
	for r := range vrrpDrop(numVRRPDrops) {
		byReason[r.String()] = ic.vrrpDrops[r].Load()
	}
	st.DropsByInterface = append(st.DropsByInterface, api.InterfaceDrops{Interface: name, Proto: "vrrp", Drops: byReason})
}

// FillStats sets the host's VRRP drop totals of st.
func (d *Drops) FillStats(st *api.Stats) {
	st.VRRP.Drops = map[string]uint64{}
	for r := range vrrpDrop(numVRRPDrops) {
		st.VRRP.Drops[r.String()] = d.VRRP[r].Load()
	}
}
