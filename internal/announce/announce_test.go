package announce

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/mdlayher/arp"
)

// frame is one ARP packet as written, in readable form.
type frame struct {
	IfIndex            int
	EthDst             string
	Op                 arp.Operation
	SenderHW, SenderIP string
	TargetHW, TargetIP string
}

// fakeNet hands out fake ARP clients that record what they write.
type fakeNet struct {
	dials   []int
	frames  []frame
	closed  []int
	dialErr error
	// failWrites makes the next that many writes fail.
	failWrites int
}

type fakeClient struct {
	n       *fakeNet
	ifindex int
}

func (c *fakeClient) WriteTo(p *arp.Packet, addr net.HardwareAddr) error {
	if c.n.failWrites > 0 {
		c.n.failWrites--
		return errors.New("network is down")
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

func (c *fakeClient) Close() error {
	c.n.closed = append(c.n.closed, c.ifindex)
	return nil
}

func (n *fakeNet) announcer() *Announcer {
	return newAnnouncer(func(ifindex int) (arpWriter, error) {
		n.dials = append(n.dials, ifindex)
		if n.dialErr != nil {
			return nil, n.dialErr
		}
		return &fakeClient{n: n, ifindex: ifindex}, nil
	})
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
		wantDials  []int
		wantErr    bool
	}{
		{
			name:       "one address: request then reply",
			hw:         mac(hw),
			addrs:      addrs("192.0.2.50"),
			wantFrames: pair(3, "192.0.2.50"),
			wantDials:  []int{3},
		},
		{
			name:       "several addresses in order",
			hw:         mac(hw),
			addrs:      addrs("192.0.2.51", "192.0.2.50"),
			wantFrames: append(pair(3, "192.0.2.51"), pair(3, "192.0.2.50")...),
			wantDials:  []int{3},
		},
		{
			name:       "IPv6 skipped, IPv4-mapped taken as IPv4",
			hw:         mac(hw),
			addrs:      addrs("2001:db8::50", "::ffff:192.0.2.50"),
			wantFrames: pair(3, "192.0.2.50"),
			wantDials:  []int{3},
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

// TestClientCache checks that a client is opened once per interface, kept
// across calls, dropped after a write error and reopened, and closed by
// Close.
func TestClientCache(t *testing.T) {
	n := &fakeNet{}
	a := n.announcer()
	vip := addrs("192.0.2.50")
	steps := []struct {
		name       string
		ifindex    int
		failWrites int
		dialErr    error
		wantErr    bool
		wantDials  []int
		wantClosed []int
		wantFrames int
	}{
		{name: "first use opens", ifindex: 3, wantDials: []int{3}, wantFrames: 2},
		{name: "second use reuses", ifindex: 3, wantDials: []int{3}, wantFrames: 4},
		{name: "other interface opens its own", ifindex: 4, wantDials: []int{3, 4}, wantFrames: 6},
		{name: "write error drops the client", ifindex: 3, failWrites: 1, wantErr: true, wantDials: []int{3, 4}, wantClosed: []int{3}, wantFrames: 6},
		{name: "next use reopens", ifindex: 3, wantDials: []int{3, 4, 3}, wantClosed: []int{3}, wantFrames: 8},
		{name: "open error is returned", ifindex: 5, dialErr: errors.New("no such device"), wantErr: true, wantDials: []int{3, 4, 3, 5}, wantClosed: []int{3}, wantFrames: 8},
		{name: "and retried next time", ifindex: 5, wantDials: []int{3, 4, 3, 5, 5}, wantClosed: []int{3}, wantFrames: 10},
	}
	for _, s := range steps {
		n.failWrites, n.dialErr = s.failWrites, s.dialErr
		err := a.GratuitousARP(s.ifindex, mac(hw), vip)
		if (err != nil) != s.wantErr {
			t.Fatalf("%s: GratuitousARP() error = %v, want error %v", s.name, err, s.wantErr)
		}
		if diff := cmp.Diff(s.wantDials, n.dials); diff != "" {
			t.Errorf("%s: dials mismatch (-want +got):\n%s", s.name, diff)
		}
		if diff := cmp.Diff(s.wantClosed, n.closed); diff != "" {
			t.Errorf("%s: closed mismatch (-want +got):\n%s", s.name, diff)
		}
		if len(n.frames) != s.wantFrames {
			t.Errorf("%s: %d frames sent in all, want %d", s.name, len(n.frames), s.wantFrames)
		}
	}

	if err := a.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	closed := map[int]int{}
	for _, i := range n.closed {
		closed[i]++
	}
	if diff := cmp.Diff(map[int]int{3: 2, 4: 1, 5: 1}, closed); diff != "" {
		t.Errorf("clients closed per interface mismatch (-want +got):\n%s", diff)
	}
	err := a.GratuitousARP(3, mac(hw), vip)
	if !errors.Is(err, errClosed) {
		t.Errorf("GratuitousARP after Close: %v, want %v", err, errClosed)
	}
	if len(n.dials) != 5 {
		t.Errorf("GratuitousARP after Close opened a client")
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
