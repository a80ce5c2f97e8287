package carp

import (
	"bytes"
	"encoding/hex"
	"errors"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// hmacVectors are the vectors of the reference (carp-protocol.md §2). The
// header bytes use advskew 100, advbase 1 and byte 4 = 0.
var hmacVectors = []struct {
	pass    string
	vhid    uint8
	addrs   []string
	counter uint64
	md      string
	header  string // the first 8 bytes of the advert, hex
}{
	{"secret", 1, []string{"192.168.1.50"}, 0x0102030405060708, "8e95143e8c4c0d829b1e4de9d611eabc150c9b5d", "210164070001d3ff"},
	{"", 1, []string{"192.168.1.50"}, 0x0102030405060708, "9a8b6c401d3ddbc28b61147f4ed4607f5b3d98b1", "21016407000127f3"},
	{"mekmitasdigoat", 42, []string{"10.0.0.20", "10.0.0.3", "2001:db8::1"}, 0x1122334455667788, "2cdc94e5d2d4a99e859695520af17a0e70320636", "212a6407000114f2"},
	{"0123456789abcdefghijKLMN", 200, []string{"192.0.2.1"}, 0xdeadbeefcafebabe, "56f5e3793b9cfa8dc0427fc4d1961f1ca9c12451", "21c864070001e76d"},
}

func parseAddrs(t testing.TB, ss []string) []netip.Addr {
	t.Helper()
	var out []netip.Addr
	for _, s := range ss {
		out = append(out, netip.MustParseAddr(s))
	}
	return out
}

func TestHMACVectors(t *testing.T) {
	for _, v := range hmacVectors {
		t.Run(v.pass, func(t *testing.T) {
			auth := NewAuthenticator(v.pass, v.vhid, parseAddrs(t, v.addrs))
			d := auth.Digest(v.counter)
			if got := hex.EncodeToString(d[:]); got != v.md {
				t.Errorf("digest = %s, want %s", got, v.md)
			}
			b := Advert{VHID: v.vhid, AdvSkew: 100, AdvBase: 1, Counter: v.counter, Digest: d}.Marshal()
			if got := hex.EncodeToString(b[:8]); got != v.header {
				t.Errorf("header = %s, want %s", got, v.header)
			}
			if got, want := hex.EncodeToString(b[16:]), v.md; got != want {
				t.Errorf("digest on the wire = %s, want %s", got, want)
			}
			if !auth.Verify(v.counter, d) {
				t.Error("Verify rejects its own digest")
			}
			if auth.Verify(v.counter+1, d) {
				t.Error("Verify accepts the digest of another counter")
			}
		})
	}
}

func TestHMACAddressOrderAndDuplicates(t *testing.T) {
	a := NewAuthenticator("x", 7, parseAddrs(t, []string{"2001:db8::2", "192.0.2.9", "2001:db8::1", "192.0.2.10", "192.0.2.9"}))
	b := NewAuthenticator("x", 7, parseAddrs(t, []string{"192.0.2.10", "192.0.2.9", "2001:db8::1", "2001:db8::2"}))
	if a.Digest(5) != b.Digest(5) {
		t.Error("digest depends on configuration order or duplicates")
	}
	c := NewAuthenticator("x", 7, parseAddrs(t, []string{"192.0.2.10", "192.0.2.9", "2001:db8::1"}))
	if a.Digest(5) == c.Digest(5) {
		t.Error("digest does not cover every address")
	}
}

func TestKeyCutTo19Bytes(t *testing.T) {
	addrs := parseAddrs(t, []string{"192.0.2.1"})
	long := NewAuthenticator("0123456789abcdefghijKLMN", 1, addrs)
	cut := NewAuthenticator("0123456789abcdefghi", 1, addrs)
	if long.Digest(1) != cut.Digest(1) {
		t.Error("a 24-byte password is not cut to 19 bytes")
	}
	if NewAuthenticator("0123456789abcdefgh", 1, addrs).Digest(1) == cut.Digest(1) {
		t.Error("the 19th byte does not count")
	}
}

func TestVerifyOpenBSDWithoutLinkLocal(t *testing.T) {
	full := parseAddrs(t, []string{"2001:db8::1", "fe80::1"})
	ours := NewAuthenticator("x", 3, full)
	openbsd := NewAuthenticator("x", 3, parseAddrs(t, []string{"2001:db8::1"}))
	if !ours.Verify(9, openbsd.Digest(9)) {
		t.Error("the digest without IPv6 link-local addresses is rejected")
	}
	if !ours.Verify(9, ours.Digest(9)) {
		t.Error("the full digest is rejected")
	}
	other := NewAuthenticator("x", 3, parseAddrs(t, []string{"2001:db8::7"}))
	if ours.Verify(9, other.Digest(9)) {
		t.Error("a digest over another address set is accepted")
	}
}

func TestAdvertRoundTrip(t *testing.T) {
	want := Advert{VHID: 100, AdvSkew: 200, Demote: 3, AdvBase: 1, Counter: 0xfeedface01020304}
	for i := range want.Digest {
		want.Digest[i] = byte(i * 7)
	}
	b := want.Marshal()
	if len(b) != AdvertLen {
		t.Fatalf("len = %d", len(b))
	}
	got, err := ParseAdvert(b)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
}

// TestAppendMarshal: AppendMarshal leaves what b holds, appends what
// Marshal returns (the checksum over the advert alone), and reuses b's
// room: a buffer kept by the caller allocates nothing.
func TestAppendMarshal(t *testing.T) {
	a := Advert{VHID: 7, AdvSkew: 100, AdvBase: 1, Counter: 42}
	a.Digest[0] = 0xaa
	prefix := []byte{1, 2, 3}
	// Room with stale bytes: they must not leak into the advert.
	buf := append(append(make([]byte, 0, 64), prefix...), bytes.Repeat([]byte{0xff}, 40)...)[:len(prefix)]
	got := a.AppendMarshal(buf)
	if !bytes.Equal(got[:3], prefix) || !bytes.Equal(got[3:], a.Marshal()) {
		t.Fatalf("AppendMarshal = % x, want % x then % x", got, prefix, a.Marshal())
	}
	if _, err := ParseAdvert(got[3:]); err != nil {
		t.Errorf("the appended advert does not parse: %v", err)
	}
	if n := testing.AllocsPerRun(100, func() { buf = a.AppendMarshal(buf[:0]) }); n != 0 {
		t.Errorf("AppendMarshal into a buffer with room: %v allocs, want 0", n)
	}
}

func TestParseAdvertErrors(t *testing.T) {
	good := Advert{VHID: 1, AdvBase: 1}.Marshal()
	mod := func(f func(b []byte) []byte) []byte {
		return f(append([]byte(nil), good...))
	}
	tests := []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, ErrShort},
		{"seven bytes", good[:7], ErrShort},
		{"35 bytes", good[:35], ErrShort},
		{"version 1", mod(func(b []byte) []byte { b[0] = 0x11; return b }), ErrVersion},
		{"vrrp v3", mod(func(b []byte) []byte { b[0] = 0x31; return b[:20] }), ErrNotCARP},
		{"type 2", mod(func(b []byte) []byte { b[0] = 0x22; return b }), ErrType},
		{"flipped bit", mod(func(b []byte) []byte { b[20] ^= 1; return b }), ErrChecksum},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := ParseAdvert(tt.b); !errors.Is(err, tt.want) {
				t.Errorf("err = %v, want %v", err, tt.want)
			}
		})
	}
	if _, err := ParseAdvert(append(good, 0, 0)); err != nil {
		t.Errorf("trailing bytes: %v", err)
	}
}

func FuzzParseAdvert(f *testing.F) {
	f.Add(Advert{VHID: 100, AdvSkew: 100, AdvBase: 1, Counter: 42}.Marshal())
	f.Add([]byte{0x31, 1, 100, 1, 0, 100, 0, 0})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := ParseAdvert(b)
		if err != nil {
			return
		}
		again, err := ParseAdvert(a.Marshal())
		if err != nil {
			t.Fatalf("re-encoded advert does not parse: %v", err)
		}
		if again != a {
			t.Fatalf("round trip changed the advert: %+v != %+v", again, a)
		}
	})
}
