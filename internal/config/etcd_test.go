package config

import (
	"os"
	"strings"
	"testing"
	"time"
)

const etcdVHID = `
[[vhid]]
interface = "eth0"
vhid = 100
addresses = ["192.0.2.50/32"]
electorate = "etcd"
advskew = 100
`

func TestEtcdDefaults(t *testing.T) {
	cfg, err := ParseTOML("carpd.toml", []byte(`[etcd]
endpoints = ["http://198.51.100.10:2379", "https://198.51.100.11:2379"]
node = "h1"
`+bgpTable+etcdVHID+`mover = "bgp"
[[vhid]]
interface = "eth0"
vhid = 101
addresses = ["192.0.2.51/32"]
`), "/etc/carpd")
	if err != nil {
		t.Fatal(err)
	}
	e := cfg.Etcd
	if e == nil || e.Prefix != "/carpd/" || e.Node != "h1" || e.TTL != 10*time.Second || e.Renew != 2*time.Second ||
		e.RequestTimeout != 1500*time.Millisecond || e.FenceMargin != 2*time.Second || len(e.Endpoints) != 2 || e.Origin != "carpd.toml:1" {
		t.Fatalf("etcd %+v", e)
	}
	v0, v1 := cfg.VHIDs[0], cfg.VHIDs[1]
	if !v0.IsEtcd() || v0.MoverOf() != MoverBGP || v0.AdvSkew != 100 || v1.IsEtcd() || v1.MoverOf() != MoverL2 {
		t.Fatalf("vhids %+v %+v", v0, v1)
	}
	// The fast profile's defaults: ttl 4 s gives renew 800 ms, margin 1 s.
	cfg, err = ParseTOML("carpd.toml", []byte("[etcd]\nendpoints = [\"http://198.51.100.10:2379\"]\nttl = \"4s\"\nca-file = \"ca.pem\"\n"+etcdVHID), "/etc/carpd")
	if err != nil {
		t.Fatal(err)
	}
	if e := cfg.Etcd; e.Renew != 800*time.Millisecond || e.FenceMargin != time.Second || e.RequestTimeout != 600*time.Millisecond || e.CAFile != "/etc/carpd/ca.pem" {
		t.Fatalf("etcd %+v", e)
	}
	if e := cfg.Etcd; e.Node == "" {
		t.Fatal("node does not default to the hostname")
	}
}

// TestEtcdErrors: every violation is reported, each at the line of a key
// that takes part in it.
func TestEtcdErrors(t *testing.T) {
	ep := "[etcd]\nendpoints = [\"http://198.51.100.10:2379\"]\nnode = \"h1\"\n"
	for _, tc := range []struct {
		name, file string
		want       []string
	}{
		{"ttl too short", ep + "ttl = \"1s\"\n" + etcdVHID, []string{
			`carpd.toml:4: "ttl = \"1s\"": ttl must be at least 2s`,
			`carpd.toml:4: "ttl = \"1s\"": fence-margin must be less than ttl`}},
		{"ttl not whole seconds", ep + "ttl = \"4500ms\"\n" + etcdVHID, []string{`carpd.toml:4: "ttl = \"4500ms\"": ttl must be whole seconds`}},
		{"renew too long", ep + "ttl = \"10s\"\nrenew = \"3s\"\nrequest-timeout = \"1s\"\n" + etcdVHID, []string{
			`carpd.toml:5: "renew = \"3s\"": ttl - fence-margin must be at least 3 × renew`}},
		{"renew past the lifetime", ep + "ttl = \"5s\"\nfence-margin = \"1s\"\nrenew = \"3s\"\nrequest-timeout = \"1s\"\n" + etcdVHID, []string{
			`carpd.toml:6: "renew = \"3s\"": renew must be less than floor(ttl - fence-margin) - 1s`,
			`carpd.toml:6: "renew = \"3s\"": ttl - fence-margin must be at least 3 × renew`}},
		{"request timeout", ep + "request-timeout = \"2s\"\n" + etcdVHID, []string{`carpd.toml:4: "request-timeout = \"2s\"": request-timeout must be less than renew`}},
		{"margin too small", ep + "fence-margin = \"100ms\"\n" + etcdVHID, []string{`carpd.toml:4: "fence-margin = \"100ms\"": fence-margin must be at least 500ms`}},
		{"etcd vhid without [etcd]", etcdVHID, []string{`carpd.toml: vhid 100 on eth0 (carpd.toml:2): electorate = "etcd" needs an [etcd] table`}},
		{"advert keys", ep + etcdVHID + "carpver = 3\nadvbase = 2\npassword = \"x\"\npeer = \"198.51.100.7\"\n", []string{
			`carpd.toml:11: "carpver = 3": an advert keyword, but vhid 100 on eth0 is elected on etcd`,
			`carpd.toml:12: "advbase = 2": an advert keyword`, `carpd.toml:13: "password": an advert keyword`,
			`carpd.toml:14: "peer = \"198.51.100.7\"": an advert keyword`}},
		{"vrrp", ep + strings.Replace(etcdVHID, `"etcd"`, `"vrrp"`, 1), []string{`carpd.toml:9: "electorate = \"vrrp\"": VRRPv3 is electorate = "carp" (the default) with carpver = 3`}},
		{"bad mover", ep + etcdVHID + "mover = \"aws\"\n", []string{`carpd.toml:11: "mover = \"aws\"": mover must be "l2" or "bgp"`}},
		{"unknown key", ep + "ttl-seconds = 3\n" + etcdVHID, []string{`carpd.toml:4: "ttl-seconds": unknown key in [etcd]`}},
		{"bad endpoint", "[etcd]\nendpoints = [\"198.51.100.10:2379\"]\n" + etcdVHID, []string{
			`carpd.toml:2: "198.51.100.10:2379": not an endpoint`}},
		{"no endpoints", "[etcd]\nnode = \"h1\"\n" + etcdVHID, []string{`carpd.toml:1: "[etcd]": endpoints is required`}},
		{"bad node and prefix", "[etcd]\nendpoints = [\"http://198.51.100.10:2379\"]\nnode = \"a/b\"\nprefix = \"/carpd\"\n" + etcdVHID, []string{
			`carpd.toml:3: "node = \"a/b\"": node must be`, `carpd.toml:4: "prefix = \"/carpd\"": prefix must end with "/"`}},
		{"pairs", ep + "cert-file = \"/c.pem\"\nusername = \"carpd\"\n" + etcdVHID, []string{
			`carpd.toml:4: "cert-file = \"/c.pem\"": cert-file needs key-file`, `carpd.toml:5: "username = \"carpd\"": username needs password-file`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseTOML("carpd.toml", []byte(tc.file), "")
			if err == nil {
				t.Fatal("accepted")
			}
			got := err.Error()
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("missing %q in:\n%s", w, got)
				}
			}
		})
	}
}

// TestEtcdLoads: carpd (LoadTOML, which carpd and --check-config use)
// takes an etcd vhid with the l2 mover.
func TestEtcdLoads(t *testing.T) {
	path := t.TempDir() + "/carpd.toml"
	data := "[etcd]\nendpoints = [\"http://198.51.100.10:2379\"]\nnode = \"h1\"\n" + etcdVHID
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadTOML(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.VHIDs) != 1 || !cfg.VHIDs[0].IsEtcd() {
		t.Fatalf("vhids %+v", cfg.VHIDs)
	}
	if v4, v6 := cfg.Families(); v4 || v6 {
		t.Fatalf("an etcd vhid asks for protocol sockets: %v %v", v4, v6)
	}
}

// TestBGPHoldWithinEtcdTTL: a vhid elected on etcd and moved by bgp needs a
// hold time within the lease TTL, or a peer keeps a silent holder's route
// after its lease expired; an l2 vhid beside it does not bound the hold.
func TestBGPHoldWithinEtcdTTL(t *testing.T) {
	etcd := "[etcd]\nendpoints = [\"http://198.51.100.10:2379\"]\nnode = \"h1\"\nttl = \"4s\"\n"
	bgp := bgpTable + "hold = \"9s\"\n"
	_, err := ParseTOML("carpd.toml", []byte(etcd+bgp+etcdVHID+"mover = \"bgp\"\n"), t.TempDir())
	if err == nil || !strings.Contains(err.Error(), `hold (9s) must not exceed the etcd lease ttl (4s)`) {
		t.Fatalf("got %v", err)
	}
	if _, err := ParseTOML("carpd.toml", []byte(etcd+bgp+etcdVHID), t.TempDir()); err != nil {
		t.Fatalf("an l2 etcd vhid: %v", err)
	}
}
