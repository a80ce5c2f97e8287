package announce

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/mdlayher/arp"
	"github.com/mdlayher/ndp"
)

// frame is one ARP packet as written, in readable form.
type frame struct {
	IfIndex            int
	EthDst             string
	Op                 arp.Operation
	SenderHW, SenderIP string
	TargetHW, TargetIP string
}

// advert is one neighbour advertisement as written, in readable form.
type advert struct {
	IfIndex                     int
	Dst                         string
	Router, Solicited, Override bool
	Target                      string
	TLLA                        string
}

// fakeNet hands out fake ARP clients and NDP connections that record what
// they write. Dials and closes are recorded as "arp 3" or "ndp 3".
type fakeNet struct {
	dials   []string
	frames  []frame
	adverts []advert
	closed  []string
	dialErr error
	// failWrites makes the next that many writes fail.
	failWrites int
}

type fakeConn struct {
	n       *fakeNet
	kind    string
	ifindex int
}

func (c *fakeConn) fail() error {
	if c.n.failWrites > 0 {
		c.n.failWrites--
		return errors.New("network is down")
	}
	return nil
}

func (c *fakeConn) Close() error {
	c.n.closed = append(c.n.closed, fmt.Sprintf("%s %d", c.kind, c.ifindex))
	return nil
}

type fakeARP struct{ fakeConn }

func (c *fakeARP) WriteTo(p *arp.Packet, addr net.HardwareAddr) error {
	if err := c.fail(); err != nil {
		return err
	}
	// The packet must be one the wire format accepts.
	if _, err := p.MarshalBinary(); err != nil {
		return err
	}
	c.n.frames = append(c.n.frames, frame{
		IfIndex: c.ifindex, EthDst: addr.String(), Op: p.Operation,
		SenderHW: p.SenderHardwareAddr.String(), SenderIP: p.SenderIP.String(),
		TargetHW: p.TargetHardwareAddr.String(), TargetIP: p.TargetIP.String(),
	})
	return nil
}

type fakeNDP struct{ fakeConn }

func (c *fakeNDP) WriteTo(m ndp.Message, dst netip.Addr) error {
	if err := c.fail(); err != nil {
		return err
	}
	// Record what a receiver would parse from the bytes on the wire.
	b, err := ndp.MarshalMessage(m)
	if err != nil {
		return err
	}
	parsed, err := ndp.ParseMessage(b)
	if err != nil {
		return err
	}
	na, ok := parsed.(*ndp.NeighborAdvertisement)
	if !ok {
		return fmt.Errorf("wrote %T, want a neighbour advertisement", parsed)
	}
	a := advert{
		IfIndex: c.ifindex, Dst: dst.String(),
		Router: na.Router, Solicited: na.Solicited, Override: na.Override,
		Target: na.TargetAddress.String(),
	}
	for _, o := range na.Options {
		if lla, ok := o.(*ndp.LinkLayerAddress); ok && lla.Direction == ndp.Target {
			a.TLLA = lla.Addr.String()
		} else {
			return fmt.Errorf("unexpected option %#v", o)
		}
	}
	c.n.adverts = append(c.n.adverts, a)
	return nil
}

func (n *fakeNet) dial(kind string, ifindex int) (fakeConn, error) {
	n.dials = append(n.dials, fmt.Sprintf("%s %d", kind, ifindex))
	return fakeConn{n: n, kind: kind, ifindex: ifindex}, n.dialErr
}

func (n *fakeNet) announcer() *Announcer {
	return newAnnouncer(
		func(ifindex int) (arpWriter, error) {
			c, err := n.dial("arp", ifindex)
			if err != nil {
				return nil, err
			}
			return &fakeARP{c}, nil
		},
		func(ifindex int) (ndpWriter, error) {
			c, err := n.dial("ndp", ifindex)
			if err != nil {
				return nil, err
			}
			return &fakeNDP{c}, nil
		},
	)
}

const (
	hw    = "02:00:00:00:00:01"
	bcast = "ff:ff:ff:ff:ff:ff"
	zero  = "00:00:00:00:00:00"
)

func mac(s string) net.HardwareAddr {
	m, err := net.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}

func addrs(ss ...string) []netip.Addr {
	var out []netip.Addr
	for _, s := range ss {
		out = append(out, netip.MustParseAddr(s))
	}
	return out
}

// pair is the request and reply announcing ip.
func pair(ifindex int, ip string) []frame {
	return []frame{
		{IfIndex: ifindex, EthDst: bcast, Op: arp.OperationRequest, SenderHW: hw, SenderIP: ip, TargetHW: zero, TargetIP: ip},
		{IfIndex: ifindex, EthDst: bcast, Op: arp.OperationReply, SenderHW: hw, SenderIP: ip, TargetHW: bcast, TargetIP: ip},
	}
}

func TestGratuitousARP(t *testing.T) {
	tests := []struct {
		name       string
		hw         net.HardwareAddr
		addrs      []netip.Addr
		wantFrames []frame
		wantDials  []string
		wantErr    bool
	}{
		{
			name:       "one address: request then reply",
			hw:         mac(hw),
			addrs:      addrs("192.0.2.50"),
			wantFrames: pair(3, "192.0.2.50"),
			wantDials:  []string{"arp 3"},
		},
		{
			name:       "several addresses in order",
			hw:         mac(hw),
			addrs:      addrs("192.0.2.51", "192.0.2.50"),
			wantFrames: append(pair(3, "192.0.2.51"), pair(3, "192.0.2.50")...),
			wantDials:  []string{"arp 3"},
		},
		{
			name:       "IPv6 skipped, IPv4-mapped taken as IPv4",
			hw:         mac(hw),
			addrs:      addrs("2001:db8::50", "::ffff:192.0.2.50"),
			wantFrames: pair(3, "192.0.2.50"),
			wantDials:  []string{"arp 3"},
		},
		{
			name:  "only IPv6: nothing opened, nothing sent",
			hw:    mac(hw),
			addrs: addrs("2001:db8::50"),
		},
		{
			name: "no address",
			hw:   mac(hw),
		},
		{
			name:    "invalid address",
			hw:      mac(hw),
			addrs:   []netip.Addr{netip.MustParseAddr("192.0.2.50"), {}},
			wantErr: true,
		},
		{
			name:    "no hardware address",
			addrs:   addrs("192.0.2.50"),
			wantErr: true,
		},
		{
			name:    "EUI-64 hardware address",
			hw:      mac("02:00:00:00:00:00:00:01"),
			addrs:   addrs("192.0.2.50"),
			wantErr: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := &fakeNet{}
			err := n.announcer().GratuitousARP(3, tt.hw, tt.addrs)
			if (err != nil) != tt.wantErr {
				t.Fatalf("GratuitousARP() error = %v, want error %v", err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.wantFrames, n.frames); diff != "" {
				t.Errorf("frames mismatch (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantDials, n.dials); diff != "" {
				t.Errorf("dials mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// na is the unsolicited neighbour advertisement announcing that ip is at
// hw.
func na(ifindex int, ip string) advert {
	return advert{IfIndex: ifindex, Dst: "ff02::1", Override: true, Target: ip, TLLA: hw}
}

func TestUnsolicitedNA(t *testing.T) {
	tests := []struct {
		name        string
		hw          net.HardwareAddr
		addrs       []netip.Addr
		wantAdverts []advert
		wantDials   []string
		wantErr     bool
	}{
		{
			name:        "one address: override, not solicited, not router, TLLA",
			hw:          mac(hw),
			addrs:       addrs("2001:db8::50"),
			wantAdverts: []advert{na(3, "2001:db8::50")},
			wantDials:   []string{"ndp 3"},
		},
		{
			name:        "several addresses in order, link-local too",
			hw:          mac(hw),
			addrs:       addrs("2001:db8::51", "fe80::50", "2001:db8::50"),
			wantAdverts: []advert{na(3, "2001:db8::51"), na(3, "fe80::50"), na(3, "2001:db8::50")},
			wantDials:   []string{"ndp 3"},
		},
		{
			name:        "IPv4 and IPv4-mapped skipped, zone dropped",
			hw:          mac(hw),
			addrs:       addrs("192.0.2.50", "::ffff:192.0.2.51", "fe80::50%eth0"),
			wantAdverts: []advert{na(3, "fe80::50")},
			wantDials:   []string{"ndp 3"},
		},
		{
			name:  "only IPv4: nothing opened, nothing sent",
			hw:    mac(hw),
			addrs: addrs("192.0.2.50"),
		},
		{
			name: "no address",
			hw:   mac(hw),
		},
		{
			name:    "invalid address",
			hw:      mac(hw),
			addrs:   []netip.Addr{netip.MustParseAddr("2001:db8::50"), {}},
			wantErr: true,
		},
		{
			name:    "no hardware address",
			addrs:   addrs("2001:db8::50"),
			wantErr: true,
		},
		{
			name:    "EUI-64 hardware address",
			hw:      mac("02:00:00:00:00:00:00:01"),
			addrs:   addrs("2001:db8::50"),
			wantErr: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := &fakeNet{}
			err := n.announcer().UnsolicitedNA(3, tt.hw, tt.addrs)
			if (err != nil) != tt.wantErr {
				t.Fatalf("UnsolicitedNA() error = %v, want error %v", err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.wantAdverts, n.adverts); diff != "" {
				t.Errorf("advertisements mismatch (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantDials, n.dials); diff != "" {
				t.Errorf("dials mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestAnnounce(t *testing.T) {
	vips := addrs("2001:db8::50", "192.0.2.50")
	t.Run("ARP for IPv4, NA for IPv6", func(t *testing.T) {
		n := &fakeNet{}
		if err := n.announcer().Announce(3, mac(hw), vips); err != nil {
			t.Fatalf("Announce: %v", err)
		}
		if diff := cmp.Diff(pair(3, "192.0.2.50"), n.frames); diff != "" {
			t.Errorf("frames mismatch (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]advert{na(3, "2001:db8::50")}, n.adverts); diff != "" {
			t.Errorf("advertisements mismatch (-want +got):\n%s", diff)
		}
	})
	t.Run("a failed ARP does not stop the NA", func(t *testing.T) {
		n := &fakeNet{failWrites: 1}
		if err := n.announcer().Announce(3, mac(hw), vips); err == nil {
			t.Fatal("Announce succeeded with a failing ARP write")
		}
		if len(n.frames) != 0 {
			t.Errorf("frames sent: %v", n.frames)
		}
		if diff := cmp.Diff([]advert{na(3, "2001:db8::50")}, n.adverts); diff != "" {
			t.Errorf("advertisements mismatch (-want +got):\n%s", diff)
		}
	})
}

// TestConnCache checks that an ARP client and an NDP connection are opened
// once per interface, kept across calls, dropped after a write error and
// reopened, and closed by Close.
func TestConnCache(t *testing.T) {
	n := &fakeNet{}
	a := n.announcer()
	v4, v6 := addrs("192.0.2.50"), addrs("2001:db8::50")
	steps := []struct {
		name       string
		send       func(ifindex int, hw net.HardwareAddr, addrs []netip.Addr) error
		addrs      []netip.Addr
		ifindex    int
		failWrites int
		dialErr    error
		wantErr    bool
		wantDials  []string
		wantClosed []string
		wantSent   int // ARP frames and NAs in all
	}{
		{name: "first ARP opens", send: a.GratuitousARP, addrs: v4, ifindex: 3, wantDials: []string{"arp 3"}, wantSent: 2},
		{name: "second ARP reuses", send: a.GratuitousARP, addrs: v4, ifindex: 3, wantDials: []string{"arp 3"}, wantSent: 4},
		{name: "first NA opens its own", send: a.UnsolicitedNA, addrs: v6, ifindex: 3, wantDials: []string{"arp 3", "ndp 3"}, wantSent: 5},
		{name: "second NA reuses", send: a.UnsolicitedNA, addrs: v6, ifindex: 3, wantDials: []string{"arp 3", "ndp 3"}, wantSent: 6},
		{name: "other interface opens its own", send: a.GratuitousARP, addrs: v4, ifindex: 4, wantDials: []string{"arp 3", "ndp 3", "arp 4"}, wantSent: 8},
		{name: "ARP write error drops the client", send: a.GratuitousARP, addrs: v4, ifindex: 3, failWrites: 1, wantErr: true,
			wantDials: []string{"arp 3", "ndp 3", "arp 4"}, wantClosed: []string{"arp 3"}, wantSent: 8},
		{name: "next ARP reopens", send: a.GratuitousARP, addrs: v4, ifindex: 3,
			wantDials: []string{"arp 3", "ndp 3", "arp 4", "arp 3"}, wantClosed: []string{"arp 3"}, wantSent: 10},
		{name: "NA write error drops the connection", send: a.UnsolicitedNA, addrs: v6, ifindex: 3, failWrites: 1, wantErr: true,
			wantDials: []string{"arp 3", "ndp 3", "arp 4", "arp 3"}, wantClosed: []string{"arp 3", "ndp 3"}, wantSent: 10},
		{name: "next NA reopens", send: a.UnsolicitedNA, addrs: v6, ifindex: 3,
			wantDials: []string{"arp 3", "ndp 3", "arp 4", "arp 3", "ndp 3"}, wantClosed: []string{"arp 3", "ndp 3"}, wantSent: 11},
		{name: "open error is returned", send: a.UnsolicitedNA, addrs: v6, ifindex: 5, dialErr: errors.New("no such device"), wantErr: true,
			wantDials: []string{"arp 3", "ndp 3", "arp 4", "arp 3", "ndp 3", "ndp 5"}, wantClosed: []string{"arp 3", "ndp 3"}, wantSent: 11},
		{name: "and retried next time", send: a.UnsolicitedNA, addrs: v6, ifindex: 5,
			wantDials: []string{"arp 3", "ndp 3", "arp 4", "arp 3", "ndp 3", "ndp 5", "ndp 5"}, wantClosed: []string{"arp 3", "ndp 3"}, wantSent: 12},
	}
	for _, s := range steps {
		n.failWrites, n.dialErr = s.failWrites, s.dialErr
		err := s.send(s.ifindex, mac(hw), s.addrs)
		if (err != nil) != s.wantErr {
			t.Fatalf("%s: error = %v, want error %v", s.name, err, s.wantErr)
		}
		if diff := cmp.Diff(s.wantDials, n.dials); diff != "" {
			t.Errorf("%s: dials mismatch (-want +got):\n%s", s.name, diff)
		}
		if diff := cmp.Diff(s.wantClosed, n.closed); diff != "" {
			t.Errorf("%s: closed mismatch (-want +got):\n%s", s.name, diff)
		}
		if got := len(n.frames) + len(n.adverts); got != s.wantSent {
			t.Errorf("%s: %d frames and advertisements sent in all, want %d", s.name, got, s.wantSent)
		}
	}

	if err := a.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	closed := map[string]int{}
	for _, c := range n.closed {
		closed[c]++
	}
	want := map[string]int{"arp 3": 2, "arp 4": 1, "ndp 3": 2, "ndp 5": 1}
	if diff := cmp.Diff(want, closed); diff != "" {
		t.Errorf("connections closed per interface mismatch (-want +got):\n%s", diff)
	}
	dials := len(n.dials)
	for _, f := range []func(int, net.HardwareAddr, []netip.Addr) error{a.GratuitousARP, a.UnsolicitedNA} {
		if err := f(3, mac(hw), addrs("192.0.2.50", "2001:db8::50")); !errors.Is(err, errClosed) {
			t.Errorf("send after Close: %v, want %v", err, errClosed)
		}
	}
	if len(n.dials) != dials {
		t.Errorf("sending after Close opened a connection: %v", n.dials[dials:])
	}
}

// TestGarpWire checks the bytes of the two ARP packets.
func TestGarpWire(t *testing.T) {
	ps := garp(mac(hw), netip.MustParseAddr("192.0.2.50"))
	var got []string
	for _, p := range ps {
		b, err := p.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("% x", b))
	}
	want := []string{
		// htype 1, ptype 0x0800, hlen 6, plen 4, op 1, sha, spa, tha zero, tpa
		"00 01 08 00 06 04 00 01 02 00 00 00 00 01 c0 00 02 32 00 00 00 00 00 00 c0 00 02 32",
		// op 2, tha broadcast
		"00 01 08 00 06 04 00 02 02 00 00 00 00 01 c0 00 02 32 ff ff ff ff ff ff c0 00 02 32",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ARP packets mismatch (-want +got):\n%s", diff)
	}
}

// TestNAWire checks the bytes of a neighbour advertisement as handed to the
// kernel, which fills in the checksum.
func TestNAWire(t *testing.T) {
	b, err := ndp.MarshalMessage(unsolicitedNA(mac(hw), netip.MustParseAddr("2001:db8::50")))
	if err != nil {
		t.Fatal(err)
	}
	want := "88 00 00 00" + // type 136, code 0, checksum (kernel fills)
		" 20 00 00 00" + // R=0 S=0 O=1, reserved
		" 20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 50" + // target
		" 02 01 02 00 00 00 00 01" // option 2 (target link-layer address), length 1 (8 bytes), MAC
	if diff := cmp.Diff(want, fmt.Sprintf("% x", b)); diff != "" {
		t.Errorf("neighbour advertisement mismatch (-want +got):\n%s", diff)
	}
}
