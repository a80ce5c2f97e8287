// Package craft builds CARP advertisements and the IP packets that carry
// them with every field under the caller's control, the wrong ones
// included: another version or type, a bad checksum, a forged HMAC, a
// truncated or padded payload, any TTL or hop limit, a spoofed source. It
// is a test tool (tools/carpcraft sends what it builds); carpd never links
// it.
//
// The builders are pure: Advert.Bytes and the IPv4 and IPv6 headers' Packet
// return bytes and touch no socket. Sender (Linux) writes finished packets
// to the wire through raw sockets.
package craft

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"github.com/carpd/carpd/internal/carp"
)

// Advert is a CARP advertisement to build. Unlike carp.Advert, every byte
// of the header is a field, so that it can be wrong.
type Advert struct {
	Version uint8 // high nibble of byte 0: 2 for CARP
	Type    uint8 // low nibble of byte 0: 1, advertisement
	VHID    uint8
	AdvSkew uint8
	AuthLen uint8 // 7
	Demote  uint8 // byte 4
	AdvBase uint8
	Counter uint64
	Digest  [carp.DigestLen]byte
	// BadChecksum makes the checksum field wrong: the right value with
	// its low byte inverted, which no ones' complement sum takes for the
	// right one.
	BadChecksum bool
	// Len is the length of the payload: carp.AdvertLen (NewAdvert's) for
	// an advert; shorter cuts the advert off, longer pads it with zero
	// bytes (which leave the checksum as it is, whether a receiver sums
	// 36 bytes or all of them).
	Len int
}

// NewAdvert returns a well-formed advert of vhid: version 2, type 1,
// authlen 7, advbase 1, advskew 0, counter 0, digest zero (see Sign), 36
// bytes long.
func NewAdvert(vhid uint8) Advert {
	return Advert{
		Version: carp.Version,
		Type:    carp.TypeAdvertisement,
		VHID:    vhid,
		AuthLen: carp.AuthLen,
		AdvBase: 1,
		Len:     carp.AdvertLen,
	}
}

// FromCARP returns the Advert that carp.Advert a marshals to.
func FromCARP(a carp.Advert) Advert {
	c := NewAdvert(a.VHID)
	c.AdvSkew, c.Demote, c.AdvBase, c.Counter, c.Digest = a.AdvSkew, a.Demote, a.AdvBase, a.Counter, a.Digest
	return c
}

// Sign sets the digest to the HMAC that auth computes for the advert's
// counter. An authenticator made for another password (or another vhid,
// or another address list) forges it.
func (a *Advert) Sign(auth *carp.Authenticator) {
	a.Digest = auth.Digest(a.Counter)
}

// Signer returns the authenticator of a vhid's adverts for a password and
// address list, as carpd computes them (carp.NewAuthenticator).
func Signer(pass string, vhid uint8, addrs []netip.Addr) *carp.Authenticator {
	return carp.NewAuthenticator(pass, vhid, addrs)
}

// MaxLen is the longest payload Bytes makes: what fits an IPv4 datagram.
const MaxLen = 0xffff - IPv4HeaderLen

// Bytes returns the payload: the 36-byte header with its checksum over
// those 36 bytes (CARP's, no pseudo-header), then cut to Len bytes or
// padded with zeros to Len. It panics if Len is negative or above MaxLen, a
// caller's mistake.
func (a Advert) Bytes() []byte {
	n := a.Len
	if n < 0 || n > MaxLen {
		panic(fmt.Sprintf("craft: advert length %d out of range 0..%d", a.Len, MaxLen))
	}
	b := make([]byte, max(n, carp.AdvertLen))
	b[0] = a.Version<<4 | a.Type&0x0f
	b[1] = a.VHID
	b[2] = a.AdvSkew
	b[3] = a.AuthLen
	b[4] = a.Demote
	b[5] = a.AdvBase
	binary.BigEndian.PutUint64(b[8:16], a.Counter)
	copy(b[16:carp.AdvertLen], a.Digest[:])
	sum := carp.Checksum(b[:carp.AdvertLen])
	if a.BadChecksum {
		sum ^= 0x00ff
	}
	binary.BigEndian.PutUint16(b[6:8], sum)
	return b[:n]
}

// IPv4HeaderLen is the length of the IPv4 header the builder writes: no
// options.
const IPv4HeaderLen = 20

// IPv4 is the IPv4 header of a crafted packet. Protocol is always 112.
type IPv4 struct {
	Src, Dst netip.Addr
	TTL      uint8
	TOS      uint8
	ID       uint16
	// DF sets the don't-fragment flag, as CARP senders do.
	DF bool
}

// Packet returns the IPv4 datagram carrying payload: the 20-byte header
// with total length and checksum filled in, then payload.
func (h IPv4) Packet(payload []byte) ([]byte, error) {
	if !h.Src.Is4() || !h.Dst.Is4() {
		return nil, fmt.Errorf("IPv4 header from %v to %v: both must be IPv4 addresses", h.Src, h.Dst)
	}
	total := IPv4HeaderLen + len(payload)
	if total > 0xffff {
		return nil, fmt.Errorf("payload of %d bytes too long for IPv4", len(payload))
	}
	b := make([]byte, total)
	b[0] = 4<<4 | IPv4HeaderLen/4
	b[1] = h.TOS
	binary.BigEndian.PutUint16(b[2:4], uint16(total))
	binary.BigEndian.PutUint16(b[4:6], h.ID)
	if h.DF {
		b[6] = 0x40
	}
	b[8] = h.TTL
	b[9] = carp.Protocol
	src, dst := h.Src.As4(), h.Dst.As4()
	copy(b[12:16], src[:])
	copy(b[16:20], dst[:])
	binary.BigEndian.PutUint16(b[10:12], carp.Checksum(b[:IPv4HeaderLen]))
	copy(b[IPv4HeaderLen:], payload)
	return b, nil
}

// IPv6HeaderLen is the length of the fixed IPv6 header; the builder writes
// no extension headers.
const IPv6HeaderLen = 40

// IPv6 is the IPv6 header of a crafted packet. Next header is always 112.
type IPv6 struct {
	Src, Dst     netip.Addr
	HopLimit     uint8
	TrafficClass uint8
	FlowLabel    uint32 // 20 bits
}

// Packet returns the IPv6 packet carrying payload: the 40-byte header with
// the payload length filled in, then payload.
func (h IPv6) Packet(payload []byte) ([]byte, error) {
	if !h.Src.Is6() || h.Src.Is4In6() || !h.Dst.Is6() || h.Dst.Is4In6() {
		return nil, fmt.Errorf("IPv6 header from %v to %v: both must be IPv6 addresses", h.Src, h.Dst)
	}
	if len(payload) > 0xffff {
		return nil, fmt.Errorf("payload of %d bytes too long for IPv6 without a jumbogram", len(payload))
	}
	if h.FlowLabel > 0xfffff {
		return nil, fmt.Errorf("flow label %#x has more than 20 bits", h.FlowLabel)
	}
	b := make([]byte, IPv6HeaderLen+len(payload))
	binary.BigEndian.PutUint32(b[0:4], 6<<28|uint32(h.TrafficClass)<<20|h.FlowLabel)
	binary.BigEndian.PutUint16(b[4:6], uint16(len(payload)))
	b[6] = carp.Protocol
	b[7] = h.HopLimit
	src, dst := h.Src.As16(), h.Dst.As16()
	copy(b[8:24], src[:])
	copy(b[24:40], dst[:])
	copy(b[IPv6HeaderLen:], payload)
	return b, nil
}

// Captured is a protocol-112 packet read back from the wire or a capture.
type Captured struct {
	Src, Dst netip.Addr
	TTL      int // TTL or hop limit
	Payload  []byte
}

// ErrNotCARP says that a packet is not IP protocol 112.
var ErrNotCARP = errors.New("not an IP protocol 112 packet")

// ParseIP decodes an IPv4 or IPv6 packet (the version nibble says which)
// that carries protocol 112 directly after its header, and returns its
// addresses, TTL and payload (a copy, cut to the header's length field).
func ParseIP(b []byte) (Captured, error) {
	if len(b) < 1 {
		return Captured{}, errors.New("empty packet")
	}
	switch b[0] >> 4 {
	case 4:
		if len(b) < IPv4HeaderLen {
			return Captured{}, fmt.Errorf("IPv4 packet of %d bytes", len(b))
		}
		ihl := int(b[0]&0x0f) * 4
		total := int(binary.BigEndian.Uint16(b[2:4]))
		if ihl < IPv4HeaderLen || total < ihl || total > len(b) {
			return Captured{}, fmt.Errorf("IPv4 header length %d, total length %d, %d bytes", ihl, total, len(b))
		}
		if b[9] != carp.Protocol {
			return Captured{}, fmt.Errorf("%w: IPv4 protocol %d", ErrNotCARP, b[9])
		}
		return Captured{
			Src:     netip.AddrFrom4([4]byte(b[12:16])),
			Dst:     netip.AddrFrom4([4]byte(b[16:20])),
			TTL:     int(b[8]),
			Payload: append([]byte(nil), b[ihl:total]...),
		}, nil
	case 6:
		if len(b) < IPv6HeaderLen {
			return Captured{}, fmt.Errorf("IPv6 packet of %d bytes", len(b))
		}
		n := int(binary.BigEndian.Uint16(b[4:6]))
		if IPv6HeaderLen+n > len(b) {
			return Captured{}, fmt.Errorf("IPv6 payload length %d, %d bytes", n, len(b))
		}
		if b[6] != carp.Protocol {
			return Captured{}, fmt.Errorf("%w: IPv6 next header %d", ErrNotCARP, b[6])
		}
		return Captured{
			Src:     netip.AddrFrom16([16]byte(b[8:24])),
			Dst:     netip.AddrFrom16([16]byte(b[24:40])),
			TTL:     int(b[7]),
			Payload: append([]byte(nil), b[IPv6HeaderLen:IPv6HeaderLen+n]...),
		}, nil
	}
	return Captured{}, fmt.Errorf("IP version %d", b[0]>>4)
}
