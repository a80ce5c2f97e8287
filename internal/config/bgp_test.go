package config

import (
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

const bgpTable = `[bgp]
local-as = 65010
router-id = "192.0.2.11"
peers = [{ address = "192.0.2.1", as = 65000 }]
`

func TestParseBGP(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "bgp.pw"), []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	in := `[bgp]
local-as = 4200000001
router-id = "192.0.2.11"
hold = "6s"
peers = [
	{ address = "192.0.2.1", as = 65000 },
	{ address = "2001:db8::1", as = 65000, port = 1179, password-file = "bgp.pw" },
]

[[vhid]]
interface = "eth0"
vhid = 100
addresses = ["203.0.113.50/32", "2001:db8:1::50/128"]
mover = "bgp"

[[vhid]]
interface = "eth0"
vhid = 101
addresses = ["192.0.2.51/32"]
mover = "l2"
`
	cfg, err := ParseTOML("carpd.toml", []byte(in), dir)
	if err != nil {
		t.Fatal(err)
	}
	want := &BGP{
		LocalAS: 4200000001, RouterID: netip.MustParseAddr("192.0.2.11"),
		Hold: 6 * time.Second, Keepalive: 2 * time.Second,
		Peers: []BGPPeer{
			{Address: netip.MustParseAddr("192.0.2.1"), AS: 65000, Port: 179, Origin: "carpd.toml:6"},
			{Address: netip.MustParseAddr("2001:db8::1"), AS: 65000, Port: 1179, Password: "s3cret", Origin: "carpd.toml:7"},
		},
		Origin: "carpd.toml:1", HoldOrigin: "carpd.toml:4",
	}
	if diff := cmp.Diff(want, cfg.BGP, cmpOpts...); diff != "" {
		t.Errorf("BGP mismatch (-want +got):\n%s", diff)
	}
	if m := []string{cfg.VHIDs[0].Mover, cfg.VHIDs[1].Mover}; m[0] != MoverBGP || m[1] != MoverL2 {
		t.Errorf("movers %q, want bgp and l2", m)
	}

	// The defaults: hold 9 s, keepalive 3 s, no mover given means "".
	cfg, err = ParseTOML("carpd.toml", []byte(bgpTable+oneVHID), dir)
	if err != nil {
		t.Fatal(err)
	}
	if b := cfg.BGP; b.Hold != 9*time.Second || b.Keepalive != 3*time.Second || b.HoldOrigin != "carpd.toml:1" || cfg.VHIDs[0].Mover != "" {
		t.Errorf("defaults: %+v, mover %q", b, cfg.VHIDs[0].Mover)
	}
}

func TestParseBGPErrors(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"bgp mover without [bgp]", oneVHID + "mover = \"bgp\"\n", `carpd.toml:5: "mover = \"bgp\"": mover = "bgp" needs a [bgp] table`},
		{"unknown mover", oneVHID + "mover = \"aws\"\n", `carpd.toml:5: "mover = \"aws\"": mover must be "l2" or "bgp"`},
		{"mover not a string", oneVHID + "mover = 1\n", `mover must be a string`},
		{"bgp with virtual-mac", bgpTable + oneVHID + "mover = \"bgp\"\nvirtual-mac = true\n", `does not go with virtual-mac`},
		{"no IPv6 peer", bgpTable + "[[vhid]]\ninterface = \"eth0\"\nvhid = 1\naddresses = [\"2001:db8::50\"]\nmover = \"bgp\"\n", `address 2001:db8::50/128 has no bgp peer of its family`},
		{"hold too short", bgpTable + "hold = \"2s\"\n" + oneVHID, `carpd.toml:5: "hold = \"2s\"": hold must be 3s..65535s (RFC 4271)`},
		{"hold not whole seconds", bgpTable + "hold = \"4500ms\"\n" + oneVHID, `hold must be a duration in whole seconds`},
		{"keepalive above hold/3", bgpTable + "hold = \"6s\"\nkeepalive = \"3s\"\n" + oneVHID, `carpd.toml:6: "keepalive = \"3s\"": keepalive must be at most a third of hold (6s)`},
		{"missing local-as", "[bgp]\nrouter-id = \"192.0.2.11\"\npeers = [{ address = \"192.0.2.1\", as = 65000 }]\n" + oneVHID, `carpd.toml:1: "[bgp]": local-as is required`},
		{"local-as 0", strings.Replace(bgpTable, "65010", "0", 1) + oneVHID, `local-as must be 1..4294967295`},
		{"local-as too big", strings.Replace(bgpTable, "65010", "4294967296", 1) + oneVHID, `local-as must be 1..4294967295`},
		{"router-id IPv6", strings.Replace(bgpTable, `"192.0.2.11"`, `"2001:db8::11"`, 1) + oneVHID, `router-id must be an IPv4 address`},
		{"no peers", strings.Replace(bgpTable, `{ address = "192.0.2.1", as = 65000 }`, "", 1) + oneVHID, `peers must list at least one peer`},
		{"peer without as", strings.Replace(bgpTable, `, as = 65000`, "", 1) + oneVHID, `carpd.toml:4: "peers": a bgp peer needs as`},
		{"peer address bad", strings.Replace(bgpTable, `"192.0.2.1"`, `"router"`, 1) + oneVHID, `address must be an IP address`},
		{"peer twice", strings.Replace(bgpTable, `}]`, `}, { address = "192.0.2.1", as = 65001 }]`, 1) + oneVHID, `bgp peer 192.0.2.1 is already at carpd.toml:4`},
		{"peer port 0", strings.Replace(bgpTable, `as = 65000`, `as = 65000, port = 0`, 1) + oneVHID, `port must be 1..65535`},
		{"peer unknown key", strings.Replace(bgpTable, `as = 65000`, `as = 65000, password = "x"`, 1) + oneVHID, `unknown key in a bgp peer`},
		{"peer password file missing", strings.Replace(bgpTable, `as = 65000`, `as = 65000, password-file = "nope.pw"`, 1) + oneVHID, `cannot read the password`},
		{"unknown bgp key", bgpTable + "med = 10\n" + oneVHID, `carpd.toml:5: "med": unknown key in [bgp]`},
		{"peers not tables", strings.Replace(bgpTable, `[{ address = "192.0.2.1", as = 65000 }]`, `["192.0.2.1"]`, 1) + oneVHID, `peers must be a list of tables`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := ParseTOML("carpd.toml", []byte(tc.in), t.TempDir())
			if err == nil {
				t.Fatalf("ParseTOML succeeded with %+v, want an error", cfg)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want it to contain %q", err, tc.want)
			}
		})
	}
}

// TestCheckBGPHold: the rule that the [etcd] table's reader applies (R4).
func TestCheckBGPHold(t *testing.T) {
	b := &BGP{Hold: 9 * time.Second}
	at := pos{line: 4, word: `hold = "9s"`}
	for _, tc := range []struct {
		ttl  time.Duration
		fail bool
	}{{0, false}, {10 * time.Second, false}, {9 * time.Second, false}, {8 * time.Second, true}} {
		l := &errList{file: "carpd.toml"}
		checkBGPHold(l, b, at, tc.ttl)
		err := l.err()
		if (err != nil) != tc.fail {
			t.Errorf("hold 9s, ttl %v: %v, want failure %v", tc.ttl, err, tc.fail)
		}
		if err != nil && !strings.Contains(err.Error(), `carpd.toml:4: "hold = \"9s\"": hold (9s) must not exceed the etcd lease ttl (8s)`) {
			t.Errorf("message: %v", err)
		}
	}
}

// TestLoadBGPMover: carpd runs the bgp mover, so the file it loads may
// choose it.
func TestLoadBGPMover(t *testing.T) {
	path := filepath.Join(t.TempDir(), "carpd.toml")
	if err := os.WriteFile(path, []byte(bgpTable+oneVHID+"mover = \"bgp\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadTOML(path)
	if err != nil {
		t.Fatalf("LoadTOML: %v", err)
	}
	if cfg.BGP == nil || cfg.VHIDs[0].MoverOf() != MoverBGP {
		t.Fatalf("LoadTOML: bgp %v, mover %q", cfg.BGP, cfg.VHIDs[0].MoverOf())
	}
}

// TestSameBGP: two [bgp] tables configure the same speaker whatever their
// places in the file; any other difference, a peer's included, or one
// table missing, makes them differ.
func TestSameBGP(t *testing.T) {
	peer := BGPPeer{Address: netip.MustParseAddr("192.0.2.1"), AS: 65000, Port: DefaultBGPPort, Origin: "a.toml:3"}
	a := &BGP{LocalAS: 65010, RouterID: netip.MustParseAddr("192.0.2.11"), Hold: DefaultBGPHold, Keepalive: 3 * time.Second,
		Peers: []BGPPeer{peer}, Origin: "a.toml:1", HoldOrigin: "a.toml:1"}
	moved := *a
	moved.Origin, moved.HoldOrigin = "b.toml:7", "b.toml:8"
	moved.Peers = []BGPPeer{peer}
	moved.Peers[0].Origin = "b.toml:9"
	if !SameBGP(a, &moved) || !SameBGP(nil, nil) {
		t.Error("tables that differ only in their places differ")
	}
	for name, change := range map[string]func(b *BGP){
		"local-as":  func(b *BGP) { b.LocalAS++ },
		"router-id": func(b *BGP) { b.RouterID = netip.MustParseAddr("192.0.2.12") },
		"hold":      func(b *BGP) { b.Hold = MinBGPHold },
		"keepalive": func(b *BGP) { b.Keepalive = time.Second },
		"peer as":   func(b *BGP) { b.Peers[0].AS++ },
		"password":  func(b *BGP) { b.Peers[0].Password = "x" },
		"peers":     func(b *BGP) { b.Peers = append(b.Peers, peer) },
	} {
		b := *a
		b.Peers = slices.Clone(a.Peers)
		change(&b)
		if SameBGP(a, &b) {
			t.Errorf("%s changed: the same speaker", name)
		}
	}
	if SameBGP(a, nil) || SameBGP(nil, a) {
		t.Error("a table and none: the same speaker")
	}
}
