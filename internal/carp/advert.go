// Package carp is the pure core of carpd: the CARP advertisement wire format,
// its HMAC, and the per-vhid state machine of FreeBSD's carp(4).
//
// Nothing here opens a socket, reads a clock or starts a goroutine. Callers
// feed a Machine events stamped with the current time and execute the actions
// it returns; see Machine.Step.
package carp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
)

// Wire constants of the CARP advertisement (FreeBSD netinet/ip_carp.h).
const (
	// Protocol is the IP protocol number of CARP (shared with VRRP).
	Protocol = 112
	// Version is the CARP version in the high nibble of byte 0.
	Version = 2
	// vrrpVersion is VRRPv3, which shares protocol 112.
	vrrpVersion = 3
	// TypeAdvertisement is the only CARP message type.
	TypeAdvertisement = 1
	// AdvertLen is the length of a CARP advertisement.
	AdvertLen = 36
	// AuthLen is the authlen field: the header length in 32-bit words
	// after the first 8 bytes (counter and digest), always 7.
	AuthLen = 7
	// DigestLen is the length of the HMAC-SHA1 digest.
	DigestLen = 20
	// TTL is the IP TTL / hop limit of every advert (CARP_DFLTTL).
	TTL = 255
	// The ranges of a vhid's settings (ifconfig(8)): vhid 1..255, advbase
	// 1..255 seconds, advskew 0..254.
	MinVHID    = 1
	MaxVHID    = 255
	MinAdvBase = 1
	MaxAdvBase = 255
	MaxAdvSkew = 254
	// MaxSkew is the highest advskew that is advertised once demotion is
	// added (FreeBSD's CARP_MAXSKEW).
	MaxSkew = 240
	// BowOutAdvBase and BowOutAdvSkew are the values of the advert a master
	// sends when it leaves (OpenBSD's carp_ifdetach): backups take over at
	// once by the "master will time out" rule.
	BowOutAdvBase = 255
	BowOutAdvSkew = 255
)

// The multicast groups adverts are sent to (FreeBSD's INADDR_CARP_GROUP and
// in6addr_linklocal_carp), also VRRP's.
var (
	GroupIPv4 = netip.AddrFrom4([4]byte{224, 0, 0, 18})
	GroupIPv6 = netip.AddrFrom16([16]byte{0: 0xff, 1: 0x02, 15: 0x12})
)

// Group returns the multicast group of adverts of family f.
func Group(f Family) netip.Addr {
	if f == IPv6 {
		return GroupIPv6
	}
	return GroupIPv4
}

// Advert is a decoded CARP advertisement.
type Advert struct {
	VHID    uint8
	AdvSkew uint8
	// Demote is byte 4: padding for FreeBSD, the group demote count for
	// OpenBSD.
	Demote  uint8
	AdvBase uint8
	Counter uint64
	Digest  [DigestLen]byte
}

// Decode errors. Each maps to a DropReason.
var (
	ErrShort = errors.New("carp: advertisement too short")
	// ErrHeader is an ErrShort for a packet shorter than the 8 bytes of
	// the header CARP shares with VRRP (FreeBSD's hdrops).
	ErrHeader   = fmt.Errorf("%w: shorter than the header", ErrShort)
	ErrVersion  = errors.New("carp: unknown version")
	ErrNotCARP  = errors.New("carp: VRRPv3 packet, not CARP")
	ErrType     = errors.New("carp: unknown message type")
	ErrChecksum = errors.New("carp: bad checksum")
)

// Marshal encodes a as the 36-byte advertisement, checksum included.
func (a Advert) Marshal() []byte {
	return a.AppendMarshal(make([]byte, 0, AdvertLen))
}

// AppendMarshal appends the advertisement to b (see Marshal).
func (a Advert) AppendMarshal(b []byte) []byte {
	n := len(b)
	b = append(b, make([]byte, AdvertLen)...)
	p := b[n:]
	p[0] = Version<<4 | TypeAdvertisement
	p[1] = a.VHID
	p[2] = a.AdvSkew
	p[3] = AuthLen
	p[4] = a.Demote
	p[5] = a.AdvBase
	binary.BigEndian.PutUint64(p[8:16], a.Counter)
	copy(p[16:], a.Digest[:])
	binary.BigEndian.PutUint16(p[6:8], Checksum(p))
	return b
}

// ParseAdvert decodes a CARP advertisement in FreeBSD's receive order:
// length, version, type, checksum. A VRRPv3 packet yields ErrNotCARP.
// Bytes after the 36th are ignored, as FreeBSD does.
func ParseAdvert(b []byte) (Advert, error) {
	if len(b) < 8 {
		return Advert{}, ErrHeader
	}
	// The errors are the sentinels themselves: a flood of bad packets
	// allocates nothing.
	switch b[0] >> 4 {
	case Version:
	case vrrpVersion:
		return Advert{}, ErrNotCARP
	default:
		return Advert{}, ErrVersion
	}
	if len(b) < AdvertLen {
		return Advert{}, ErrShort
	}
	if b[0]&0x0f != TypeAdvertisement {
		return Advert{}, ErrType
	}
	if Checksum(b[:AdvertLen]) != 0 {
		return Advert{}, ErrChecksum
	}
	a := Advert{
		VHID:    b[1],
		AdvSkew: b[2],
		Demote:  b[4],
		AdvBase: b[5],
		Counter: binary.BigEndian.Uint64(b[8:16]),
	}
	copy(a.Digest[:], b[16:AdvertLen])
	return a, nil
}

// Checksum is the RFC 1071 Internet checksum of b, with no pseudo-header,
// as CARP uses for IPv4 and IPv6 alike. Computed over a packet whose
// checksum field holds the right value, it is 0.
func Checksum(b []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}
