package config

// This file holds what the two front ends (rcconf.go, toml.go) share: the
// errors they report, the vhids they produce (every value with the place
// it was written) and the one check of those vhids.

import (
	"cmp"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/carpd/carpd/internal/carp"
)

// Error is a configuration error at one place of a file.
type Error struct {
	File string // the name given to the parser
	Line int    // 1-based line number; 0 for the whole file
	Word string // the offending word(s) as written; "" when none applies
	Msg  string
}

// Error formats e as `FILE:LINE: "WORD": MSG`, or `FILE:LINE: MSG` when e
// names no word, or `FILE: MSG` when it is about the whole file (Line 0).
func (e *Error) Error() string {
	if e.Line == 0 {
		return fmt.Sprintf("%s: %s", e.File, e.Msg)
	}
	if e.Word == "" {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s:%d: %q: %s", e.File, e.Line, e.Word, e.Msg)
}

// pos is where a value was written: its line, a column that orders the
// errors of one line, and the word(s) an error quotes.
type pos struct {
	line, col int
	word      string
}

// errList collects the errors of one file.
type errList struct {
	file string
	errs []posError
}

type posError struct {
	err *Error
	col int
}

// errorAt records an error at p.
func (l *errList) errorAt(p pos, format string, args ...any) {
	l.errs = append(l.errs, posError{&Error{File: l.file, Line: p.line, Word: p.word, Msg: fmt.Sprintf(format, args...)}, p.col})
}

// errorf records an error at line n about word.
func (l *errList) errorf(n int, word, format string, args ...any) {
	l.errorAt(pos{line: n, word: word}, format, args...)
}

// at formats a place of the file as "file:line".
func (l *errList) at(n int) string { return fmt.Sprintf("%s:%d", l.file, n) }

// err returns every error, in the order of the file, joined; nil if none.
func (l *errList) err() error {
	if len(l.errs) == 0 {
		return nil
	}
	slices.SortStableFunc(l.errs, func(a, b posError) int {
		return cmp.Or(cmp.Compare(a.err.Line, b.err.Line), cmp.Compare(a.col, b.col))
	})
	var errs []error
	for i, e := range l.errs {
		if i > 0 && *e.err == *l.errs[i-1].err {
			continue // the same mistake found twice (in two entries of a line)
		}
		errs = append(errs, e.err)
	}
	return errors.Join(errs...)
}

// number is a number as written. A number too large for an int is kept as
// the largest int, so that the range check reports it.
type number struct {
	val int
	pos pos
	set bool
}

// addrSpec is one address of a vhid as written.
type addrSpec struct {
	prefix netip.Prefix
	pos    pos
}

// vhidSpec is one vhid as a front end read it: each value with the place it
// was written. The front ends check the syntax (a number is a number, an
// address an address); check checks the values.
type vhidSpec struct {
	at       int // the line of the [[vhid]] table, or of the rc.conf line that first named it
	iface    string
	ifacePos pos
	// vhid, advbase and advskew as written; advbase and advskew take
	// carp(4)'s defaults when not set.
	vhid, advbase, advskew number
	password               string
	state                  string // "", "master" or "backup"
	// peer and peer6 are the unicast peers (the zero Addr: multicast), and
	// where they were written.
	peer, peer6       netip.Addr
	peerPos, peer6Pos pos
	preempt           *bool
	virtualMAC        bool
	replayProtection  bool
	// version is carpver (2 when not set); vrrpPrio and vrrpInterval are
	// vrrpprio and vrrpinterval; vrrpTieBreak is the TOML file's
	// vrrp-tiebreak (nil: not given). passwordPos, replayPos and
	// tieBreakPos are where password (pass, password-file),
	// replay-protection and vrrp-tiebreak were written, for the checks of
	// the keywords of the other protocol (checkProtocol).
	version, vrrpPrio, vrrpInterval     number
	vrrpTieBreak                        *bool
	passwordPos, replayPos, tieBreakPos pos
	hooks                               Hooks
	name                                string
	// electorate and mover are the TOML keys ("" when not given: carp
	// and l2); virtualMACPos and statePos where virtual-mac and state
	// were written (checkElectorate).
	electorate              string
	electoratePos           pos
	virtualMACPos, statePos pos
	addrs                   []addrSpec
	// tomlNames says that the vhid comes from the TOML file, whose
	// messages name its keys (vrrp-priority) rather than ifconfig's
	// (vrrpprio).
	tomlNames bool
	// bad says that the front end reported an error in this vhid: it is
	// neither checked against the others nor part of the result.
	bad bool
}

// The limits of the vhid settings: carp(4)'s, from the protocol core, and
// VRRPv3's (RFC 5798: priority 1..255, 0 being the resigning master's;
// the interval is a 12-bit field of centiseconds).
var (
	vhidRange         = [2]int{carp.MinVHID, carp.MaxVHID}
	advbaseRange      = [2]int{carp.MinAdvBase, carp.MaxAdvBase}
	advskewRange      = [2]int{0, carp.MaxAdvSkew}
	carpverRange      = [2]int{VersionCARP, VersionVRRP}
	vrrpPrioRange     = [2]int{1, 255}
	vrrpIntervalRange = [2]int{1, 4095}
)

// limits returns the range of a numeric vhid setting, by its rc.conf or
// TOML name.
func limits(key string) [2]int {
	switch key {
	case "vhid":
		return vhidRange
	case "advbase":
		return advbaseRange
	case "carpver":
		return carpverRange
	case "vrrpprio", "vrrp-priority":
		return vrrpPrioRange
	case "vrrpinterval", "vrrp-interval":
		return vrrpIntervalRange
	}
	return advskewRange
}

// keyOfWord returns the key of a setting as written: the first word of
// "vrrpprio 150" or "vrrp-priority = 150".
func keyOfWord(word string) string {
	f := strings.FieldsFunc(word, func(r rune) bool { return r == ' ' || r == '\t' || r == '=' })
	if len(f) == 0 {
		return ""
	}
	return f[0]
}

// checkValues checks the values of one vhid that need no other: the
// interface name and the ranges of vhid, advbase and advskew. rc.conf
// checks each entry so (an entry with an error is left out), the TOML file
// each table. It reports whether the vhid can be told apart from the others
// (its interface and vhid are good).
func checkValues(l *errList, s *vhidSpec) (identified bool) {
	identified = checkIface(l, s)
	for _, n := range []struct {
		key string
		num number
	}{
		{"vhid", s.vhid}, {"advbase", s.advbase}, {"advskew", s.advskew},
		{"carpver", s.version}, {keyOfWord(s.vrrpPrio.pos.word), s.vrrpPrio},
		{keyOfWord(s.vrrpInterval.pos.word), s.vrrpInterval},
	} {
		if r := limits(n.key); n.num.set && (n.num.val < r[0] || n.num.val > r[1]) {
			if n.key == "carpver" {
				l.errorAt(n.num.pos, "carpver must be 2 (CARP) or 3 (VRRPv3)")
				continue
			}
			l.errorAt(n.num.pos, "%s must be %d..%d", n.key, r[0], r[1])
			identified = identified && n.key != "vhid"
		}
	}
	return identified
}

// checkProtocol checks that vhid s uses only the keywords of its protocol:
// no pass, advbase, advskew, unicast peer or replay protection on a VRRP
// vhid (VRRPv3 has no authentication, and its timing is vrrpprio and
// vrrpinterval), and no vrrpprio, vrrpinterval or vrrp-tiebreak on a CARP
// vhid. Unicast VRRP is refused: RFC 5798 has none (keepalived's
// unicast_peer is an extension). The rc.conf parser calls it once the
// entries of a vhid are merged, since one entry may give carpver 3 and
// another vrrpprio; the TOML parser per table.
func checkProtocol(l *errList, s *vhidSpec) {
	name := fmt.Sprintf("vhid %d on %s", s.vhid.val, s.iface)
	prio, interval, carpver := "vrrpprio", "vrrpinterval", "carpver 3"
	if s.tomlNames {
		prio, interval, carpver = "vrrp-priority", "vrrp-interval", "carpver = 3"
	}
	if s.version.val == VersionVRRP {
		why := fmt.Sprintf("%s is VRRPv3 (%q at %s)", name, s.version.pos.word, l.at(s.version.pos.line))
		for _, p := range []struct {
			set  bool
			pos  pos
			hint string
		}{
			{s.password != "", s.passwordPos, "VRRPv3 has no authentication"},
			{s.advbase.set, s.advbase.pos, "VRRP's interval is " + interval + ", in centiseconds"},
			{s.advskew.set, s.advskew.pos, "VRRP's priority is " + prio + ", the higher wins"},
			{s.peer.IsValid(), s.peerPos, "VRRPv3 is multicast only (RFC 5798 has no unicast)"},
			{s.peer6.IsValid(), s.peer6Pos, "VRRPv3 is multicast only (RFC 5798 has no unicast)"},
			{s.replayProtection, s.replayPos, "VRRPv3 adverts carry no counter"},
		} {
			if p.set {
				l.errorAt(p.pos, "a CARP keyword, but %s: %s", why, p.hint)
			}
		}
		return
	}
	for _, p := range []pos{s.vrrpPrio.pos, s.vrrpInterval.pos, s.tieBreakPos} {
		if p.line != 0 {
			l.errorAt(p, "a VRRP keyword, but %s is CARP: add %s for VRRPv3", name, carpver)
		}
	}
}

// check checks the vhids against each other (a vhid defined twice on an
// interface, an address in two places) and, when strictPeers is set, each
// unicast peer against the vhid's address families, and returns the
// vhids as VHIDs, in order; those marked bad are left out. Errors go to l.
// rc.conf is not strict about peers: FreeBSD's ifconfig takes a peer6 on a
// vhid without IPv6 addresses, which then goes unused.
func check(l *errList, specs []*vhidSpec, strictPeers bool) []VHID {
	type vhidKey struct {
		iface string
		vhid  int
	}
	type addrUse struct {
		key  vhidKey
		line int
	}
	type definition struct {
		line int
		vrrp bool
	}
	defined := make(map[vhidKey]definition)
	used := make(map[netip.Addr]addrUse)
	var out []VHID
	for _, s := range specs {
		if strictPeers {
			checkPeerFamilies(l, s)
		}
		if s.bad {
			continue
		}
		checkProtocol(l, s)
		checkElectorate(l, s)
		key := vhidKey{s.iface, s.vhid.val}
		isVRRP := s.version.val == VersionVRRP
		if first, dup := defined[key]; dup {
			l.errorAt(s.vhid.pos, "%s", twiceMessage(key.vhid, key.iface, l.at(first.line), first.vrrp != isVRRP))
			continue
		}
		defined[key] = definition{s.at, isVRRP}
		v := VHID{
			Interface: s.iface, VHID: uint8(s.vhid.val),
			AdvBase: DefaultAdvBase, AdvSkew: DefaultAdvSkew,
			Password: s.password, State: s.state,
			Peer: s.peer, Peer6: s.peer6, Preempt: s.preempt, VirtualMAC: s.virtualMAC,
			ReplayProtection: s.replayProtection, Hooks: s.hooks, Name: s.name,
			Origin: l.at(s.at), Electorate: s.electorate,
		}
		if s.advbase.set {
			v.AdvBase = uint8(s.advbase.val)
		}
		if s.advskew.set {
			v.AdvSkew = uint8(s.advskew.val)
		}
		v.Version = VersionCARP
		if s.version.val == VersionVRRP {
			v.Version, v.AdvBase, v.AdvSkew = VersionVRRP, 0, 0
			v.VRRPPriority, v.VRRPInterval, v.VRRPTieBreak = DefaultVRRPPriority, DefaultVRRPInterval, true
			if s.vrrpPrio.set {
				v.VRRPPriority = uint8(s.vrrpPrio.val)
			}
			if s.vrrpInterval.set {
				v.VRRPInterval = uint16(s.vrrpInterval.val)
			}
			if s.vrrpTieBreak != nil {
				v.VRRPTieBreak = *s.vrrpTieBreak
			}
		}
		for _, a := range s.addrs {
			if use, dup := used[a.prefix.Addr()]; dup {
				if use.key == key {
					l.errorAt(a.pos, "duplicate address: already in vhid %d on %s at %s", key.vhid, key.iface, l.at(use.line))
				} else {
					l.errorAt(a.pos, "address already used by vhid %d on %s at %s", use.key.vhid, use.key.iface, l.at(use.line))
				}
				continue
			}
			used[a.prefix.Addr()] = addrUse{key: key, line: a.pos.line}
			v.Addresses = append(v.Addresses, a.prefix)
		}
		out = append(out, v)
	}
	return out
}

// maxIfaceName is the longest interface name Linux accepts (IFNAMSIZ - 1).
const maxIfaceName = 15

// checkIface checks an interface name as Linux's dev_valid_name does,
// and reports whether it is good.
func checkIface(l *errList, s *vhidSpec) bool {
	name, p := s.iface, s.ifacePos
	switch {
	case p.line == 0:
		// Not given: the front end reported it.
		return false
	case name == "" || name == "." || name == "..":
		l.errorAt(p, "interface must be an interface name")
	case len(name) > maxIfaceName:
		l.errorAt(p, "interface name %q is longer than %d characters", name, maxIfaceName)
	case strings.ContainsAny(name, "/: \t\n\r\v\f"):
		l.errorAt(p, "interface name must not contain '/', ':' or blanks")
	default:
		return true
	}
	return false
}

// checkPeerFamilies checks that a vhid with a unicast peer has an address
// of the peer's family: carpd sends the adverts of a family only for a
// vhid that holds addresses of it, so such a peer would never hear from
// this host.
func checkPeerFamilies(l *errList, s *vhidSpec) {
	if len(s.addrs) == 0 {
		return
	}
	var has4, has6 bool
	for _, a := range s.addrs {
		if a.prefix.Addr().Is4() {
			has4 = true
		} else {
			has6 = true
		}
	}
	if s.peer.IsValid() && !has4 {
		l.errorAt(s.peerPos, "peer is an IPv4 peer, but the vhid has no IPv4 address")
	}
	if s.peer6.IsValid() && !has6 {
		l.errorAt(s.peer6Pos, "peer6 is an IPv6 peer, but the vhid has no IPv6 address")
	}
}

// parsePeer parses the address of a peer (IPv4) or peer6 (IPv6) setting.
// The CARP multicast groups 224.0.0.18 and ff02::12 mean multicast and give
// the zero Addr, as FreeBSD's mcast and mcast6 do. The message is "" when v
// is good.
func parsePeer(key, v string) (netip.Addr, string) {
	a, err := netip.ParseAddr(v)
	switch {
	case key == "peer" && (err != nil || !a.Is4()):
		return netip.Addr{}, "peer must be an IPv4 address (use peer6 for IPv6)"
	case key == "peer6" && (err != nil || !a.Is6() || a.Is4In6()):
		return netip.Addr{}, "peer6 must be an IPv6 address (use peer for IPv4)"
	case a == carp.GroupIPv4 || a == carp.GroupIPv6:
		return netip.Addr{}, ""
	case a.IsUnspecified() || a.IsMulticast():
		return netip.Addr{}, key + " must be a unicast address or the CARP group"
	}
	return a, ""
}

// parseState parses a state setting: "master" or "backup", in any case.
func parseState(v string) (string, bool) {
	s := strings.ToLower(v)
	return s, s == "master" || s == "backup"
}

// parseAddress parses ADDRESS or ADDRESS/LEN. An address without a length
// gets /32 or /128; explicit reports whether a length was written.
// Addresses with a zone are rejected.
func parseAddress(w string) (prefix netip.Prefix, explicit, ok bool) {
	if strings.Contains(w, "/") {
		prefix, err := netip.ParsePrefix(w)
		return prefix, true, err == nil
	}
	a, err := netip.ParseAddr(w)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, false, false
	}
	return netip.PrefixFrom(a, a.BitLen()), false, true
}
