package carp

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"encoding"
	"encoding/binary"
	"hash"
	"net/netip"
	"slices"
	"sync"
)

// MaxKeyLen is the number of password bytes that count: ifconfig strlcpy's
// the passphrase into a 20-byte buffer (CARP_KEY_LEN), so 19 are used.
const MaxKeyLen = 19

// Key returns the HMAC key for a passphrase: its first 19 bytes. An empty
// passphrase is a valid (all-zero) key.
func Key(pass string) []byte {
	k := []byte(pass)
	if len(k) > MaxKeyLen {
		k = k[:MaxKeyLen]
	}
	return k
}

// Authenticator computes and checks the HMAC of one vhid's adverts. It is
// immutable once made and safe for concurrent use.
//
// The HMAC's key blocks and the message before the counter are the same
// for every advert of the vhid, so their SHA-1 states are computed once
// (RFC 2104's precomputation); an advert then costs the counter's block
// and the outer block, with no allocation.
type Authenticator struct {
	key []byte
	// inner is the SHA-1 state after the inner key block and the prefix:
	// version, type, vhid, the sorted IPv4 then IPv6 addresses.
	inner []byte
	// innerNoLL is the state for OpenBSD's prefix without IPv6 link-local
	// addresses; nil when the set has none.
	innerNoLL []byte
	// outer is the SHA-1 state after the outer key block.
	outer []byte
}

// scratch is one SHA-1 hash and its output buffer, reused across adverts.
type scratch struct {
	h   hash.Hash
	u   encoding.BinaryUnmarshaler // h, asserted once
	sum [sha1.Size]byte
	ctr [8]byte
}

var scratches = sync.Pool{New: func() any {
	h := sha1.New()
	return &scratch{h: h, u: h.(encoding.BinaryUnmarshaler)}
}}

// NewAuthenticator makes the authenticator of vhid with the given
// passphrase and address set (any order, duplicates allowed).
func NewAuthenticator(pass string, vhid uint8, addrs []netip.Addr) *Authenticator {
	a := &Authenticator{key: Key(pass)}
	// The key is at most 19 bytes, shorter than SHA-1's block: it is
	// padded with zeros, never hashed.
	var ipad, opad [sha1.BlockSize]byte
	copy(ipad[:], a.key)
	copy(opad[:], a.key)
	for i := range ipad {
		ipad[i] ^= 0x36
		opad[i] ^= 0x5c
	}
	state := func(parts ...[]byte) []byte {
		h := sha1.New()
		for _, p := range parts {
			h.Write(p)
		}
		b, err := h.(encoding.BinaryMarshaler).MarshalBinary()
		if err != nil {
			panic("carp: crypto/sha1 cannot save its state: " + err.Error())
		}
		return b
	}
	prefix := hmacPrefix(vhid, addrs, true)
	a.inner = state(ipad[:], prefix)
	a.outer = state(opad[:])
	if noLL := hmacPrefix(vhid, addrs, false); !bytes.Equal(noLL, prefix) {
		a.innerNoLL = state(ipad[:], noLL)
	}
	return a
}

// hmacPrefix builds 0x02 0x01 vhid, the IPv4 addresses in ascending order,
// then the IPv6 addresses in ascending order (zones stripped), each once.
func hmacPrefix(vhid uint8, addrs []netip.Addr, linkLocal bool) []byte {
	var v4, v6 []netip.Addr
	for _, a := range addrs {
		a = a.Unmap().WithZone("")
		switch {
		case a.Is4():
			v4 = append(v4, a)
		case a.Is6() && (linkLocal || !a.IsLinkLocalUnicast()):
			v6 = append(v6, a)
		}
	}
	msg := []byte{Version, TypeAdvertisement, vhid}
	for _, set := range [][]netip.Addr{v4, v6} {
		slices.SortFunc(set, netip.Addr.Compare)
		for _, a := range slices.Compact(set) {
			msg = append(msg, a.AsSlice()...)
		}
	}
	return msg
}

// digest computes the HMAC from the inner state given into s.sum.
func (a *Authenticator) digest(s *scratch, inner []byte, counter uint64) {
	restore(s.u, inner)
	binary.BigEndian.PutUint64(s.ctr[:], counter)
	s.h.Write(s.ctr[:])
	s.h.Sum(s.sum[:0])
	restore(s.u, a.outer)
	s.h.Write(s.sum[:])
	s.h.Sum(s.sum[:0])
}

func restore(u encoding.BinaryUnmarshaler, state []byte) {
	if err := u.UnmarshalBinary(state); err != nil {
		panic("carp: crypto/sha1 cannot restore its state: " + err.Error())
	}
}

// Digest is the HMAC-SHA1 that an advert with this counter carries.
func (a *Authenticator) Digest(counter uint64) [DigestLen]byte {
	s := scratches.Get().(*scratch)
	defer scratches.Put(s)
	a.digest(s, a.inner, counter)
	return s.sum
}

// Verify reports whether d is a valid digest for the counter: the full
// address set, or OpenBSD's variant without IPv6 link-local addresses. The
// comparison takes constant time.
func (a *Authenticator) Verify(counter uint64, d [DigestLen]byte) bool {
	s := scratches.Get().(*scratch)
	defer scratches.Put(s)
	a.digest(s, a.inner, counter)
	if hmac.Equal(s.sum[:], d[:]) {
		return true
	}
	if a.innerNoLL == nil {
		return false
	}
	a.digest(s, a.innerNoLL, counter)
	return hmac.Equal(s.sum[:], d[:])
}
