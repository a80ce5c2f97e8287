package config

// This file reads carpd's own configuration file, written in TOML
// (https://toml.io). It holds everything carpd can be told: the global
// settings that FreeBSD keeps in net.inet.carp.* sysctls, and one [[vhid]]
// table per virtual host with the parameters of ifconfig(8)'s carp
// keywords. examples/carpd.toml documents every key.
//
//	preempt = true
//	preempt-delay = "30s"
//
//	[[vhid]]
//	interface = "eth0"
//	vhid = 100
//	advskew = 100
//	password-file = "vhid100.pass"
//	addresses = ["192.0.2.50/32", "2001:db8::50/64"]
//
// The file is read in two passes. The first decodes it with go-toml into a
// generic map, only to find what makes it invalid TOML (bad syntax, a key
// given twice). The second walks go-toml's syntax tree, which knows the
// line of every key and value, and checks each against carpd's schema, so
// that every error names its line.
//
// The syntax tree is go-toml's unstable package. It is kept on purpose: the
// stable API (Unmarshal into a struct, DecodeError, StrictMissingError)
// reports the position of the first error only, and none for a value that
// decodes but is out of range or clashes with another vhid. carpd reports
// every error at once, each as file:line with the key or value as written,
// and the shared check (check.go) needs the place of every value, which
// only the syntax tree gives. go-toml is pinned in go.mod; a change of the
// unstable API shows in this file's tests.

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/pelletier/go-toml/v2"
	"github.com/pelletier/go-toml/v2/unstable"
)

// Load reads a configuration file and chooses its format by the file name:
// a name ending in ".toml" (in any case) is carpd's TOML file, read by
// LoadTOML; any other name is a FreeBSD rc.conf, read by LoadRCConf.
func Load(path string) (*Config, error) {
	if strings.EqualFold(filepath.Ext(path), ".toml") {
		return LoadTOML(path)
	}
	return LoadRCConf(path)
}

// LoadTOML reads carpd's TOML configuration file. A relative password-file
// is taken relative to the directory of path. See ParseTOML. Unlike
// ParseTOML it refuses what carpd cannot run (see checkLoaded): a file
// that looks like a FreeBSD rc.conf, and one without a vhid.
func LoadTOML(path string) (*Config, error) {
	data, err := readConfig(path)
	if err != nil {
		return nil, err
	}
	if err := sniff(path, data, formatTOML); err != nil {
		return nil, err
	}
	cfg, err := ParseTOML(path, data, filepath.Dir(path))
	if err != nil {
		return nil, err
	}
	if err := checkLoaded(path, cfg, formatTOML); err != nil {
		return nil, err
	}
	return cfg, nil
}

// ParseTOML parses carpd's TOML configuration; name is used in error
// messages and in each VHID's Origin, and a relative password-file is read
// from baseDir (the current directory when baseDir is "").
//
// Global settings come first, each optional (the defaults are those of
// Default):
//
//	preempt                 bool, false (FreeBSD's net.inet.carp.preempt)
//	preempt-delay           duration string such as "30s", "0s"
//	ifdown-demotion-factor  integer 0..240, 240 (0 turns it off)
//	senderr-demotion-factor integer 0..240, 240 (0 turns it off)
//	dscp                    integer 0..63, 56 (net.inet.carp.dscp)
//	log-level               "debug", "info", "warn" or "error"; "info"
//
// Then one [[vhid]] table per virtual host:
//
//	interface      string, required: the Linux interface, up to 15 bytes
//	vhid           integer 1..255, required, unique on its interface
//	addresses      list of strings, required: "192.0.2.50/32",
//	               "2001:db8::50/64"; no /LEN means /32 or /128
//	advbase        integer 1..255, 1 (seconds)
//	advskew        integer 0..254, 0
//	password       string: the pass phrase (ifconfig's pass)
//	password-file  string: a file holding the pass phrase, read now, its
//	               trailing newline dropped; not together with password
//	peer           string: unicast IPv4 peer (224.0.0.18 means multicast)
//	peer6          string: unicast IPv6 peer (ff02::12 means multicast)
//	preempt        bool: overrides the global preempt for this vhid
//	virtual-mac    bool, false: use the virtual MAC 00:00:5e:00:01:<vhid>
//	replay-protection bool, false: accept only increasing counters from
//	               each source (see carp.Config.ReplayProtection)
//	state          "master" or "backup": the state to start in
//	carpver        integer 2 or 3, 2: 3 makes the vhid VRRPv3 (RFC 5798),
//	               FreeBSD 15's carpver
//	vrrp-priority  integer 1..255, 100: a VRRP vhid's priority (FreeBSD's
//	               vrrpprio; 255 is the address owner)
//	vrrp-interval  integer 1..4095, 100: a VRRP vhid's advertisement
//	               interval in centiseconds (FreeBSD's vrrpinterval and the
//	               wire's unit: 100 is 1 s, 1 is 10 ms)
//	vrrp-tiebreak  bool, true: RFC 5798's tie-break on equal priority (the
//	               greater primary address wins); false is FreeBSD 15's way
//	electorate     "carp" (the default: adverts) or "etcd" (a leader key
//	               on the [etcd] table's cluster; no advert keys then)
//	mover          "l2" (the default) or "bgp"
//
// The [etcd] table (etcd.go) names the cluster of the etcd electorate and
// its timing, checked against the fence's rules.
//
// A VRRP vhid (carpver = 3) takes no password, password-file, advbase,
// advskew, peer, peer6 or replay-protection, and a CARP vhid no vrrp-*
// key: each is an error. A VRRP vhid preempts unless its preempt key, the
// global preempt key or --preempt says otherwise (RFC 5798 and keepalived
// preempt by default; see Config.PreemptOf).
//
// An inline array of tables (vhid = [{...}, {...}]) is the same as
// [[vhid]] tables. The checks shared with ParseRCConf give the same
// messages: ranges, malformed addresses and peers, an address in two vhids.
// In addition, a peer needs an address of its family in the vhid (the
// adverts to a peer are sent in that family), and keys that carpd does not
// know are errors, since a misspelt key would otherwise be silently lost;
// so are a global setting written after the first [[vhid]] (TOML puts it
// in that vhid) and the ifconfig spelling "pass".
//
// On error ParseTOML returns a nil Config and all errors found, in line
// order, joined with errors.Join; each is an *Error (use errors.As). A file
// that is not valid TOML gives a single error, the first one found, since
// the rest of the file cannot be trusted.
func ParseTOML(name string, data []byte, baseDir string) (*Config, error) {
	if err := checkTOML(name, data); err != nil {
		return nil, err
	}
	t := &tomlParser{
		errs:    &errList{file: name},
		cfg:     *Default(),
		baseDir: baseDir,
		data:    data,
		lines:   lineStarts(data),
	}
	var up unstable.Parser
	up.Reset(data)
	for up.NextExpression() {
		t.expression(up.Expression())
	}
	if err := up.Error(); err != nil {
		// checkTOML has seen the same document, so this is not expected.
		line := 1
		var perr *unstable.ParserError
		if errors.As(err, &perr) {
			line = t.lineAt(cap(data) - cap(perr.Highlight))
		}
		t.errorf(line, "", "%v", err)
	}
	t.cfg.VHIDs = check(t.errs, t.finish(), true)
	t.finishChecks()
	t.finishEtcd()
	t.finishBGP()
	if err := t.errs.err(); err != nil {
		return nil, err
	}
	return &t.cfg, nil
}

// maxErrorWord is the longest line shown in the message of a TOML syntax
// error.
const maxErrorWord = 60

// checkTOML reports the first way in which data is not valid TOML.
func checkTOML(name string, data []byte) error {
	var doc map[string]any
	err := toml.Unmarshal(data, &doc)
	if err == nil {
		return nil
	}
	var de *toml.DecodeError
	if !errors.As(err, &de) {
		return &Error{File: name, Line: 1, Msg: "invalid TOML: " + err.Error()}
	}
	line, _ := de.Position()
	word := strings.Join(de.Key(), ".")
	if word == "" && line >= 1 {
		// No key to blame: show the line as written, unless it may hold a
		// pass phrase, which must not reach a log.
		if lines := strings.Split(string(data), "\n"); line <= len(lines) {
			word = strings.TrimSpace(lines[line-1])
		}
		if strings.Contains(strings.ToLower(word), "password") {
			word = ""
		}
		if len(word) > maxErrorWord {
			word = word[:maxErrorWord] + "..."
		}
	}
	msg := strings.TrimPrefix(de.Error(), "toml: ")
	return &Error{File: name, Line: line, Word: word, Msg: "invalid TOML: " + msg}
}

// lineStarts returns the offset of the first byte of each line of data.
func lineStarts(data []byte) []int {
	starts := []int{0}
	for i, c := range data {
		if c == '\n' {
			starts = append(starts, i+1)
		}
	}
	return starts
}

// tomlParser holds the state of ParseTOML's second pass.
type tomlParser struct {
	errs    *errList
	cfg     Config
	baseDir string
	data    []byte
	lines   []int // lineStarts(data)
	// section is the table the key/value lines belong to: the top level,
	// the last [[vhid]], or a table that was reported as unknown.
	section tomlSection
	tables  []*tomlVHID
	checks  []*checkTable
	bgp     *tomlBGP   // the [bgp] table, nil when there is none
	etcd    *etcdTable // nil without an [etcd] table
}

type tomlSection int

const (
	topLevel tomlSection = iota
	inVHID
	inCheck
	inBGP
	inEtcd
	unknownTable
)

// tomlVHID is one [[vhid]] table being read.
type tomlVHID struct {
	spec vhidSpec // spec.at is the line of its [[vhid]] header or inline table
	// keys holds where each of the table's keys was written.
	keys map[string]place
	// mover is the mover key's value ("" when not given).
	mover string
}

// place is where a key or value was written.
type place struct {
	line int
	word string
}

// keyValue is one `key = value` of the file.
type keyValue struct {
	key  string // dotted, as TOML names it
	line int    // of the key
	off  int    // of the key in the file
	// word is the line `key = value` as written, for messages; just the
	// key for multi-line values and for passwords, which must not reach a
	// log.
	word string
	val  *unstable.Node
}

// errorf records an error at line n about word.
func (t *tomlParser) errorf(n int, word, format string, args ...any) {
	t.errs.errorf(n, word, format, args...)
}

// at formats a place of the file as "file:line".
func (t *tomlParser) at(n int) string { return t.errs.at(n) }

// pos returns where kv was written, quoting it.
func (kv keyValue) pos() pos { return pos{kv.line, kv.off, kv.word} }

// lineAt returns the 1-based line of byte offset off.
func (t *tomlParser) lineAt(off int) int {
	i, found := slices.BinarySearch(t.lines, off)
	if found {
		return i + 1
	}
	return i
}

// lineOf returns the line where node n starts; n must have a Raw range
// (keys and scalar values have one; arrays do not).
func (t *tomlParser) lineOf(n *unstable.Node) int {
	return t.lineAt(int(n.Raw.Offset))
}

// raw returns the text of node n as written.
func (t *tomlParser) raw(n *unstable.Node) string {
	end := int(n.Raw.Offset) + int(n.Raw.Length)
	if end > len(t.data) {
		return ""
	}
	return string(t.data[n.Raw.Offset:end])
}

// keyOf returns the dotted key of a KeyValue, Table or ArrayTable node and
// the line of its first part.
func (t *tomlParser) keyOf(n *unstable.Node) (string, int) {
	var parts []string
	line := 0
	it := n.Key()
	for it.Next() {
		k := it.Node()
		if line == 0 {
			line = t.lineOf(k)
		}
		parts = append(parts, string(k.Data))
	}
	return strings.Join(parts, "."), line
}

// keyValue describes a KeyValue node.
func (t *tomlParser) keyValue(n *unstable.Node) keyValue {
	key, line := t.keyOf(n)
	it := n.Key()
	it.Next()
	kv := keyValue{key: key, line: line, off: int(it.Node().Raw.Offset), word: key, val: n.Value()}
	if w := t.raw(n); !strings.Contains(w, "\n") && key != "password" {
		kv.word = w
	}
	return kv
}

// expression handles one top-level expression of the file.
func (t *tomlParser) expression(n *unstable.Node) {
	switch n.Kind {
	case unstable.KeyValue:
		kv := t.keyValue(n)
		switch t.section {
		case topLevel:
			t.global(kv)
		case inVHID:
			t.vhidSetting(t.tables[len(t.tables)-1], kv)
		case inCheck:
			t.checkSetting(t.checks[len(t.checks)-1], kv)
		case inBGP:
			t.bgpSetting(kv)
		case inEtcd:
			t.etcdSetting(kv)
		}
	case unstable.ArrayTable:
		key, line := t.keyOf(n)
		switch key {
		case "vhid":
			t.section = inVHID
			t.newVHID(line)
			return
		case "check":
			t.section = inCheck
			t.newCheck(line)
			return
		}
		t.section = unknownTable
		t.errorf(line, key, "unknown table (carpd knows [[vhid]], [[check]], [etcd] and [bgp])")
	case unstable.Table:
		key, line := t.keyOf(n)
		if key == "bgp" {
			t.newBGP(line)
			return
		}
		if key == "etcd" {
			t.section = inEtcd
			t.newEtcd(line)
			return
		}
		t.section = unknownTable
		if key == "vhid" || key == "check" {
			t.errorf(line, key, "write [[%s]], with double brackets: there may be several", key)
			return
		}
		t.errorf(line, key, "unknown table (carpd knows [[vhid]], [[check]], [etcd] and [bgp])")
	}
}

// newVHID starts a vhid table at line.
func (t *tomlParser) newVHID(line int) *tomlVHID {
	e := &tomlVHID{
		spec: vhidSpec{at: line, tomlNames: true},
		keys: make(map[string]place),
	}
	t.tables = append(t.tables, e)
	return e
}

// Keys of the two levels, for the hints about a key in the wrong place.
var (
	globalKeys = map[string]bool{
		"preempt": true, "preempt-delay": true, "dscp": true, "log-level": true,
		"control": true, "control-group": true, "state-file": true, "metrics-listen": true,
		"neutral": true, "hook-timeout": true, "hook-user": true, "manage-addresses": true,
		"ifdown-demotion-factor": true, "senderr-demotion-factor": true,
	}
	vhidKeys = map[string]bool{
		"name":      true,
		"interface": true, "vhid": true, "addresses": true, "advbase": true,
		"advskew": true, "password": true, "password-file": true, "peer": true,
		"peer6": true, "preempt": true, "virtual-mac": true, "state": true,
		"replay-protection": true, "carpver": true, "vrrp-priority": true,
		"vrrp-interval": true, "vrrp-tiebreak": true, "electorate": true, "mover": true,
	}
)

// global handles a top-level key.
func (t *tomlParser) global(kv keyValue) {
	c := &t.cfg
	if t.hookKey(kv, &c.Hooks) {
		return
	}
	switch kv.key {
	case "control", "state-file":
		if s, ok := t.path(kv); ok {
			if kv.key == "control" {
				c.Control = s
			} else {
				c.StateFile = s
			}
		}
	case "control-group", "hook-user":
		s, ok := t.str(kv, "a name")
		switch {
		case !ok:
		case s == "" && kv.key == "hook-user":
			t.errorf(kv.line, kv.word, "hook-user is empty (leave it out to run hooks as carpd's user)")
		case kv.key == "control-group":
			c.ControlGroup = s
		default:
			c.HookUser, c.HookUserOrigin = s, t.at(kv.line)
		}
	case "metrics-listen":
		s, ok := t.str(kv, `an address like "127.0.0.1:9657"`)
		if !ok {
			return
		}
		if msg := checkListen(s); s != "" && msg != "" {
			t.errorf(kv.line, kv.word, "metrics-listen: %s", msg)
			return
		}
		c.MetricsListen = s
	case "neutral":
		if b, ok := t.boolean(kv); ok {
			c.Hooks.Neutral = b
		}
	case "manage-addresses":
		if b, ok := t.boolean(kv); ok {
			c.ManageAddresses = b
		}
	case "hook-timeout":
		s, ok := t.str(kv, `a duration like "30s"`)
		if !ok {
			return
		}
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			t.errorf(kv.line, kv.word, `hook-timeout must be a positive duration like "30s"`)
			return
		}
		c.HookTimeout = d
	case "preempt":
		if b, ok := t.boolean(kv); ok {
			c.Preempt, c.PreemptGiven = b, true
		}
	case "preempt-delay":
		s, ok := t.str(kv, `a duration like "30s"`)
		if !ok {
			return
		}
		d, err := time.ParseDuration(s)
		switch {
		case err != nil:
			t.errorf(kv.line, kv.word, `preempt-delay must be a duration like "30s" or "1m30s"`)
		case d < 0:
			t.errorf(kv.line, kv.word, "preempt-delay must not be negative")
		default:
			c.PreemptDelay = d
		}
	case "ifdown-demotion-factor", "senderr-demotion-factor", "dscp":
		r := globalRanges[kv.key]
		x, ok := t.integer(kv, r)
		if !ok {
			return
		}
		if x < r[0] || x > r[1] {
			t.errorf(kv.line, kv.word, "%s must be %d..%d", kv.key, r[0], r[1])
			return
		}
		setGlobal(c, kv.key, x)
	case "log-level":
		s, ok := t.str(kv, strings.Join(logLevels, ", "))
		if !ok {
			return
		}
		level, msg := parseLogLevel(s)
		if msg != "" {
			t.errorf(kv.line, kv.word, "%s", msg)
			return
		}
		c.LogLevel = level
	case "vhid":
		t.inlineVHIDs(kv)
	default:
		if vhidKeys[kv.key] {
			t.errorf(kv.line, kv.key, "%s belongs in a [[vhid]] table", kv.key)
			return
		}
		t.errorf(kv.line, kv.key, "unknown key")
	}
}

// inlineVHIDs handles `vhid = [{...}, ...]`, the inline form of [[vhid]].
func (t *tomlParser) inlineVHIDs(kv keyValue) {
	msg := "vhid must be written as [[vhid]] tables"
	if kv.val.Kind != unstable.Array {
		t.errorf(kv.line, kv.key, "%s", msg)
		return
	}
	it := kv.val.Children()
	for it.Next() {
		tbl := it.Node()
		if tbl.Kind != unstable.InlineTable {
			t.errorf(kv.line, kv.key, "%s", msg)
			return
		}
	}
	it = kv.val.Children()
	for it.Next() {
		tbl := it.Node()
		e := t.newVHID(t.lineOf(tbl))
		kvs := tbl.Children()
		for kvs.Next() {
			t.vhidSetting(e, t.keyValue(kvs.Node()))
		}
	}
}

// vhidKeyHints maps likely misspellings of some vhid keys (such as
// ifconfig's "pass") to the right key.
var vhidKeyHints = map[string]string{
	"pass":    "password",
	"address": "addresses",
	"addr":    "addresses",
	"iface":   "interface",
	// FreeBSD's ifconfig words and likely names of the protocol.
	"vrrpprio":     "vrrp-priority",
	"priority":     "vrrp-priority",
	"vrrpinterval": "vrrp-interval",
	"interval":     "vrrp-interval",
	"version":      "carpver",
	"protocol":     "carpver",
}

// vhidSetting handles a key of vhid table e.
func (t *tomlParser) vhidSetting(e *tomlVHID, kv keyValue) {
	v := &e.spec
	if vhidKeys[kv.key] {
		e.keys[kv.key] = place{kv.line, kv.word}
	}
	if t.hookKey(kv, &v.hooks) {
		return
	}
	switch kv.key {
	case "mover":
		t.moverSetting(e, kv)
	case "name":
		s, ok := t.str(kv, "a name")
		if ok && (s == "" || strings.ContainsAny(s, " \t\n")) {
			t.errorf(kv.line, kv.word, "name must be a word (keepalived's notify gets it as one argument)")
			return
		}
		v.name = s
	case "interface":
		if s, ok := t.str(kv, "an interface name"); ok {
			v.iface, v.ifacePos = s, kv.pos()
		}
	case "vhid", "advbase", "advskew", "carpver", "vrrp-priority", "vrrp-interval":
		x, ok := t.integer(kv, limits(kv.key))
		if !ok {
			// Without its vhid, a table cannot be told from the others.
			v.bad = v.bad || kv.key == "vhid"
			return
		}
		n := number{val: x, pos: kv.pos(), set: true}
		switch kv.key {
		case "vhid":
			v.vhid = n
		case "advbase":
			v.advbase = n
		case "carpver":
			v.version = n
		case "vrrp-priority":
			v.vrrpPrio = n
		case "vrrp-interval":
			v.vrrpInterval = n
		default:
			v.advskew = n
		}
	case "vrrp-tiebreak":
		if b, ok := t.boolean(kv); ok {
			v.vrrpTieBreak, v.tieBreakPos = &b, kv.pos()
		}
	case "password":
		s, ok := t.str(kv, "a string")
		switch {
		case !ok:
		case s == "":
			t.errorf(kv.line, kv.word, "password is empty (leave it out for none)")
		default:
			v.password, v.passwordPos = s, kv.pos()
		}
	case "password-file":
		if s, ok := t.str(kv, "a file name"); ok {
			t.passwordFile(kv, v, s)
			v.passwordPos = kv.pos()
		}
	case "addresses":
		t.addresses(e, kv)
	case "peer", "peer6":
		s, ok := t.str(kv, "an address")
		if !ok {
			return
		}
		a, msg := parsePeer(kv.key, s)
		if msg != "" {
			t.errorf(kv.line, kv.word, "%s", msg)
			return
		}
		if kv.key == "peer" {
			v.peer, v.peerPos = a, kv.pos()
		} else {
			v.peer6, v.peer6Pos = a, kv.pos()
		}
	case "preempt":
		if b, ok := t.boolean(kv); ok {
			v.preempt = &b
		}
	case "virtual-mac":
		if b, ok := t.boolean(kv); ok {
			v.virtualMAC, v.virtualMACPos = b, kv.pos()
		}
	case "replay-protection":
		if b, ok := t.boolean(kv); ok {
			v.replayProtection, v.replayPos = b, kv.pos()
		}
	case "state":
		s, ok := t.str(kv, "master or backup")
		if !ok {
			return
		}
		if s, ok = parseState(s); !ok {
			t.errorf(kv.line, kv.word, "state must be master or backup")
			return
		}
		v.state, v.statePos = s, kv.pos()
	case "electorate":
		t.electorate(v, kv)
	default:
		switch {
		case globalKeys[kv.key]:
			t.errorf(kv.line, kv.key, "%s is a global setting: move it above the first [[vhid]] (TOML puts the keys after a [[vhid]] header in that vhid)", kv.key)
		case vhidKeyHints[kv.key] != "":
			t.errorf(kv.line, kv.key, "unknown key in [[vhid]] (did you mean %s?)", vhidKeyHints[kv.key])
		default:
			t.errorf(kv.line, kv.key, "unknown key in [[vhid]]")
		}
	}
}

// passwordFile reads the pass phrase of v from the file named s.
func (t *tomlParser) passwordFile(kv keyValue, v *vhidSpec, s string) {
	if s == "" {
		t.errorf(kv.line, kv.word, "password-file must be a file name")
		return
	}
	path := s
	if !filepath.IsAbs(path) {
		path = filepath.Join(t.baseDir, path)
	}
	pass, err := readPasswordFile(path)
	if err != nil {
		t.errorf(kv.line, kv.word, "%v", err)
		return
	}
	v.password = pass
	t.cfg.Files = append(t.cfg.Files, FileRef{Path: path, Key: kv.key, Origin: t.at(kv.line)})
}

// maxPasswordFile is the largest password file read. carp(4) uses only the
// first 19 bytes of a pass phrase; the limit keeps a mistaken name (a log
// file, /dev/zero) from being read whole.
const maxPasswordFile = 1024

// readPasswordFile returns the pass phrase held in the regular file path,
// without its trailing newline (LF or CRLF). The file must be private to
// carpd (checkPasswordFile).
func readPasswordFile(path string) (string, error) {
	// Stat first: opening a FIFO would block.
	fi, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("cannot read the password: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("password file %s is not a regular file", path)
	}
	// Non-blocking in case it was swapped for a FIFO since; the checks
	// are made on what was opened.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return "", passwordReadError(path, err)
	}
	defer f.Close()
	if fi, err = f.Stat(); err != nil {
		return "", fmt.Errorf("cannot read the password: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("password file %s is not a regular file", path)
	}
	if err := checkPasswordFile(path, fi); err != nil {
		return "", err
	}
	b, err := io.ReadAll(io.LimitReader(f, maxPasswordFile+1))
	switch {
	case err != nil:
		return "", fmt.Errorf("cannot read the password: %w", err)
	case len(b) > maxPasswordFile:
		return "", fmt.Errorf("password file %s is longer than %d bytes", path, maxPasswordFile)
	}
	pass := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	if pass == "" {
		return "", fmt.Errorf("password file %s is empty", path)
	}
	return pass, nil
}

// addresses handles the addresses list of vhid table e.
func (t *tomlParser) addresses(e *tomlVHID, kv keyValue) {
	const want = `addresses must be a list of addresses like ["192.0.2.50/32", "2001:db8::50/64"]`
	if kv.val.Kind != unstable.Array {
		t.errorf(kv.line, kv.word, "%s", want)
		return
	}
	if kv.val.Child() == nil {
		t.errorf(kv.line, kv.word, "addresses must list at least one address")
		return
	}
	it := kv.val.Children()
	for it.Next() {
		n := it.Node()
		if n.Kind == unstable.Array || n.Kind == unstable.InlineTable {
			t.errorf(kv.line, kv.key, "%s", want)
			continue
		}
		line, word := t.lineOf(n), t.raw(n)
		if n.Kind != unstable.String {
			t.errorf(line, word, "%s", want)
			continue
		}
		word = string(n.Data)
		prefix, _, ok := parseAddress(word)
		if !ok {
			t.errorf(line, word, "malformed address")
			continue
		}
		e.spec.addrs = append(e.spec.addrs, addrSpec{prefix: prefix, pos: pos{line, int(n.Raw.Offset), word}})
	}
}

// integer returns the value of kv, which must be an integer; r is the
// range the message names. The range itself is checked by the caller.
func (t *tomlParser) integer(kv keyValue, r [2]int) (int, bool) {
	if kv.val.Kind != unstable.Integer {
		t.errorf(kv.line, kv.word, "%s must be an integer %d..%d", kv.key, r[0], r[1])
		return 0, false
	}
	x, err := strconv.ParseInt(strings.ReplaceAll(string(kv.val.Data), "_", ""), 0, 64)
	if err != nil {
		// Beyond int64: out of any range.
		x = math.MaxInt64
		if strings.HasPrefix(string(kv.val.Data), "-") {
			x = math.MinInt64
		}
	}
	return int(x), true
}

// boolean returns the value of kv, which must be true or false.
func (t *tomlParser) boolean(kv keyValue) (bool, bool) {
	if kv.val.Kind != unstable.Bool {
		t.errorf(kv.line, kv.word, "%s must be true or false", kv.key)
		return false, false
	}
	return string(kv.val.Data) == "true", true
}

// str returns the value of kv, which must be a string; what describes the
// expected value in the message.
func (t *tomlParser) str(kv keyValue, what string) (string, bool) {
	if kv.val.Kind != unstable.String {
		t.errorf(kv.line, kv.word, "%s must be a string: %s", kv.key, what)
		return "", false
	}
	return string(kv.val.Data), true
}

// finish checks each vhid table for what TOML alone can get wrong (a
// required key missing, password and password-file both given) and returns
// them all, in file order, for check.
func (t *tomlParser) finish() []*vhidSpec {
	var specs []*vhidSpec
	for _, e := range t.tables {
		for _, k := range []string{"interface", "vhid", "addresses"} {
			if _, ok := e.keys[k]; !ok {
				t.errorf(e.spec.at, "[[vhid]]", "%s is required", k)
				e.spec.bad = true
			}
		}
		if pw, ok := e.keys["password"]; ok {
			if pf, ok := e.keys["password-file"]; ok {
				t.errorf(pf.line, "password-file", "give password (%s) or password-file, not both", t.at(pw.line))
			}
		}
		if !checkValues(t.errs, &e.spec) {
			e.spec.bad = true
		}
		specs = append(specs, &e.spec)
	}
	return specs
}

// hookKey handles the hook keys, which the top level and a [[vhid]] table
// share: hook (devd's convention), upscript, downscript, xparam (ucarp's)
// and notify, notify_master, notify_backup, notify_fault, notify_stop
// (keepalived's). It reports whether kv was one.
func (t *tomlParser) hookKey(kv keyValue, h *Hooks) bool {
	var dst *string
	switch kv.key {
	case "hook":
		dst = &h.Devd
	case "upscript":
		dst = &h.UpScript
	case "downscript":
		dst = &h.DownScript
	case "notify":
		dst = &h.Notify
	case "notify_master", "notify_backup", "notify_fault", "notify_stop":
		if argv, ok := t.command(kv); ok {
			*map[string]*[]string{
				"notify_master": &h.NotifyMaster, "notify_backup": &h.NotifyBackup,
				"notify_fault": &h.NotifyFault, "notify_stop": &h.NotifyStop,
			}[kv.key] = argv
			t.cfg.Files = append(t.cfg.Files, FileRef{Path: argv[0], Key: kv.key, Origin: t.at(kv.line), Program: true})
		}
		return true
	case "xparam":
		if s, ok := t.str(kv, "a string"); ok {
			h.XParam = s
		}
		return true
	default:
		return false
	}
	if s, ok := t.path(kv); ok {
		*dst = s
		t.cfg.Files = append(t.cfg.Files, FileRef{Path: s, Key: kv.key, Origin: t.at(kv.line), Program: true})
	}
	return true
}

// command returns the command of kv: a list of words, or a string split
// into words as keepalived splits a notify_master line (blanks separate
// words; single or double quotes keep blanks in one; no shell, no
// expansion). The first word must be an absolute path.
func (t *tomlParser) command(kv keyValue) ([]string, bool) {
	const want = `a command like "/etc/carpd/master.sh arg" or ["/etc/carpd/master.sh", "arg"]`
	var argv []string
	switch kv.val.Kind {
	case unstable.String:
		var err error
		if argv, err = SplitCommand(string(kv.val.Data)); err != nil {
			t.errorf(kv.line, kv.word, "%s: %v", kv.key, err)
			return nil, false
		}
	case unstable.Array:
		it := kv.val.Children()
		for it.Next() {
			n := it.Node()
			if n.Kind != unstable.String {
				t.errorf(kv.line, kv.word, "%s must be %s", kv.key, want)
				return nil, false
			}
			argv = append(argv, string(n.Data))
		}
	default:
		t.errorf(kv.line, kv.word, "%s must be %s", kv.key, want)
		return nil, false
	}
	if len(argv) == 0 || !filepath.IsAbs(argv[0]) {
		t.errorf(kv.line, kv.word, "%s must start with an absolute path (it runs without a shell)", kv.key)
		return nil, false
	}
	return argv, true
}

// SplitCommand splits a command line into words as keepalived does for
// its notify_* scripts: blanks separate words, and single or double
// quotes keep blanks within one; nothing else is special.
func SplitCommand(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	var quote rune
	for _, r := range s {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			cur.WriteRune(r)
		case r == '\'' || r == '"':
			quote, inWord = r, true
		case r == ' ' || r == '\t':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case r == '\n' || r == '\r':
			return nil, errors.New("a command is one line")
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unterminated %c quote", quote)
	}
	if inWord {
		words = append(words, cur.String())
	}
	if len(words) == 0 {
		return nil, errors.New("empty command")
	}
	return words, nil
}

// path returns the value of kv, which must be an absolute path.
func (t *tomlParser) path(kv keyValue) (string, bool) {
	s, ok := t.str(kv, "an absolute path")
	if !ok {
		return "", false
	}
	if !filepath.IsAbs(s) {
		t.errorf(kv.line, kv.word, "%s must be an absolute path", kv.key)
		return "", false
	}
	return s, true
}
