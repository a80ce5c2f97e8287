// Package vrrp is the pure core of carpd's VRRPv3 mode (RFC 5798): the
// advertisement wire format and the per-VRID state machine.
//
// Nothing here opens a socket, reads a clock or starts a goroutine.
package vrrp

import (
	"encoding/binary"
	"errors"
	"net/netip"
)

// Wire constants of the VRRPv3 advertisement (RFC 5798 section 5).
const (
	// Protocol is the IP protocol number of VRRP (shared with CARP).
	Protocol = 112
	// Version is the VRRP version in the high nibble of byte 0.
	Version = 3
	// TypeAdvertisement is the only VRRPv3 message type.
	TypeAdvertisement = 1
	// HeaderLen is the length of the fixed part of an advertisement,
	// before the addresses.
	HeaderLen = 8
	// TTL is the IPv4 TTL / IPv6 hop limit every advert is sent with and
	// that a receiver requires (RFC 5798 sections 5.1.1.3, 5.1.2.3, 7.1).
	TTL = 255
	// MaxInterval is the highest Max Advertise Interval (12 bits, in
	// centiseconds).
	MaxInterval = 4095
	// MaxAddrs is the most addresses the 8-bit count can announce.
	MaxAddrs = 255
	// carpVersion is CARP's version nibble: CARP shares protocol 112.
	carpVersion = 2
)

// The multicast groups adverts are sent to (RFC 5798 section 5.1.1.2 and
// 5.1.2.2).
var (
	GroupIPv4 = netip.AddrFrom4([4]byte{224, 0, 0, 18})
	GroupIPv6 = netip.AddrFrom16([16]byte{0: 0xff, 1: 0x02, 15: 0x12})
)

// Advert is a VRRPv3 advertisement (RFC 5798 section 5.2).
type Advert struct {
	VRID     uint8
	Priority uint8
	Interval uint16       // Max Advertise Interval in centiseconds, 1..4095 (12 bits)
	Addrs    []netip.Addr // IPvX addresses, all of the packet's family
}

// Parse errors. They are sentinels, returned as they are: a flood of bad
// packets allocates nothing. DropReasonOf names the drop counter of each.
var (
	// ErrHeader: shorter than the 8-byte fixed header.
	ErrHeader = errors.New("vrrp: shorter than the 8-byte header")
	// ErrNotVRRP: version 2, which on protocol 112 is CARP (or VRRPv2,
	// which carpd does not speak): someone else's packet.
	ErrNotVRRP = errors.New("vrrp: version 2 packet (CARP or VRRPv2), not VRRPv3")
	// ErrVersion: a version other than 2 and 3.
	ErrVersion = errors.New("vrrp: unknown version")
	// ErrType: a type other than 1 (ADVERTISEMENT).
	ErrType = errors.New("vrrp: unknown message type")
	// ErrLength: the packet's length is not 8 bytes plus Count
	// addresses of the family (4 or 16 bytes each), or Count is 0.
	ErrLength = errors.New("vrrp: length does not match the address count")
	// ErrChecksum: the checksum over the pseudo-header and the message is
	// wrong.
	ErrChecksum = errors.New("vrrp: bad checksum")
	// ErrInterval: a Max Advertise Interval of 0.
	ErrInterval = errors.New("vrrp: advertisement interval 0")
	// ErrFamily: the source and destination given to Parse or Marshal
	// are invalid or of different families (a caller's error, not the
	// packet's), or, for Marshal, an address of Addrs is not of their
	// family.
	ErrFamily = errors.New("vrrp: addresses of mixed or invalid families")
	// ErrTTL: TTL / hop limit not 255 (CheckTTL).
	ErrTTL = errors.New("vrrp: TTL / hop limit not 255")
)

// Marshal errors (the advert is not encodable).
var (
	ErrNoAddrs      = errors.New("vrrp: an advert needs at least one address")
	ErrTooManyAddrs = errors.New("vrrp: more than 255 addresses")
	ErrBadInterval  = errors.New("vrrp: interval out of 1..4095 centiseconds")
	ErrBadVRID      = errors.New("vrrp: VRID 0")
)

// DropReasonOf names the drop counter of a Parse or CheckTTL error. The
// names follow FreeBSD's carpstats counters (netinet/ip_carp.h), which
// FreeBSD 15 counts VRRPv3 drops in too, and carpd's CARP drop reasons
// (internal/carp.DropReason): hdrops, badver, badlen, badsum, badttl;
// badinterval and badaf are carpd's own. ok is false for nil and for
// ErrNotVRRP: a CARP packet on protocol 112 is not a VRRP drop and is
// left uncounted (the CARP receiver may want it).
func DropReasonOf(err error) (reason string, ok bool) {
	switch {
	case err == nil, errors.Is(err, ErrNotVRRP):
		return "", false
	case errors.Is(err, ErrHeader):
		return "hdrops", true
	case errors.Is(err, ErrVersion), errors.Is(err, ErrType):
		return "badver", true
	case errors.Is(err, ErrLength):
		return "badlen", true
	case errors.Is(err, ErrChecksum):
		return "badsum", true
	case errors.Is(err, ErrInterval):
		return "badinterval", true
	case errors.Is(err, ErrTTL):
		return "badttl", true
	case errors.Is(err, ErrFamily):
		return "badaf", true
	}
	return "other", true
}

// CheckTTL checks the IPv4 TTL or IPv6 hop limit of a received advert:
// RFC 5798 section 7.1 requires 255 (the packet cannot have crossed a
// router). Parse cannot check it, having no IP header: the receiver calls
// CheckTTL before Parse with the TTL of the IP header or of the
// IP_RECVTTL / IPV6_RECVHOPLIMIT control message.
func CheckTTL(ttl int) error {
	if ttl != TTL {
		return ErrTTL
	}
	return nil
}

// family returns the address length of the family of src and dst (4 or
// 16) and the addresses unmapped, or 0 when they are invalid or of
// different families.
func family(src, dst netip.Addr) (int, netip.Addr, netip.Addr) {
	src, dst = src.Unmap(), dst.Unmap()
	switch {
	case src.Is4() && dst.Is4():
		return 4, src, dst
	case src.Is6() && dst.Is6():
		return 16, src, dst
	}
	return 0, src, dst
}

// Marshal encodes a as an advertisement from src to dst (the IP header's
// addresses, which the checksum's pseudo-header covers).
func (a Advert) Marshal(src, dst netip.Addr) ([]byte, error) {
	return a.AppendMarshal(nil, src, dst)
}

// AppendMarshal appends the advertisement to b (see Marshal). On error b
// is returned unchanged.
//
// It refuses VRID 0, an interval outside 1..4095, no address or more than
// 255, src and dst of different or invalid families and addresses of Addrs
// not of their family (IPv4: Is4; IPv6: Is6, zones ignored). The reserved
// bits are sent as 0.
func (a Advert) AppendMarshal(b []byte, src, dst netip.Addr) ([]byte, error) {
	alen, src, dst := family(src, dst)
	switch {
	case alen == 0:
		return b, ErrFamily
	case a.VRID == 0:
		return b, ErrBadVRID
	case a.Interval == 0 || a.Interval > MaxInterval:
		return b, ErrBadInterval
	case len(a.Addrs) == 0:
		return b, ErrNoAddrs
	case len(a.Addrs) > MaxAddrs:
		return b, ErrTooManyAddrs
	}
	for _, ad := range a.Addrs {
		if (alen == 4 && !ad.Is4()) || (alen == 16 && !ad.Is6()) {
			return b, ErrFamily
		}
	}
	start := len(b)
	b = append(b, Version<<4|TypeAdvertisement, a.VRID, a.Priority, uint8(len(a.Addrs)))
	b = binary.BigEndian.AppendUint16(b, a.Interval)
	b = append(b, 0, 0)
	for _, ad := range a.Addrs {
		if alen == 4 {
			v := ad.As4()
			b = append(b, v[:]...)
		} else {
			v := ad.As16()
			b = append(b, v[:]...)
		}
	}
	m := b[start:]
	binary.BigEndian.PutUint16(m[6:8], Checksum(m, src, dst))
	return b, nil
}

// Parse decodes an advertisement received from src to dst (the IP
// header's addresses, for the checksum's pseudo-header and the family).
// See ParseInto for the checks.
func Parse(b []byte, src, dst netip.Addr) (Advert, error) {
	var a Advert
	err := ParseInto(b, src, dst, &a)
	return a, err
}

// ParseInto decodes an advertisement into a, reusing the capacity of
// a.Addrs: with enough of it (255 addresses at most) it allocates nothing,
// for the receive path. On error a is left unchanged.
//
// The checks, in this order (RFC 5798 section 7.1), each with its error:
// at least the 8-byte header (ErrHeader); version 3 (ErrNotVRRP for
// version 2, CARP's; ErrVersion otherwise); type 1 (ErrType); src and dst
// valid and of one family (ErrFamily); a Count of at least 1 and a length
// of exactly 8 + Count addresses of 4 bytes (IPv4) or 16 (IPv6)
// (ErrLength); the checksum with the pseudo-header (ErrChecksum); an
// interval other than 0 (ErrInterval). The 4 reserved bits are ignored
// (RFC 5798 section 5.2.4: "ignored on reception").
//
// The length must match exactly: the RFC only asks that the packet hold
// the whole message, but the checksum covers the whole IP payload, so
// trailing bytes could only come from a broken or hostile sender;
// keepalived drops a length that does not match the count too. The VRID,
// the priority and the addresses are not judged here: the machine looks
// the VRID up and may compare the addresses with its own.
func ParseInto(b []byte, src, dst netip.Addr, a *Advert) error {
	if len(b) < HeaderLen {
		return ErrHeader
	}
	switch b[0] >> 4 {
	case Version:
	case carpVersion:
		return ErrNotVRRP
	default:
		return ErrVersion
	}
	if b[0]&0x0f != TypeAdvertisement {
		return ErrType
	}
	alen, src, dst := family(src, dst)
	if alen == 0 {
		return ErrFamily
	}
	n := int(b[3])
	if n == 0 || len(b) != HeaderLen+n*alen {
		return ErrLength
	}
	if Checksum(b, src, dst) != 0 {
		return ErrChecksum
	}
	iv := binary.BigEndian.Uint16(b[4:6]) & MaxInterval
	if iv == 0 {
		return ErrInterval
	}
	a.VRID, a.Priority, a.Interval = b[1], b[2], iv
	a.Addrs = a.Addrs[:0]
	for p := b[HeaderLen:]; len(p) > 0; p = p[alen:] {
		if alen == 4 {
			a.Addrs = append(a.Addrs, netip.AddrFrom4([4]byte(p[:4])))
		} else {
			a.Addrs = append(a.Addrs, netip.AddrFrom16([16]byte(p[:16])))
		}
	}
	return nil
}

// Checksum is the Internet checksum (RFC 1071) of the message m with the
// pseudo-header of src and dst: for IPv4 (RFC 5798 section 5.2.8) source,
// destination, a zero byte, protocol 112 and the length of m; for IPv6
// (RFC 8200 section 8.1) source, destination, the 32-bit length of m and
// next header 112 in the last of 4 bytes. Both sum to the same words
// besides the addresses. Over a message whose checksum field holds the
// right value it is 0; with the field zeroed it is the value to store.
// src and dst should be of one family (IPv4, or IPv4-mapped IPv6, uses
// the 4-byte form); an invalid address counts as nothing, never a panic.
func Checksum(m []byte, src, dst netip.Addr) uint16 {
	sum := addrWords(0, src)
	sum = addrWords(sum, dst)
	sum += uint32(len(m)&0xffff) + uint32(len(m)>>16) + Protocol
	sum = words(sum, m)
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

// addrWords adds the words of address a to sum: 4 bytes for IPv4 (mapped
// or not), 16 for IPv6, none for the zero Addr.
func addrWords(sum uint32, a netip.Addr) uint32 {
	a = a.Unmap()
	switch {
	case a.Is4():
		v := a.As4()
		return words(sum, v[:])
	case a.Is6():
		v := a.As16()
		return words(sum, v[:])
	}
	return sum
}

// words adds the big-endian 16-bit words of b to sum, an odd last byte
// padded with a zero.
func words(sum uint32, b []byte) uint32 {
	for len(b) >= 2 {
		sum += uint32(b[0])<<8 | uint32(b[1])
		b = b[2:]
		if sum >= 1<<31 {
			sum = sum&0xffff + sum>>16
		}
	}
	if len(b) == 1 {
		sum += uint32(b[0]) << 8
	}
	return sum
}
