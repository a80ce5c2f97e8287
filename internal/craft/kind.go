package craft

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"math/big"
	"net/netip"
	"slices"
	"strings"

	"github.com/carpd/carpd/internal/carp"
)

// Auth says how the digest of a crafted advert is made.
type Auth string

// The ways to make a digest.
const (
	// AuthRight is the HMAC of the vhid's password and address list: what
	// a peer that knows the password sends.
	AuthRight Auth = "right"
	// AuthForged is the HMAC of another password over the same address
	// list: an attacker who does not know the password.
	AuthForged Auth = "forged"
	// AuthRandom is 20 random bytes.
	AuthRandom Auth = "random"
)

// Kind is one family of hostile (or valid) adverts.
type Kind struct {
	Name string
	// Help says what the kind sends and what a CARP receiver should do
	// with it.
	Help string
	// Auth is how the digest is made unless the caller says otherwise.
	Auth Auth
	// TTL is the TTL or hop limit unless the caller says otherwise.
	TTL uint8
	// Shape changes the advert from a well-formed one; opts are the
	// caller's, for the vhid.
	Shape func(a *Advert, opts *Options)
}

// The kinds, in the order Kinds lists them.
var kinds = []Kind{
	{"valid", "a well-formed advert with the right HMAC (accepted)", AuthRight, carp.TTL, nil},
	{"forged", "a well-formed advert, HMAC of another password (badauth)", AuthForged, carp.TTL, nil},
	{"ttl", "TTL / hop limit 254 (badttl)", AuthRight, carp.TTL - 1, nil},
	{"badsum", "a wrong checksum (badsum)", AuthRight, carp.TTL, func(a *Advert, _ *Options) { a.BadChecksum = true }},
	{"v1", "version 1 (badver)", AuthRight, carp.TTL, func(a *Advert, _ *Options) { a.Version = 1 }},
	{"v3", "version 3, VRRP's, with a CARP body (badver in carpd, which has no VRRP mode)", AuthRight, carp.TTL,
		func(a *Advert, _ *Options) { a.Version = 3 }},
	{"type2", "version 2, type 2 (badver)", AuthRight, carp.TTL, func(a *Advert, _ *Options) { a.Type = 2 }},
	{"truncated", "the advert cut to 20 bytes (--len; below 8 bytes: hdrops, 8..35: badlen)", AuthRight, carp.TTL,
		func(a *Advert, _ *Options) { a.Len = 20 }},
	{"oversized", "the advert padded with zeros to 1400 bytes (--len), HMAC of another password (badauth: bytes after the 36th are ignored)",
		AuthForged, carp.TTL, func(a *Advert, _ *Options) { a.Len = 1400 }},
	{"unknownvhid", "the next vhid after --vhid (vhid%255+1), right HMAC for it (badvhid)", AuthRight, carp.TTL,
		func(a *Advert, o *Options) { a.VHID = o.VHID%carp.MaxVHID + 1 }},
	{"advbase0", "advbase 0, HMAC of another password (badauth; with --auth right, a valid advert better than any)",
		AuthForged, carp.TTL, func(a *Advert, _ *Options) { a.AdvBase = 0 }},
}

// Kinds returns the kinds Options.Packets builds (carpcraft adds replay
// and echo, which send captured bytes).
func Kinds() []Kind { return slices.Clone(kinds) }

// KindNamed returns the kind of that name.
func KindNamed(name string) (Kind, bool) {
	for _, k := range kinds {
		if k.Name == name {
			return k, true
		}
	}
	return Kind{}, false
}

// Fields are overrides of single fields, applied after the kind's shape;
// nil leaves the kind's value.
type Fields struct {
	Version, Type, VHID, AdvSkew, AuthLen, Demote, AdvBase *uint8
	Len                                                    *int
	BadChecksum                                            *bool
}

// Options say what Packets builds.
type Options struct {
	Kind   string
	Family int // 4 or 6
	// VHID is the vhid the receivers have, and the advert's unless the
	// kind or Fields say otherwise.
	VHID uint8
	// Pass and Addrs are the vhid's password and address list; ForgePass
	// is the other password of AuthForged ("forged" when empty).
	Pass, ForgePass string
	Addrs           []netip.Addr
	// Auth overrides the kind's way to make the digest.
	Auth Auth
	// Src is the source: one address (a /32 or /128 prefix), or a wider
	// prefix to draw a random source from for each packet.
	Src netip.Prefix
	Dst netip.Addr
	// TTL overrides the kind's TTL or hop limit when not nil.
	TTL *uint8
	TOS uint8 // TOS or traffic class
	// Counter is the counter of the first packet (random when nil); each
	// next packet's is one higher.
	Counter *uint64
	Fields  Fields
	// Ring is the number of distinct packets built (each its own
	// counter, source, ID); a sender cycles through them.
	Ring int
}

// Packets builds opts.Ring distinct packets (whole IP packets) of the kind.
func (o Options) Packets() ([][]byte, error) {
	k, ok := KindNamed(o.Kind)
	if !ok {
		return nil, fmt.Errorf("unknown kind %q (kinds: %s)", o.Kind, strings.Join(names(), ", "))
	}
	if o.Family != 4 && o.Family != 6 {
		return nil, fmt.Errorf("address family %d: want 4 or 6", o.Family)
	}
	if !o.Src.IsValid() || !o.Dst.IsValid() {
		return nil, fmt.Errorf("source %v and destination %v must both be set", o.Src, o.Dst)
	}
	if (o.Src.Addr().Is4() || o.Dst.Is4()) != (o.Family == 4) || o.Src.Addr().Is4() != o.Dst.Is4() {
		return nil, fmt.Errorf("source %v and destination %v are not both IPv%d", o.Src, o.Dst, o.Family)
	}
	if o.VHID == 0 {
		return nil, fmt.Errorf("vhid 0: want 1..255")
	}
	if n := o.Fields.Len; n != nil && (*n < 0 || *n > MaxLen-IPv6HeaderLen) {
		return nil, fmt.Errorf("length %d out of range 0..%d", *n, MaxLen-IPv6HeaderLen)
	}
	auth := k.Auth
	if o.Auth != "" {
		auth = o.Auth
	}
	ttl := k.TTL
	if o.TTL != nil {
		ttl = *o.TTL
	}
	ring := max(o.Ring, 1)
	counter := randUint64()
	if o.Counter != nil {
		counter = *o.Counter
	}
	forgePass := o.ForgePass
	if forgePass == "" {
		forgePass = "forged"
	}
	// The signers, per vhid the adverts may carry (the kind and Fields
	// may change it; it is the same for every packet).
	signers := map[uint8]*carp.Authenticator{}
	signer := func(vhid uint8) (*carp.Authenticator, error) {
		if s, ok := signers[vhid]; ok {
			return s, nil
		}
		var s *carp.Authenticator
		switch auth {
		case AuthRight:
			s = Signer(o.Pass, vhid, o.Addrs)
		case AuthForged:
			if forgePass == o.Pass {
				return nil, fmt.Errorf("the forged password is the vhid's own")
			}
			s = Signer(forgePass, vhid, o.Addrs)
		case AuthRandom:
		default:
			return nil, fmt.Errorf("auth %q: want right, forged or random", auth)
		}
		signers[vhid] = s
		return s, nil
	}
	pkts := make([][]byte, ring)
	for i := range pkts {
		a := NewAdvert(o.VHID)
		a.Counter = counter + uint64(i)
		if k.Shape != nil {
			k.Shape(&a, &o)
		}
		o.Fields.apply(&a)
		s, err := signer(a.VHID)
		if err != nil {
			return nil, err
		}
		if s != nil {
			a.Sign(s)
		} else {
			_, _ = rand.Read(a.Digest[:])
		}
		src, err := randomIn(o.Src)
		if err != nil {
			return nil, err
		}
		payload := a.Bytes()
		if o.Family == 4 {
			pkts[i], err = IPv4{Src: src, Dst: o.Dst, TTL: ttl, TOS: o.TOS, ID: uint16(i + 1), DF: true}.Packet(payload)
		} else {
			pkts[i], err = IPv6{Src: src, Dst: o.Dst, HopLimit: ttl, TrafficClass: o.TOS}.Packet(payload)
		}
		if err != nil {
			return nil, err
		}
	}
	return pkts, nil
}

func (f Fields) apply(a *Advert) {
	set := func(dst *uint8, v *uint8) {
		if v != nil {
			*dst = *v
		}
	}
	set(&a.Version, f.Version)
	set(&a.Type, f.Type)
	set(&a.VHID, f.VHID)
	set(&a.AdvSkew, f.AdvSkew)
	set(&a.AuthLen, f.AuthLen)
	set(&a.Demote, f.Demote)
	set(&a.AdvBase, f.AdvBase)
	if f.Len != nil {
		a.Len = *f.Len
	}
	if f.BadChecksum != nil {
		a.BadChecksum = *f.BadChecksum
	}
}

func names() []string {
	var n []string
	for _, k := range kinds {
		n = append(n, k.Name)
	}
	return n
}

func randUint64() uint64 {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return binary.BigEndian.Uint64(b[:])
}

// randomIn returns p's address if p is a single address, else a random
// address of p other than its first and last (an IPv4 network's network
// and broadcast addresses).
func randomIn(p netip.Prefix) (netip.Addr, error) {
	if p.IsSingleIP() {
		return p.Addr(), nil
	}
	bits := p.Addr().BitLen() - p.Bits()
	if bits < 2 {
		return netip.Addr{}, fmt.Errorf("prefix %v has no address but its first and last", p)
	}
	span := new(big.Int).Lsh(big.NewInt(1), uint(bits))
	span.Sub(span, big.NewInt(2))
	off, err := rand.Int(rand.Reader, span)
	if err != nil {
		return netip.Addr{}, err
	}
	off.Add(off, big.NewInt(1))
	base := new(big.Int).SetBytes(p.Masked().Addr().AsSlice())
	b := base.Add(base, off).FillBytes(make([]byte, p.Addr().BitLen()/8))
	a, _ := netip.AddrFromSlice(b)
	return a, nil
}
