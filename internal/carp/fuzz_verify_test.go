package carp_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/carpd/carpd/internal/carp"
)

// What the HMAC covers. BSD CARP's HMAC-SHA1 is taken over version, type,
// vhid, the sorted addresses and the counter (carp_hmac_prepare); of the 36
// bytes of the advert it therefore protects byte 0 (version and type), byte
// 1 (vhid) and bytes 8-15 (counter), and bytes 16-35 are the digest itself.
// Bytes 2 (advskew), 3 (authlen, never checked on receive, as FreeBSD),
// 4 (demote) and 5 (advbase) are not covered: anyone on the segment can
// rewrite them in a captured advert, fix the checksum (bytes 6-7, which
// only catches corruption), and the advert still verifies. The receive
// path must accept such a packet as authentic (it is, by the protocol's
// rules); README's security section says what this means.
const (
	offVersion  = 0
	offVHID     = 1
	offAdvSkew  = 2
	offAuthLen  = 3
	offDemote   = 4
	offAdvBase  = 5
	offChecksum = 6
	offCounter  = 8
	offDigest   = 16
)

// uncovered reports whether byte i of an advert is outside the HMAC.
func uncovered(i int) bool {
	return i == offAdvSkew || i == offAuthLen || i == offDemote || i == offAdvBase
}

// pcapConfig is the vhid of the captured adverts in testdata/*.pcap.
var pcapConfig = carp.Config{VHID: 100, AdvBase: 1, AdvSkew: 100, Password: "lampros", Addrs: []netip.Addr{pcapVIP}}

// receivedFrom is an advert as the IPv4 socket hands it over, from a host
// on the segment with the right TTL.
func receivedFrom(fam carp.Family, a carp.Advert) carp.Received {
	src := netip.MustParseAddr("192.0.2.21")
	if fam == carp.IPv6 {
		src = netip.MustParseAddr("fe80::21")
	}
	return carp.Received{Family: fam, Src: src, TTL: carp.TTL, Advert: a}
}

// withChecksum returns a copy of the 36 bytes of b with the checksum made
// right again.
func withChecksum(b []byte) []byte {
	c := slices.Clone(b[:carp.AdvertLen])
	c[offChecksum], c[offChecksum+1] = 0, 0
	binary.BigEndian.PutUint16(c[offChecksum:], carp.Checksum(c))
	return c
}

// checkFlip flips bit (0..287) of the valid advert b, which filter accepts
// on family fam, and checks what becomes of it: as it is, the checksum
// rejects it (a one's-complement sum catches every single-bit error), or
// for a bit of byte 0 the version or type check before it; with the
// checksum made right again (an attacker's rewrite), a covered bit makes it
// fail to parse (byte 0) or fail the filter (vhid: no such vhid, and the
// HMAC of the new vhid does not match either; counter or digest: bad
// HMAC), and an uncovered bit leaves an advert that parses and passes.
func checkFlip(t *testing.T, b []byte, bit int, filter *carp.Filter, fam carp.Family, pass string, addrs []netip.Addr) {
	t.Helper()
	i := bit / 8
	flipped := slices.Clone(b[:carp.AdvertLen])
	flipped[i] ^= 1 << (bit % 8)
	if a, err := carp.ParseAdvert(flipped); err == nil {
		t.Fatalf("bit %d (byte %d) flipped: parsed as %+v, want an error", bit, i, a)
	} else if i != offVersion && !errors.Is(err, carp.ErrChecksum) {
		t.Fatalf("bit %d (byte %d) flipped: %v, want %v", bit, i, err, carp.ErrChecksum)
	}
	if i == offChecksum || i == offChecksum+1 {
		return // making the checksum right undoes the flip
	}
	rewritten := withChecksum(flipped)
	a, err := carp.ParseAdvert(rewritten)
	if i == offVersion {
		if err == nil || errors.Is(err, carp.ErrChecksum) {
			t.Fatalf("bit %d of byte 0 flipped, checksum right: error %v, want a version or type error", bit, err)
		}
		return
	}
	if err != nil {
		t.Fatalf("bit %d (byte %d) flipped, checksum right: %v", bit, i, err)
	}
	reason, ok := filter.Check(receivedFrom(fam, a))
	switch {
	case uncovered(i):
		if !ok {
			t.Fatalf("bit %d (byte %d, outside the HMAC) flipped, checksum right: dropped (%v), want it accepted", bit, i, reason)
		}
	case i == offVHID:
		if ok || reason != carp.DropVHID {
			t.Fatalf("vhid bit %d flipped: Check = %v, %v; want %v", bit, reason, ok, carp.DropVHID)
		}
		if carp.NewAuthenticator(pass, a.VHID, addrs).Verify(a.Counter, a.Digest) {
			t.Fatalf("vhid bit %d flipped: the digest verifies for vhid %d", bit, a.VHID)
		}
	default:
		if ok || reason != carp.DropAuth {
			t.Fatalf("bit %d (byte %d) flipped, checksum right: Check = %v, %v; want %v", bit, i, reason, ok, carp.DropAuth)
		}
	}
}

// capturedAdverts returns the CARP payloads of the adverts in
// testdata/*.pcap (loadCapture needs a *testing.T; fuzz seeds are added
// with a *testing.F).
func capturedAdverts(tb testing.TB) [][]byte {
	tb.Helper()
	var out [][]byte
	for _, tc := range pcapFiles {
		b, err := os.ReadFile(filepath.Join("testdata", tc.file))
		if err != nil {
			tb.Fatal(err)
		}
		frames, err := readPcap(b)
		if err != nil {
			tb.Fatalf("%s: %v", tc.file, err)
		}
		for _, fr := range frames {
			e, err := parseEthernet(fr)
			if err != nil || e.etherType != etherTypeIPv4 {
				continue
			}
			if ip, err := parseIPv4(e.payload); err == nil && ip.proto == carp.Protocol {
				out = append(out, ip.payload)
			}
		}
	}
	if len(out) == 0 {
		tb.Fatal("no captured adverts")
	}
	return out
}

// TestAdvertBitFlips flips every bit of the first captured advert of carpd
// and of ucarp, and of one carpd signs with link-local IPv6 addresses in
// its set, and checks each outcome (see checkFlip).
func TestAdvertBitFlips(t *testing.T) {
	m, err := carp.NewMachine(pcapConfig, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range pcapFiles {
		c := loadCapture(t, tc.file)
		if len(c.adverts) == 0 {
			t.Fatalf("%s: no adverts", tc.file)
		}
		b := c.adverts[0].ip.payload
		for bit := range carp.AdvertLen * 8 {
			checkFlip(t, b, bit, m.Filter(), carp.IPv4, pcapConfig.Password, pcapConfig.Addrs)
		}
	}
	addrs := []netip.Addr{netip.MustParseAddr("2001:db8::50"), netip.MustParseAddr("fe80::50"), netip.MustParseAddr("192.0.2.50")}
	m6, err := carp.NewMachine(carp.Config{VHID: 7, AdvBase: 1, Password: "p", Addrs: addrs}, 1)
	if err != nil {
		t.Fatal(err)
	}
	const counter = 0xfedcba9876543210
	b := carp.Advert{VHID: 7, AdvBase: 1, Counter: counter, Digest: carp.NewAuthenticator("p", 7, addrs).Digest(counter)}.Marshal()
	for bit := range carp.AdvertLen * 8 {
		checkFlip(t, b, bit, m6.Filter(), carp.IPv6, "p", addrs)
	}
}

// FuzzVerifyAdvert decodes arbitrary bytes as an advert received on the
// vhid of the captures (vhid 100, pass lampros, 192.0.2.50) and runs the
// vhid's receive filter over it. Invariants:
//   - no panic; a decode error is one of ParseAdvert's and maps to a drop
//     reason (or to none for VRRPv3);
//   - the filter passes exactly the adverts of vhid 100 whose HMAC the
//     vhid's Authenticator verifies, and drops the others as badvhid or
//     badauth;
//   - an advert that passes re-encodes (Marshal) to the same 36 bytes,
//     except byte 3, authlen, which Marshal always writes as 7 (it is
//     neither checked on receive nor covered by the HMAC), and the
//     checksum field, which may hold either form of one's-complement zero
//     (0x0000 or 0xffff) when the rest sums to zero;
//   - the re-encoded advert parses and passes again.
//
// The seeds include every captured advert of carpd and ucarp: valid ones,
// which the mutations then corrupt.
func FuzzVerifyAdvert(f *testing.F) {
	for _, b := range capturedAdverts(f) {
		f.Add(b)
	}
	m, err := carp.NewMachine(pcapConfig, 1)
	if err != nil {
		f.Fatal(err)
	}
	filter := m.Filter()
	auth := carp.NewAuthenticator(pcapConfig.Password, pcapConfig.VHID, pcapConfig.Addrs)
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := carp.ParseAdvert(b)
		if err != nil {
			known := false
			for _, e := range []error{carp.ErrShort, carp.ErrVersion, carp.ErrNotCARP, carp.ErrType, carp.ErrChecksum} {
				known = known || errors.Is(err, e)
			}
			if _, counted := carp.DropReasonOf(err); !known || counted == errors.Is(err, carp.ErrNotCARP) {
				t.Fatalf("ParseAdvert(%x): unexpected error %v", b, err)
			}
			return
		}
		reason, ok := filter.Check(receivedFrom(carp.IPv4, a))
		verifies := a.VHID == pcapConfig.VHID && auth.Verify(a.Counter, a.Digest)
		if ok != verifies {
			t.Fatalf("advert %+v: Check = %v, %v; the vhid's Authenticator says %v", a, reason, ok, verifies)
		}
		if !ok {
			want := carp.DropAuth
			if a.VHID != pcapConfig.VHID {
				want = carp.DropVHID
			}
			if reason != want {
				t.Fatalf("advert %+v: dropped as %v, want %v", a, reason, want)
			}
			return
		}
		again := a.Marshal()
		for i := range carp.AdvertLen {
			if i != offAuthLen && i != offChecksum && i != offChecksum+1 && again[i] != b[i] {
				t.Fatalf("verified advert %x re-encodes as %x: byte %d differs", b[:carp.AdvertLen], again, i)
			}
		}
		if b[offAuthLen] == carp.AuthLen && !bytes.Equal(again[offChecksum:offChecksum+2], b[offChecksum:offChecksum+2]) {
			if sum := binary.BigEndian.Uint16(b[offChecksum:]) ^ binary.BigEndian.Uint16(again[offChecksum:]); sum != 0xffff {
				t.Fatalf("verified advert %x re-encodes as %x: checksums differ", b[:carp.AdvertLen], again)
			}
		}
		a2, err := carp.ParseAdvert(again)
		if err != nil || a2 != a {
			t.Fatalf("re-encoded advert %x parses as %+v, %v; want %+v", again, a2, err, a)
		}
		if _, ok := filter.Check(receivedFrom(carp.IPv4, a2)); !ok {
			t.Fatalf("re-encoded advert %x does not pass", again)
		}
	})
}

// fuzzAddrs makes a vhid's address set from b: each byte adds one address
// from the documentation ranges or the link-local range, its kind chosen by
// the low two bits. It always has at least one address.
func fuzzAddrs(b []byte) []netip.Addr {
	var out []netip.Addr
	for i, x := range b {
		if i == 8 {
			break
		}
		switch x & 3 {
		case 0:
			out = append(out, netip.AddrFrom4([4]byte{192, 0, 2, x}))
		case 1:
			out = append(out, netip.AddrFrom4([4]byte{198, 51, 100, x}))
		case 2:
			out = append(out, netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: x}))
		case 3:
			out = append(out, netip.AddrFrom16([16]byte{0xfe, 0x80, 15: x}))
		}
	}
	if len(out) == 0 {
		out = append(out, pcapVIP)
	}
	return out
}

// FuzzSignedAdvert signs an advert the way carpd sends one (Marshal with
// the Authenticator's Digest) from arbitrary settings, passphrase, counter
// and address set, and receives it on a vhid configured with the same
// passphrase and addresses (given in another order, with duplicates).
// Invariants:
//   - it decodes to the advert that was sent and passes the vhid's filter;
//   - a passphrase that differs in its first 19 bytes does not verify it;
//     one that differs only after them does (ifconfig keeps 19);
//   - with link-local IPv6 addresses in the set, an advert signed over the
//     set without them verifies too (OpenBSD's variant);
//   - the chosen bit flipped: see checkFlip (every bit of the 36 bytes is
//     covered as the fuzzer varies flip; TestAdvertBitFlips does all of
//     them for the captured adverts).
func FuzzSignedAdvert(f *testing.F) {
	f.Add("lampros", uint8(100), uint8(100), uint8(1), uint8(0), uint64(0x0123456789abcdef), []byte{50}, uint16(0))
	f.Add("", uint8(1), uint8(0), uint8(255), uint8(3), uint64(0), []byte{50, 3, 6}, uint16(17))
	f.Add("a passphrase longer than nineteen bytes", uint8(255), uint8(255), uint8(255), uint8(255), ^uint64(0), []byte{2, 7, 7, 0}, uint16(287))
	f.Add("p", uint8(7), uint8(240), uint8(3), uint8(1), uint64(1)<<63, []byte{7, 11, 1}, uint16(100))
	f.Fuzz(func(t *testing.T, pass string, vhid, advskew, advbase, demote uint8, counter uint64, addrBytes []byte, flip uint16) {
		if vhid < carp.MinVHID {
			vhid = carp.MinVHID
		}
		addrs := fuzzAddrs(addrBytes)
		fam := carp.IPv4
		if !addrs[0].Is4() {
			fam = carp.IPv6
		}
		sent := carp.Advert{VHID: vhid, AdvSkew: advskew, Demote: demote, AdvBase: advbase, Counter: counter,
			Digest: carp.NewAuthenticator(pass, vhid, addrs).Digest(counter)}
		b := sent.Marshal()
		if len(b) != carp.AdvertLen {
			t.Fatalf("Marshal: %d bytes", len(b))
		}

		// The receiver's set: reversed, the first address twice.
		theirs := append(slices.Clone(addrs), addrs[0])
		slices.Reverse(theirs)
		m, err := carp.NewMachine(carp.Config{VHID: vhid, AdvBase: 1, Password: pass, Addrs: theirs}, 1)
		if err != nil {
			t.Fatal(err)
		}
		got, err := carp.ParseAdvert(b)
		if err != nil || got != sent {
			t.Fatalf("ParseAdvert(Marshal(%+v)) = %+v, %v", sent, got, err)
		}
		if reason, ok := m.Filter().Check(receivedFrom(fam, got)); !ok {
			t.Fatalf("signed advert %+v dropped: %v", sent, reason)
		}

		other := pass + "x"
		if len(carp.Key(pass)) == carp.MaxKeyLen {
			k := carp.Key(pass)
			k[0] ^= 1
			other = string(k)
			if !carp.NewAuthenticator(pass+"tail", vhid, theirs).Verify(counter, sent.Digest) {
				t.Fatalf("passphrase %q: bytes after the 19th changed the HMAC", pass)
			}
		}
		if carp.NewAuthenticator(other, vhid, theirs).Verify(counter, sent.Digest) {
			t.Fatalf("passphrases %q and %q give the same HMAC", pass, other)
		}

		var noLL []netip.Addr
		for _, a := range addrs {
			if !a.IsLinkLocalUnicast() {
				noLL = append(noLL, a)
			}
		}
		if len(noLL) != len(addrs) {
			d := carp.NewAuthenticator(pass, vhid, noLL).Digest(counter)
			if reason, ok := m.Filter().Check(receivedFrom(fam, carp.Advert{VHID: vhid, Counter: counter, Digest: d})); !ok {
				t.Fatalf("advert signed without the link-local addresses (OpenBSD) dropped: %v", reason)
			}
		}

		checkFlip(t, b, int(flip)%(carp.AdvertLen*8), m.Filter(), fam, pass, theirs)
	})
}
