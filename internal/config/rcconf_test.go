package config

import (
	"errors"
	"io/fs"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// The seed's and the reference's rc.conf lines, verbatim. These are parser
// test data only: nothing here sends traffic.
const (
	seedMaster = `ifconfig_em0_alias0="inet 192.168.2.50/32 vhid 100 advskew 100 pass lampros"`
	seedBackup = `ifconfig_em0_alias0="inet alias 192.168.2.50/32 vhid 100 advskew 200 pass lampros"`
	refHost    = `ifconfig_em0="inet 192.168.2.21 netmask 255.255.255.0"`
	refAlias1  = `ifconfig_em0_alias1="inet alias 192.168.2.51/32 vhid 100 advskew 100 pass lampros"`
	refAlias2  = `ifconfig_em0_alias2="inet vhid 1 pass testpass alias 192.168.1.50/32"`
	refNoInet  = `ifconfig_em1_alias0="vhid 12 advskew 210 pass X 192.168.1.11/32"`
	refInet6   = `ifconfig_vnet0_alias0="inet6 vhid 1 advskew 0 pass X alias 2001:db8::200/128"`
)

// cmpOpts compares netip values by ==, and a nil VHID list with an empty one.
var cmpOpts = []cmp.Option{
	cmpopts.EquateComparable(netip.Addr{}, netip.Prefix{}),
	cmpopts.EquateEmpty(),
	// Files has its own test (TestFiles).
	cmpopts.IgnoreFields(Config{}, "Files"),
}

func prefixes(ss ...string) []netip.Prefix {
	var ps []netip.Prefix
	for _, s := range ss {
		ps = append(ps, netip.MustParsePrefix(s))
	}
	return ps
}

// vhid returns a VHID with carp(4)'s defaults, for the tables to adjust.
func vhid(iface string, id uint8, origin string, addrs ...string) VHID {
	return VHID{
		Interface: iface,
		VHID:      id,
		AdvBase:   DefaultAdvBase,
		AdvSkew:   DefaultAdvSkew,
		Version:   VersionCARP,
		Addresses: prefixes(addrs...),
		Origin:    origin,
	}
}

// with returns v changed by f, so that a table row reads as one expression.
func with(v VHID, f func(*VHID)) VHID {
	f(&v)
	return v
}

type parseTest struct {
	name string
	in   string
	want []VHID
}

func runParseTests(t *testing.T, tests []parseTest) {
	t.Helper()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := ParseRCConf("rc.conf", strings.NewReader(tc.in))
			if err != nil {
				t.Fatalf("ParseRCConf: %v", err)
			}
			if cfg.Preempt {
				t.Errorf("Preempt = true, want false (rc.conf does not set it)")
			}
			if diff := cmp.Diff(tc.want, cfg.VHIDs, cmpOpts...); diff != "" {
				t.Errorf("VHIDs mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// goodForms are the accepted forms, one VHID result each.
var goodForms = []parseTest{
	{
		name: "seed master line",
		in:   seedMaster,
		want: []VHID{with(vhid("em0", 100, "rc.conf:1", "192.168.2.50/32"), func(v *VHID) {
			v.AdvSkew, v.Password = 100, "lampros"
		})},
	},
	{
		name: "seed backup line with alias noise",
		in:   seedBackup,
		want: []VHID{with(vhid("em0", 100, "rc.conf:1", "192.168.2.50/32"), func(v *VHID) {
			v.AdvSkew, v.Password = 200, "lampros"
		})},
	},
	{
		name: "reference alias1",
		in:   refAlias1,
		want: []VHID{with(vhid("em0", 100, "rc.conf:1", "192.168.2.51/32"), func(v *VHID) {
			v.AdvSkew, v.Password = 100, "lampros"
		})},
	},
	{
		name: "reference keywords before the address",
		in:   refAlias2,
		want: []VHID{with(vhid("em0", 1, "rc.conf:1", "192.168.1.50/32"), func(v *VHID) { v.Password = "testpass" })},
	},
	{
		name: "reference implied inet",
		in:   refNoInet,
		want: []VHID{with(vhid("em1", 12, "rc.conf:1", "192.168.1.11/32"), func(v *VHID) {
			v.AdvSkew, v.Password = 210, "X"
		})},
	},
	{
		name: "reference inet6",
		in:   refInet6,
		want: []VHID{with(vhid("vnet0", 1, "rc.conf:1", "2001:db8::200/128"), func(v *VHID) { v.Password = "X" })},
	},
	{
		name: "host address is ignored",
		in:   refHost,
	},
	{
		name: "reference block",
		in:   strings.Join([]string{refHost, seedMaster, refAlias1, refAlias2, refNoInet, refInet6}, "\n"),
		want: []VHID{
			with(vhid("em0", 100, "rc.conf:2", "192.168.2.50/32", "192.168.2.51/32"), func(v *VHID) {
				v.AdvSkew, v.Password = 100, "lampros"
			}),
			with(vhid("em0", 1, "rc.conf:4", "192.168.1.50/32"), func(v *VHID) { v.Password = "testpass" }),
			with(vhid("em1", 12, "rc.conf:5", "192.168.1.11/32"), func(v *VHID) {
				v.AdvSkew, v.Password = 210, "X"
			}),
			with(vhid("vnet0", 1, "rc.conf:6", "2001:db8::200/128"), func(v *VHID) { v.Password = "X" }),
		},
	},
	{
		name: "advbase",
		in:   `ifconfig_em0_alias0="inet 192.0.2.50/32 vhid 7 advbase 3"`,
		want: []VHID{with(vhid("em0", 7, "rc.conf:1", "192.0.2.50/32"), func(v *VHID) { v.AdvBase = 3 })},
	},
	{
		name: "advbase and advskew at their limits",
		in:   `ifconfig_em0_alias0="inet 192.0.2.50/32 vhid 255 advbase 255 advskew 254"`,
		want: []VHID{with(vhid("em0", 255, "rc.conf:1", "192.0.2.50/32"), func(v *VHID) {
			v.AdvBase, v.AdvSkew = 255, 254
		})},
	},
	{
		name: "state master, any case",
		in:   `ifconfig_em0_alias0="inet 192.0.2.50/32 vhid 1 state MASTER"`,
		want: []VHID{with(vhid("em0", 1, "rc.conf:1", "192.0.2.50/32"), func(v *VHID) { v.State = "master" })},
	},
	{
		name: "state backup",
		in:   `ifconfig_em0_alias0="inet 192.0.2.50/32 vhid 1 state backup"`,
		want: []VHID{with(vhid("em0", 1, "rc.conf:1", "192.0.2.50/32"), func(v *VHID) { v.State = "backup" })},
	},
	{
		name: "address without length is /32",
		in:   `ifconfig_em0_alias0="inet 192.0.2.50 vhid 1"`,
		want: []VHID{vhid("em0", 1, "rc.conf:1", "192.0.2.50/32")},
	},
	{
		name: "IPv6 address without length is /128",
		in:   `ifconfig_em0_alias0="inet6 2001:db8::50 vhid 1"`,
		want: []VHID{vhid("em0", 1, "rc.conf:1", "2001:db8::50/128")},
	},
	{
		name: "IPv6 address with implied family",
		in:   `ifconfig_em0_alias0="vhid 1 2001:db8::50/64"`,
		want: []VHID{vhid("em0", 1, "rc.conf:1", "2001:db8::50/64")},
	},
	{
		name: "address keeps its host bits and length",
		in:   `ifconfig_em0_alias0="inet 192.0.2.50/24 vhid 1"`,
		want: []VHID{vhid("em0", 1, "rc.conf:1", "192.0.2.50/24")},
	},
	{
		name: "dotted netmask",
		in:   `ifconfig_em0_alias0="inet 192.0.2.50 netmask 255.255.255.0 vhid 1"`,
		want: []VHID{vhid("em0", 1, "rc.conf:1", "192.0.2.50/24")},
	},
	{
		name: "hex netmask",
		in:   `ifconfig_em0_alias0="inet 192.0.2.50 netmask 0xfffffff0 vhid 1"`,
		want: []VHID{vhid("em0", 1, "rc.conf:1", "192.0.2.50/28")},
	},
	{
		name: "all-ones netmask",
		in:   `ifconfig_em0_alias0="inet 192.0.2.50 netmask 0xFFFFFFFF vhid 1"`,
		want: []VHID{vhid("em0", 1, "rc.conf:1", "192.0.2.50/32")},
	},
	{
		name: "netmask agreeing with the length",
		in:   `ifconfig_em0_alias0="inet 192.0.2.50/24 netmask 255.255.255.0 vhid 1"`,
		want: []VHID{vhid("em0", 1, "rc.conf:1", "192.0.2.50/24")},
	},
	{
		name: "prefixlen",
		in:   `ifconfig_em0_alias0="inet6 2001:db8::50 prefixlen 64 vhid 1"`,
		want: []VHID{vhid("em0", 1, "rc.conf:1", "2001:db8::50/64")},
	},
	{
		name: "peer",
		in:   `ifconfig_em0_alias0="inet 192.0.2.50/32 vhid 1 peer 198.51.100.224"`,
		want: []VHID{with(vhid("em0", 1, "rc.conf:1", "192.0.2.50/32"), func(v *VHID) {
			v.Peer = netip.MustParseAddr("198.51.100.224")
		})},
	},
	{
		name: "link-local peer6 with zone",
		in:   `ifconfig_em0_alias0="inet6 2001:db8::50/64 vhid 1 peer6 fe80::2%em0"`,
		want: []VHID{with(vhid("em0", 1, "rc.conf:1", "2001:db8::50/64"), func(v *VHID) {
			v.Peer6 = netip.MustParseAddr("fe80::2%em0")
		})},
	},
	{
		name: "peer and peer6 naming the CARP groups mean multicast",
		in:   `ifconfig_em0_alias0="inet 192.0.2.50/32 vhid 1 peer 224.0.0.18 peer6 ff02::12"`,
		want: []VHID{vhid("em0", 1, "rc.conf:1", "192.0.2.50/32")},
	},
	{
		name: "mcast and mcast6",
		in:   `ifconfig_em0_alias0="inet 192.0.2.50/32 vhid 1 mcast mcast6"`,
		want: []VHID{vhid("em0", 1, "rc.conf:1", "192.0.2.50/32")},
	},
	{
		name: "carpver 2 is carp",
		in:   `ifconfig_em0_alias0="inet 192.0.2.50/32 vhid 1 carpver 2"`,
		want: []VHID{vhid("em0", 1, "rc.conf:1", "192.0.2.50/32")},
	},
	{
		name: "every keyword, shuffled",
		in: `ifconfig_em0_alias0="inet pass s3cret state backup alias advskew 20 peer 198.51.100.7 ` +
			`peer6 2001:db8::7 netmask 255.255.255.128 advbase 2 192.0.2.50 vhid 42 carpver 2"`,
		want: []VHID{{
			Version:   VersionCARP,
			Interface: "em0", VHID: 42, AdvBase: 2, AdvSkew: 20, Password: "s3cret", State: "backup",
			Addresses: prefixes("192.0.2.50/25"),
			Peer:      netip.MustParseAddr("198.51.100.7"), Peer6: netip.MustParseAddr("2001:db8::7"),
			Origin: "rc.conf:1",
		}},
	},
	{
		name: "password kept as written, longer than 19 bytes",
		in:   `ifconfig_em0_alias0="inet 192.0.2.50/32 vhid 1 pass 0123456789abcdefghijKLMN"`,
		want: []VHID{with(vhid("em0", 1, "rc.conf:1", "192.0.2.50/32"), func(v *VHID) {
			v.Password = "0123456789abcdefghijKLMN"
		})},
	},
	{
		name: "single quotes",
		in:   `ifconfig_em0_alias0='inet 192.0.2.50/32 vhid 1 pass $x'`,
		want: []VHID{with(vhid("em0", 1, "rc.conf:1", "192.0.2.50/32"), func(v *VHID) { v.Password = "$x" })},
	},
	{
		name: "unquoted value",
		in:   `ifconfig_em0_alias0=vhid\ 1\ 192.0.2.50`,
		want: []VHID{vhid("em0", 1, "rc.conf:1", "192.0.2.50/32")},
	},
	{
		name: "concatenated quotes and escapes",
		in:   `ifconfig_em0_alias0="inet 192.0.2.50/32 "'vhid 1'" pass a\"b\\c\$d#e"`,
		want: []VHID{with(vhid("em0", 1, "rc.conf:1", "192.0.2.50/32"), func(v *VHID) { v.Password = `a"b\c$d#e` })},
	},
	{
		name: "blanks, comments and CRLF",
		in: "# carp\r\n\r\n" +
			"   \tifconfig_em0_alias0=\"inet 192.0.2.50/32 vhid 1\"  # the VIP\r\n" +
			"#ifconfig_em0_alias1=\"inet 192.0.2.51/32 vhid 1\"\r\n",
		want: []VHID{vhid("em0", 1, "rc.conf:3", "192.0.2.50/32")},
	},
	{
		name: "other lines are ignored",
		in: `hostname="fw1.example.org"
. /etc/rc.conf.local
if [ -n "$foo" ]; then pf_enable="YES"; fi
sshd_flags="-o $weird
ifconfig_em0="inet 192.0.2.2 netmask 255.255.255.0
ifconfig_em0_ipv6="inet6 2001:db8::2/64"
ipv6_ifconfig_em0_alias0="2001:db8::99 vhid 9"
ifconfig_em0_alias="inet 192.0.2.98/32"
ifconfig_em0_alias0="inet 192.0.2.9/24"
ifconfig_em0_alias1="inet6 2001:db8::9 prefixlen 64 up"
ifconfig_em0_alias2="ether 02:00:00:00:00:01"
ifconfig_em0_alias3="inet 192.0.2.50/32 vhid 1"`,
		want: []VHID{vhid("em0", 1, "rc.conf:12", "192.0.2.50/32")},
	},
	{
		name: "aliases variable holds several entries",
		in:   `ifconfig_em0_aliases="inet 192.0.2.50/32 vhid 1 pass x inet 192.0.2.51/32 vhid 1 pass x inet6 2001:db8::50 vhid 2 inet 192.0.2.9/24"`,
		want: []VHID{
			with(vhid("em0", 1, "rc.conf:1", "192.0.2.50/32", "192.0.2.51/32"), func(v *VHID) { v.Password = "x" }),
			vhid("em0", 2, "rc.conf:1", "2001:db8::50/128"),
		},
	},
	{
		name: "alias variable with two entries",
		in:   `ifconfig_em0_alias0="vhid 1 192.0.2.50 inet6 vhid 1 2001:db8::50"`,
		want: []VHID{vhid("em0", 1, "rc.conf:1", "192.0.2.50/32", "2001:db8::50/128")},
	},
	{
		name: "interface part taken verbatim",
		in:   `ifconfig_em0_100_alias0="inet 192.0.2.50/32 vhid 1"`,
		want: []VHID{vhid("em0_100", 1, "rc.conf:1", "192.0.2.50/32")},
	},
	{
		name: "interface named like a keyword",
		in:   `ifconfig_alias0_alias10="inet 192.0.2.50/32 vhid 1"`,
		want: []VHID{vhid("alias0", 1, "rc.conf:1", "192.0.2.50/32")},
	},
}

func TestParseRCConf(t *testing.T) {
	runParseTests(t, goodForms)
}

// mergeTests are several lines that name the same vhids.
var mergeTests = []parseTest{
	{
		name: "later lines add addresses and inherit parameters",
		in: `ifconfig_em0_alias0="inet 192.0.2.50/32 vhid 100 advbase 2 advskew 100 pass lampros state backup peer 198.51.100.9"
ifconfig_em0_alias1="inet 192.0.2.51/32 vhid 100"
ifconfig_em0_alias2="inet6 2001:db8::50 vhid 100 advskew 100 pass lampros"`,
		want: []VHID{{
			Version:   VersionCARP,
			Interface: "em0", VHID: 100, AdvBase: 2, AdvSkew: 100, Password: "lampros", State: "backup",
			Addresses: prefixes("192.0.2.50/32", "192.0.2.51/32", "2001:db8::50/128"),
			Peer:      netip.MustParseAddr("198.51.100.9"),
			Origin:    "rc.conf:1",
		}},
	},
	{
		name: "a parameter first given on a later line applies to the vhid",
		in: `ifconfig_em0_alias0="inet 192.0.2.50/32 vhid 100"
ifconfig_em0_alias1="inet 192.0.2.51/32 vhid 100 advskew 50"`,
		want: []VHID{with(vhid("em0", 100, "rc.conf:1", "192.0.2.50/32", "192.0.2.51/32"), func(v *VHID) { v.AdvSkew = 50 })},
	},
	{
		name: "mcast agrees with the CARP group as peer",
		in: `ifconfig_em0_alias0="inet 192.0.2.50/32 vhid 1 peer 224.0.0.18"
ifconfig_em0_alias1="inet 192.0.2.51/32 vhid 1 mcast"`,
		want: []VHID{vhid("em0", 1, "rc.conf:1", "192.0.2.50/32", "192.0.2.51/32")},
	},
	{
		name: "same vhid on two interfaces are two VHIDs",
		in: `ifconfig_em0_alias0="inet 192.0.2.50/32 vhid 1 advskew 10"
ifconfig_em1_alias0="inet 198.51.100.50/32 vhid 1 advskew 20"`,
		want: []VHID{
			with(vhid("em0", 1, "rc.conf:1", "192.0.2.50/32"), func(v *VHID) { v.AdvSkew = 10 }),
			with(vhid("em1", 1, "rc.conf:2", "198.51.100.50/32"), func(v *VHID) { v.AdvSkew = 20 }),
		},
	},
	{
		name: "VHIDs keep the order they were first named",
		in: `ifconfig_em0_alias0="inet 192.0.2.52/32 vhid 2"
ifconfig_em0_alias1="inet 192.0.2.51/32 vhid 1"
ifconfig_em0_alias2="inet 192.0.2.50/32 vhid 2"`,
		want: []VHID{
			vhid("em0", 2, "rc.conf:1", "192.0.2.52/32", "192.0.2.50/32"),
			vhid("em0", 1, "rc.conf:2", "192.0.2.51/32"),
		},
	},
	{
		name: "same parameters repeated in one entry",
		in:   `ifconfig_em0_alias0="inet 192.0.2.50/32 vhid 1 vhid 1 advskew 5 advskew 5"`,
		want: []VHID{with(vhid("em0", 1, "rc.conf:1", "192.0.2.50/32"), func(v *VHID) { v.AdvSkew = 5 })},
	},
}

func TestParseRCConfMerge(t *testing.T) {
	runParseTests(t, mergeTests)
}

// errorTests are rejected inputs and the complete error they give.
var errorTests = []struct {
	name string
	in   string
	want string
}{
	{"unknown keyword", `ifconfig_em0_alias0="inet 192.0.2.50/32 vhid 1 advskw 10"`,
		`rc.conf:1: "advskw": unknown keyword`},
	{"keyword missing its value", `ifconfig_em0_alias0="inet 192.0.2.50/32 vhid 1 pass"`,
		`rc.conf:1: "pass": missing value`},
	{"vhid missing its value", `ifconfig_em0_alias0="inet 192.0.2.50/32 vhid"`,
		`rc.conf:1: "vhid": missing value`},
	{"vhid 0", `ifconfig_em0_alias0="inet 192.0.2.50/32 vhid 0"`,
		`rc.conf:1: "vhid 0": vhid must be 1..255`},
	{"vhid 256", `ifconfig_em0_alias0="inet 192.0.2.50/32 vhid 256"`,
		`rc.conf:1: "vhid 256": vhid must be 1..255`},
	{"vhid overflowing int", `ifconfig_em0_alias0="inet 192.0.2.50/32 vhid 99999999999999999999999"`,
		`rc.conf:1: "vhid 99999999999999999999999": vhid must be 1..255`},
	{"vhid not a number", `ifconfig_em0_alias0="inet 192.0.2.50/32 vhid abc"`,
		`rc.conf:1: "vhid abc": vhid must be a number 1..255`},
	{"advbase 0", `ifconfig_em0_alias0="inet 192.0.2.50/32 vhid 1 advbase 0"`,
		`rc.conf:1: "advbase 0": advbase must be 1..255`},
	{"advbase 256", `ifconfig_em0_alias0="inet 192.0.2.50/32 vhid 1 advbase 256"`,
		`rc.conf:1: "advbase 256": advbase must be 1..255`},
	{"advskew 255", `ifconfig_em0_alias0="inet 192.0.2.50/32 vhid 1 advskew 255"`,
		`rc.conf:1: "advskew 255": advskew must be 0..254`},
	{"advskew negative", `ifconfig_em0_alias0="inet 192.0.2.50/32 vhid 1 advskew -1"`,
		`rc.conf:1: "advskew -1": advskew must be a number 0..254`},
	{"missing address", `ifconfig_em0_alias0="inet vhid 1 pass x"`,
		`rc.conf:1: "vhid 1": no address in this entry`},
	{"malformed address", `ifconfig_em0_alias0="inet 192.0.2.300 vhid 1"`,
		`rc.conf:1: "192.0.2.300": malformed address`},
	{"malformed prefix", `ifconfig_em0_alias0="inet 192.0.2.30/33 vhid 1"`,
		`rc.conf:1: "192.0.2.30/33": malformed address`},
	{"address with a zone", `ifconfig_em0_alias0="inet6 fe80::1%em0 vhid 1"`,
		`rc.conf:1: "fe80::1%em0": malformed address`},
	{"two addresses in one entry", `ifconfig_em0_alias0="inet 192.0.2.50 vhid 1 192.0.2.51"`,
		`rc.conf:1: "192.0.2.51": a second address in one entry (the first is 192.0.2.50); start another entry with inet or inet6`},
	{"address range", `ifconfig_em0_aliases="inet 192.0.2.1-5/32 vhid 1"`,
		`rc.conf:1: "192.0.2.1-5/32": address ranges are not supported; write one entry per address`},
	{"-alias", `ifconfig_em0_alias0="inet 192.0.2.50/32 vhid 1 -alias"`,
		`rc.conf:1: "-alias": removing an address is not supported in rc.conf`},
	{"unterminated double quote", `ifconfig_em0_alias0="inet 192.0.2.50/32 vhid 1`,
		`rc.conf:1: "ifconfig_em0_alias0": unterminated quote (values spanning lines are not supported)`},
	{"unterminated single quote", `ifconfig_em0_alias0='inet 192.0.2.50/32 vhid 1`,
		`rc.conf:1: "ifconfig_em0_alias0": unterminated quote (values spanning lines are not supported)`},
	{"line continuation", `ifconfig_em0_alias0=inet\`,
		`rc.conf:1: "ifconfig_em0_alias0": line continuation is not supported`},
	{"shell expansion", `ifconfig_em0_alias0="inet $vip vhid 1"`,
		`rc.conf:1: "ifconfig_em0_alias0": shell expansion ($, ` + "`" + `) is not supported`},
	{"command substitution", "ifconfig_em0_alias0=`cat /etc/vip`",
		`rc.conf:1: "ifconfig_em0_alias0": shell expansion ($, ` + "`" + `) is not supported`},
	{"text after the value", `ifconfig_em0_alias0="inet 192.0.2.50/32" vhid 1`,
		`rc.conf:1: "vhid": unexpected text after the value`},
	{"state other than master or backup", `ifconfig_em0_alias0="inet 192.0.2.50/32 vhid 1 state init"`,
		`rc.conf:1: "state init": state must be master or backup`},
	{"carp keywords without vhid", `ifconfig_em0_alias0="inet 192.0.2.50/32 advskew 100 pass x"`,
		`rc.conf:1: "advskew": carp keyword without a vhid`},
	{"inet6 with an IPv4 address", `ifconfig_vnet0_alias0="inet6 vhid 1 192.0.2.50/32"`,
		`rc.conf:1: "192.0.2.50/32": IPv4 address in an inet6 entry (use inet)`},
	{"inet with an IPv6 address", `ifconfig_vnet0_alias0="inet vhid 1 2001:db8::1"`,
		`rc.conf:1: "2001:db8::1": IPv6 address in an inet entry (use inet6)`},
	{"non-contiguous netmask", `ifconfig_em0_alias0="inet 192.0.2.50 netmask 255.0.255.0 vhid 1"`,
		`rc.conf:1: "netmask 255.0.255.0": netmask must be contiguous, like 255.255.255.0 or 0xffffff00`},
	{"netmask not a mask", `ifconfig_em0_alias0="inet 192.0.2.50 netmask 0xgg vhid 1"`,
		`rc.conf:1: "netmask 0xgg": netmask must be contiguous, like 255.255.255.0 or 0xffffff00`},
	{"netmask conflicting with the length", `ifconfig_em0_alias0="inet 192.0.2.50/24 netmask 255.255.0.0 vhid 1"`,
		`rc.conf:1: "netmask 255.255.0.0": conflicts with 192.0.2.50/24`},
	{"netmask on IPv6", `ifconfig_em0_alias0="inet6 2001:db8::1 netmask 255.255.255.0 vhid 1"`,
		`rc.conf:1: "netmask 255.255.255.0": netmask is for IPv4 addresses; use prefixlen or /LEN`},
	{"prefixlen on IPv4", `ifconfig_em0_alias0="inet 192.0.2.50 prefixlen 24 vhid 1"`,
		`rc.conf:1: "prefixlen 24": prefixlen is for IPv6 addresses; use netmask or /LEN`},
	{"prefixlen 129", `ifconfig_em0_alias0="inet6 2001:db8::1 prefixlen 129 vhid 1"`,
		`rc.conf:1: "prefixlen 129": prefixlen must be 0..128`},
	{"peer with IPv6", `ifconfig_em0_alias0="inet 192.0.2.50/32 vhid 1 peer 2001:db8::1"`,
		`rc.conf:1: "peer 2001:db8::1": peer must be an IPv4 address (use peer6 for IPv6)`},
	{"peer6 with IPv4", `ifconfig_em0_alias0="inet 192.0.2.50/32 vhid 1 peer6 198.51.100.1"`,
		`rc.conf:1: "peer6 198.51.100.1": peer6 must be an IPv6 address (use peer for IPv4)`},
	{"peer unspecified", `ifconfig_em0_alias0="inet 192.0.2.50/32 vhid 1 peer 0.0.0.0"`,
		`rc.conf:1: "peer 0.0.0.0": peer must be a unicast address or the CARP group`},
	{"conflict in one entry", `ifconfig_em0_alias0="inet 192.0.2.50/32 vhid 1 advskew 1 advskew 2"`,
		`rc.conf:1: "advskew 2": conflicts with "advskew 1" earlier in this entry`},
	{"peer and mcast in one entry", `ifconfig_em0_alias0="inet 192.0.2.50/32 vhid 1 peer 198.51.100.1 mcast"`,
		`rc.conf:1: "mcast": conflicts with "peer 198.51.100.1" earlier in this entry`},
	{"two vhids in one entry", `ifconfig_em0_alias0="inet 192.0.2.50/32 vhid 1 vhid 2"`,
		`rc.conf:1: "vhid 2": conflicts with "vhid 1" earlier in this entry`},
	{"conflicting advskew across lines", `# rc.conf
hostname="fw1"
ifconfig_em0_alias0="inet 192.0.2.50/32 vhid 100 advskew 100 pass x"
ifconfig_em0_alias1="inet 192.0.2.51/32 vhid 100 advskew 50 pass x"`,
		`rc.conf:4: "advskew 50": vhid 100 on em0 has advskew 100 at rc.conf:3`},
	{"conflicting pass does not show the phrases", `ifconfig_em0_alias0="inet 192.0.2.50/32 vhid 1 pass secret1"
ifconfig_em0_alias1="inet 192.0.2.51/32 vhid 1 pass secret2"`,
		`rc.conf:2: "pass": vhid 1 on em0 has a different pass at rc.conf:1`},
	{"conflicting advbase, state and peer", `ifconfig_em0_alias0="inet 192.0.2.50/32 vhid 1 advbase 1 state master peer 198.51.100.1"
ifconfig_em0_alias1="inet 192.0.2.51/32 vhid 1 advbase 2 state backup mcast"`,
		`rc.conf:2: "advbase 2": vhid 1 on em0 has advbase 1 at rc.conf:1` + "\n" +
			`rc.conf:2: "state backup": vhid 1 on em0 has state master at rc.conf:1` + "\n" +
			`rc.conf:2: "mcast": vhid 1 on em0 has peer 198.51.100.1 at rc.conf:1`},
	{"duplicate address in one vhid", `ifconfig_em0_alias0="inet 192.0.2.50/32 vhid 1"
ifconfig_em0_alias1="inet 192.0.2.50/24 vhid 1"`,
		`rc.conf:2: "192.0.2.50/24": duplicate address: already in vhid 1 on em0 at rc.conf:1`},
	{"same address in two vhids", `ifconfig_em0_alias0="inet 192.0.2.50/32 vhid 1"
ifconfig_em1_alias0="inet 192.0.2.50/32 vhid 2"`,
		`rc.conf:2: "192.0.2.50/32": address already used by vhid 1 on em0 at rc.conf:1`},
	{"variable assigned twice", seedMaster + "\n" + seedBackup,
		`rc.conf:2: "ifconfig_em0_alias0": already assigned at rc.conf:1 (sh keeps only the last value)`},
	{"vhid on the host address", `ifconfig_em0="inet 192.0.2.50/24 vhid 1"`,
		`rc.conf:1: "ifconfig_em0": carpd reads vhids only from ifconfig_<iface>_alias<N> and ifconfig_<iface>_aliases`},
	{"aliases entry without inet", `ifconfig_em0_aliases="vhid 1 192.0.2.50/32"`,
		`rc.conf:1: "vhid": entries of ifconfig_em0_aliases must start with inet or inet6`},
	{"interface name too long for Linux", `ifconfig_averyveryverylongname_alias0="inet 192.0.2.50/32 vhid 1"`,
		`rc.conf:1: "ifconfig_averyveryverylongname_alias0": interface name "averyveryverylongname" is longer than 15 characters`},
}

func TestParseRCConfErrors(t *testing.T) {
	for _, tc := range errorTests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := ParseRCConf("rc.conf", strings.NewReader(tc.in))
			if err == nil {
				t.Fatalf("ParseRCConf succeeded with %+v, want error %q", cfg.VHIDs, tc.want)
			}
			if cfg != nil {
				t.Errorf("ParseRCConf returned a Config with its error")
			}
			if diff := cmp.Diff(tc.want, err.Error()); diff != "" {
				t.Errorf("error mismatch (-want +got):\n%s", diff)
			}
			var cerr *Error
			if !errors.As(err, &cerr) {
				t.Errorf("error %v is not a *config.Error", err)
			}
		})
	}
}

func TestParseRCConfReportsAllErrors(t *testing.T) {
	in := `hostname="fw1"
ifconfig_em0_alias0="inet 192.0.2.50/32 vhid 0 advskw 3"
ifconfig_em0_alias1="inet 192.0.2.51/32 vhid 1 pass x"
ifconfig_em0_alias2="inet 192.0.2.300 vhid 1 carpver 4"
ifconfig_em0_alias3="inet 192.0.2.52/32 vhid 1
ifconfig_em0_alias4="inet 192.0.2.51/32 vhid 2 advskew 255"
`
	_, err := ParseRCConf("/etc/rc.conf", strings.NewReader(in))
	if err == nil {
		t.Fatal("ParseRCConf succeeded, want errors")
	}
	joined, ok := err.(interface{ Unwrap() []error })
	if !ok {
		t.Fatalf("error %T does not hold several errors", err)
	}
	var got []*Error
	for _, e := range joined.Unwrap() {
		var cerr *Error
		if !errors.As(e, &cerr) {
			t.Fatalf("error %v is not a *config.Error", e)
		}
		got = append(got, cerr)
	}
	const f = "/etc/rc.conf"
	want := []*Error{
		{f, 2, "vhid 0", "vhid must be 1..255"},
		{f, 2, "advskw", "unknown keyword"},
		{f, 4, "192.0.2.300", "malformed address"},
		{f, 4, "carpver 4", "carpver must be 2 (CARP) or 3 (VRRPv3)"},
		{f, 5, "ifconfig_em0_alias3", "unterminated quote (values spanning lines are not supported)"},
		{f, 6, "advskew 255", "advskew must be 0..254"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("errors mismatch (-want +got):\n%s", diff)
	}
	var first *Error
	if !errors.As(err, &first) || first.Line != 2 {
		t.Errorf("errors.As gave %v, want the error of line 2", first)
	}
}

func TestErrorString(t *testing.T) {
	tests := []struct {
		err  Error
		want string
	}{
		{Error{"rc.conf", 4, "advskew 50", "conflict"}, `rc.conf:4: "advskew 50": conflict`},
		{Error{"rc.conf", 7, "", "no word"}, `rc.conf:7: no word`},
		{Error{"rc.conf", 1, "a\"b\x00", "odd"}, `rc.conf:1: "a\"b\x00": odd`},
	}
	for _, tc := range tests {
		if diff := cmp.Diff(tc.want, tc.err.Error()); diff != "" {
			t.Errorf("Error() mismatch (-want +got):\n%s", diff)
		}
	}
}

func TestLoadRCConf(t *testing.T) {
	path := filepath.Join("testdata", "rc.conf")
	cfg, err := LoadRCConf(path)
	if err != nil {
		t.Fatalf("LoadRCConf: %v", err)
	}
	want := Default()
	want.VHIDs = []VHID{
		{
			Version:   VersionCARP,
			Interface: "em0", VHID: 1, AdvBase: 1, AdvSkew: 100, Password: "lampros",
			Addresses: prefixes("192.0.2.50/24", "192.0.2.51/32", "2001:db8::50/64"),
			Origin:    path + ":16",
		},
		{
			Version:   VersionCARP,
			Interface: "em0", VHID: 2, AdvBase: 1, AdvSkew: 100, Password: "other", State: "backup",
			Addresses: prefixes("192.0.2.60/32"),
			Origin:    path + ":19",
		},
		{
			Version:   VersionCARP,
			Interface: "em1_100", VHID: 1, AdvBase: 3, AdvSkew: 0, Password: "vlan",
			Addresses: prefixes("198.51.100.50/32", "198.51.100.51/32"),
			Peer:      netip.MustParseAddr("198.51.100.224"),
			Origin:    path + ":23",
		},
	}
	if diff := cmp.Diff(want, cfg, cmpOpts...); diff != "" {
		t.Errorf("LoadRCConf mismatch (-want +got):\n%s", diff)
	}

	_, err = LoadRCConf(filepath.Join(t.TempDir(), "missing.conf"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("LoadRCConf of a missing file: error %v, want fs.ErrNotExist", err)
	}
}

func FuzzParseRCConf(f *testing.F) {
	for _, tc := range goodForms {
		f.Add(tc.in)
	}
	for _, tc := range mergeTests {
		f.Add(tc.in)
	}
	for _, tc := range errorTests {
		f.Add(tc.in)
	}
	for _, tc := range vrrpRCConfTests {
		f.Add(tc.in)
	}
	for _, tc := range vrrpRCConfErrorTests {
		f.Add(tc.in)
	}
	f.Fuzz(func(t *testing.T, in string) {
		cfg, err := ParseRCConf("fuzz.conf", strings.NewReader(in))
		if err != nil {
			checkFuzzErrors(t, cfg, err, "fuzz.conf")
			return
		}
		seen := make(map[netip.Addr]bool)
		for _, v := range cfg.VHIDs {
			if v.VHID == 0 || !protocolValid(v) || v.Interface == "" || len(v.Addresses) == 0 {
				t.Errorf("invalid VHID %+v", v)
			}
			if v.State != "" && v.State != "master" && v.State != "backup" {
				t.Errorf("invalid state in %+v", v)
			}
			for _, p := range v.Addresses {
				if !p.IsValid() || seen[p.Addr()] {
					t.Errorf("invalid or duplicate address %v in %+v", p, v)
				}
				seen[p.Addr()] = true
			}
		}
	})
}

// checkFuzzErrors fails unless a parse that failed returned no Config and
// only well-formed *Error values for file.
func checkFuzzErrors(t *testing.T, cfg *Config, err error, file string) {
	t.Helper()
	if cfg != nil {
		t.Errorf("Config returned with error %v", err)
	}
	errs := []error{err}
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		errs = joined.Unwrap()
	}
	for _, e := range errs {
		cerr, ok := e.(*Error)
		if !ok || cerr.File != file || cerr.Line < 1 || cerr.Msg == "" {
			t.Errorf("malformed error %#v", e)
		}
	}
}
