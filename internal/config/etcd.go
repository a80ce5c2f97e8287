package config

// This file reads the [etcd] table of the TOML file, the cluster that
// elects the holder of the vhids with electorate = "etcd", and checks its
// timing rules (the fence of the etcd electorate; see Etcd):
//
//	[etcd]
//	endpoints = ["http://198.51.100.10:2379"]
//	prefix = "/carpd/"
//	node = "h1"
//	ttl = "10s"

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/pelletier/go-toml/v2/unstable"
)

// The electorates of a vhid.
const (
	ElectorateCARP = "carp" // CARP or VRRPv3 adverts (carpver selects which)
	ElectorateEtcd = "etcd" // a leader key on an etcd cluster
)

// Defaults of the [etcd] table.
const (
	DefaultEtcdPrefix = "/carpd/"
	DefaultEtcdTTL    = 10 * time.Second
	// MinEtcdTTL is etcd's smallest lease TTL with its default election
	// timeout (1.5 × 1 s, rounded up).
	MinEtcdTTL = 2 * time.Second
	// MinFenceMargin is the least fence margin: scheduling slack (GC, CPU
	// starvation) of at least 0.5 s.
	MinFenceMargin = 500 * time.Millisecond
)

// Etcd is the [etcd] table: the cluster and the timing of the etcd
// electorate. A node renews its lease every Renew (each request bounded by
// RequestTimeout) and, as holder, releases at D = t_s + TTL - FenceMargin,
// t_s being the send time of the last renewal the server acknowledged; the
// addresses' kernel lifetime ends a second before D. The rules, checked
// with the TTL asked for (etcd may grant a longer one, never a shorter):
// TTL >= 2 s and whole seconds; FenceMargin >= 0.5 s;
// Renew < floor(TTL - FenceMargin) - 1 s (a renewal lands within the
// addresses' lifetime); TTL - FenceMargin >= 3 × Renew (two lost renewals
// are survived); RequestTimeout < Renew.
type Etcd struct {
	Endpoints []string
	Prefix    string // keys <Prefix><vhid>/leader and <Prefix><vhid>/members/<Node>
	Node      string // the leader key's value; default the hostname
	TTL       time.Duration
	// Renew, RequestTimeout and FenceMargin default to TTL/5, 3/4 of
	// Renew and max(TTL/5, 1 s).
	Renew, RequestTimeout, FenceMargin time.Duration
	CAFile, CertFile, KeyFile          string
	Username, PasswordFile             string
	// Origin is "file:line" of the [etcd] table.
	Origin string
}

// etcdTable is the [etcd] table being read.
type etcdTable struct {
	e    Etcd
	line int
	keys map[string]place
}

var etcdKeys = []string{"endpoints", "prefix", "node", "ttl", "renew", "request-timeout", "fence-margin",
	"ca-file", "cert-file", "key-file", "username", "password-file"}

// newEtcd starts the [etcd] table at line.
func (t *tomlParser) newEtcd(line int) {
	t.etcd = &etcdTable{e: Etcd{Prefix: DefaultEtcdPrefix, TTL: DefaultEtcdTTL}, line: line, keys: map[string]place{}}
}

// etcdSetting handles a key of the [etcd] table.
func (t *tomlParser) etcdSetting(kv keyValue) {
	e := &t.etcd.e
	t.etcd.keys[kv.key] = place{kv.line, kv.word}
	switch kv.key {
	case "endpoints":
		t.endpoints(kv)
	case "prefix":
		if s, ok := t.str(kv, `a key prefix like "/carpd/"`); ok {
			if s == "" || !strings.HasSuffix(s, "/") || strings.ContainsAny(s, " \t\n") {
				t.errorf(kv.line, kv.word, `prefix must end with "/" and have no blanks, like "/carpd/"`)
				return
			}
			e.Prefix = s
		}
	case "node":
		if s, ok := t.str(kv, "a name"); ok {
			if !validNode(s) {
				t.errorf(kv.line, kv.word, "node must be 1..253 printable characters without blanks or /")
				return
			}
			e.Node = s
		}
	case "ttl", "renew", "request-timeout", "fence-margin":
		s, ok := t.str(kv, `a duration like "10s"`)
		if !ok {
			return
		}
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			t.errorf(kv.line, kv.word, `%s must be a positive duration like "2s" or "1500ms"`, kv.key)
			return
		}
		switch kv.key {
		case "ttl":
			e.TTL = d
		case "renew":
			e.Renew = d
		case "request-timeout":
			e.RequestTimeout = d
		default:
			e.FenceMargin = d
		}
	case "ca-file", "cert-file", "key-file", "password-file":
		s, ok := t.str(kv, "a file name")
		if !ok {
			return
		}
		if s == "" {
			t.errorf(kv.line, kv.word, "%s is empty (leave it out for none)", kv.key)
			return
		}
		if !filepath.IsAbs(s) && t.baseDir != "" {
			s = filepath.Join(t.baseDir, s)
		}
		*map[string]*string{"ca-file": &e.CAFile, "cert-file": &e.CertFile, "key-file": &e.KeyFile,
			"password-file": &e.PasswordFile}[kv.key] = s
		t.cfg.Files = append(t.cfg.Files, FileRef{Path: s, Key: kv.key, Origin: t.at(kv.line)})
	case "username":
		if s, ok := t.str(kv, "a user name"); ok {
			if s == "" {
				t.errorf(kv.line, kv.word, "username is empty (leave it out for none)")
				return
			}
			e.Username = s
		}
	default:
		t.errorf(kv.line, kv.key, "unknown key in [etcd] (carpd knows %s)", strings.Join(etcdKeys, ", "))
	}
}

// endpoints reads the endpoints list: http:// or https:// URLs.
func (t *tomlParser) endpoints(kv keyValue) {
	msg := `endpoints must be a list of URLs like ["https://198.51.100.10:2379"]`
	if kv.val.Kind != unstable.Array {
		t.errorf(kv.line, kv.word, "%s", msg)
		return
	}
	var eps []string
	it := kv.val.Children()
	for it.Next() {
		n := it.Node()
		if n.Kind != unstable.String {
			t.errorf(kv.line, kv.word, "%s", msg)
			return
		}
		s := string(n.Data)
		u, err := url.Parse(s)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
			t.errorf(t.lineOf(n), s, "not an endpoint: give http://HOST:PORT or https://HOST:PORT")
			return
		}
		eps = append(eps, s)
	}
	if len(eps) == 0 {
		t.errorf(kv.line, kv.word, "%s (it is empty)", msg)
		return
	}
	t.etcd.e.Endpoints = eps
}

// validNode reports whether s can be a node name (the etcd electorate's
// rule: 1..253 printable ASCII characters, no blank, no '/').
func validNode(s string) bool {
	if len(s) == 0 || len(s) > 253 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' || s[i] == '/' {
			return false
		}
	}
	return true
}

// finishEtcd completes the [etcd] table (defaults, required keys, timing
// rules) and checks the vhids' electorates against it.
func (t *tomlParser) finishEtcd() {
	var etcdVHIDs []string
	for _, v := range t.cfg.VHIDs {
		if v.Electorate == ElectorateEtcd {
			etcdVHIDs = append(etcdVHIDs, fmt.Sprintf("vhid %d on %s (%s)", v.VHID, v.Interface, v.Origin))
		}
	}
	if t.etcd == nil {
		if len(etcdVHIDs) > 0 {
			t.errorf(0, "", "%s: electorate = \"etcd\" needs an [etcd] table", strings.Join(etcdVHIDs, ", "))
		}
		return
	}
	tb, e := t.etcd, &t.etcd.e
	e.Origin = t.at(tb.line)
	if _, ok := tb.keys["endpoints"]; !ok {
		t.errorf(tb.line, "[etcd]", "endpoints is required")
	}
	if e.Node == "" {
		h, err := os.Hostname()
		if err != nil || !validNode(h) {
			t.errorf(tb.line, "[etcd]", "node is not set and the hostname %q cannot be one: set node", h)
		}
		e.Node = h
	}
	t.etcdPairs()
	t.etcdTiming()
	t.cfg.Etcd = e
}

// etcdPairs checks the keys that go in pairs.
func (t *tomlParser) etcdPairs() {
	tb := t.etcd
	for _, p := range [][2]string{{"cert-file", "key-file"}, {"key-file", "cert-file"}, {"username", "password-file"}, {"password-file", "username"}} {
		if pl, ok := tb.keys[p[0]]; ok {
			if _, ok := tb.keys[p[1]]; !ok {
				t.errorf(pl.line, pl.word, "%s needs %s", p[0], p[1])
			}
		}
	}
}

// etcdTiming sets the derived defaults and reports every timing rule
// broken, at the line of a key that takes part (the last one written).
func (t *tomlParser) etcdTiming() {
	tb, e := t.etcd, &t.etcd.e
	if e.Renew == 0 {
		e.Renew = e.TTL / 5
	}
	if e.RequestTimeout == 0 {
		e.RequestTimeout = e.Renew * 3 / 4
	}
	if e.FenceMargin == 0 {
		e.FenceMargin = max(e.TTL/5, time.Second)
	}
	where := func(keys ...string) (int, string) {
		line, word := tb.line, "[etcd]"
		for _, k := range keys {
			if p, ok := tb.keys[k]; ok && p.line >= line {
				line, word = p.line, p.word
			}
		}
		return line, word
	}
	values := fmt.Sprintf("(ttl %v, renew %v, fence-margin %v, request-timeout %v)", e.TTL, e.Renew, e.FenceMargin, e.RequestTimeout)
	rules := []struct {
		broken bool
		keys   []string
		msg    string
	}{
		{e.TTL < MinEtcdTTL, []string{"ttl"}, "ttl must be at least 2s (etcd's smallest lease)"},
		{e.TTL%time.Second != 0, []string{"ttl"}, "ttl must be whole seconds (etcd grants leases in seconds)"},
		{e.FenceMargin < MinFenceMargin, []string{"fence-margin"}, "fence-margin must be at least 500ms (scheduling slack)"},
		{e.FenceMargin >= e.TTL, []string{"fence-margin", "ttl"}, "fence-margin must be less than ttl"},
		{e.Renew >= (e.TTL-e.FenceMargin).Truncate(time.Second)-time.Second, []string{"renew", "ttl", "fence-margin"},
			"renew must be less than floor(ttl - fence-margin) - 1s, or a renewal may come after the addresses' lifetime ran out"},
		{e.TTL-e.FenceMargin < 3*e.Renew, []string{"renew", "ttl", "fence-margin"},
			"ttl - fence-margin must be at least 3 × renew, to survive two lost renewals"},
		{e.RequestTimeout >= e.Renew, []string{"request-timeout", "renew"}, "request-timeout must be less than renew"},
	}
	for _, r := range rules {
		if r.broken {
			line, word := where(r.keys...)
			t.errorf(line, word, "%s %s", r.msg, values)
		}
	}
}

// electorate reads a vhid's electorate or mover key.
func (t *tomlParser) electorate(v *vhidSpec, kv keyValue) {
	s, ok := t.str(kv, "a name")
	if !ok {
		return
	}
	switch {
	case kv.key == "electorate" && (s == ElectorateCARP || s == ElectorateEtcd):
		v.electorate, v.electoratePos = s, kv.pos()
	case kv.key == "electorate" && s == "vrrp":
		t.errorf(kv.line, kv.word, `VRRPv3 is electorate = "carp" (the default) with carpver = 3`)
	default:
		t.errorf(kv.line, kv.word, `electorate must be "carp" or "etcd"`)
	}
}

// checkElectorate: a vhid elected on etcd sends no adverts, so it takes no
// key of the advert protocols.
func checkElectorate(l *errList, s *vhidSpec) {
	if s.electorate != ElectorateEtcd {
		return
	}
	why := fmt.Sprintf("vhid %d on %s is elected on etcd (%q at %s) and sends no adverts", s.vhid.val, s.iface, s.electoratePos.word, l.at(s.electoratePos.line))
	for _, p := range []struct {
		set bool
		pos pos
	}{
		{s.version.set, s.version.pos}, {s.password != "", s.passwordPos}, {s.advbase.set, s.advbase.pos},
		{s.peer.IsValid(), s.peerPos}, {s.peer6.IsValid(), s.peer6Pos}, {s.replayProtection, s.replayPos},
		{s.vrrpPrio.set, s.vrrpPrio.pos}, {s.vrrpInterval.set, s.vrrpInterval.pos}, {s.tieBreakPos.line != 0, s.tieBreakPos},
		{s.virtualMAC, s.virtualMACPos}, {s.state != "", s.statePos},
	} {
		if p.set {
			l.errorAt(p.pos, "an advert keyword, but %s", why)
		}
	}
}
