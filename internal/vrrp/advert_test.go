package vrrp

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"slices"
	"testing"
)

var (
	src4 = netip.MustParseAddr("192.0.2.1")
	src6 = netip.MustParseAddr("fe80::1")
	vip4 = netip.MustParseAddr("192.0.2.50")
	vip6 = netip.MustParseAddr("2001:db8::50")
)

// naiveChecksum builds the pseudo-header as bytes and sums it with the
// message, the textbook way, to check Checksum against.
func naiveChecksum(m []byte, src, dst netip.Addr) uint16 {
	var ph []byte
	if src.Is4() {
		ph = append(src.AsSlice(), dst.AsSlice()...)
		ph = append(ph, 0, Protocol)
		ph = binary.BigEndian.AppendUint16(ph, uint16(len(m)))
	} else {
		ph = append(src.AsSlice(), dst.AsSlice()...)
		ph = binary.BigEndian.AppendUint32(ph, uint32(len(m)))
		ph = append(ph, 0, 0, 0, Protocol)
	}
	all := append(ph, m...)
	if len(all)%2 == 1 {
		all = append(all, 0)
	}
	var sum uint64
	for i := 0; i < len(all); i += 2 {
		sum += uint64(binary.BigEndian.Uint16(all[i:]))
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

func TestMarshalIPv4Bytes(t *testing.T) {
	a := Advert{VRID: 100, Priority: 155, Interval: 1, Addrs: []netip.Addr{vip4}}
	b, err := a.Marshal(src4, GroupIPv4)
	if err != nil {
		t.Fatal(err)
	}
	want := []byte{0x31, 100, 155, 1, 0x00, 0x01, 0, 0, 192, 0, 2, 50}
	binary.BigEndian.PutUint16(want[6:], naiveChecksum(want, src4, GroupIPv4))
	if !bytes.Equal(b, want) {
		t.Fatalf("Marshal = % x, want % x", b, want)
	}
	if want[6] == 0 && want[7] == 0 {
		t.Fatal("zero checksum: the test checks nothing")
	}
}

func TestRoundTrip(t *testing.T) {
	many := make([]netip.Addr, 255)
	for i := range many {
		many[i] = netip.AddrFrom4([4]byte{198, 51, 100, byte(i)})
	}
	many6 := make([]netip.Addr, 3)
	for i := range many6 {
		many6[i] = netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: byte(i + 1)})
	}
	for _, tc := range []struct {
		name     string
		a        Advert
		src, dst netip.Addr
		n        int
	}{
		{"v4 one", Advert{VRID: 1, Priority: 100, Interval: 100, Addrs: []netip.Addr{vip4}}, src4, GroupIPv4, 12},
		{"v4 255", Advert{VRID: 255, Priority: 255, Interval: 4095, Addrs: many}, src4, GroupIPv4, 8 + 4*255},
		{"v4 prio 0", Advert{VRID: 7, Priority: 0, Interval: 1, Addrs: []netip.Addr{vip4}}, src4, GroupIPv4, 12},
		{"v6 one", Advert{VRID: 9, Priority: 55, Interval: 1, Addrs: []netip.Addr{vip6}}, src6, GroupIPv6, 24},
		{"v6 three", Advert{VRID: 9, Priority: 55, Interval: 100, Addrs: many6}, src6, GroupIPv6, 56},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := tc.a.Marshal(tc.src, tc.dst)
			if err != nil {
				t.Fatal(err)
			}
			if len(b) != tc.n {
				t.Fatalf("len %d, want %d", len(b), tc.n)
			}
			if got, want := binary.BigEndian.Uint16(b[6:]), naiveChecksum(zeroSum(b), tc.src, tc.dst); got != want {
				t.Fatalf("checksum %#04x, want %#04x", got, want)
			}
			got, err := Parse(b, tc.src, tc.dst)
			if err != nil {
				t.Fatal(err)
			}
			if got.VRID != tc.a.VRID || got.Priority != tc.a.Priority || got.Interval != tc.a.Interval || !slices.Equal(got.Addrs, tc.a.Addrs) {
				t.Fatalf("Parse = %+v, want %+v", got, tc.a)
			}
			// The pseudo-header counts: another source fails.
			other := tc.src.Next()
			if _, err := Parse(b, other, tc.dst); !errors.Is(err, ErrChecksum) {
				t.Fatalf("Parse from %v: %v, want ErrChecksum", other, err)
			}
			// The append form appends.
			pre := []byte{0xaa, 0xbb}
			b2, err := tc.a.AppendMarshal(pre, tc.src, tc.dst)
			if err != nil || !bytes.Equal(b2[:2], pre) || !bytes.Equal(b2[2:], b) {
				t.Fatalf("AppendMarshal = % x, %v", b2, err)
			}
		})
	}
}

func TestChecksumMatchesNaive(t *testing.T) {
	for n := 0; n < 70; n++ {
		m := make([]byte, n)
		for i := range m {
			m[i] = byte(0xff - i*7)
		}
		if got, want := Checksum(m, src4, GroupIPv4), naiveChecksum(m, src4, GroupIPv4); got != want {
			t.Fatalf("v4 len %d: %#04x, want %#04x", n, got, want)
		}
		if got, want := Checksum(m, src6, GroupIPv6), naiveChecksum(m, src6, GroupIPv6); got != want {
			t.Fatalf("v6 len %d: %#04x, want %#04x", n, got, want)
		}
	}
	// A large all-ones message: the running sum must not overflow.
	m := bytes.Repeat([]byte{0xff}, 1<<17)
	if got, want := Checksum(m, src6, GroupIPv6), naiveChecksum(m, src6, GroupIPv6); got != want {
		t.Fatalf("big: %#04x, want %#04x", got, want)
	}
}

func TestMarshalErrors(t *testing.T) {
	ok := Advert{VRID: 1, Priority: 100, Interval: 100, Addrs: []netip.Addr{vip4}}
	mod := func(f func(*Advert)) Advert {
		a := ok
		a.Addrs = slices.Clone(ok.Addrs)
		f(&a)
		return a
	}
	for _, tc := range []struct {
		name     string
		a        Advert
		src, dst netip.Addr
		want     error
	}{
		{"vrid 0", mod(func(a *Advert) { a.VRID = 0 }), src4, GroupIPv4, ErrBadVRID},
		{"interval 0", mod(func(a *Advert) { a.Interval = 0 }), src4, GroupIPv4, ErrBadInterval},
		{"interval 4096", mod(func(a *Advert) { a.Interval = 4096 }), src4, GroupIPv4, ErrBadInterval},
		{"no addrs", mod(func(a *Advert) { a.Addrs = nil }), src4, GroupIPv4, ErrNoAddrs},
		{"256 addrs", mod(func(a *Advert) { a.Addrs = make([]netip.Addr, 256) }), src4, GroupIPv4, ErrTooManyAddrs},
		{"v6 addr in v4", mod(func(a *Advert) { a.Addrs = append(a.Addrs, vip6) }), src4, GroupIPv4, ErrFamily},
		{"v4 addr in v6", ok, src6, GroupIPv6, ErrFamily},
		{"invalid addr", mod(func(a *Advert) { a.Addrs = append(a.Addrs, netip.Addr{}) }), src4, GroupIPv4, ErrFamily},
		{"mixed src dst", ok, src4, GroupIPv6, ErrFamily},
		{"invalid src", ok, netip.Addr{}, GroupIPv4, ErrFamily},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pre := []byte{1, 2, 3}
			b, err := tc.a.AppendMarshal(pre, tc.src, tc.dst)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
			if !bytes.Equal(b, pre) {
				t.Fatalf("b changed on error: % x", b)
			}
		})
	}
}

// zeroSum returns a copy of m with its checksum field zeroed.
func zeroSum(m []byte) []byte {
	m = slices.Clone(m)
	m[6], m[7] = 0, 0
	return m
}

// fix recomputes the checksum of m after a test changed it.
func fix(m []byte, src, dst netip.Addr) []byte {
	m[6], m[7] = 0, 0
	binary.BigEndian.PutUint16(m[6:], Checksum(m, src, dst))
	return m
}

func TestParseErrors(t *testing.T) {
	good, err := Advert{VRID: 5, Priority: 100, Interval: 100, Addrs: []netip.Addr{vip4, vip4.Next()}}.Marshal(src4, GroupIPv4)
	if err != nil {
		t.Fatal(err)
	}
	c := func(f func(m []byte) []byte) []byte { return f(slices.Clone(good)) }
	for _, tc := range []struct {
		name   string
		b      []byte
		src    netip.Addr
		want   error
		reason string
	}{
		{"empty", nil, src4, ErrHeader, "hdrops"},
		{"7 bytes", good[:7], src4, ErrHeader, "hdrops"},
		{"carp", c(func(m []byte) []byte { m[0] = 0x21; return m }), src4, ErrNotVRRP, ""},
		{"version 4", c(func(m []byte) []byte { m[0] = 0x41; return m }), src4, ErrVersion, "badver"},
		{"version 0", c(func(m []byte) []byte { m[0] = 0x01; return m }), src4, ErrVersion, "badver"},
		{"type 2", c(func(m []byte) []byte { m[0] = 0x32; return fix(m, src4, GroupIPv4) }), src4, ErrType, "badver"},
		{"v6 source", good, src6, ErrFamily, "badaf"},
		{"truncated", good[:12], src4, ErrLength, "badlen"},
		{"trailing byte", append(slices.Clone(good), 0), src4, ErrLength, "badlen"},
		{"count 0", c(func(m []byte) []byte { m[3] = 0; return fix(m[:8], src4, GroupIPv4) }), src4, ErrLength, "badlen"},
		{"count 3", c(func(m []byte) []byte { m[3] = 3; return fix(m, src4, GroupIPv4) }), src4, ErrLength, "badlen"},
		{"checksum", c(func(m []byte) []byte { m[7]++; return m }), src4, ErrChecksum, "badsum"},
		{"priority changed", c(func(m []byte) []byte { m[2]++; return m }), src4, ErrChecksum, "badsum"},
		{"interval 0", c(func(m []byte) []byte { m[4], m[5] = 0, 0; return fix(m, src4, GroupIPv4) }), src4, ErrInterval, "badinterval"},
		{"interval 0 reserved set", c(func(m []byte) []byte { m[4], m[5] = 0xf0, 0; return fix(m, src4, GroupIPv4) }), src4, ErrInterval, "badinterval"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := Advert{VRID: 99, Addrs: make([]netip.Addr, 0, 4)}
			err := ParseInto(tc.b, tc.src, GroupIPv4, &a)
			if err != tc.want { // the sentinel itself, not a wrapped copy
				t.Fatalf("err %v, want %v", err, tc.want)
			}
			r, ok := DropReasonOf(err)
			if r != tc.reason || ok != (tc.reason != "") {
				t.Fatalf("DropReasonOf = %q %v, want %q", r, ok, tc.reason)
			}
			if a.VRID != 99 || len(a.Addrs) != 0 {
				t.Fatalf("a changed on error: %+v", a)
			}
		})
	}
}

func TestParseIgnoresReserved(t *testing.T) {
	b, err := Advert{VRID: 5, Priority: 100, Interval: 0x123, Addrs: []netip.Addr{vip6}}.Marshal(src6, GroupIPv6)
	if err != nil {
		t.Fatal(err)
	}
	b[4] |= 0xa0
	fix(b, src6, GroupIPv6)
	a, err := Parse(b, src6, GroupIPv6)
	if err != nil {
		t.Fatal(err)
	}
	if a.Interval != 0x123 {
		t.Fatalf("interval %#x, want 0x123", a.Interval)
	}
}

func TestParseMappedAddrs(t *testing.T) {
	b, err := Advert{VRID: 5, Priority: 100, Interval: 100, Addrs: []netip.Addr{vip4}}.Marshal(src4, GroupIPv4)
	if err != nil {
		t.Fatal(err)
	}
	// A receive path may hand IPv4 sources as IPv4-mapped IPv6.
	m := netip.AddrFrom16(src4.As16())
	if _, err := Parse(b, m, netip.AddrFrom16(GroupIPv4.As16())); err != nil {
		t.Fatalf("mapped src/dst: %v", err)
	}
}

func TestCheckTTL(t *testing.T) {
	if err := CheckTTL(255); err != nil {
		t.Fatal(err)
	}
	for _, ttl := range []int{0, 1, 64, 254, 256} {
		err := CheckTTL(ttl)
		if r, _ := DropReasonOf(err); err != ErrTTL || r != "badttl" {
			t.Fatalf("CheckTTL(%d) = %v (%q)", ttl, err, r)
		}
	}
}

func TestParseIntoNoAlloc(t *testing.T) {
	b, err := Advert{VRID: 5, Priority: 100, Interval: 100, Addrs: []netip.Addr{vip6, vip6.Next(), vip6.Next().Next()}}.Marshal(src6, GroupIPv6)
	if err != nil {
		t.Fatal(err)
	}
	bad := slices.Clone(b)
	bad[7]++
	var a Advert
	a.Addrs = make([]netip.Addr, 0, MaxAddrs)
	n := testing.AllocsPerRun(100, func() {
		if err := ParseInto(b, src6, GroupIPv6, &a); err != nil {
			t.Fatal(err)
		}
		if err := ParseInto(bad, src6, GroupIPv6, &a); err != ErrChecksum {
			t.Fatal(err)
		}
	})
	if n != 0 {
		t.Fatalf("%v allocations per ParseInto", n)
	}
	if len(a.Addrs) != 3 || a.Addrs[2] != vip6.Next().Next() {
		t.Fatalf("Addrs %v", a.Addrs)
	}
}

// BenchmarkParseInto is the receive path's parse and verify of one VRRPv3
// advert (internal/daemon admitVRRP): length, version, type, the checksum
// over the pseudo-header, the addresses, into the reader's scratch Advert
// with no allocation.
func BenchmarkParseInto(b *testing.B) {
	for _, tc := range []struct {
		name     string
		addrs    []netip.Addr
		src, dst netip.Addr
	}{
		{"v4-1", []netip.Addr{vip4}, src4, GroupIPv4},
		{"v6-1", []netip.Addr{vip6}, src6, GroupIPv6},
		{"v6-8", slices.Repeat([]netip.Addr{vip6}, 8), src6, GroupIPv6},
	} {
		p, err := Advert{VRID: 5, Priority: 100, Interval: 100, Addrs: tc.addrs}.Marshal(tc.src, tc.dst)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(tc.name, func(b *testing.B) {
			var a Advert
			a.Addrs = make([]netip.Addr, 0, MaxAddrs)
			b.ReportAllocs()
			for b.Loop() {
				if err := ParseInto(p, tc.src, tc.dst, &a); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkAppendMarshal(b *testing.B) {
	a := Advert{VRID: 5, Priority: 100, Interval: 100, Addrs: []netip.Addr{vip6}}
	buf := make([]byte, 0, 64)
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if buf, err = a.AppendMarshal(buf[:0], src6, GroupIPv6); err != nil {
			b.Fatal(err)
		}
	}
}

// TestChecksumInvalidAddrs: the zero Addr counts as nothing (found by
// FuzzParseVRRP, where it panicked in As4).
func TestChecksumInvalidAddrs(t *testing.T) {
	m := []byte{0x31, 1, 100, 1, 0, 100, 0, 0, 192, 0, 2, 50}
	if got, want := Checksum(m, netip.Addr{}, netip.Addr{}), naiveChecksum(m, netip.IPv4Unspecified(), netip.IPv4Unspecified()); got != want {
		t.Fatalf("%#04x, want %#04x", got, want)
	}
	if _, err := Parse(m, netip.Addr{}, GroupIPv4); err != ErrFamily {
		t.Fatalf("Parse from the zero Addr: %v", err)
	}
}
