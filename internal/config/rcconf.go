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
//	    [peer A.B.C.D | mcast] [peer6 ADDR | mcast6]
//	    [carpver 2|3] [vrrpprio N] [vrrpinterval N]
//
// in any order. carpver 3 makes the vhid a VRRPv3 one, as on FreeBSD 15:
// vrrpprio (1..255, 100) and vrrpinterval (1..4095 centiseconds, 100) are
// its parameters, and pass, advbase, advskew and a unicast peer are
// errors, as are vrrpprio and vrrpinterval on a CARP vhid (checkProtocol).
// Unlike FreeBSD's ifconfig, which reads these numbers with atoi and lets
// the kernel refuse them, carpd checks each range here. Entries naming the same vhid on the same interface are one
// virtual host: their addresses are collected in order, and a parameter
// given by several entries must have the same value in each (an entry that
// leaves a parameter out takes the vhid's).

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"math/bits"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// LoadRCConf reads a FreeBSD rc.conf file. See ParseRCConf. Unlike
// ParseRCConf it refuses what carpd cannot run (see checkLoaded): a file
// that looks like carpd's TOML, and one without a vhid.
func LoadRCConf(path string) (*Config, error) {
	data, err := readConfig(path)
	if err != nil {
		return nil, err
	}
	if err := sniff(path, data, formatRCConf); err != nil {
		return nil, err
	}
	cfg, err := ParseRCConf(path, bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	if err := checkLoaded(path, cfg, formatRCConf); err != nil {
		return nil, err
	}
	return cfg, nil
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
	p := &rcParser{
		errs:  &errList{file: name},
		vhids: make(map[vhidKey]*vhidState),
		vars:  make(map[string]int),
	}
	for i, line := range strings.Split(string(data), "\n") {
		p.parseLine(i+1, strings.TrimSuffix(line, "\r"))
	}
	vhids := check(p.errs, p.specs, false)
	if err := p.errs.err(); err != nil {
		return nil, err
	}
	cfg := Default() // rc.conf holds no global setting
	cfg.VHIDs = vhids
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
	pCarpVer
	pVRRPPrio
	pVRRPInterval
	numParams
)

// setting is one carp parameter as given in an entry.
type setting struct {
	// pos.word is the keyword and value as written ("advskew 100"), used in
	// messages; a pass phrase is left out so that it never reaches a log.
	pos pos
	// The value, in the field that fits the parameter.
	num  int        // advbase, advskew, carpver, vrrpprio, vrrpinterval
	text string     // pass, state
	addr netip.Addr // peer, peer6; the zero Addr means multicast
}

// same reports whether s and o hold the same value.
func (s *setting) same(o *setting) bool {
	return s.num == o.num && s.text == o.text && s.addr == o.addr
}

// entry is one parsed carp entry: the arguments of one ifconfig call.
type entry struct {
	vhid     number // vhid.pos.word is "" when the entry has none
	addr     netip.Prefix
	addrPos  pos // addrPos.word is "" when the entry has none
	settings [numParams]*setting
}

type vhidKey struct {
	iface string
	vhid  int
}

// vhidState remembers where a vhid's parameters were first defined.
type vhidState struct {
	spec     *vhidSpec
	settings [numParams]*setting
}

type rcParser struct {
	errs  *errList
	specs []*vhidSpec
	vhids map[vhidKey]*vhidState
	vars  map[string]int // alias variable -> line of its assignment
}

// parseLine handles line n of the file.
func (p *rcParser) parseLine(n int, line string) {
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
			p.errs.errorf(n, name, "carpd reads vhids only from ifconfig_<iface>_alias<N> and ifconfig_<iface>_aliases")
		}
		return
	}
	if verr != nil {
		word := verr.Word
		if word == "" {
			word = name
		}
		p.errs.errorf(n, word, "%s", verr.Msg)
		return
	}
	if first, dup := p.vars[name]; dup {
		p.errs.errorf(n, name, "already assigned at %s (sh keeps only the last value)", p.errs.at(first))
		return
	}
	p.vars[name] = n

	aliases := strings.HasSuffix(name, "_aliases")
	col := 1
	for _, words := range splitEntries(splitWords(value)) {
		at := col
		col += len(words)
		carpWord := firstCarpKeyword(words)
		if carpWord == "" || words[0] == "link" || words[0] == "ether" {
			continue // a plain alias or a link-layer address
		}
		if aliases && words[0] != "inet" && words[0] != "inet6" {
			// network.subr would drop these words without a warning.
			p.errs.errorAt(pos{n, at + slices.Index(words, carpWord), carpWord}, "entries of %s must start with inet or inet6", name)
			continue
		}
		if e, ok := p.parseEntry(n, at, iface, pos{line: n, word: name}, words, carpWord); ok {
			p.add(n, iface, pos{line: n, word: name}, e)
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
	"prefixlen": true, "carpver": true, "vrrpprio": true, "vrrpinterval": true,
}

// entryParser holds the state of parsing one carp entry.
type entryParser struct {
	*rcParser
	n           int // line number
	col         int // of the word being parsed, in the line
	e           entry
	family      string // "inet", "inet6" or "" (implied by the address)
	explicitLen bool   // the address was written with /LEN
	mask        pos    // "netmask M" or "prefixlen N" as written
	maskBits    int
	addrWritten bool // an address was written, maybe a malformed one
}

// errorf records an error about the word being parsed.
func (ep *entryParser) errorf(word, format string, args ...any) {
	ep.errs.errorAt(pos{ep.n, ep.col, word}, format, args...)
}

// parseEntry parses the words of one carp entry at line n, whose first
// word is the col-th of the line's value, for iface (written at
// ifacePos); carpWord is its first carp keyword. It reports ok=false when
// it recorded an error.
func (p *rcParser) parseEntry(n, col int, iface string, ifacePos pos, words []string, carpWord string) (entry, bool) {
	errs := len(p.errs.errs)
	ep := &entryParser{rcParser: p, n: n}
	for i := 0; i < len(words); i++ {
		w := words[i]
		ep.col = col + i
		switch {
		case valueKeywords[w] && i+1 == len(words):
			ep.errorf(w, "missing value")
			if w == "vhid" {
				ep.e.vhid.pos = pos{n, ep.col, w} // given, if incomplete: no second error
			}
		case valueKeywords[w]:
			i++
			ep.keyword(w, words[i])
		case w == "inet" || w == "inet6":
			ep.family = w // only words[0], as splitEntries starts entries there
		case w == "alias":
			// Noise: ifconfig adds aliases anyway.
		case w == "-alias":
			ep.errorf(w, "removing an address is not supported in rc.conf")
		case w == "mcast":
			ep.set(pPeer, &setting{pos: pos{word: w}})
		case w == "mcast6":
			ep.set(pPeer6, &setting{pos: pos{word: w}})
		case looksLikeAddress(w):
			ep.address(w)
		case i >= 2 && words[i-2] == "pass":
			// Likely the rest of a pass phrase with a space in it (or a
			// misspelt keyword): not shown, as the phrase never is.
			ep.errorf("pass", "unknown word after the pass phrase, not shown (a pass phrase cannot hold a space; or a keyword misspelt)")
			if i+1 < len(words) && !isKeyword(words[i+1]) && !isAddress(words[i+1]) {
				i++
			}
		default:
			ep.errorf(w, "unknown keyword")
			// Skip what is likely its value, to report one error.
			if i+1 < len(words) && !isKeyword(words[i+1]) && !isAddress(words[i+1]) {
				i++
			}
		}
	}
	ep.col = col + slices.Index(words, carpWord)
	ep.finish(carpWord)
	// The values of the entry, in full, as one vhid's.
	v := &vhidSpec{iface: iface, ifacePos: ifacePos, vhid: ep.e.vhid}
	for k, set := range ep.e.settings {
		if set != nil {
			apply(v, k, set)
		}
	}
	checkValues(p.errs, v)
	return ep.e, len(p.errs.errs) == errs
}

// keyword handles keyword w and its value v.
func (ep *entryParser) keyword(w, v string) {
	e, word := &ep.e, w+" "+v
	switch w {
	case "vhid":
		x, ok := ep.number(word, w, v)
		switch {
		case !ok:
		case e.vhid.set && x != e.vhid.val:
			ep.errorf(word, "conflicts with %q earlier in this entry", e.vhid.pos.word)
		case !e.vhid.set:
			e.vhid = number{val: x, pos: pos{ep.n, ep.col, word}, set: true}
		}
		if e.vhid.pos.word == "" {
			e.vhid.pos = pos{ep.n, ep.col, word}
		}
	case "advbase":
		if x, ok := ep.number(word, w, v); ok {
			ep.set(pAdvBase, &setting{pos: pos{word: word}, num: x})
		}
	case "advskew":
		if x, ok := ep.number(word, w, v); ok {
			ep.set(pAdvSkew, &setting{pos: pos{word: word}, num: x})
		}
	case "pass":
		ep.set(pPass, &setting{pos: pos{word: "pass"}, text: v})
	case "state":
		s, ok := parseState(v)
		if !ok {
			ep.errorf(word, "state must be master or backup")
			return
		}
		ep.set(pState, &setting{pos: pos{word: word}, text: s})
	case "peer", "peer6":
		k := pPeer
		if w == "peer6" {
			k = pPeer6
		}
		a, msg := parsePeer(w, v)
		if msg != "" {
			ep.errorf(word, "%s", msg)
			return
		}
		ep.set(k, &setting{pos: pos{word: word}, addr: a})
	case "netmask", "prefixlen":
		var bits int
		ok := true
		if w == "netmask" {
			if bits, ok = parseNetmask(v); !ok {
				ep.errorf(word, "netmask must be contiguous, like 255.255.255.0 or 0xffffff00")
			}
		} else if bits, ok = parseDecimal(v); !ok || bits > 128 {
			ep.errorf(word, "prefixlen must be 0..128")
			ok = false
		}
		switch {
		case !ok:
		case ep.mask.word != "":
			ep.errorf(word, "conflicts with %q earlier in this entry", ep.mask.word)
		default:
			ep.mask, ep.maskBits = pos{ep.n, ep.col, word}, bits
		}
	case "carpver", "vrrpprio", "vrrpinterval":
		k := map[string]int{"carpver": pCarpVer, "vrrpprio": pVRRPPrio, "vrrpinterval": pVRRPInterval}[w]
		if x, ok := ep.number(word, w, v); ok {
			ep.set(k, &setting{pos: pos{word: word}, num: x})
		}
	}
}

// number parses the value v of keyword key (vhid, advbase, advskew,
// carpver, vrrpprio, vrrpinterval) as a decimal; its range is check's
// business.
func (ep *entryParser) number(word, key, v string) (int, bool) {
	x, ok := parseDecimal(v)
	if !ok {
		r := limits(key)
		ep.errorf(word, "%s must be a number %d..%d", key, r[0], r[1])
	}
	return x, ok
}

// parseDecimal parses a string of decimal digits; one too large for an int
// gives the largest int.
func parseDecimal(v string) (int, bool) {
	if !isDigits(v) {
		return 0, false
	}
	x, err := strconv.Atoi(v)
	if err != nil {
		return math.MaxInt, true
	}
	return x, true
}

// address handles a word meant as the entry's address.
func (ep *entryParser) address(w string) {
	ep.addrWritten = true
	if strings.Contains(w, "-") {
		ep.errorf(w, "address ranges are not supported; write one entry per address")
		return
	}
	prefix, explicit, ok := parseAddress(w)
	switch {
	case !ok:
		ep.errorf(w, "malformed address")
	case ep.e.addrPos.word != "":
		ep.errorf(w, "a second address in one entry (the first is %s); start another entry with inet or inet6", ep.e.addrPos.word)
	default:
		ep.e.addr, ep.e.addrPos, ep.explicitLen = prefix, pos{ep.n, ep.col, w}, explicit
	}
}

// finish checks the entry as a whole and applies netmask or prefixlen.
func (ep *entryParser) finish(carpWord string) {
	e := &ep.e
	if e.vhid.pos.word == "" {
		ep.errorf(carpWord, "carp keyword without a vhid")
	}
	if e.addrPos.word == "" {
		if !ep.addrWritten { // else it was reported as malformed
			ep.errorf(cmp.Or(e.vhid.pos.word, carpWord), "no address in this entry")
		}
		return
	}
	a := e.addr.Addr()
	switch {
	case ep.family == "inet" && !a.Is4():
		ep.errs.errorAt(e.addrPos, "IPv6 address in an inet entry (use inet6)")
	case ep.family == "inet6" && a.Is4():
		ep.errs.errorAt(e.addrPos, "IPv4 address in an inet6 entry (use inet)")
	}
	if ep.mask.word == "" {
		return
	}
	isNetmask := strings.HasPrefix(ep.mask.word, "netmask ")
	switch {
	case isNetmask && !a.Is4():
		ep.errs.errorAt(ep.mask, "netmask is for IPv4 addresses; use prefixlen or /LEN")
	case !isNetmask && a.Is4():
		ep.errs.errorAt(ep.mask, "prefixlen is for IPv6 addresses; use netmask or /LEN")
	case ep.explicitLen && ep.maskBits != e.addr.Bits():
		ep.errs.errorAt(ep.mask, "conflicts with %s", e.addrPos.word)
	default:
		e.addr = netip.PrefixFrom(a, ep.maskBits)
	}
}

// set records setting s for parameter k of the entry, which may repeat a
// parameter only with the same value.
func (ep *entryParser) set(k int, s *setting) {
	s.pos.line, s.pos.col = ep.n, ep.col
	if prev := ep.e.settings[k]; prev != nil && !prev.same(s) {
		ep.errs.errorAt(s.pos, "conflicts with %q earlier in this entry", prev.pos.word)
		return
	}
	ep.e.settings[k] = s
}

// add merges entry e of line n into the vhid it names on iface, written
// in the variable at name.
func (p *rcParser) add(n int, iface string, name pos, e entry) {
	key := vhidKey{iface, e.vhid.val}
	st := p.vhids[key]
	if st == nil {
		s := &vhidSpec{at: n, iface: iface, ifacePos: name, vhid: e.vhid}
		p.specs = append(p.specs, s)
		st = &vhidState{spec: s}
		p.vhids[key] = st
	}
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
			apply(st.spec, k, s)
		case first.same(s):
		case k == pPass:
			p.errs.errorAt(s.pos, "vhid %d on %s has a different pass at %s", key.vhid, iface, p.errs.at(first.pos.line))
		default:
			p.errs.errorAt(s.pos, "vhid %d on %s has %s at %s", key.vhid, iface, first.pos.word, p.errs.at(first.pos.line))
		}
	}
	st.spec.addrs = append(st.spec.addrs, addrSpec{prefix: e.addr, pos: e.addrPos})
}

// apply stores setting s of parameter k into v.
func apply(v *vhidSpec, k int, s *setting) {
	switch k {
	case pAdvBase:
		v.advbase = number{val: s.num, pos: s.pos, set: true}
	case pAdvSkew:
		v.advskew = number{val: s.num, pos: s.pos, set: true}
	case pPass:
		v.password, v.passwordPos = s.text, s.pos
	case pState:
		v.state = s.text
	case pPeer:
		v.peer, v.peerPos = s.addr, s.pos
	case pPeer6:
		v.peer6, v.peer6Pos = s.addr, s.pos
	case pCarpVer:
		v.version = number{val: s.num, pos: s.pos, set: true}
	case pVRRPPrio:
		v.vrrpPrio = number{val: s.num, pos: s.pos, set: true}
	case pVRRPInterval:
		v.vrrpInterval = number{val: s.num, pos: s.pos, set: true}
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
