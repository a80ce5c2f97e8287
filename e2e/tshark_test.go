package e2e

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// updatePcapsEnv names the environment variable that makes
// TestTsharkDecodesAdverts copy its captures to internal/carp/testdata,
// where internal/carp's pcap tests read them.
const updatePcapsEnv = "CARPD_UPDATE_PCAPS"

// tsharkFields are the fields TestTsharkDecodesAdverts reads, in order.
var tsharkFields = []string{
	"_ws.col.Protocol", "eth.src", "ip.src", "ip.dst", "ip.ttl", "ip.dsfield", "ip.flags.df",
	"carp.version", "carp.type", "carp.vhid", "carp.advskew", "carp.adver_int", "carp.demotion",
	"carp.checksum.status",
}

// tsharkAdverts decodes the protocol-112 frames of a pcap with tshark and
// returns one map of field values per frame. Protocol 112 is VRRP to
// Wireshark; its CARP dissector is a heuristic one, tried first with
// ip.try_heuristic_first (Debian 12's tshark 4.0 needs nothing else).
func tsharkAdverts(t testing.TB, tshark, path string) []map[string]string {
	t.Helper()
	return runTshark(t, tshark, []string{"-n", "-r", path, "-o", "ip.try_heuristic_first:TRUE", "-Y", "ip.proto == 112", "-T", "fields"}, tsharkFields)
}

// checkAdverts fails the test unless there are at least two adverts and
// every one has the wanted field values.
func checkAdverts(t testing.TB, who string, rows []map[string]string, want map[string]string) {
	t.Helper()
	if len(rows) < 2 {
		t.Errorf("%s: tshark found %d protocol-112 frames, want at least 2", who, len(rows))
	}
	for i, row := range rows {
		for f, w := range want {
			if row[f] != w {
				t.Errorf("%s: frame %d: %s = %q, want %q (frame %v)", who, i+1, f, row[f], w, row)
			}
		}
	}
}

// TestTsharkDecodesAdverts captures carpd's adverts and then ucarp's on
// their switch ports and has tshark decode them as CARP: version 2, type
// advertisement, vhid 100, advskew 100, advbase 1, checksum status Good
// (tshark's field value 1). It checks the IP and Ethernet headers the
// reference gives: carpd sends TTL 255, TOS 0xE0, DF, from the host's own
// MAC; ucarp TTL 255, TOS 0x10, DF, from 00:00:5e:00:00:64 (its vhid in the
// wrong byte of the virtual MAC). With CARPD_UPDATE_PCAPS=1 it copies the
// captures to internal/carp/testdata.
func TestTsharkDecodesAdverts(t *testing.T) {
	t.Parallel() // bounds of seconds at advbase 1: see parallel_test.go
	tshark := needBinary(t, "tshark")
	needBinary(t, "tcpdump")
	p := newPeers(t, true)
	dir := t.TempDir()

	c := startPcap(t, p.lab.Switch, p.carpd.Port, dir, "ip proto 112 or arp")
	cdPcap := c.path
	cd := p.startCarpd(100)
	if took, ok := p.waitSole(p.carpd, 10*time.Second); !ok {
		t.Fatalf("carpd does not hold the VIP after %v", took)
	}
	time.Sleep(3 * time.Second) // three adverts, 1.39 s apart
	c.stop(t)
	stopGracefully(t, cd)

	c = startPcap(t, p.lab.Switch, p.ucarp.Port, dir, "ip proto 112 or arp")
	ucPcap := c.path
	p.startUcarp(100)
	if took, ok := p.waitSole(p.ucarp, ucarpStartMaster); !ok {
		t.Fatalf("ucarp does not hold the VIP after %v", took)
	}
	time.Sleep(3 * time.Second)
	c.stop(t)

	carp := map[string]string{
		"_ws.col.Protocol": "CARP", "carp.version": "2", "carp.type": "1", "carp.vhid": "100",
		"carp.advskew": "100", "carp.adver_int": "1", "carp.demotion": "0",
		"carp.checksum.status": "1", // PROTO_CHECKSUM_E_GOOD
		"ip.dst":               "224.0.0.18", "ip.ttl": "255", "ip.flags.df": "1",
	}
	with := func(extra map[string]string) map[string]string {
		m := map[string]string{}
		for k, v := range carp {
			m[k] = v
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	checkAdverts(t, "carpd", tsharkAdverts(t, tshark, cdPcap), with(map[string]string{
		"ip.src": p.carpdAddr.Addr().String(), "ip.dsfield": "0xe0", "eth.src": p.carpd.MAC.String(),
	}))
	checkAdverts(t, "ucarp", tsharkAdverts(t, tshark, ucPcap), with(map[string]string{
		"ip.src": p.ucarpAddr.Addr().String(), "ip.dsfield": "0x10", "eth.src": "00:00:5e:00:00:64",
	}))

	if os.Getenv(updatePcapsEnv) == "" || t.Failed() {
		return
	}
	for _, src := range []string{cdPcap, ucPcap} {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join("..", "internal", "carp", "testdata", filepath.Base(src))
		if err := os.WriteFile(dst, b, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s (%d bytes)", dst, len(b))
	}
}
