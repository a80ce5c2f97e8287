package config

// This file reads the [bgp] table of the TOML file, the BGP speaker of the
// bgp mover, and the vhids' mover key.

import (
	"math"
	"net/netip"
	"path/filepath"
	"time"

	"github.com/pelletier/go-toml/v2/unstable"
)

// Movers: how a vhid's addresses move to the holder (VHID.Mover).
const (
	// MoverL2 puts the addresses on the interface and announces them
	// with gratuitous ARP and unsolicited neighbour advertisements.
	MoverL2 = "l2"
	// MoverBGP puts the addresses on the interface and announces each
	// as a host route to the [bgp] peers.
	MoverBGP = "bgp"
)

// BGP defaults and limits. The hold time is at least 3 s (RFC 4271) and,
// for a vhid elected on etcd, at most the lease TTL (checkBGPHold).
const (
	DefaultBGPHold = 9 * time.Second
	DefaultBGPPort = 179
	MinBGPHold     = 3 * time.Second
	MaxBGPHold     = 65535 * time.Second
)

// BGP is the [bgp] table: the speaker of the bgp mover.
type BGP struct {
	LocalAS  uint32
	RouterID netip.Addr
	// Hold is the hold time offered to the peers; Keepalive the interval
	// of keepalives (Hold/3, in whole seconds, unless set).
	Hold, Keepalive time.Duration
	Peers           []BGPPeer
	// Origin is "file:line" of the [bgp] table; HoldOrigin that of the
	// hold key (Origin when hold is not set).
	Origin, HoldOrigin string
}

// BGPPeer is one BGP neighbour.
type BGPPeer struct {
	Address netip.Addr
	AS      uint32
	Port    uint16
	// Password is the TCP MD5 key read from password-file ("" for none).
	Password string
	Origin   string
}

// SameBGP says whether two [bgp] tables configure the same speaker (their
// places in the file aside); no table is the same as no table only.
func SameBGP(a, b *BGP) bool {
	if a == nil || b == nil {
		return a == b
	}
	if a.LocalAS != b.LocalAS || a.RouterID != b.RouterID || a.Hold != b.Hold || a.Keepalive != b.Keepalive || len(a.Peers) != len(b.Peers) {
		return false
	}
	for i := range a.Peers {
		p, q := a.Peers[i], b.Peers[i]
		p.Origin, q.Origin = "", ""
		if p != q {
			return false
		}
	}
	return true
}

// tomlBGP is the [bgp] table being read.
type tomlBGP struct {
	line int
	b    BGP
	keys map[string]place
	// holdLine is the line of the hold key (0: not set); holdPos where
	// hold (or the table, when hold is not set) is written.
	holdLine int
	holdPos  pos
}

// newBGP starts the [bgp] table at line (TOML itself refuses a second
// one).
func (t *tomlParser) newBGP(line int) {
	t.bgp = &tomlBGP{
		line: line, keys: map[string]place{}, b: BGP{Hold: DefaultBGPHold},
		holdPos: pos{line: line, word: "[bgp]"},
	}
	t.section = inBGP
}

// bgpSetting handles a key of the [bgp] table.
func (t *tomlParser) bgpSetting(kv keyValue) {
	e := t.bgp
	e.keys[kv.key] = place{kv.line, kv.word}
	b := &e.b
	switch kv.key {
	case "local-as":
		if as, ok := t.asNumber(kv); ok {
			b.LocalAS = as
		}
	case "router-id":
		s, ok := t.str(kv, `an IPv4 address like "192.0.2.11"`)
		if !ok {
			return
		}
		a, err := netip.ParseAddr(s)
		if err != nil || !a.Is4() {
			t.errorf(kv.line, kv.word, `router-id must be an IPv4 address like "192.0.2.11"`)
			return
		}
		b.RouterID = a
	case "hold", "keepalive":
		s, ok := t.str(kv, `a duration in whole seconds like "9s"`)
		if !ok {
			return
		}
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 || d%time.Second != 0 {
			t.errorf(kv.line, kv.word, `%s must be a duration in whole seconds like "9s"`, kv.key)
			return
		}
		if kv.key == "keepalive" {
			b.Keepalive = d
			return
		}
		if d < MinBGPHold || d > MaxBGPHold {
			t.errorf(kv.line, kv.word, "hold must be 3s..65535s (RFC 4271)")
			return
		}
		b.Hold, e.holdLine, e.holdPos = d, kv.line, kv.pos()
	case "peers":
		t.bgpPeers(kv)
	default:
		t.errorf(kv.line, kv.key, "unknown key in [bgp] (it knows local-as, router-id, hold, keepalive, peers)")
	}
}

// asNumber returns kv's value as a 4-octet AS number, 1..4294967295.
func (t *tomlParser) asNumber(kv keyValue) (uint32, bool) {
	r := [2]int{1, math.MaxUint32}
	x, ok := t.integer(kv, r)
	if !ok {
		return 0, false
	}
	if x < r[0] || x > r[1] {
		t.errorf(kv.line, kv.word, "%s must be %d..%d", kv.key, r[0], r[1])
		return 0, false
	}
	return uint32(x), true
}

// bgpPeers handles `peers = [{address = "...", as = N}, ...]`.
func (t *tomlParser) bgpPeers(kv keyValue) {
	const want = `peers must be a list of tables like [{ address = "192.0.2.1", as = 65000 }]`
	if kv.val.Kind != unstable.Array {
		t.errorf(kv.line, kv.word, "%s", want)
		return
	}
	if kv.val.Child() == nil {
		t.errorf(kv.line, kv.word, "peers must list at least one peer")
		return
	}
	it := kv.val.Children()
	for it.Next() {
		n := it.Node()
		if n.Kind != unstable.InlineTable {
			t.errorf(kv.line, kv.key, "%s", want)
			continue
		}
		t.bgpPeer(n, kv.line)
	}
}

// bgpPeer handles one inline table of peers; line is that of the peers
// key, for an empty table.
func (t *tomlParser) bgpPeer(n *unstable.Node, line int) {
	if it := n.Children(); it.Next() {
		line = t.keyValue(it.Node()).line
	}
	p := BGPPeer{Port: DefaultBGPPort, Origin: t.at(line)}
	keys := map[string]bool{}
	ok := true
	kvs := n.Children()
	for kvs.Next() {
		kv := t.keyValue(kvs.Node())
		keys[kv.key] = true
		switch kv.key {
		case "address":
			s, good := t.str(kv, `an address like "192.0.2.1"`)
			a, err := netip.ParseAddr(s)
			if good && (err != nil || a.Zone() != "") {
				t.errorf(kv.line, kv.word, `address must be an IP address like "192.0.2.1" or "2001:db8::1"`)
				good = false
			}
			ok = ok && good
			p.Address = a.Unmap()
		case "as":
			as, good := t.asNumber(kv)
			ok = ok && good
			p.AS = as
		case "port":
			x, good := t.integer(kv, [2]int{1, 65535})
			if good && (x < 1 || x > 65535) {
				t.errorf(kv.line, kv.word, "port must be 1..65535")
				good = false
			}
			ok = ok && good
			p.Port = uint16(x)
		case "password-file":
			s, good := t.str(kv, "a file name")
			if good && s == "" {
				t.errorf(kv.line, kv.word, "password-file must be a file name")
				good = false
			}
			if good {
				var pass string
				pass, good = t.secretFile(kv, s)
				p.Password = pass
			}
			ok = ok && good
		default:
			t.errorf(kv.line, kv.key, "unknown key in a bgp peer (it knows address, as, port, password-file)")
			ok = false
		}
	}
	for _, k := range []string{"address", "as"} {
		if !keys[k] {
			t.errorf(line, "peers", "a bgp peer needs %s", k)
			ok = false
		}
	}
	if !ok {
		return
	}
	for _, q := range t.bgp.b.Peers {
		if q.Address == p.Address {
			t.errorf(line, p.Address.String(), "bgp peer %v is already at %s", p.Address, q.Origin)
			return
		}
	}
	t.bgp.b.Peers = append(t.bgp.b.Peers, p)
}

// secretFile reads a password file as password-file does, and lists it
// among the files `carpd --check` checks.
func (t *tomlParser) secretFile(kv keyValue, s string) (string, bool) {
	path := s
	if !filepath.IsAbs(path) {
		path = filepath.Join(t.baseDir, path)
	}
	pass, err := readPasswordFile(path)
	if err != nil {
		t.errorf(kv.line, kv.word, "%v", err)
		return "", false
	}
	t.cfg.Files = append(t.cfg.Files, FileRef{Path: path, Key: "bgp " + kv.key, Origin: t.at(kv.line)})
	return pass, true
}

// moverSetting handles a vhid's mover key.
func (t *tomlParser) moverSetting(e *tomlVHID, kv keyValue) {
	s, ok := t.str(kv, `"l2" or "bgp"`)
	if !ok {
		e.spec.bad = true
		return
	}
	switch s {
	case MoverL2, MoverBGP:
		e.mover = s
	default:
		t.errorf(kv.line, kv.word, `mover must be "l2" or "bgp"`)
		e.spec.bad = true
	}
}

// finishBGP checks the [bgp] table as a whole and against the vhids that
// use it, and sets each vhid's mover.
func (t *tomlParser) finishBGP() {
	e := t.bgp
	if e != nil {
		t.checkBGPTable(e)
	}
	for _, v := range t.tables {
		if v.spec.bad {
			continue
		}
		mv := t.vhidOf(v)
		if mv == nil {
			continue
		}
		mv.Mover = v.mover
		if mv.Mover != MoverBGP {
			continue
		}
		p := v.keys["mover"]
		switch {
		case e == nil:
			t.errorf(p.line, p.word, `mover = "bgp" needs a [bgp] table`)
		case mv.VirtualMAC:
			t.errorf(p.line, p.word, `mover = "bgp" does not go with virtual-mac: the peers route the addresses to this host, no MAC moves`)
		default:
			t.checkBGPFamilies(e, mv, p)
		}
	}
	if e != nil {
		checkBGPHold(t.errs, &e.b, e.holdPos, t.bgpFenceTTL())
		b := e.b
		t.cfg.BGP = &b
	}
}

// bgpFenceTTL is the etcd lease TTL that bounds the hold time: the [etcd]
// table's ttl when a vhid with mover "bgp" is elected on etcd, 0 otherwise.
// finishEtcd runs first, so the [etcd] table's defaults are set.
func (t *tomlParser) bgpFenceTTL() time.Duration {
	if t.cfg.Etcd == nil {
		return 0
	}
	for i := range t.cfg.VHIDs {
		if v := &t.cfg.VHIDs[i]; v.IsEtcd() && v.MoverOf() == MoverBGP {
			return t.cfg.Etcd.TTL
		}
	}
	return 0
}

// vhidOf returns the vhid that check made of table v, or nil.
func (t *tomlParser) vhidOf(v *tomlVHID) *VHID {
	origin := t.at(v.spec.at)
	for i := range t.cfg.VHIDs {
		if t.cfg.VHIDs[i].Origin == origin {
			return &t.cfg.VHIDs[i]
		}
	}
	return nil
}

// checkBGPTable checks what the [bgp] table's keys say together.
func (t *tomlParser) checkBGPTable(e *tomlBGP) {
	b := &e.b
	b.Origin, b.HoldOrigin = t.at(e.line), t.at(e.line)
	if e.holdLine != 0 {
		b.HoldOrigin = t.at(e.holdLine)
	}
	for _, k := range []string{"local-as", "router-id", "peers"} {
		if _, ok := e.keys[k]; !ok {
			t.errorf(e.line, "[bgp]", "%s is required", k)
		}
	}
	if b.Keepalive == 0 {
		b.Keepalive = (b.Hold / 3).Truncate(time.Second)
	} else if b.Keepalive > b.Hold/3 {
		p := e.keys["keepalive"]
		t.errorf(p.line, p.word, "keepalive must be at most a third of hold (%v)", b.Hold)
	}
}

// checkBGPFamilies checks that each address of a bgp vhid has a peer of
// its family: GoBGP announces a family only to the peers of that family,
// with their session's address as next hop.
func (t *tomlParser) checkBGPFamilies(e *tomlBGP, v *VHID, p place) {
	var has4, has6 bool
	for _, q := range e.b.Peers {
		has4 = has4 || q.Address.Is4()
		has6 = has6 || q.Address.Is6()
	}
	for _, a := range v.Addresses {
		if a.Addr().Is4() && !has4 || a.Addr().Is6() && !has6 {
			t.errorf(p.line, p.word, "address %v has no bgp peer of its family to be announced to", a)
			return
		}
	}
}

// checkBGPHold reports a hold time longer than ttl, the etcd lease TTL of
// the vhids elected on etcd (cloud-mode R4): a peer keeps the route of a
// silent holder for the hold time, which must end before a successor can
// win the lease. ttl 0 means that no vhid with mover "bgp" is elected on
// etcd, and nothing is checked.
func checkBGPHold(l *errList, b *BGP, holdPos pos, ttl time.Duration) {
	if b == nil || ttl <= 0 || b.Hold <= ttl {
		return
	}
	l.errorAt(holdPos, "hold (%v) must not exceed the etcd lease ttl (%v): a peer would keep a silent holder's route after its lease expired", b.Hold, ttl)
}
