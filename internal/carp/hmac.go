package carp

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/binary"
	"net/netip"
	"slices"
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
// immutable once made.
type Authenticator struct {
	key []byte
	// prefix is the message before the counter: version, type, vhid, the
	// sorted IPv4 then IPv6 addresses.
	prefix []byte
	// prefixNoLL is OpenBSD's variant without IPv6 link-local addresses;
	// nil when the set has none.
	prefixNoLL []byte
}

// NewAuthenticator makes the authenticator of vhid with the given
// passphrase and address set (any order, duplicates allowed).
func NewAuthenticator(pass string, vhid uint8, addrs []netip.Addr) *Authenticator {
	a := &Authenticator{key: Key(pass)}
	a.prefix = hmacPrefix(vhid, addrs, true)
	if noLL := hmacPrefix(vhid, addrs, false); !bytes.Equal(noLL, a.prefix) {
		a.prefixNoLL = noLL
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

func (a *Authenticator) digest(prefix []byte, counter uint64) [DigestLen]byte {
	m := hmac.New(sha1.New, a.key)
	m.Write(prefix)
	var c [8]byte
	binary.BigEndian.PutUint64(c[:], counter)
	m.Write(c[:])
	var d [DigestLen]byte
	copy(d[:], m.Sum(nil))
	return d
}

// Digest is the HMAC-SHA1 that an advert with this counter carries.
func (a *Authenticator) Digest(counter uint64) [DigestLen]byte {
	return a.digest(a.prefix, counter)
}

// Verify reports whether d is a valid digest for the counter: the full
// address set, or OpenBSD's variant without IPv6 link-local addresses. The
// comparison takes constant time.
func (a *Authenticator) Verify(counter uint64, d [DigestLen]byte) bool {
	want := a.Digest(counter)
	if hmac.Equal(want[:], d[:]) {
		return true
	}
	if a.prefixNoLL == nil {
		return false
	}
	want = a.digest(a.prefixNoLL, counter)
	return hmac.Equal(want[:], d[:])
}
