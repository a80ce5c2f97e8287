package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// This file tests the VRRPv3 vhids (carpver 3) of both front ends.

// vrrpVHID returns a VRRP vhid with FreeBSD 15's defaults (vrrpprio 100,
// vrrpinterval 100) and the RFC's tie-break, for the tables to adjust.
func vrrpVHID(iface string, id uint8, origin string, addrs ...string) VHID {
	return VHID{
		Interface: iface, VHID: id, Version: VersionVRRP,
		VRRPPriority: DefaultVRRPPriority, VRRPInterval: DefaultVRRPInterval, VRRPTieBreak: true,
		Addresses: prefixes(addrs...), Origin: origin,
	}
}

var vrrpRCConfTests = []parseTest{
	{
		name: "FreeBSD 15's line",
		in:   `ifconfig_em0_alias0="inet 192.0.2.50/32 vhid 1 carpver 3 vrrpprio 150 vrrpinterval 10"`,
		want: []VHID{with(vrrpVHID("em0", 1, "rc.conf:1", "192.0.2.50/32"), func(v *VHID) {
			v.VRRPPriority, v.VRRPInterval = 150, 10
		})},
	},
	{
		name: "carpver 3 alone takes the defaults",
		in:   `ifconfig_em0_alias0="inet 192.0.2.50/32 vhid 1 carpver 3"`,
		want: []VHID{vrrpVHID("em0", 1, "rc.conf:1", "192.0.2.50/32")},
	},
	{
		name: "lower limits, keywords in any order",
		in:   `ifconfig_em0_alias0="inet6 vrrpinterval 1 vrrpprio 1 carpver 3 2001:db8::50/64 vhid 7"`,
		want: []VHID{with(vrrpVHID("em0", 7, "rc.conf:1", "2001:db8::50/64"), func(v *VHID) {
			v.VRRPPriority, v.VRRPInterval = 1, 1
		})},
	},
	{
		name: "upper limits: the owner's priority 255, 40.95 s",
		in:   `ifconfig_em0_alias0="inet 192.0.2.50/32 vhid 255 carpver 3 vrrpprio 255 vrrpinterval 4095"`,
		want: []VHID{with(vrrpVHID("em0", 255, "rc.conf:1", "192.0.2.50/32"), func(v *VHID) {
			v.VRRPPriority, v.VRRPInterval = 255, 4095
		})},
	},
	{
		name: "multicast, state and the CARP group as peer are no CARP keywords",
		in:   `ifconfig_em0_alias0="inet 192.0.2.50/32 vhid 1 carpver 3 mcast mcast6 peer 224.0.0.18 state master"`,
		want: []VHID{with(vrrpVHID("em0", 1, "rc.conf:1", "192.0.2.50/32"), func(v *VHID) { v.State = "master" })},
	},
	{
		name: "entries merge: carpver in the first, vrrpprio in a later one, both families",
		in: `ifconfig_em0_alias0="inet 192.0.2.50/32 vhid 1 carpver 3"
ifconfig_em0_alias1="inet6 2001:db8::50/64 vhid 1 vrrpprio 200"
ifconfig_em0_alias2="inet 192.0.2.51/32 vhid 2 advskew 100"`,
		want: []VHID{
			with(vrrpVHID("em0", 1, "rc.conf:1", "192.0.2.50/32", "2001:db8::50/64"), func(v *VHID) { v.VRRPPriority = 200 }),
			with(vhid("em0", 2, "rc.conf:3", "192.0.2.51/32"), func(v *VHID) { v.AdvSkew = 100 }),
		},
	},
	{
		name: "carpver repeated with the same value",
		in: `ifconfig_em0_aliases="inet 192.0.2.50/32 vhid 1 carpver 3 inet 192.0.2.51/32 vhid 1 carpver 3"
ifconfig_em1_alias0="inet 192.0.2.60/32 vhid 1 carpver 2 advbase 2"`,
		want: []VHID{
			vrrpVHID("em0", 1, "rc.conf:1", "192.0.2.50/32", "192.0.2.51/32"),
			with(vhid("em1", 1, "rc.conf:2", "192.0.2.60/32"), func(v *VHID) { v.AdvBase = 2 }),
		},
	},
}

func TestParseRCConfVRRP(t *testing.T) {
	runParseTests(t, vrrpRCConfTests)
}

// TestParseRCConfVRRPKeywordsStartNoEntry documents network.subr's rule:
// an entry starts at inet/inet6, so words before it are an entry of their
// own, without an address.
func TestParseRCConfVRRPKeywordsStartNoEntry(t *testing.T) {
	in := `ifconfig_em0_alias0="vrrpinterval 1 vrrpprio 1 carpver 3 inet6 2001:db8::50/64 vhid 7"`
	_, err := ParseRCConf("rc.conf", strings.NewReader(in))
	want := `rc.conf:1: "vrrpinterval": carp keyword without a vhid` + "\n" +
		`rc.conf:1: "vrrpinterval": no address in this entry`
	if err == nil || err.Error() != want {
		t.Errorf("error %v, want %q", err, want)
	}
}

var vrrpRCConfErrorTests = []struct {
	name, in, want string
}{
	{"carpver 4", `ifconfig_em0_alias0="inet 192.0.2.50/32 vhid 1 carpver 4"`,
		`rc.conf:1: "carpver 4": carpver must be 2 (CARP) or 3 (VRRPv3)`},
	{"carpver 1", `ifconfig_em0_alias0="inet 192.0.2.50/32 vhid 1 carpver 1"`,
		`rc.conf:1: "carpver 1": carpver must be 2 (CARP) or 3 (VRRPv3)`},
	{"carpver not a number", `ifconfig_em0_alias0="inet 192.0.2.50/32 vhid 1 carpver three"`,
		`rc.conf:1: "carpver three": carpver must be a number 2..3`},
	{"carpver without a value", `ifconfig_em0_alias0="inet 192.0.2.50/32 vhid 1 carpver"`,
		`rc.conf:1: "carpver": missing value`},
	{"vrrpprio 0 (a resigning master's)", `ifconfig_em0_alias0="inet 192.0.2.50/32 vhid 1 carpver 3 vrrpprio 0"`,
		`rc.conf:1: "vrrpprio 0": vrrpprio must be 1..255`},
	{"vrrpprio 256", `ifconfig_em0_alias0="inet 192.0.2.50/32 vhid 1 carpver 3 vrrpprio 256"`,
		`rc.conf:1: "vrrpprio 256": vrrpprio must be 1..255`},
	{"vrrpprio negative", `ifconfig_em0_alias0="inet 192.0.2.50/32 vhid 1 carpver 3 vrrpprio -1"`,
		`rc.conf:1: "vrrpprio -1": vrrpprio must be a number 1..255`},
	{"vrrpprio huge", `ifconfig_em0_alias0="inet 192.0.2.50/32 vhid 1 carpver 3 vrrpprio 99999999999999999999999"`,
		`rc.conf:1: "vrrpprio 99999999999999999999999": vrrpprio must be 1..255`},
	{"vrrpinterval 0", `ifconfig_em0_alias0="inet 192.0.2.50/32 vhid 1 carpver 3 vrrpinterval 0"`,
		`rc.conf:1: "vrrpinterval 0": vrrpinterval must be 1..4095`},
	{"vrrpinterval 4096", `ifconfig_em0_alias0="inet 192.0.2.50/32 vhid 1 carpver 3 vrrpinterval 4096"`,
		`rc.conf:1: "vrrpinterval 4096": vrrpinterval must be 1..4095`},
	{"vrrpinterval as a duration", `ifconfig_em0_alias0="inet 192.0.2.50/32 vhid 1 carpver 3 vrrpinterval 10ms"`,
		`rc.conf:1: "vrrpinterval 10ms": vrrpinterval must be a number 1..4095`},
	{"vrrpprio without a value", `ifconfig_em0_alias0="inet 192.0.2.50/32 vhid 1 carpver 3 vrrpprio"`,
		`rc.conf:1: "vrrpprio": missing value`},
	{"vrrpprio on a CARP vhid", `ifconfig_em0_alias0="inet 192.0.2.50/32 vhid 1 vrrpprio 100"`,
		`rc.conf:1: "vrrpprio 100": a VRRP keyword, but vhid 1 on em0 is CARP: add carpver 3 for VRRPv3`},
	{"vrrpinterval on a carpver 2 vhid", `ifconfig_em0_alias0="inet 192.0.2.50/32 vhid 1 carpver 2 vrrpinterval 10"`,
		`rc.conf:1: "vrrpinterval 10": a VRRP keyword, but vhid 1 on em0 is CARP: add carpver 3 for VRRPv3`},
	{"advskew on a VRRP vhid", `ifconfig_em0_alias0="inet 192.0.2.50/32 vhid 1 carpver 3 advskew 100"`,
		`rc.conf:1: "advskew 100": a CARP keyword, but vhid 1 on em0 is VRRPv3 ("carpver 3" at rc.conf:1): VRRP's priority is vrrpprio, the higher wins`},
	{"advbase on a VRRP vhid", `ifconfig_em0_alias0="inet 192.0.2.50/32 vhid 1 carpver 3 advbase 1"`,
		`rc.conf:1: "advbase 1": a CARP keyword, but vhid 1 on em0 is VRRPv3 ("carpver 3" at rc.conf:1): VRRP's interval is vrrpinterval, in centiseconds`},
	{"pass on a VRRP vhid, not shown", `ifconfig_em0_alias0="inet 192.0.2.50/32 vhid 1 carpver 3 pass s3cret"`,
		`rc.conf:1: "pass": a CARP keyword, but vhid 1 on em0 is VRRPv3 ("carpver 3" at rc.conf:1): VRRPv3 has no authentication`},
	{"unicast peer on a VRRP vhid", `ifconfig_em0_alias0="inet 192.0.2.50/32 vhid 1 carpver 3 peer 192.0.2.9"`,
		`rc.conf:1: "peer 192.0.2.9": a CARP keyword, but vhid 1 on em0 is VRRPv3 ("carpver 3" at rc.conf:1): VRRPv3 is multicast only (RFC 5798 has no unicast)`},
	{"unicast peer6 on a VRRP vhid", `ifconfig_em0_alias0="inet6 2001:db8::50/64 vhid 1 carpver 3 peer6 2001:db8::9"`,
		`rc.conf:1: "peer6 2001:db8::9": a CARP keyword, but vhid 1 on em0 is VRRPv3 ("carpver 3" at rc.conf:1): VRRPv3 is multicast only (RFC 5798 has no unicast)`},
	{"advskew in a later entry of a VRRP vhid", "ifconfig_em0_alias0=\"inet 192.0.2.50/32 vhid 1 carpver 3\"\n" +
		`ifconfig_em0_alias1="inet 192.0.2.51/32 vhid 1 advskew 10"`,
		`rc.conf:2: "advskew 10": a CARP keyword, but vhid 1 on em0 is VRRPv3 ("carpver 3" at rc.conf:1): VRRP's priority is vrrpprio, the higher wins`},
	{"carpver 3 in a later entry of a vhid with advskew", "ifconfig_em0_alias0=\"inet 192.0.2.50/32 vhid 1 advskew 10\"\n" +
		`ifconfig_em0_alias1="inet 192.0.2.51/32 vhid 1 carpver 3"`,
		`rc.conf:1: "advskew 10": a CARP keyword, but vhid 1 on em0 is VRRPv3 ("carpver 3" at rc.conf:2): VRRP's priority is vrrpprio, the higher wins`},
	{"vrrpprio in a later entry of a CARP vhid", "ifconfig_em0_alias0=\"inet 192.0.2.50/32 vhid 1\"\n" +
		`ifconfig_em0_alias1="inet 192.0.2.51/32 vhid 1 vrrpprio 10"`,
		`rc.conf:2: "vrrpprio 10": a VRRP keyword, but vhid 1 on em0 is CARP: add carpver 3 for VRRPv3`},
	{"carpver differs between entries", "ifconfig_em0_alias0=\"inet 192.0.2.50/32 vhid 1 carpver 3\"\n" +
		`ifconfig_em0_alias1="inet 192.0.2.51/32 vhid 1 carpver 2"`,
		`rc.conf:2: "carpver 2": vhid 1 on em0 has carpver 3 at rc.conf:1`},
	{"carpver differs in one entry", `ifconfig_em0_alias0="inet 192.0.2.50/32 vhid 1 carpver 3 carpver 2"`,
		`rc.conf:1: "carpver 2": conflicts with "carpver 3" earlier in this entry`},
	{"VRRP and CARP with one vhid on one interface", "ifconfig_em0_alias0=\"inet 192.0.2.50/32 vhid 1 carpver 3\"\n" +
		`ifconfig_em0_alias1="inet 192.0.2.51/32 vhid 1 carpver 2 advskew 100"`,
		`rc.conf:2: "carpver 2": vhid 1 on em0 has carpver 3 at rc.conf:1` + "\n" +
			`rc.conf:2: "advskew 100": a CARP keyword, but vhid 1 on em0 is VRRPv3 ("carpver 3" at rc.conf:1): VRRP's priority is vrrpprio, the higher wins`},
}

func TestParseRCConfVRRPErrors(t *testing.T) {
	for _, tc := range vrrpRCConfErrorTests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := ParseRCConf("rc.conf", strings.NewReader(tc.in))
			if err == nil {
				t.Fatalf("ParseRCConf succeeded with %+v, want error %q", cfg.VHIDs, tc.want)
			}
			if diff := cmp.Diff(tc.want, err.Error()); diff != "" {
				t.Errorf("error mismatch (-want +got):\n%s", diff)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("error shows the pass phrase: %v", err)
			}
		})
	}
}

// protocolValid reports whether v holds the settings of its protocol and
// none of the other's: the invariant of both fuzz targets.
func protocolValid(v VHID) bool {
	switch v.Version {
	case VersionCARP:
		return v.AdvBase != 0 && v.AdvSkew <= 254 && v.VRRPPriority == 0 && v.VRRPInterval == 0 && !v.VRRPTieBreak
	case VersionVRRP:
		return v.AdvBase == 0 && v.AdvSkew == 0 && v.Password == "" && !v.Peer.IsValid() && !v.Peer6.IsValid() &&
			!v.ReplayProtection && v.VRRPPriority >= 1 && v.VRRPInterval >= 1 && v.VRRPInterval <= 4095
	}
	return false
}

var vrrpTOMLTests = []struct {
	name string
	in   string
	want *Config
}{
	{
		"carpver 3 alone takes the defaults",
		oneVHID + "carpver = 3\n",
		defaultsWith(vrrpVHID("eth0", 100, "carpd.toml:1", "192.0.2.50/32")),
	},
	{
		"every VRRP key",
		oneVHID + "carpver = 3\nvrrp-priority = 150\nvrrp-interval = 10\nvrrp-tiebreak = false\npreempt = false\nvirtual-mac = true\nstate = \"backup\"\nname = \"VI_1\"\n",
		defaultsWith(with(vrrpVHID("eth0", 100, "carpd.toml:1", "192.0.2.50/32"), func(v *VHID) {
			v.VRRPPriority, v.VRRPInterval, v.VRRPTieBreak = 150, 10, false
			v.Preempt, v.VirtualMAC, v.State, v.Name = boolPtr(false), true, "backup", "VI_1"
		})),
	},
	{
		"limits",
		"[[vhid]]\ninterface = \"eth0\"\nvhid = 1\naddresses = [\"2001:db8::50/64\"]\ncarpver = 3\nvrrp-priority = 1\nvrrp-interval = 1\n" +
			"[[vhid]]\ninterface = \"eth0\"\nvhid = 255\naddresses = [\"192.0.2.50/32\"]\ncarpver = 3\nvrrp-priority = 255\nvrrp-interval = 4095\nvrrp-tiebreak = true\n",
		defaultsWith(
			with(vrrpVHID("eth0", 1, "carpd.toml:1", "2001:db8::50/64"), func(v *VHID) { v.VRRPPriority, v.VRRPInterval = 1, 1 }),
			with(vrrpVHID("eth0", 255, "carpd.toml:8", "192.0.2.50/32"), func(v *VHID) { v.VRRPPriority, v.VRRPInterval = 255, 4095 }),
		),
	},
	{
		"carpver 2 is CARP; VRRP and CARP side by side, inline",
		"vhid = [\n  {interface = \"eth0\", vhid = 1, addresses = [\"192.0.2.1\"], carpver = 2, advskew = 10},\n" +
			"  {interface = \"eth0\", vhid = 2, addresses = [\"192.0.2.2\"], carpver = 3, vrrp-priority = 200},\n]\n",
		defaultsWith(
			with(vhid("eth0", 1, "carpd.toml:2", "192.0.2.1/32"), func(v *VHID) { v.AdvSkew = 10 }),
			with(vrrpVHID("eth0", 2, "carpd.toml:3", "192.0.2.2/32"), func(v *VHID) { v.VRRPPriority = 200 }),
		),
	},
	{
		"replay-protection = false and no CARP setting in effect: allowed",
		oneVHID + "carpver = 3\nreplay-protection = false\n",
		defaultsWith(vrrpVHID("eth0", 100, "carpd.toml:1", "192.0.2.50/32")),
	},
	{
		"the CARP group as peer is multicast, allowed",
		oneVHID + "carpver = 3\npeer = \"224.0.0.18\"\npeer6 = \"ff02::12\"\n",
		defaultsWith(vrrpVHID("eth0", 100, "carpd.toml:1", "192.0.2.50/32")),
	},
}

func TestParseTOMLVRRP(t *testing.T) {
	for _, tc := range vrrpTOMLTests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := ParseTOML("carpd.toml", []byte(tc.in), t.TempDir())
			if err != nil {
				t.Fatalf("ParseTOML: %v", err)
			}
			if diff := cmp.Diff(tc.want, cfg, cmpOpts...); diff != "" {
				t.Errorf("Config mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

var vrrpTOMLErrorTests = []struct {
	name string
	in   string
	want []string
}{
	{"vrrp vrid with a carp vhid's number", oneVHID + "\n[[vhid]]\ninterface = \"eth0\"\nvhid = 100\ncarpver = 3\naddresses = [\"192.0.2.51\"]\n", []string{
		`carpd.toml:8: "vhid = 100": vhid 100 on eth0 is already defined at carpd.toml:1: a CARP vhid and a VRRP vrid (carpver 3) share the numbers of an interface`,
	}},
	{"carpver 4", oneVHID + "carpver = 4\n", []string{`carpd.toml:5: "carpver = 4": carpver must be 2 (CARP) or 3 (VRRPv3)`}},
	{"carpver as a string", oneVHID + "carpver = \"3\"\n", []string{`carpd.toml:5: "carpver = \"3\"": carpver must be an integer 2..3`}},
	{"vrrp-priority 0", oneVHID + "carpver = 3\nvrrp-priority = 0\n", []string{`carpd.toml:6: "vrrp-priority = 0": vrrp-priority must be 1..255`}},
	{"vrrp-priority 256", oneVHID + "carpver = 3\nvrrp-priority = 256\n", []string{`carpd.toml:6: "vrrp-priority = 256": vrrp-priority must be 1..255`}},
	{"vrrp-priority huge", oneVHID + "carpver = 3\nvrrp-priority = 99999999999999999999\n", []string{`carpd.toml:6: "vrrp-priority = 99999999999999999999": invalid TOML: decimal number is too large to fit in a 64-bit signed integer`}},
	{"vrrp-interval 0", oneVHID + "carpver = 3\nvrrp-interval = 0\n", []string{`carpd.toml:6: "vrrp-interval = 0": vrrp-interval must be 1..4095`}},
	{"vrrp-interval 4096", oneVHID + "carpver = 3\nvrrp-interval = 4096\n", []string{`carpd.toml:6: "vrrp-interval = 4096": vrrp-interval must be 1..4095`}},
	{"vrrp-interval as a duration", oneVHID + "carpver = 3\nvrrp-interval = \"10ms\"\n", []string{`carpd.toml:6: "vrrp-interval = \"10ms\"": vrrp-interval must be an integer 1..4095`}},
	{"vrrp-tiebreak type", oneVHID + "carpver = 3\nvrrp-tiebreak = 1\n", []string{`carpd.toml:6: "vrrp-tiebreak = 1": vrrp-tiebreak must be true or false`}},
	{"FreeBSD's words", oneVHID + "vrrpprio = 1\nvrrpinterval = 1\nprotocol = \"vrrp\"\n", []string{
		`carpd.toml:5: "vrrpprio": unknown key in [[vhid]] (did you mean vrrp-priority?)`,
		`carpd.toml:6: "vrrpinterval": unknown key in [[vhid]] (did you mean vrrp-interval?)`,
		`carpd.toml:7: "protocol": unknown key in [[vhid]] (did you mean carpver?)`,
	}},
	{"VRRP keys on a CARP vhid", oneVHID + "vrrp-priority = 100\nvrrp-interval = 100\nvrrp-tiebreak = true\n", []string{
		`carpd.toml:5: "vrrp-priority = 100": a VRRP keyword, but vhid 100 on eth0 is CARP: add carpver = 3 for VRRPv3`,
		`carpd.toml:6: "vrrp-interval = 100": a VRRP keyword, but vhid 100 on eth0 is CARP: add carpver = 3 for VRRPv3`,
		`carpd.toml:7: "vrrp-tiebreak = true": a VRRP keyword, but vhid 100 on eth0 is CARP: add carpver = 3 for VRRPv3`,
	}},
	{"VRRP keys on a carpver 2 vhid", oneVHID + "carpver = 2\nvrrp-priority = 100\n", []string{
		`carpd.toml:6: "vrrp-priority = 100": a VRRP keyword, but vhid 100 on eth0 is CARP: add carpver = 3 for VRRPv3`,
	}},
	{"CARP keys on a VRRP vhid", oneVHID + "advbase = 1\nadvskew = 100\npassword = \"s3cret\"\npeer = \"192.0.2.9\"\npeer6 = \"2001:db8::9\"\nreplay-protection = true\ncarpver = 3\n", []string{
		`carpd.toml:5: "advbase = 1": a CARP keyword, but vhid 100 on eth0 is VRRPv3 ("carpver = 3" at carpd.toml:11): VRRP's interval is vrrp-interval, in centiseconds`,
		`carpd.toml:6: "advskew = 100": a CARP keyword, but vhid 100 on eth0 is VRRPv3 ("carpver = 3" at carpd.toml:11): VRRP's priority is vrrp-priority, the higher wins`,
		`carpd.toml:7: "password": a CARP keyword, but vhid 100 on eth0 is VRRPv3 ("carpver = 3" at carpd.toml:11): VRRPv3 has no authentication`,
		`carpd.toml:8: "peer = \"192.0.2.9\"": a CARP keyword, but vhid 100 on eth0 is VRRPv3 ("carpver = 3" at carpd.toml:11): VRRPv3 is multicast only (RFC 5798 has no unicast)`,
		`carpd.toml:9: "peer6 = \"2001:db8::9\"": peer6 is an IPv6 peer, but the vhid has no IPv6 address`,
		`carpd.toml:9: "peer6 = \"2001:db8::9\"": a CARP keyword, but vhid 100 on eth0 is VRRPv3 ("carpver = 3" at carpd.toml:11): VRRPv3 is multicast only (RFC 5798 has no unicast)`,
		`carpd.toml:10: "replay-protection = true": a CARP keyword, but vhid 100 on eth0 is VRRPv3 ("carpver = 3" at carpd.toml:11): VRRPv3 adverts carry no counter`,
	}},
}

func TestParseTOMLVRRPErrors(t *testing.T) {
	for _, tc := range vrrpTOMLErrorTests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := ParseTOML("carpd.toml", []byte(tc.in), t.TempDir())
			if err == nil {
				t.Fatalf("ParseTOML succeeded with %+v, want errors", cfg)
			}
			if diff := cmp.Diff(tc.want, errorStrings(t, err)); diff != "" {
				t.Errorf("errors mismatch (-want +got):\n%s", diff)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("error shows the password: %v", err)
			}
		})
	}
}

// TestParseTOMLVRRPPasswordFile: a password-file on a VRRP vhid is the
// same error as a password, at the password-file's line.
func TestParseTOMLVRRPPasswordFile(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "pass"), []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := ParseTOML("carpd.toml", []byte(oneVHID+"carpver = 3\npassword-file = \"pass\"\n"), dir)
	want := []string{`carpd.toml:6: "password-file = \"pass\"": a CARP keyword, but vhid 100 on eth0 is VRRPv3 ("carpver = 3" at carpd.toml:5): VRRPv3 has no authentication`}
	if err == nil {
		t.Fatal("ParseTOML succeeded, want an error")
	}
	if diff := cmp.Diff(want, errorStrings(t, err)); diff != "" {
		t.Errorf("errors mismatch (-want +got):\n%s", diff)
	}
}

// TestPreemptOfVRRP: a VRRP vhid preempts by default (RFC 5798,
// keepalived), a CARP vhid does not (FreeBSD's sysctl); the global key or
// flag, when given, decides for both; the vhid's own key above all.
func TestPreemptOfVRRP(t *testing.T) {
	carpV := vhid("eth0", 1, "x:1", "192.0.2.1/32")
	vrrpV := vrrpVHID("eth0", 2, "x:2", "192.0.2.2/32")
	f, tr := false, true
	for _, tc := range []struct {
		name          string
		cfg           Config
		vhidPreempt   *bool
		carp, vrrpOut bool
	}{
		{"nothing given", Config{}, nil, false, true},
		{"global preempt = false given", Config{PreemptGiven: true}, nil, false, false},
		{"global preempt = true given", Config{Preempt: true, PreemptGiven: true}, nil, true, true},
		{"vhid's own false", Config{}, &f, false, false},
		{"vhid's own true over global false", Config{PreemptGiven: true}, &tr, true, true},
	} {
		c, v := carpV, vrrpV
		c.Preempt, v.Preempt = tc.vhidPreempt, tc.vhidPreempt
		if got := tc.cfg.PreemptOf(&c); got != tc.carp {
			t.Errorf("%s: CARP PreemptOf = %v, want %v", tc.name, got, tc.carp)
		}
		if got := tc.cfg.PreemptOf(&v); got != tc.vrrpOut {
			t.Errorf("%s: VRRP PreemptOf = %v, want %v", tc.name, got, tc.vrrpOut)
		}
	}
	// --preempt=false given on the command line counts as given.
	cfg := Default()
	no := false
	if err := cfg.Apply(Overrides{Preempt: &no}); err != nil {
		t.Fatal(err)
	}
	if !cfg.PreemptGiven || cfg.PreemptOf(&vrrpV) {
		t.Errorf("after --preempt=false: PreemptGiven %v, VRRP PreemptOf %v; want true, false", cfg.PreemptGiven, cfg.PreemptOf(&vrrpV))
	}
	// rc.conf gives no preempt: its VRRP vhids preempt.
	rc, err := ParseRCConf("rc.conf", strings.NewReader(`ifconfig_em0_alias0="inet 192.0.2.50/32 vhid 1 carpver 3"`))
	if err != nil {
		t.Fatal(err)
	}
	if rc.PreemptGiven || !rc.PreemptOf(&rc.VHIDs[0]) {
		t.Errorf("rc.conf VRRP vhid: PreemptGiven %v, PreemptOf %v; want false, true", rc.PreemptGiven, rc.PreemptOf(&rc.VHIDs[0]))
	}
}
