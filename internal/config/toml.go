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

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pelletier/go-toml/v2"
	"github.com/pelletier/go-toml/v2/unstable"
)

// Limits of the TOML file's numeric settings.
const (
	maxDSCP = 63 // 6 bits of the IPv4 TOS / IPv6 traffic class byte
	// maxDemotionFactor is the largest useful demotion factor: FreeBSD
	// clamps the advertised advskew plus demotion to 240 (CARP_MAXSKEW).
	maxDemotionFactor = 240
)

// logLevels are the values of log-level, the levels of log/slog.
var logLevels = []string{"debug", "info", "warn", "error"}

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
// is taken relative to the directory of path. See ParseTOML.
func LoadTOML(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load config: %w", err)
	}
	return ParseTOML(path, data, filepath.Dir(path))
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
//	state          "master" or "backup": the state to start in
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
		parser: &parser{
			file:  name,
			cfg:   *Default(),
			addrs: make(map[netip.Addr]addrUse),
		},
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
	t.finish()
	if len(t.errs) > 0 {
		slices.SortStableFunc(t.errs, func(a, b error) int {
			return errLine(a) - errLine(b)
		})
		return nil, errors.Join(t.errs...)
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

// errLine is the line of an *Error, for sorting; 0 for other errors.
func errLine(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Line
	}
	return 0
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

// tomlParser holds the state of ParseTOML's second pass. It borrows the
// rc.conf parser's error list, its address bookkeeping and its checks.
type tomlParser struct {
	*parser
	baseDir string
	data    []byte
	lines   []int // lineStarts(data)
	// section is the table the key/value lines belong to: the top level,
	// the last [[vhid]], or a table that was reported as unknown.
	section tomlSection
	tables  []*tomlVHID
}

type tomlSection int

const (
	topLevel tomlSection = iota
	inVHID
	unknownTable
)

// tomlVHID is one [[vhid]] table being read.
type tomlVHID struct {
	v    VHID
	line int // of its [[vhid]] header or inline table
	// keys holds where each of the table's keys was written.
	keys      map[string]place
	addrLines []int    // the line of each of v.Addresses
	addrWords []string // and the address as written
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
	// word is the line `key = value` as written, for messages; just the
	// key for multi-line values and for passwords, which must not reach a
	// log.
	word string
	val  *unstable.Node
}

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
	kv := keyValue{key: key, line: line, word: key, val: n.Value()}
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
		}
	case unstable.ArrayTable:
		key, line := t.keyOf(n)
		if key == "vhid" {
			t.section = inVHID
			t.newVHID(line)
			return
		}
		t.section = unknownTable
		t.errorf(line, key, "unknown table (carpd knows only [[vhid]])")
	case unstable.Table:
		key, line := t.keyOf(n)
		t.section = unknownTable
		if key == "vhid" {
			t.errorf(line, key, "write [[vhid]], with double brackets: there may be several")
			return
		}
		t.errorf(line, key, "unknown table (carpd knows only [[vhid]])")
	}
}

// newVHID starts a vhid table at line.
func (t *tomlParser) newVHID(line int) *tomlVHID {
	e := &tomlVHID{
		v:    VHID{AdvBase: DefaultAdvBase, AdvSkew: DefaultAdvSkew},
		line: line,
		keys: make(map[string]place),
	}
	t.tables = append(t.tables, e)
	return e
}

// Keys of the two levels, for the hints about a key in the wrong place.
var (
	globalKeys = map[string]bool{
		"preempt": true, "preempt-delay": true, "dscp": true, "log-level": true,
		"ifdown-demotion-factor": true, "senderr-demotion-factor": true,
	}
	vhidKeys = map[string]bool{
		"interface": true, "vhid": true, "addresses": true, "advbase": true,
		"advskew": true, "password": true, "password-file": true, "peer": true,
		"peer6": true, "preempt": true, "virtual-mac": true, "state": true,
	}
)

// global handles a top-level key.
func (t *tomlParser) global(kv keyValue) {
	c := &t.cfg
	switch kv.key {
	case "preempt":
		if b, ok := t.boolean(kv); ok {
			c.Preempt = b
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
	case "ifdown-demotion-factor":
		if x, ok := t.integer(kv, 0, maxDemotionFactor); ok {
			c.IfDownDemotion = x
		}
	case "senderr-demotion-factor":
		if x, ok := t.integer(kv, 0, maxDemotionFactor); ok {
			c.SendErrDemotion = x
		}
	case "dscp":
		if x, ok := t.integer(kv, 0, maxDSCP); ok {
			c.DSCP = x
		}
	case "log-level":
		s, ok := t.str(kv, strings.Join(logLevels, ", "))
		if !ok {
			return
		}
		if s = strings.ToLower(s); !slices.Contains(logLevels, s) {
			t.errorf(kv.line, kv.word, "log-level must be debug, info, warn or error")
			return
		}
		c.LogLevel = s
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
}

// vhidSetting handles a key of vhid table e.
func (t *tomlParser) vhidSetting(e *tomlVHID, kv keyValue) {
	v := &e.v
	if vhidKeys[kv.key] {
		e.keys[kv.key] = place{kv.line, kv.word}
	}
	switch kv.key {
	case "interface":
		if s, ok := t.str(kv, "an interface name"); ok && t.ifaceName(kv, s) {
			v.Interface = s
		}
	case "vhid":
		if x, ok := t.integer(kv, 1, 255); ok {
			v.VHID = uint8(x)
		}
	case "advbase":
		if x, ok := t.integer(kv, 1, 255); ok {
			v.AdvBase = uint8(x)
		}
	case "advskew":
		if x, ok := t.integer(kv, 0, 254); ok {
			v.AdvSkew = uint8(x)
		}
	case "password":
		s, ok := t.str(kv, "a string")
		switch {
		case !ok:
		case s == "":
			t.errorf(kv.line, kv.word, "password is empty (leave it out for none)")
		default:
			v.Password = s
		}
	case "password-file":
		if s, ok := t.str(kv, "a file name"); ok {
			t.passwordFile(kv, v, s)
		}
	case "addresses":
		t.addresses(e, kv)
	case "peer", "peer6":
		s, ok := t.str(kv, "an address")
		if !ok {
			return
		}
		if a, ok := t.peer(kv.line, kv.word, kv.key, s); ok {
			if kv.key == "peer" {
				v.Peer = a
			} else {
				v.Peer6 = a
			}
		}
	case "preempt":
		if b, ok := t.boolean(kv); ok {
			v.Preempt = &b
		}
	case "virtual-mac":
		if b, ok := t.boolean(kv); ok {
			v.VirtualMAC = b
		}
	case "state":
		s, ok := t.str(kv, "master or backup")
		if !ok {
			return
		}
		if s = strings.ToLower(s); s != "master" && s != "backup" {
			t.errorf(kv.line, kv.word, "state must be master or backup")
			return
		}
		v.State = s
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

// ifaceName checks an interface name as Linux's dev_valid_name does.
func (t *tomlParser) ifaceName(kv keyValue, s string) bool {
	switch {
	case s == "" || s == "." || s == "..":
		t.errorf(kv.line, kv.word, "interface must be an interface name")
	case len(s) > maxIfaceName:
		t.errorf(kv.line, kv.word, "interface name %q is longer than %d characters", s, maxIfaceName)
	case strings.ContainsAny(s, "/: \t\n\r\v\f"):
		t.errorf(kv.line, kv.word, "interface name must not contain '/', ':' or blanks")
	default:
		return true
	}
	return false
}

// passwordFile reads the pass phrase of v from the file named s.
func (t *tomlParser) passwordFile(kv keyValue, v *VHID, s string) {
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
	v.Password = pass
}

// maxPasswordFile is the largest password file read. carp(4) uses only the
// first 19 bytes of a pass phrase; the limit keeps a mistaken name (a log
// file, /dev/zero) from being read whole.
const maxPasswordFile = 1024

// readPasswordFile returns the pass phrase held in the regular file path,
// without its trailing newline (LF or CRLF).
func readPasswordFile(path string) (string, error) {
	// Stat first: opening a FIFO would block.
	fi, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("cannot read the password: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("password file %s is not a regular file", path)
	}
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("cannot read the password: %w", err)
	}
	defer f.Close()
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
		e.v.Addresses = append(e.v.Addresses, prefix)
		e.addrLines = append(e.addrLines, line)
		e.addrWords = append(e.addrWords, word)
	}
}

// integer returns the value of kv, which must be an integer in lo..hi.
func (t *tomlParser) integer(kv keyValue, lo, hi int) (int, bool) {
	if kv.val.Kind != unstable.Integer {
		t.errorf(kv.line, kv.word, "%s must be an integer %d..%d", kv.key, lo, hi)
		return 0, false
	}
	x, err := strconv.ParseInt(string(kv.val.Data), 0, 64)
	if err != nil || x < int64(lo) || x > int64(hi) {
		t.errorf(kv.line, kv.word, "%s must be %d..%d", kv.key, lo, hi)
		return 0, false
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

// finish checks each vhid table as a whole and adds the good ones to the
// Config, in file order.
func (t *tomlParser) finish() {
	defined := make(map[vhidKey]place)
	for _, e := range t.tables {
		v := &e.v
		complete := true
		for _, k := range []string{"interface", "vhid", "addresses"} {
			if _, ok := e.keys[k]; !ok {
				t.errorf(e.line, "[[vhid]]", "%s is required", k)
				complete = false
			}
		}
		if pw, ok := e.keys["password"]; ok {
			if pf, ok := e.keys["password-file"]; ok {
				t.errorf(pf.line, "password-file", "give password (%s) or password-file, not both", t.at(pw.line))
			}
		}
		t.peerFamily(e)
		if !complete || v.Interface == "" || v.VHID == 0 {
			continue // reported already
		}
		key := vhidKey{v.Interface, v.VHID}
		if first, dup := defined[key]; dup {
			p := e.keys["vhid"]
			t.errorf(p.line, p.word, "vhid %d on %s is already defined at %s", v.VHID, v.Interface, t.at(first.line))
			continue
		}
		defined[key] = place{line: e.line}
		for i, prefix := range v.Addresses {
			a, line := prefix.Addr(), e.addrLines[i]
			if use, dup := t.addrs[a]; dup {
				if use.key == key {
					t.errorf(line, e.addrWords[i], "duplicate address: already in vhid %d on %s at %s", key.vhid, key.iface, t.at(use.line))
				} else {
					t.errorf(line, e.addrWords[i], "address already used by vhid %d on %s at %s", use.key.vhid, use.key.iface, t.at(use.line))
				}
				continue
			}
			t.addrs[a] = addrUse{key: key, line: line}
		}
		v.Origin = t.at(e.line)
		t.cfg.VHIDs = append(t.cfg.VHIDs, *v)
	}
}

// peerFamily checks that a vhid with a unicast peer has an address of the
// peer's family: carpd sends the adverts of a family only for a vhid that
// holds addresses of it, so such a peer would never hear from this host.
func (t *tomlParser) peerFamily(e *tomlVHID) {
	var has4, has6 bool
	for _, p := range e.v.Addresses {
		if p.Addr().Is4() {
			has4 = true
		} else {
			has6 = true
		}
	}
	if p, ok := e.keys["peer"]; ok && e.v.Peer.IsValid() && !has4 && len(e.v.Addresses) > 0 {
		t.errorf(p.line, p.word, "peer is an IPv4 peer, but the vhid has no IPv4 address")
	}
	if p, ok := e.keys["peer6"]; ok && e.v.Peer6.IsValid() && !has6 && len(e.v.Addresses) > 0 {
		t.errorf(p.line, p.word, "peer6 is an IPv6 peer, but the vhid has no IPv6 address")
	}
}
