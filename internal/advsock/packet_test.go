package advsock

import (
	"net"
	"net/netip"
	"testing"

	"github.com/carpd/carpd/internal/carp"
	"github.com/google/go-cmp/cmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// cmpAddr compares netip.Addr values by value, zone included.
var cmpAddr = cmp.Comparer(func(x, y netip.Addr) bool { return x == y })

var (
	src4 = netip.MustParseAddr("192.0.2.1")
	dst4 = netip.MustParseAddr("192.0.2.2")
)

func TestAdvertHeader(t *testing.T) {
	tests := []struct {
		name       string
		tos        int
		src, dst   netip.Addr
		payloadLen int
		want       *ipv4.Header
		wantErr    bool
	}{
		{
			name: "multicast advert, FreeBSD TOS",
			tos:  0xE0, src: src4, dst: carp.GroupIPv4, payloadLen: 36,
			want: &ipv4.Header{
				Version: 4, Len: 20, TOS: 0xE0, TotalLen: 56, Flags: ipv4.DontFragment,
				TTL: 255, Protocol: 112, Src: net.IPv4(192, 0, 2, 1).To4(), Dst: net.IPv4(224, 0, 0, 18).To4(),
			},
		},
		{
			name: "unicast peer, ucarp TOS",
			tos:  0x10, src: src4, dst: dst4, payloadLen: 36,
			want: &ipv4.Header{
				Version: 4, Len: 20, TOS: 0x10, TotalLen: 56, Flags: ipv4.DontFragment,
				TTL: 255, Protocol: 112, Src: net.IPv4(192, 0, 2, 1).To4(), Dst: net.IPv4(192, 0, 2, 2).To4(),
			},
		},
		{name: "IPv6 source", tos: 0, src: netip.MustParseAddr("2001:db8::1"), dst: carp.GroupIPv4, wantErr: true},
		{name: "IPv6 destination", tos: 0, src: src4, dst: netip.MustParseAddr("ff02::12"), wantErr: true},
		{name: "invalid source", tos: 0, src: netip.Addr{}, dst: carp.GroupIPv4, wantErr: true},
		{name: "TOS too big", tos: 256, src: src4, dst: carp.GroupIPv4, wantErr: true},
		{name: "TOS negative", tos: -1, src: src4, dst: carp.GroupIPv4, wantErr: true},
		{name: "payload too long", tos: 0, src: src4, dst: carp.GroupIPv4, payloadLen: 0xffff, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := advertHeader(tt.tos, tt.src, tt.dst, tt.payloadLen)
			if (err != nil) != tt.wantErr {
				t.Fatalf("advertHeader() error = %v, want error %v", err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("advertHeader() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestAdvertHeaderWire checks the bytes the header marshals to, as a
// receiver (or tcpdump) sees them.
func TestAdvertHeaderWire(t *testing.T) {
	h, err := advertHeader(0xE0, src4, carp.GroupIPv4, 36)
	if err != nil {
		t.Fatal(err)
	}
	b, err := h.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	want := []byte{
		0x45, 0xE0, 0x00, 56, // version 4, IHL 5, TOS, total length
		0x00, 0x00, 0x40, 0x00, // ID (kernel fills), DF, fragment offset 0
		255, 112, 0x00, 0x00, // carp.TTL, protocol, checksum (kernel fills)
		192, 0, 2, 1,
		224, 0, 0, 18,
	}
	if diff := cmp.Diff(want, b); diff != "" {
		t.Errorf("marshalled header mismatch (-want +got):\n%s", diff)
	}
}

func TestPacketFrom(t *testing.T) {
	tests := []struct {
		name    string
		h       *ipv4.Header
		payload []byte
		cm      *ipv4.ControlMessage
		want    Packet
		wantErr bool
	}{
		{
			name:    "16-byte addresses and control message",
			h:       &ipv4.Header{TTL: 255, Src: net.IPv4(192, 0, 2, 1), Dst: net.IPv4(224, 0, 0, 18)},
			payload: []byte{0x21, 1, 2, 3},
			cm:      &ipv4.ControlMessage{IfIndex: 7},
			want:    Packet{IfIndex: 7, Src: src4, Dst: carp.GroupIPv4, TTL: 255, Payload: []byte{0x21, 1, 2, 3}},
		},
		{
			name: "4-byte addresses, no control message",
			h:    &ipv4.Header{TTL: 1, Src: net.IPv4(192, 0, 2, 1).To4(), Dst: net.IPv4(192, 0, 2, 2).To4()},
			want: Packet{Src: src4, Dst: dst4, TTL: 1},
		},
		{name: "no header", wantErr: true},
		{name: "no source", h: &ipv4.Header{Dst: net.IPv4(224, 0, 0, 18)}, wantErr: true},
		{name: "IPv6 destination", h: &ipv4.Header{Src: net.IPv4(192, 0, 2, 1), Dst: net.ParseIP("2001:db8::1")}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := packetFrom(tt.h, tt.payload, tt.cm)
			if (err != nil) != tt.wantErr {
				t.Fatalf("packetFrom() error = %v, want error %v", err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got, cmpAddr); diff != "" {
				t.Errorf("packetFrom() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestPacketFromCopies checks that the payload does not alias the read
// buffer, which the next read overwrites.
func TestPacketFromCopies(t *testing.T) {
	buf := []byte{1, 2, 3}
	p, err := packetFrom(&ipv4.Header{Src: net.IPv4(192, 0, 2, 1), Dst: net.IPv4(224, 0, 0, 18)}, buf, nil)
	if err != nil {
		t.Fatal(err)
	}
	buf[0] = 9
	if p.Payload[0] != 1 {
		t.Errorf("payload aliases the read buffer: got %v", p.Payload)
	}
}

var (
	ll6  = netip.MustParseAddr("fe80::1")
	src6 = netip.MustParseAddr("2001:db8::1")
	dst6 = netip.MustParseAddr("2001:db8::2")
)

func TestAdvertControl(t *testing.T) {
	tests := []struct {
		name     string
		tc       int
		ifindex  int
		src, dst netip.Addr
		want     *ipv6.ControlMessage
		wantErr  bool
	}{
		{
			name: "multicast advert from link-local, FreeBSD traffic class",
			tc:   0xE0, ifindex: 3, src: ll6, dst: carp.GroupIPv6,
			want: &ipv6.ControlMessage{TrafficClass: 0xE0, HopLimit: 255, Src: net.ParseIP("fe80::1"), IfIndex: 3},
		},
		{
			name: "zones dropped",
			tc:   0x10, ifindex: 3, src: ll6.WithZone("eth0"), dst: carp.GroupIPv6.WithZone("eth0"),
			want: &ipv6.ControlMessage{TrafficClass: 0x10, HopLimit: 255, Src: net.ParseIP("fe80::1"), IfIndex: 3},
		},
		{
			name: "no source: the kernel chooses",
			tc:   0xE0, ifindex: 3, dst: dst6,
			want: &ipv6.ControlMessage{TrafficClass: 0xE0, HopLimit: 255, IfIndex: 3},
		},
		{
			name: "no interface: the routing table chooses",
			tc:   0, src: src6, dst: dst6,
			want: &ipv6.ControlMessage{HopLimit: 255, Src: net.ParseIP("2001:db8::1")},
		},
		{name: "IPv4 source", src: src4, dst: carp.GroupIPv6, wantErr: true},
		{name: "IPv4-mapped source", src: netip.MustParseAddr("::ffff:192.0.2.1"), dst: carp.GroupIPv6, wantErr: true},
		{name: "IPv4 destination", src: ll6, dst: carp.GroupIPv4, wantErr: true},
		{name: "no destination", src: ll6, wantErr: true},
		{name: "traffic class too big", tc: 256, src: ll6, dst: carp.GroupIPv6, wantErr: true},
		{name: "negative interface index", ifindex: -1, src: ll6, dst: carp.GroupIPv6, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := advertControl(tt.tc, tt.ifindex, tt.src, tt.dst)
			if (err != nil) != tt.wantErr {
				t.Fatalf("advertControl() error = %v, want error %v", err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("advertControl() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPacketFromIPv6(t *testing.T) {
	tests := []struct {
		name    string
		payload []byte
		cm      *ipv6.ControlMessage
		src     net.Addr
		want    Packet
		wantErr bool
	}{
		{
			name:    "link-local source with zone, multicast destination",
			payload: []byte{0x21, 1, 2, 3},
			cm:      &ipv6.ControlMessage{HopLimit: 255, Dst: net.ParseIP("ff02::12"), IfIndex: 7},
			src:     &net.IPAddr{IP: net.ParseIP("fe80::1"), Zone: "eth0"},
			want:    Packet{IfIndex: 7, Src: ll6, Dst: carp.GroupIPv6, TTL: 255, Payload: []byte{0x21, 1, 2, 3}},
		},
		{
			name: "unicast, hop limit as received",
			cm:   &ipv6.ControlMessage{HopLimit: 63, Dst: net.ParseIP("2001:db8::2"), IfIndex: 2},
			src:  &net.IPAddr{IP: net.ParseIP("2001:db8::1")},
			want: Packet{IfIndex: 2, Src: src6, Dst: dst6, TTL: 63},
		},
		{name: "no control message", src: &net.IPAddr{IP: net.ParseIP("2001:db8::1")}, wantErr: true},
		{name: "no destination", cm: &ipv6.ControlMessage{HopLimit: 255}, src: &net.IPAddr{IP: net.ParseIP("2001:db8::1")}, wantErr: true},
		{name: "not an IP source", cm: &ipv6.ControlMessage{Dst: net.ParseIP("ff02::12")}, src: &net.UDPAddr{IP: net.ParseIP("2001:db8::1")}, wantErr: true},
		{name: "nil source", cm: &ipv6.ControlMessage{Dst: net.ParseIP("ff02::12")}, wantErr: true},
		{name: "IPv4 source", cm: &ipv6.ControlMessage{Dst: net.ParseIP("ff02::12")}, src: &net.IPAddr{IP: net.IPv4(192, 0, 2, 1)}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := packetFromIPv6(tt.payload, tt.cm, tt.src)
			if (err != nil) != tt.wantErr {
				t.Fatalf("packetFromIPv6() error = %v, want error %v", err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got, cmpAddr); diff != "" {
				t.Errorf("packetFromIPv6() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestPacketFromIPv6Copies checks that the payload does not alias the read
// buffer, which the next read overwrites.
func TestPacketFromIPv6Copies(t *testing.T) {
	buf := []byte{1, 2, 3}
	p, err := packetFromIPv6(buf, &ipv6.ControlMessage{Dst: net.ParseIP("ff02::12")}, &net.IPAddr{IP: net.ParseIP("fe80::1")})
	if err != nil {
		t.Fatal(err)
	}
	buf[0] = 9
	if p.Payload[0] != 1 {
		t.Errorf("payload aliases the read buffer: got %v", p.Payload)
	}
}
