package config

// This file reads the carp(4) part of a FreeBSD rc.conf.
//
// rc.conf is a sh script made of variable assignments. carpd reads only the
// variables that FreeBSD's network.subr turns into interface aliases,
// ifconfig_<iface>_alias<N> and ifconfig_<iface>_aliases, and of their
// values only the entries that carry carp keywords. Everything else (the
// host's own address in ifconfig_<iface>, plain aliases, other services) is
// the operating system's business and is skipped.
//
// The value of such a variable is split into words as sh does, then into
// entries: like network.subr, a new entry starts at each "inet", "inet6",
// "link" or "ether" word, so one variable may hold several entries. Each
// carp entry is the argument list of one ifconfig(8) call:
//
//	[inet|inet6] [alias] ADDRESS[/LEN] vhid N [advbase N] [advskew N]
//	    [pass PHRASE] [state master|backup] [netmask M] [prefixlen N]
//	    [peer A.B.C.D | mcast] [peer6 ADDR | mcast6] [carpver 2]
//
// in any order. Entries naming the same vhid on the same interface are one
// virtual host: their addresses are collected in order, and a parameter
// given by several entries must have the same value in each (an entry that
// leaves a parameter out takes the vhid's).

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
)

// maxIfaceName is the longest interface name Linux accepts (IFNAMSIZ - 1).
const maxIfaceName = 15

// Error is a configuration error at one place of a file.
type Error struct {
	File string // the name given to ParseRCConf
	Line int    // 1-based line number
	Word string // the offending word(s) as written; "" when none applies
	Msg  string
}

// Error formats e as `FILE:LINE: "WORD": MSG`, or `FILE:LINE: MSG` when e
// names no word.
func (e *Error) Error() string {
	if e.Word == "" {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s:%d: %q: %s", e.File, e.Line, e.Word, e.Msg)
}

// LoadRCConf reads a FreeBSD rc.conf file. See ParseRCConf.
func LoadRCConf(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("load rc.conf: %w", err)
	}
	defer f.Close()
	return ParseRCConf(path, f)
}

// ParseRCConf parses rc.conf text; name is used in error messages and in
// each VHID's Origin.
//
// The returned Config lists one VHID per (interface, vhid) pair in the
// order they were first named. The global settings are Default(): they
// are sysctls (net.inet.carp.preempt, ...), not rc.conf settings.
//
// The interface is the part of the variable name between "ifconfig_" and
// "_alias", taken verbatim. rc.conf cannot hold '.', '-', '/' or '+' in a
// variable name and FreeBSD maps them to '_' (the VLAN em0.100 is
// configured as ifconfig_em0_100_alias0); the mapping cannot be undone
// because '_' may also be part of a name, so that VHID gets the interface
// "em0_100" and the Linux interface must be called so.
//
// Each assignment must fit on one line: values that span lines (a quote
// closed on a later line, a trailing backslash) and shell expansions ($,
// backquotes) are reported as errors rather than guessed at. A variable
// assigned twice is an error too, since sh would silently keep only the
// last value, and so is a vhid in any other ifconfig_ variable (such as the
// host's ifconfig_em0), which carpd would otherwise silently miss.
//
// On error ParseRCConf returns a nil Config and all errors found, in line
// order, joined with errors.Join; each is an *Error (use errors.As).
func ParseRCConf(name string, r io.Reader) (*Config, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	p := &parser{
		file:  name,
		vhids: make(map[vhidKey]*vhidState),
		addrs: make(map[netip.Addr]addrUse),
		vars:  make(map[string]int),
	}
	for i, line := range strings.Split(string(data), "\n") {
		p.parseLine(i+1, strings.TrimSuffix(line, "\r"))
	}
	if len(p.errs) > 0 {
		return nil, errors.Join(p.errs...)
	}
	cfg := Default() // rc.conf holds no global setting
	cfg.VHIDs = p.cfg.VHIDs
	return cfg, nil
}

// Carp parameters that several entries of one vhid may repeat. They index
// entry.settings and vhidState.settings.
const (
	pAdvBase = iota
	pAdvSkew
	pPass
	pState
	pPeer
	pPeer6
	numParams
)

// setting is one carp parameter as given in an entry.
type setting struct {
	// word is the keyword and value as written ("advskew 100"), used in
	// messages; a pass phrase is left out so that it never reaches a log.
	word string
	line int
	// The value, in the field that fits the parameter.
	num  uint8      // advbase, advskew
	text string     // pass, state
	addr netip.Addr // peer, peer6; the zero Addr means multicast
}

// same reports whether s and o hold the same value.
func (s *setting) same(o *setting) bool {
	return s.num == o.num && s.text == o.text && s.addr == o.addr
}

// entry is one parsed carp entry: the arguments of one ifconfig call.
type entry struct {
	vhid     uint8
	vhidWord string // "vhid 100"; "" when the entry has none
	addr     netip.Prefix
	addrWord string // the address as written; "" when the entry has none
	settings [numParams]*setting
}

type vhidKey struct {
	iface string
	vhid  uint8
}

// vhidState remembers where a vhid's parameters were first defined.
type vhidState struct {
	index    int // in Config.VHIDs
	settings [numParams]*setting
}

// addrUse records which vhid holds an address, and since which line.
type addrUse struct {
	key  vhidKey
	line int
}

type parser struct {
	file  string
	cfg   Config
	errs  []error
	vhids map[vhidKey]*vhidState
	addrs map[netip.Addr]addrUse
	vars  map[string]int // alias variable -> line of its assignment
}

// errorf records an error at line n about word.
func (p *parser) errorf(n int, word, format string, args ...any) {
	p.errs = append(p.errs, &Error{File: p.file, Line: n, Word: word, Msg: fmt.Sprintf(format, args...)})
}

// at formats a place of the file as "file:line".
func (p *parser) at(n int) string { return fmt.Sprintf("%s:%d", p.file, n) }

// parseLine handles line n of the file.
func (p *parser) parseLine(n int, line string) {
	name, rest, ok := assignment(line)
	if !ok || !strings.HasPrefix(name, "ifconfig_") {
		return
	}
	iface, isAlias := aliasVar(name)
	value, verr := shellValue(rest)
	if !isAlias {
		// ifconfig_<iface>, ifconfig_<iface>_ipv6 and the like belong to
		// the host, but a vhid there would silently get lost.
		if verr == nil && slices.Contains(splitWords(value), "vhid") {
			p.errorf(n, name, "carpd reads vhids only from ifconfig_<iface>_alias<N> and ifconfig_<iface>_aliases")
		}
		return
	}
	if verr != nil {
		word := verr.Word
		if word == "" {
			word = name
		}
		p.errorf(n, word, "%s", verr.Msg)
		return
	}
	if first, dup := p.vars[name]; dup {
		p.errorf(n, name, "already assigned at %s (sh keeps only the last value)", p.at(first))
		return
	}
	p.vars[name] = n

	aliases := strings.HasSuffix(name, "_aliases")
	for _, words := range splitEntries(splitWords(value)) {
		carpWord := firstCarpKeyword(words)
		if carpWord == "" || words[0] == "link" || words[0] == "ether" {
			continue // a plain alias or a link-layer address
		}
		if aliases && words[0] != "inet" && words[0] != "inet6" {
			// network.subr would drop these words without a warning.
			p.errorf(n, carpWord, "entries of %s must start with inet or inet6", name)
			continue
		}
		if len(iface) > maxIfaceName {
			p.errorf(n, name, "interface name %q is longer than %d characters", iface, maxIfaceName)
			return
		}
		if e, ok := p.parseEntry(n, words, carpWord); ok {
			p.add(n, iface, e)
		}
	}
}

// carpKeywords are the ifconfig keywords that make an entry a carp entry.
var carpKeywords = map[string]bool{
	"vhid": true, "advbase": true, "advskew": true, "pass": true,
	"state": true, "peer": true, "peer6": true, "mcast": true, "mcast6": true,
	"carpver": true, "vrrpprio": true, "vrrpinterval": true,
}

// firstCarpKeyword returns the first carp keyword of an entry, or "".
func firstCarpKeyword(words []string) string {
	for _, w := range words {
		if carpKeywords[w] {
			return w
		}
	}
	return ""
}

// valueKeywords are the keywords followed by a value.
var valueKeywords = map[string]bool{
	"vhid": true, "advbase": true, "advskew": true, "pass": true,
	"state": true, "peer": true, "peer6": true, "netmask": true,
	"prefixlen": true, "carpver": true,
}

// entryParser holds the state of parsing one carp entry.
type entryParser struct {
	*parser
	n           int // line number
	e           entry
	family      string // "inet", "inet6" or "" (implied by the address)
	explicitLen bool   // the address was written with /LEN
	maskWord    string // "netmask M" or "prefixlen N" as written
	maskBits    int
	addrWritten bool // an address was written, maybe a malformed one
}

// parseEntry parses the words of one carp entry at line n; carpWord is its
// first carp keyword. It reports ok=false when it recorded an error.
func (p *parser) parseEntry(n int, words []string, carpWord string) (entry, bool) {
	errs := len(p.errs)
	ep := &entryParser{parser: p, n: n}
	for i := 0; i < len(words); i++ {
		w := words[i]
		switch {
		case valueKeywords[w] && i+1 == len(words):
			p.errorf(n, w, "missing value")
			if w == "vhid" {
				ep.e.vhidWord = w // given, if incomplete: no second error
			}
		case valueKeywords[w]:
			i++
			ep.keyword(w, words[i])
		case w == "vrrpprio" || w == "vrrpinterval":
			word := w
			if i+1 < len(words) {
				i++
				word += " " + words[i]
			}
			p.errorf(n, word, "VRRP mode (carpver 3) is not supported")
		case w == "inet" || w == "inet6":
			ep.family = w // only words[0], as splitEntries starts entries there
		case w == "alias":
			// Noise: ifconfig adds aliases anyway.
		case w == "-alias":
			p.errorf(n, w, "removing an address is not supported in rc.conf")
		case w == "mcast":
			p.set(n, &ep.e, pPeer, &setting{word: w})
		case w == "mcast6":
			p.set(n, &ep.e, pPeer6, &setting{word: w})
		case looksLikeAddress(w):
			ep.address(w)
		default:
			p.errorf(n, w, "unknown keyword")
			// Skip what is likely its value, to report one error.
			if i+1 < len(words) && !isKeyword(words[i+1]) && !isAddress(words[i+1]) {
				i++
			}
		}
	}
	ep.finish(carpWord)
	return ep.e, len(p.errs) == errs
}

// keyword handles keyword w and its value v.
func (ep *entryParser) keyword(w, v string) {
	n, e, word := ep.n, &ep.e, w+" "+v
	switch w {
	case "vhid":
		x, ok := ep.number(n, word, w, v, 1, 255)
		switch {
		case !ok:
		case e.vhidWord != "" && uint8(x) != e.vhid:
			ep.errorf(n, word, "conflicts with %q earlier in this entry", e.vhidWord)
		default:
			e.vhid = uint8(x)
		}
		if e.vhidWord == "" {
			e.vhidWord = word
		}
	case "advbase":
		if x, ok := ep.number(n, word, w, v, 1, 255); ok {
			ep.set(n, e, pAdvBase, &setting{word: word, num: uint8(x)})
		}
	case "advskew":
		if x, ok := ep.number(n, word, w, v, 0, 254); ok {
			ep.set(n, e, pAdvSkew, &setting{word: word, num: uint8(x)})
		}
	case "pass":
		ep.set(n, e, pPass, &setting{word: "pass", text: v})
	case "state":
		s := strings.ToLower(v)
		if s != "master" && s != "backup" {
			ep.errorf(n, word, "state must be master or backup")
			return
		}
		ep.set(n, e, pState, &setting{word: word, text: s})
	case "peer", "peer6":
		k := pPeer
		if w == "peer6" {
			k = pPeer6
		}
		if a, ok := ep.peer(n, word, w, v); ok {
			ep.set(n, e, k, &setting{word: word, addr: a})
		}
	case "netmask", "prefixlen":
		var bits int
		var ok bool
		if w == "netmask" {
			if bits, ok = parseNetmask(v); !ok {
				ep.errorf(n, word, "netmask must be contiguous, like 255.255.255.0 or 0xffffff00")
			}
		} else {
			bits, ok = ep.number(n, word, w, v, 0, 128)
		}
		switch {
		case !ok:
		case ep.maskWord != "":
			ep.errorf(n, word, "conflicts with %q earlier in this entry", ep.maskWord)
		default:
			ep.maskWord, ep.maskBits = word, bits
		}
	case "carpver":
		switch v {
		case "2":
		case "3":
			ep.errorf(n, word, "VRRP mode (carpver 3) is not supported")
		default:
			ep.errorf(n, word, "carpver must be 2 (VRRP mode, carpver 3, is not supported)")
		}
	}
}

// address handles a word meant as the entry's address.
func (ep *entryParser) address(w string) {
	ep.addrWritten = true
	if strings.Contains(w, "-") {
		ep.errorf(ep.n, w, "address ranges are not supported; write one entry per address")
		return
	}
	prefix, explicit, ok := parseAddress(w)
	switch {
	case !ok:
		ep.errorf(ep.n, w, "malformed address")
	case ep.e.addrWord != "":
		ep.errorf(ep.n, w, "a second address in one entry (the first is %s); start another entry with inet or inet6", ep.e.addrWord)
	default:
		ep.e.addr, ep.e.addrWord, ep.explicitLen = prefix, w, explicit
	}
}

// finish checks the entry as a whole and applies netmask or prefixlen.
func (ep *entryParser) finish(carpWord string) {
	n, e := ep.n, &ep.e
	if e.vhidWord == "" {
		ep.errorf(n, carpWord, "carp keyword without a vhid")
	}
	if e.addrWord == "" {
		if !ep.addrWritten { // else it was reported as malformed
			ep.errorf(n, cmp.Or(e.vhidWord, carpWord), "no address in this entry")
		}
		return
	}
	a := e.addr.Addr()
	switch {
	case ep.family == "inet" && !a.Is4():
		ep.errorf(n, e.addrWord, "IPv6 address in an inet entry (use inet6)")
	case ep.family == "inet6" && a.Is4():
		ep.errorf(n, e.addrWord, "IPv4 address in an inet6 entry (use inet)")
	}
	if ep.maskWord == "" {
		return
	}
	isNetmask := strings.HasPrefix(ep.maskWord, "netmask ")
	switch {
	case isNetmask && !a.Is4():
		ep.errorf(n, ep.maskWord, "netmask is for IPv4 addresses; use prefixlen or /LEN")
	case !isNetmask && a.Is4():
		ep.errorf(n, ep.maskWord, "prefixlen is for IPv6 addresses; use netmask or /LEN")
	case ep.explicitLen && ep.maskBits != e.addr.Bits():
		ep.errorf(n, ep.maskWord, "conflicts with %s", e.addrWord)
	default:
		e.addr = netip.PrefixFrom(a, ep.maskBits)
	}
}

// number parses the value v of keyword key as a decimal in lo..hi.
func (p *parser) number(n int, word, key, v string, lo, hi int) (int, bool) {
	if !isDigits(v) {
		p.errorf(n, word, "%s must be a number %d..%d", key, lo, hi)
		return 0, false
	}
	x, err := strconv.Atoi(v)
	if err != nil || x < lo || x > hi {
		p.errorf(n, word, "%s must be %d..%d", key, lo, hi)
		return 0, false
	}
	return x, true
}

// peer parses the address of a peer (IPv4) or peer6 (IPv6) keyword. The
// CARP multicast groups 224.0.0.18 and ff02::12 mean multicast and give the
// zero Addr, as mcast and mcast6 do.
func (p *parser) peer(n int, word, key, v string) (netip.Addr, bool) {
	a, err := netip.ParseAddr(v)
	switch {
	case key == "peer" && (err != nil || !a.Is4()):
		p.errorf(n, word, "peer must be an IPv4 address (use peer6 for IPv6)")
	case key == "peer6" && (err != nil || !a.Is6() || a.Is4In6()):
		p.errorf(n, word, "peer6 must be an IPv6 address (use peer for IPv4)")
	case a == netip.MustParseAddr("224.0.0.18") || a == netip.MustParseAddr("ff02::12"):
		return netip.Addr{}, true
	case a.IsUnspecified() || a.IsMulticast():
		p.errorf(n, word, "%s must be a unicast address or the CARP group", key)
	default:
		return a, true
	}
	return netip.Addr{}, false
}

// set records setting s for parameter k of entry e, which may repeat a
// parameter only with the same value.
func (p *parser) set(n int, e *entry, k int, s *setting) {
	s.line = n
	if prev := e.settings[k]; prev != nil && !prev.same(s) {
		p.errorf(n, s.word, "conflicts with %q earlier in this entry", prev.word)
		return
	}
	e.settings[k] = s
}

// add merges entry e of line n into the vhid it names on iface.
func (p *parser) add(n int, iface string, e entry) {
	key := vhidKey{iface, e.vhid}
	st := p.vhids[key]
	if st == nil {
		p.cfg.VHIDs = append(p.cfg.VHIDs, VHID{
			Interface: iface,
			VHID:      e.vhid,
			AdvBase:   DefaultAdvBase,
			AdvSkew:   DefaultAdvSkew,
			Origin:    p.at(n),
		})
		st = &vhidState{index: len(p.cfg.VHIDs) - 1}
		p.vhids[key] = st
	}
	v := &p.cfg.VHIDs[st.index]

	for k, s := range e.settings {
		if s == nil {
			continue
		}
		first := st.settings[k]
		switch {
		case first == nil:
			// Defined here for the first time, maybe after entries that
			// left it out: it applies to the whole vhid, as a later
			// ifconfig call changes the vhid's parameters on FreeBSD.
			st.settings[k] = s
			apply(v, k, s)
		case first.same(s):
		case k == pPass:
			p.errorf(n, s.word, "vhid %d on %s has a different pass at %s", e.vhid, iface, p.at(first.line))
		default:
			p.errorf(n, s.word, "vhid %d on %s has %s at %s", e.vhid, iface, first.word, p.at(first.line))
		}
	}

	a := e.addr.Addr()
	if use, dup := p.addrs[a]; dup {
		if use.key == key {
			p.errorf(n, e.addrWord, "duplicate address: already in vhid %d on %s at %s", key.vhid, key.iface, p.at(use.line))
		} else {
			p.errorf(n, e.addrWord, "address already used by vhid %d on %s at %s", use.key.vhid, use.key.iface, p.at(use.line))
		}
		return
	}
	p.addrs[a] = addrUse{key: key, line: n}
	v.Addresses = append(v.Addresses, e.addr)
}

// apply stores setting s of parameter k into v.
func apply(v *VHID, k int, s *setting) {
	switch k {
	case pAdvBase:
		v.AdvBase = s.num
	case pAdvSkew:
		v.AdvSkew = s.num
	case pPass:
		v.Password = s.text
	case pState:
		v.State = s.text
	case pPeer:
		v.Peer = s.addr
	case pPeer6:
		v.Peer6 = s.addr
	}
}

// assignment splits a line of the form `[blanks]name=rest`. It reports
// ok=false for anything else: blank lines, comments and other shell.
func assignment(line string) (name, rest string, ok bool) {
	line = strings.TrimLeft(line, " \t")
	i := 0
	for i < len(line) && (line[i] == '_' || isAlpha(line[i]) || i > 0 && isDigit(line[i])) {
		i++
	}
	if i == 0 || i == len(line) || line[i] != '=' {
		return "", "", false
	}
	return line[:i], line[i+1:], true
}

// aliasVar reports whether name is ifconfig_<iface>_alias<N> or
// ifconfig_<iface>_aliases, and returns <iface> verbatim.
func aliasVar(name string) (iface string, ok bool) {
	rest, ok := strings.CutPrefix(name, "ifconfig_")
	if !ok {
		return "", false
	}
	i := strings.LastIndex(rest, "_alias")
	if i <= 0 {
		return "", false
	}
	if suffix := rest[i+len("_alias"):]; suffix != "es" && !isDigits(suffix) {
		return "", false
	}
	return rest[:i], true
}

// shellValue reads the sh word at the start of s, the text after '=': a
// sequence of unquoted characters, '…' and "…" strings, ending at a blank.
// What follows the word may only be blanks and a # comment. The returned
// *Error has only Word (possibly "") and Msg set.
func shellValue(s string) (string, *Error) {
	var b strings.Builder
	i := 0
word:
	for i < len(s) {
		switch c := s[i]; c {
		case ' ', '\t':
			break word
		case '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return "", &Error{Msg: "unterminated quote (values spanning lines are not supported)"}
			}
			b.WriteString(s[i+1 : i+1+j])
			i += j + 2
		case '"':
			for i++; ; i++ {
				if i == len(s) {
					return "", &Error{Msg: "unterminated quote (values spanning lines are not supported)"}
				}
				c := s[i]
				if c == '"' {
					i++
					break
				}
				if c == '\\' && i+1 < len(s) && strings.IndexByte("$`\"\\", s[i+1]) >= 0 {
					i++
					c = s[i]
				} else if c == '$' || c == '`' {
					return "", &Error{Msg: "shell expansion ($, `) is not supported"}
				}
				b.WriteByte(c)
			}
		case '\\':
			if i+1 == len(s) {
				return "", &Error{Msg: "line continuation is not supported"}
			}
			b.WriteByte(s[i+1])
			i += 2
		case '$', '`':
			return "", &Error{Msg: "shell expansion ($, `) is not supported"}
		default:
			b.WriteByte(c)
			i++
		}
	}
	rest := strings.TrimLeft(s[i:], " \t")
	if rest != "" && rest[0] != '#' {
		return "", &Error{Word: splitWords(rest)[0], Msg: "unexpected text after the value"}
	}
	return b.String(), nil
}

// splitWords splits a value into words at blanks, as sh's default IFS does.
func splitWords(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == '\t' || r == '\n' })
}

// splitEntries splits words into entries, each starting at an address
// family keyword, as network.subr does. The first entry may lack one.
func splitEntries(words []string) [][]string {
	var entries [][]string
	for i, w := range words {
		switch w {
		case "inet", "inet6", "link", "ether":
			entries = append(entries, []string{w})
			continue
		}
		if i == 0 {
			entries = append(entries, nil)
		}
		last := len(entries) - 1
		entries[last] = append(entries[last], w)
	}
	return entries
}

// isKeyword reports whether w is one of the keywords parseEntry knows.
func isKeyword(w string) bool {
	switch w {
	case "inet", "inet6", "alias", "-alias":
		return true
	}
	return carpKeywords[w] || valueKeywords[w]
}

// isAddress reports whether w is a well-formed address.
func isAddress(w string) bool {
	_, _, ok := parseAddress(w)
	return ok
}

// looksLikeAddress reports whether w is meant as an address rather than a
// keyword: IPv4 starts with a digit, IPv6 has a colon.
func looksLikeAddress(w string) bool {
	return isDigit(w[0]) || strings.Contains(w, ":")
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

// parseNetmask parses a contiguous IPv4 netmask, dotted (255.255.255.0) or
// hexadecimal (0xffffff00), and returns its length in bits.
func parseNetmask(s string) (int, bool) {
	var m uint32
	if h, ok := strings.CutPrefix(strings.ToLower(s), "0x"); ok {
		x, err := strconv.ParseUint(h, 16, 32)
		if err != nil {
			return 0, false
		}
		m = uint32(x)
	} else {
		a, err := netip.ParseAddr(s)
		if err != nil || !a.Is4() {
			return 0, false
		}
		b := a.As4()
		m = binary.BigEndian.Uint32(b[:])
	}
	ones := bits.LeadingZeros32(^m)
	if m != ^uint32(0)<<(32-ones) {
		return 0, false
	}
	return ones, true
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func isAlpha(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }

// isDigits reports whether s is a non-empty string of decimal digits.
func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := range len(s) {
		if !isDigit(s[i]) {
			return false
		}
	}
	return true
}
