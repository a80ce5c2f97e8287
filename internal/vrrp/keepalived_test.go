package vrrp

import (
	"bytes"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/carpd/carpd/internal/craft"
)

// captureCase is one keepalived VRRPv3 instance whose adverts are captured
// in testdata/<name>.pcap (see TestCaptureKeepalived, which regenerates
// them) and checked against its configuration (TestKeepalivedPcaps).
type captureCase struct {
	name     string
	vrid     uint8
	priority uint8
	advert   string // keepalived's advert_int
	interval uint16 // the same in centiseconds
	vips     []string
	packets  int // how many adverts the capture keeps
}

var captureCases = []captureCase{
	{name: "keepalived-v4-int1-one", vrid: 51, priority: 150, advert: "1", interval: 100,
		vips: []string{"192.0.2.50"}, packets: 3},
	{name: "keepalived-v4-int001-three", vrid: 52, priority: 200, advert: "0.01", interval: 1,
		vips: []string{"192.0.2.60", "192.0.2.61", "198.51.100.7"}, packets: 5},
	{name: "keepalived-v6-int1-one", vrid: 53, priority: 150, advert: "1", interval: 100,
		vips: []string{"2001:db8::50"}, packets: 3},
	{name: "keepalived-v6-int001-three", vrid: 54, priority: 100, advert: "0.01", interval: 1,
		vips: []string{"2001:db8::60", "2001:db8::61", "2001:db8:1::7"}, packets: 5},
}

func (c captureCase) addrs() []netip.Addr {
	var out []netip.Addr
	for _, s := range c.vips {
		out = append(out, netip.MustParseAddr(s))
	}
	return out
}

func (c captureCase) is6() bool { return c.addrs()[0].Is6() }

func (c captureCase) pcap() string { return filepath.Join("testdata", c.name+".pcap") }

// readCapture returns the protocol-112 packets of c's pcap.
func readCapture(t testing.TB, path string) []craft.Captured {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	pkts, err := craft.ReadPcap(f)
	if err != nil {
		t.Fatal(err)
	}
	return pkts
}

// TestKeepalivedPcaps parses every advert keepalived 2.2.7 sent in the
// captures: checksum, fields and addresses as configured, TTL 255, sent to
// the group, and Marshal gives back the captured bytes exactly.
func TestKeepalivedPcaps(t *testing.T) {
	for _, c := range captureCases {
		t.Run(c.name, func(t *testing.T) {
			pkts := readCapture(t, c.pcap())
			if len(pkts) != c.packets {
				t.Fatalf("%d adverts in %s, want %d", len(pkts), c.pcap(), c.packets)
			}
			group := GroupIPv4
			if c.is6() {
				group = GroupIPv6
			}
			a := Advert{Addrs: make([]netip.Addr, 0, MaxAddrs)}
			for i, p := range pkts {
				if p.Dst != group {
					t.Fatalf("advert %d to %v, want %v", i, p.Dst, group)
				}
				if c.is6() != p.Src.Is6() || (c.is6() && !p.Src.IsLinkLocalUnicast()) {
					t.Fatalf("advert %d from %v", i, p.Src)
				}
				if err := CheckTTL(p.TTL); err != nil {
					t.Fatalf("advert %d: TTL %d: %v", i, p.TTL, err)
				}
				if err := ParseInto(p.Payload, p.Src, p.Dst, &a); err != nil {
					t.Fatalf("advert %d (% x): %v", i, p.Payload, err)
				}
				if a.VRID != c.vrid || a.Priority != c.priority || a.Interval != c.interval || !slices.Equal(a.Addrs, c.addrs()) {
					t.Fatalf("advert %d = %+v, want vrid %d priority %d interval %d addrs %v",
						i, a, c.vrid, c.priority, c.interval, c.addrs())
				}
				b, err := a.Marshal(p.Src, p.Dst)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(b, p.Payload) {
					t.Fatalf("advert %d: Marshal = % x, captured % x", i, b, p.Payload)
				}
				// The checksum is really checked: one bit off fails.
				bad := slices.Clone(p.Payload)
				bad[len(bad)-1] ^= 1
				if err := ParseInto(bad, p.Src, p.Dst, &a); err != ErrChecksum {
					t.Fatalf("advert %d with a flipped bit: %v", i, err)
				}
			}
		})
	}
}
