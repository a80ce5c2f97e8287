package advsock

import (
	"encoding/binary"
	"net/netip"
	"testing"
	"unsafe"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
)

var (
	ll6  = netip.MustParseAddr("fe80::1")
	src6 = netip.MustParseAddr("2001:db8::1")
	dst6 = netip.MustParseAddr("2001:db8::2")
)

// cmsg returns one control message as the kernel lays it out.
func cmsg(level, typ int32, data []byte) []byte {
	b := make([]byte, unix.CmsgSpace(len(data)))
	h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
	h.Level, h.Type = level, typ
	h.SetLen(unix.CmsgLen(len(data)))
	copy(b[unix.CmsgLen(0):], data)
	return b
}

func u32(v uint32) []byte { return binary.NativeEndian.AppendUint32(nil, v) }

// fillSlot puts a datagram and its control messages into slot i of b, as
// recvmmsg would.
func fillSlot(b *batch, i int, data, oob []byte) {
	n := copy(b.bufs[i*slotLen:(i+1)*slotLen], data)
	b.hdrs[i].Len = uint32(n)
	m := copy(b.oobs[i*oobLen:(i+1)*oobLen], oob)
	b.hdrs[i].Hdr.SetControllen(m)
}

// TestDecode4 decodes IPv4 datagrams in place: the header's source,
// destination and TTL, IP_PKTINFO's interface (with other control messages
// around it), the payload after the header and its options; a datagram too
// short for its header is refused.
func TestDecode4(t *testing.T) {
	b := &batch{bufs: make([]byte, batchLen*slotLen), oobs: make([]byte, batchLen*oobLen)}
	hdr := func(ihl int, ttl byte) []byte {
		h := make([]byte, ihl)
		h[0] = 0x40 | byte(ihl/4)
		h[8] = ttl
		copy(h[12:16], []byte{192, 0, 2, 21})
		copy(h[16:20], []byte{224, 0, 0, 18})
		return h
	}
	pktinfo := make([]byte, 12)
	binary.NativeEndian.PutUint32(pktinfo, 7)
	oob := append(cmsg(unix.SOL_SOCKET, unix.SO_RXQ_OVFL, u32(3)), cmsg(unix.IPPROTO_IP, unix.IP_PKTINFO, pktinfo)...)
	tests := []struct {
		name string
		data []byte
		oob  []byte
		want Packet
		ok   bool
	}{
		{"plain", append(hdr(20, 255), 1, 2, 3), oob,
			Packet{IfIndex: 7, Src: netip.MustParseAddr("192.0.2.21"), Dst: netip.MustParseAddr("224.0.0.18"), TTL: 255, Payload: []byte{1, 2, 3}}, true},
		{"options", append(hdr(24, 254), 9), oob,
			Packet{IfIndex: 7, Src: netip.MustParseAddr("192.0.2.21"), Dst: netip.MustParseAddr("224.0.0.18"), TTL: 254, Payload: []byte{9}}, true},
		{"no control message", hdr(20, 255), nil,
			Packet{Src: netip.MustParseAddr("192.0.2.21"), Dst: netip.MustParseAddr("224.0.0.18"), TTL: 255, Payload: []byte{}}, true},
		{"short", hdr(20, 255)[:19], oob, Packet{}, false},
		{"header longer than the datagram", hdr(24, 255)[:22], oob, Packet{}, false},
		{"bad header length", hdr(20, 255)[:20:20], oob, Packet{}, true},
		{"truncated control message", hdr(20, 255), oob[:5], Packet{Src: netip.MustParseAddr("192.0.2.21"), Dst: netip.MustParseAddr("224.0.0.18"), TTL: 255, Payload: []byte{}}, true},
	}
	tests[5].data = append([]byte{0x44}, tests[5].data[1:]...) // ihl 16 < 20
	tests[5].ok = false
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fillSlot(b, i, tt.data, tt.oob)
			var p Packet
			ok := b.decode4(i, &p)
			if ok != tt.ok {
				t.Fatalf("decode4() = %v, want %v", ok, tt.ok)
			}
			if ok {
				if diff := cmp.Diff(tt.want, p, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
					t.Errorf("decode4() mismatch (-want +got):\n%s", diff)
				}
			}
		})
	}
}

// TestDecode6 decodes IPv6 datagrams: the source from the sender's address,
// destination and interface from IPV6_PKTINFO, hop limit from
// IPV6_HOPLIMIT; without the hop limit or the interface, or from an
// IPv4-mapped source, the datagram is refused.
func TestDecode6(t *testing.T) {
	b := &batch{ipv6: true, bufs: make([]byte, batchLen*slotLen), oobs: make([]byte, batchLen*oobLen)}
	pi := append(dst6.AsSlice(), u32(4)...)
	full := append(cmsg(unix.IPPROTO_IPV6, unix.IPV6_PKTINFO, pi), cmsg(unix.IPPROTO_IPV6, unix.IPV6_HOPLIMIT, u32(255))...)
	tests := []struct {
		name string
		src  netip.Addr
		oob  []byte
		want Packet
		ok   bool
	}{
		{"link-local source", ll6, full, Packet{IfIndex: 4, Src: ll6, Dst: dst6, TTL: 255, Payload: []byte{1, 2}}, true},
		{"global source", src6, full, Packet{IfIndex: 4, Src: src6, Dst: dst6, TTL: 255, Payload: []byte{1, 2}}, true},
		{"no hop limit", src6, cmsg(unix.IPPROTO_IPV6, unix.IPV6_PKTINFO, pi), Packet{}, false},
		{"no interface", src6, cmsg(unix.IPPROTO_IPV6, unix.IPV6_HOPLIMIT, u32(255)), Packet{}, false},
		{"IPv4-mapped source", netip.MustParseAddr("::ffff:192.0.2.1"), full, Packet{}, false},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fillSlot(b, i, []byte{1, 2}, tt.oob)
			b.names[i] = unix.RawSockaddrInet6{Family: unix.AF_INET6, Addr: tt.src.As16()}
			var p Packet
			ok := b.decode6(i, &p)
			if ok != tt.ok {
				t.Fatalf("decode6() = %v, want %v", ok, tt.ok)
			}
			if ok {
				if diff := cmp.Diff(tt.want, p, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
					t.Errorf("decode6() mismatch (-want +got):\n%s", diff)
				}
			}
		})
	}
}
