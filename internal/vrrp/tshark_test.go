package vrrp

import (
	"encoding/binary"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/carpd/carpd/internal/craft"

	"github.com/carpd/carpd/internal/lab/labtest"
)

// writeRawPcap writes IP packets as a classic pcap of link type raw IP
// (LINKTYPE_RAW, 101).
func writeRawPcap(path string, pkts [][]byte) error {
	b := binary.LittleEndian.AppendUint32(nil, 0xa1b2c3d4)
	b = binary.LittleEndian.AppendUint16(b, 2)
	b = binary.LittleEndian.AppendUint16(b, 4)
	b = binary.LittleEndian.AppendUint32(b, 0)     // thiszone
	b = binary.LittleEndian.AppendUint32(b, 0)     // sigfigs
	b = binary.LittleEndian.AppendUint32(b, 65535) // snaplen
	b = binary.LittleEndian.AppendUint32(b, 101)   // LINKTYPE_RAW
	for i, p := range pkts {
		b = binary.LittleEndian.AppendUint32(b, uint32(1795900000+i))
		b = binary.LittleEndian.AppendUint32(b, 0)
		b = binary.LittleEndian.AppendUint32(b, uint32(len(p)))
		b = binary.LittleEndian.AppendUint32(b, uint32(len(p)))
		b = append(b, p...)
	}
	return os.WriteFile(path, b, 0o644)
}

// TestTshark has Wireshark's VRRP dissector judge carpd's adverts: version
// 3 and a good checksum (with the pseudo-header) for IPv4 and IPv6, the
// fields as marshalled, and a bad checksum for one advert spoiled on
// purpose, which shows the check can fail.
func TestTshark(t *testing.T) {
	tshark := labtest.Tool(t, "tshark")
	type row struct {
		a        Advert
		src, dst netip.Addr
		spoil    bool
		want     string // version, checksum status (1 good, 0 bad), vrid, priority, interval, addresses
	}
	rows := []row{
		{Advert{VRID: 1, Priority: 100, Interval: 100, Addrs: []netip.Addr{vip4}}, src4, GroupIPv4, false,
			"3\t1\t1\t100\t100\t192.0.2.50\t"},
		{Advert{VRID: 255, Priority: 0, Interval: 4095, Addrs: []netip.Addr{vip4, netip.MustParseAddr("203.0.113.9")}}, src4, GroupIPv4, false,
			"3\t1\t255\t0\t4095\t192.0.2.50,203.0.113.9\t"},
		{Advert{VRID: 7, Priority: 254, Interval: 1, Addrs: []netip.Addr{netip.MustParseAddr("fe80::7"), vip6}}, src6, GroupIPv6, false,
			"3\t1\t7\t254\t1\t\tfe80::7,2001:db8::50"},
		{Advert{VRID: 8, Priority: 100, Interval: 100, Addrs: []netip.Addr{vip6}}, src6, GroupIPv6, true,
			"3\t0\t8\t100\t100\t\t2001:db8::50"},
		{Advert{VRID: 9, Priority: 100, Interval: 100, Addrs: []netip.Addr{vip4}}, src4, GroupIPv4, true,
			"3\t0\t9\t100\t100\t192.0.2.50\t"},
	}
	var pkts [][]byte
	var want []string
	for _, r := range rows {
		m, err := r.a.Marshal(r.src, r.dst)
		if err != nil {
			t.Fatal(err)
		}
		if r.spoil {
			m[7] ^= 0x10
		}
		var p []byte
		if r.src.Is4() {
			p, err = craft.IPv4{Src: r.src, Dst: r.dst, TTL: TTL}.Packet(m)
		} else {
			p, err = craft.IPv6{Src: r.src, Dst: r.dst, HopLimit: TTL}.Packet(m)
		}
		if err != nil {
			t.Fatal(err)
		}
		pkts = append(pkts, p)
		want = append(want, r.want)
	}
	path := filepath.Join(t.TempDir(), "carpd-vrrp.pcap")
	if err := writeRawPcap(path, pkts); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(tshark, "-r", path, "-T", "fields", "-e", "vrrp.version", "-e", "vrrp.checksum.status",
		"-e", "vrrp.virt_rtr_id", "-e", "vrrp.prio", "-e", "vrrp.short_adver_int", "-e", "vrrp.ip_addr", "-e", "vrrp.ipv6_addr")
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir()) // no user profile
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tshark: %v", err)
	}
	got := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	if !slices.Equal(got, want) {
		t.Fatalf("tshark fields:\n%q\nwant\n%q", got, want)
	}
}
