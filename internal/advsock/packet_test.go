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
