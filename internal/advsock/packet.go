package advsock

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/carpd/carpd/internal/carp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// Packet is one received protocol-112 datagram.
type Packet struct {
	// IfIndex is the index of the interface the datagram arrived on.
	IfIndex int
	// Src and Dst are the addresses of the IP header, without IPv6 zone
	// (IfIndex says which link they belong to).
	Src, Dst netip.Addr
	// TTL is the TTL (IPv4) or hop limit (IPv6) of the IP header.
	TTL int
	// Payload is the datagram after the IP header, owned by the caller.
	Payload []byte
}

// advertHeader returns the IPv4 header of an advertisement from src to dst
// carrying payloadLen bytes: no options, the given TOS, DF set, TTL 255,
// protocol 112. The kernel fills in the ID and the checksum.
func advertHeader(tos int, src, dst netip.Addr, payloadLen int) (*ipv4.Header, error) {
	if !src.Is4() {
		return nil, fmt.Errorf("source %v is not an IPv4 address", src)
	}
	if !dst.Is4() {
		return nil, fmt.Errorf("destination %v is not an IPv4 address", dst)
	}
	if tos < 0 || tos > 0xff {
		return nil, fmt.Errorf("TOS %d out of range 0..255", tos)
	}
	total := ipv4.HeaderLen + payloadLen
	if total > 0xffff {
		return nil, fmt.Errorf("payload of %d bytes too long for IPv4", payloadLen)
	}
	return &ipv4.Header{
		Version:  ipv4.Version,
		Len:      ipv4.HeaderLen,
		TOS:      tos,
		TotalLen: total,
		Flags:    ipv4.DontFragment,
		TTL:      carp.TTL,
		Protocol: carp.Protocol,
		Src:      src.AsSlice(),
		Dst:      dst.AsSlice(),
	}, nil
}

// addrFromIP converts an IPv4 net.IP (4- or 16-byte form) to a netip.Addr.
func addrFromIP(ip net.IP) (netip.Addr, bool) {
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		return netip.Addr{}, false
	}
	a = a.Unmap()
	return a, a.Is4()
}

// addr6FromIP converts a 16-byte IPv6 net.IP to a netip.Addr; IPv4 and
// IPv4-mapped addresses are refused.
func addr6FromIP(ip net.IP) (netip.Addr, bool) {
	if len(ip) != net.IPv6len {
		return netip.Addr{}, false
	}
	a, ok := netip.AddrFromSlice(ip)
	if !ok || !a.Is6() || a.Is4In6() {
		return netip.Addr{}, false
	}
	return a, true
}

// checkAdvert6 says whether an IPv6 advert can go from src to dst out of
// ifindex with traffic class tc (advertControl's checks).
func checkAdvert6(tc, ifindex int, src, dst netip.Addr) error {
	if src.IsValid() && (!src.Is6() || src.Is4In6()) {
		return fmt.Errorf("source %v is not an IPv6 address", src)
	}
	if !dst.Is6() || dst.Is4In6() {
		return fmt.Errorf("destination %v is not an IPv6 address", dst)
	}
	if tc < 0 || tc > 0xff {
		return fmt.Errorf("traffic class %d out of range 0..255", tc)
	}
	if ifindex < 0 {
		return fmt.Errorf("bad interface index %d", ifindex)
	}
	return nil
}

// advertControl returns the control message that goes with an IPv6 advert
// from src to dst out of interface ifindex: hop limit 255, traffic class
// tc, and IPV6_PKTINFO with the source and the interface. An invalid src
// is left out, letting the kernel choose the source.
func advertControl(tc, ifindex int, src, dst netip.Addr) (*ipv6.ControlMessage, error) {
	if err := checkAdvert6(tc, ifindex, src, dst); err != nil {
		return nil, err
	}
	cm := &ipv6.ControlMessage{TrafficClass: tc, HopLimit: carp.TTL, IfIndex: ifindex}
	if src.IsValid() {
		cm.Src = src.AsSlice()
	}
	return cm, nil
}
