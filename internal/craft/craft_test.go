package craft

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"net/netip"
	"os"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"

	"github.com/carpd/carpd/internal/carp"
)

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestAdvertReferenceVector: a well-formed advert signed with the right
// password is byte for byte the reference vector of carp-protocol.md §2
// (pass secret, vhid 1, 192.168.1.50, counter 0102030405060708, advskew
// 100, advbase 1), and decodes and verifies with carpd's own code.
func TestAdvertReferenceVector(t *testing.T) {
	addrs := []netip.Addr{netip.MustParseAddr("192.168.1.50")}
	a := NewAdvert(1)
	a.AdvSkew, a.Counter = 100, 0x0102030405060708
	a.Sign(Signer("secret", 1, addrs))
	want := mustHex(t, "210164070001d3ff0102030405060708"+"8e95143e8c4c0d829b1e4de9d611eabc150c9b5d")
	if got := a.Bytes(); !bytes.Equal(got, want) {
		t.Fatalf("Bytes() = %x, want %x", got, want)
	}
	got, err := carp.ParseAdvert(a.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(carp.Advert{VHID: 1, AdvSkew: 100, AdvBase: 1, Counter: 0x0102030405060708, Digest: a.Digest}, got); diff != "" {
		t.Errorf("decoded (-want +got):\n%s", diff)
	}
	if !carp.NewAuthenticator("secret", 1, addrs).Verify(got.Counter, got.Digest) {
		t.Error("carpd does not verify the HMAC")
	}
	if carp.NewAuthenticator("lampros", 1, addrs).Verify(got.Counter, got.Digest) {
		t.Error("the HMAC verifies with another password")
	}
	// FromCARP and carp's Marshal agree.
	if b := FromCARP(got).Bytes(); !bytes.Equal(b, got.Marshal()) {
		t.Errorf("FromCARP(a).Bytes() = %x, carp's Marshal %x", b, got.Marshal())
	}
}

// TestAdvertFields: each field lands at its offset and the checksum stays
// right whatever the fields hold.
func TestAdvertFields(t *testing.T) {
	a := Advert{Version: 3, Type: 2, VHID: 7, AdvSkew: 8, AuthLen: 9, Demote: 10, AdvBase: 0,
		Counter: 0x1122334455667788, Len: carp.AdvertLen}
	for i := range a.Digest {
		a.Digest[i] = byte(0xa0 + i)
	}
	b := a.Bytes()
	if len(b) != carp.AdvertLen {
		t.Fatalf("len %d", len(b))
	}
	if diff := cmp.Diff([]byte{0x32, 7, 8, 9, 10, 0}, b[:6]); diff != "" {
		t.Errorf("bytes 0..5 (-want +got):\n%s", diff)
	}
	if c := binary.BigEndian.Uint64(b[8:16]); c != a.Counter {
		t.Errorf("counter %#x", c)
	}
	if !bytes.Equal(b[16:], a.Digest[:]) {
		t.Errorf("digest %x", b[16:])
	}
	if carp.Checksum(b) != 0 {
		t.Errorf("checksum of %x does not verify", b)
	}
}

// TestBadChecksum: for many adverts (checksums all over the 16-bit
// range, 0x0000 and 0xffff included), the bad checksum never verifies,
// and carpd's decoder says so.
func TestBadChecksum(t *testing.T) {
	seen := map[uint16]bool{}
	for c := range uint64(70000) {
		a := NewAdvert(uint8(c))
		a.Counter = c * 0x9e3779b97f4a7c15
		a.BadChecksum = true
		b := a.Bytes()
		if carp.Checksum(b) == 0 {
			t.Fatalf("bad checksum of %x verifies", b)
		}
		if _, err := carp.ParseAdvert(b); !errors.Is(err, carp.ErrChecksum) {
			t.Fatalf("ParseAdvert(%x) = %v, want ErrChecksum", b, err)
		}
		a.BadChecksum = false
		seen[binary.BigEndian.Uint16(a.Bytes()[6:8])] = true
	}
	if len(seen) < 30000 {
		t.Errorf("only %d distinct checksums tried", len(seen))
	}
}

// TestLength: cut below 8 bytes the advert is shorter than the header
// (hdrops), from 8 to 35 bytes it is short (badlen); padded to 1400 bytes
// it decodes to the same advert (the zeros change no checksum, over 36
// bytes or over all of them).
func TestLength(t *testing.T) {
	a := NewAdvert(100)
	a.AdvSkew, a.Counter = 5, 42
	full := a.Bytes()
	for n := 0; n < carp.AdvertLen; n++ {
		a.Len = n
		b := a.Bytes()
		if len(b) != n || !bytes.Equal(b, full[:n]) {
			t.Fatalf("Len %d: %x, want the first %d bytes of %x", n, b, n, full)
		}
		_, err := carp.ParseAdvert(b)
		want := carp.ErrShort
		if n < 8 {
			want = carp.ErrHeader
		}
		if !errors.Is(err, want) || (n >= 8 && errors.Is(err, carp.ErrHeader)) {
			t.Errorf("ParseAdvert of %d bytes: %v, want %v", n, err, want)
		}
	}
	a.Len = 1400
	b := a.Bytes()
	if len(b) != 1400 || !bytes.Equal(b[:carp.AdvertLen], full) || !bytes.Equal(b[carp.AdvertLen:], make([]byte, 1400-carp.AdvertLen)) {
		t.Fatalf("padded: %x", b)
	}
	if carp.Checksum(b) != 0 {
		t.Error("the checksum over all 1400 bytes does not verify")
	}
	got, err := carp.ParseAdvert(b)
	if err != nil || got.Counter != 42 || got.AdvSkew != 5 {
		t.Errorf("ParseAdvert(padded) = %+v, %v", got, err)
	}
}

// TestVersionsAndTypes: version 1, version 3 (VRRP's nibble) and type 2
// go out as asked with a right checksum, so that only the version or
// type check can drop them.
func TestVersionsAndTypes(t *testing.T) {
	for _, tc := range []struct {
		version, typ uint8
		byte0        byte
		err          error
	}{
		{1, 1, 0x11, carp.ErrVersion},
		{3, 1, 0x31, nil}, // VRRPv3: carpd's decoder's business
		{2, 2, 0x22, carp.ErrType},
		{2, 1, 0x21, nil},
	} {
		a := NewAdvert(1)
		a.Version, a.Type = tc.version, tc.typ
		b := a.Bytes()
		if b[0] != tc.byte0 || carp.Checksum(b) != 0 {
			t.Errorf("version %d type %d: %x", tc.version, tc.typ, b)
		}
		if _, err := carp.ParseAdvert(b); tc.err != nil && !errors.Is(err, tc.err) {
			t.Errorf("version %d type %d: ParseAdvert: %v, want %v", tc.version, tc.typ, err, tc.err)
		}
	}
}

// TestIPv4Packet: the header is what x/net parses back, its checksum
// verifies, and ParseIP returns the fields and payload.
func TestIPv4Packet(t *testing.T) {
	payload := NewAdvert(9).Bytes()
	h := IPv4{Src: netip.MustParseAddr("192.0.2.21"), Dst: netip.MustParseAddr("224.0.0.18"), TTL: 254, TOS: 0xe0, ID: 77, DF: true}
	p, err := h.Packet(payload)
	if err != nil {
		t.Fatal(err)
	}
	if len(p) != IPv4HeaderLen+len(payload) || carp.Checksum(p[:IPv4HeaderLen]) != 0 {
		t.Fatalf("packet %x: length or header checksum wrong", p)
	}
	xh, err := ipv4.ParseHeader(p)
	if err != nil {
		t.Fatal(err)
	}
	if xh.Version != 4 || xh.Len != 20 || xh.TOS != 0xe0 || xh.TotalLen != len(p) || xh.ID != 77 ||
		xh.Flags != ipv4.DontFragment || xh.TTL != 254 || xh.Protocol != 112 ||
		!xh.Src.Equal(h.Src.AsSlice()) || !xh.Dst.Equal(h.Dst.AsSlice()) {
		t.Errorf("parsed header %+v", xh)
	}
	c, err := ParseIP(p)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(Captured{Src: h.Src, Dst: h.Dst, TTL: 254, Payload: payload}, c, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
		t.Errorf("ParseIP (-want +got):\n%s", diff)
	}
	if _, err := (IPv4{Src: netip.MustParseAddr("2001:db8::1"), Dst: h.Dst}).Packet(payload); err == nil {
		t.Error("an IPv6 source in an IPv4 header is accepted")
	}
	if _, err := h.Packet(make([]byte, MaxLen+1)); err == nil {
		t.Error("a payload longer than an IPv4 datagram is accepted")
	}
}

// TestIPv6Packet: as TestIPv4Packet for the IPv6 header.
func TestIPv6Packet(t *testing.T) {
	payload := NewAdvert(9).Bytes()
	h := IPv6{Src: netip.MustParseAddr("fe80::1"), Dst: carp.GroupIPv6, HopLimit: 254, TrafficClass: 0xe0, FlowLabel: 0x12345}
	p, err := h.Packet(payload)
	if err != nil {
		t.Fatal(err)
	}
	xh, err := ipv6.ParseHeader(p)
	if err != nil {
		t.Fatal(err)
	}
	if xh.Version != 6 || xh.TrafficClass != 0xe0 || xh.FlowLabel != 0x12345 || xh.PayloadLen != len(payload) ||
		xh.NextHeader != 112 || xh.HopLimit != 254 || !xh.Src.Equal(h.Src.AsSlice()) || !xh.Dst.Equal(h.Dst.AsSlice()) {
		t.Errorf("parsed header %+v", xh)
	}
	c, err := ParseIP(p)
	if err != nil || c.Src != h.Src || c.Dst != h.Dst || c.TTL != 254 || !bytes.Equal(c.Payload, payload) {
		t.Errorf("ParseIP = %+v, %v", c, err)
	}
	if _, err := (IPv6{Src: netip.MustParseAddr("192.0.2.1"), Dst: h.Dst}).Packet(payload); err == nil {
		t.Error("an IPv4 source in an IPv6 header is accepted")
	}
}

func TestParseIPErrors(t *testing.T) {
	good, _ := IPv4{Src: netip.MustParseAddr("192.0.2.1"), Dst: carp.GroupIPv4, TTL: 255}.Packet(NewAdvert(1).Bytes())
	udp := bytes.Clone(good)
	udp[9] = 17
	long := bytes.Clone(good)
	binary.BigEndian.PutUint16(long[2:4], uint16(len(good)+1))
	for name, b := range map[string][]byte{"empty": nil, "short": good[:10], "udp": udp, "total length": long, "version 5": {0x50}} {
		if _, err := ParseIP(b); err == nil {
			t.Errorf("%s: ParseIP accepts %x", name, b)
		}
	}
	if _, err := ParseIP(udp); !errors.Is(err, ErrNotCARP) {
		t.Errorf("udp: %v, want ErrNotCARP", err)
	}
}

// TestKinds: every kind decodes back to what it promises: the field it
// gets wrong, and nothing else (the HMAC is right unless the kind forges
// it, so that the one check named drops it).
func TestKinds(t *testing.T) {
	vip := []netip.Addr{netip.MustParseAddr("192.0.2.50")}
	right := carp.NewAuthenticator("lampros", 100, vip)
	for _, tc := range []struct {
		kind   string
		ttl    int
		length int
		err    error // of carp.ParseAdvert
		byte0  byte
		vhid   uint8
		verify bool // the HMAC verifies with the right password
	}{
		{"valid", 255, 36, nil, 0x21, 100, true},
		{"forged", 255, 36, nil, 0x21, 100, false},
		{"ttl", 254, 36, nil, 0x21, 100, true},
		{"badsum", 255, 36, carp.ErrChecksum, 0x21, 100, true},
		{"v1", 255, 36, carp.ErrVersion, 0x11, 100, true},
		{"v3", 255, 36, nil, 0x31, 100, true},
		{"type2", 255, 36, carp.ErrType, 0x22, 100, true},
		{"truncated", 255, 20, carp.ErrShort, 0x21, 100, true},
		{"oversized", 255, 1400, nil, 0x21, 100, false},
		{"unknownvhid", 255, 36, nil, 0x21, 101, false},
		{"advbase0", 255, 36, nil, 0x21, 100, false},
	} {
		t.Run(tc.kind, func(t *testing.T) {
			for _, fam := range []int{4, 6} {
				o := Options{Kind: tc.kind, Family: fam, VHID: 100, Pass: "lampros", Addrs: vip, Ring: 3,
					Src: netip.MustParsePrefix("192.0.2.23/32"), Dst: carp.GroupIPv4}
				if fam == 6 {
					o.Src, o.Dst = netip.MustParsePrefix("fe80::23/128"), carp.GroupIPv6
				}
				pkts, err := o.Packets()
				if err != nil {
					t.Fatal(err)
				}
				if len(pkts) != 3 {
					t.Fatalf("%d packets, want the ring's 3", len(pkts))
				}
				var counters []uint64
				for _, p := range pkts {
					c, err := ParseIP(p)
					if err != nil {
						t.Fatal(err)
					}
					if c.Src != o.Src.Addr() || c.Dst != o.Dst || c.TTL != tc.ttl || len(c.Payload) != tc.length || c.Payload[0] != tc.byte0 {
						t.Fatalf("IPv%d: %v -> %v ttl %d, %d bytes %x", fam, c.Src, c.Dst, c.TTL, len(c.Payload), c.Payload)
					}
					if tc.vhid != c.Payload[1] {
						t.Errorf("vhid %d, want %d", c.Payload[1], tc.vhid)
					}
					a, err := carp.ParseAdvert(c.Payload)
					if tc.err != nil {
						if !errors.Is(err, tc.err) {
							t.Errorf("ParseAdvert: %v, want %v", err, tc.err)
						}
						if len(c.Payload) >= carp.AdvertLen {
							// Read the fields of the (rejected) advert as they are.
							a = carp.Advert{AdvSkew: c.Payload[2], AdvBase: c.Payload[5],
								Counter: binary.BigEndian.Uint64(c.Payload[8:16]), Digest: [20]byte(c.Payload[16:36])}
						}
					} else if err != nil && tc.kind != "v3" {
						t.Errorf("ParseAdvert: %v", err)
					}
					if tc.kind == "v3" {
						a = carp.Advert{AdvBase: c.Payload[5], Counter: binary.BigEndian.Uint64(c.Payload[8:16]), Digest: [20]byte(c.Payload[16:36])}
					}
					if len(c.Payload) < carp.AdvertLen {
						continue
					}
					if got := right.Verify(a.Counter, a.Digest); got != tc.verify {
						t.Errorf("the right password verifies the HMAC: %v, want %v", got, tc.verify)
					}
					if tc.kind == "unknownvhid" && !carp.NewAuthenticator("lampros", 101, vip).Verify(a.Counter, a.Digest) {
						t.Error("unknownvhid's HMAC is not the right one for vhid 101")
					}
					if tc.kind == "forged" && !carp.NewAuthenticator("forged", 100, vip).Verify(a.Counter, a.Digest) {
						t.Error("forged's HMAC is not that of the password \"forged\"")
					}
					wantBase := uint8(1)
					if tc.kind == "advbase0" {
						wantBase = 0
					}
					if a.AdvBase != wantBase || a.AdvSkew != 0 {
						t.Errorf("advbase %d advskew %d, want %d and 0", a.AdvBase, a.AdvSkew, wantBase)
					}
					counters = append(counters, a.Counter)
				}
				if len(counters) == 3 && (counters[1] != counters[0]+1 || counters[2] != counters[1]+1) {
					t.Errorf("counters %x, want consecutive", counters)
				}
			}
		})
	}
}

// TestOptions: overrides, random sources, and the errors.
func TestOptions(t *testing.T) {
	u8 := func(v uint8) *uint8 { return &v }
	n := 4
	ctr := uint64(0xfffffffffffffffe)
	o := Options{Kind: "valid", Family: 4, VHID: 100, Pass: "lampros", Ring: 300,
		Src: netip.MustParsePrefix("198.51.100.0/24"), Dst: netip.MustParseAddr("192.0.2.21"),
		TTL: u8(1), TOS: 0x10, Counter: &ctr,
		Fields: Fields{AdvSkew: u8(7), AdvBase: u8(3), Demote: u8(2), AuthLen: u8(6), VHID: u8(9)}}
	pkts, err := o.Packets()
	if err != nil {
		t.Fatal(err)
	}
	srcs := map[netip.Addr]bool{}
	for i, p := range pkts {
		c, _ := ParseIP(p)
		if !o.Src.Contains(c.Src) || c.Src == o.Src.Masked().Addr() || c.Src == netip.MustParseAddr("198.51.100.255") {
			t.Fatalf("source %v not a host of %v", c.Src, o.Src)
		}
		srcs[c.Src] = true
		if p[1] != 0x10 || c.TTL != 1 || c.Dst != o.Dst {
			t.Fatalf("TOS %#x TTL %d dst %v", p[1], c.TTL, c.Dst)
		}
		if diff := cmp.Diff([]byte{0x21, 9, 7, 6, 2, 3}, c.Payload[:6]); diff != "" {
			t.Fatalf("fields (-want +got):\n%s", diff)
		}
		if got := binary.BigEndian.Uint64(c.Payload[8:16]); got != ctr+uint64(i) {
			t.Fatalf("packet %d counter %#x, want %#x (wrapping)", i, got, ctr+uint64(i))
		}
	}
	if len(srcs) < 100 {
		t.Errorf("%d distinct random sources in 300 packets", len(srcs))
	}
	o.Fields = Fields{Len: &n}
	o.Ring = 1
	if pkts, err := o.Packets(); err != nil || len(pkts[0]) != IPv4HeaderLen+4 {
		t.Errorf("--len 4: %x, %v", pkts, err)
	}
	zero := 0
	o.Fields = Fields{Len: &zero}
	if pkts, err := o.Packets(); err != nil || len(pkts[0]) != IPv4HeaderLen {
		t.Errorf("--len 0: %x, %v", pkts, err)
	}

	good := Options{Kind: "forged", Family: 4, VHID: 1, Src: netip.MustParsePrefix("192.0.2.1/32"), Dst: carp.GroupIPv4}
	for name, mod := range map[string]func(o *Options){
		"unknown kind": func(o *Options) { o.Kind = "nope" },
		"family":       func(o *Options) { o.Family = 5 },
		"mixed":        func(o *Options) { o.Dst = carp.GroupIPv6 },
		"family 6":     func(o *Options) { o.Family = 6 },
		"vhid 0":       func(o *Options) { o.VHID = 0 },
		"no source":    func(o *Options) { o.Src = netip.Prefix{} },
		"same pass":    func(o *Options) { o.Pass, o.ForgePass = "x", "x" },
		"auth":         func(o *Options) { o.Auth = "maybe" },
		"/31":          func(o *Options) { o.Src = netip.MustParsePrefix("192.0.2.0/31") },
		"len":          func(o *Options) { big := MaxLen; o.Fields.Len = &big },
	} {
		o := good
		mod(&o)
		if _, err := o.Packets(); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if _, err := good.Packets(); err != nil {
		t.Errorf("the good options: %v", err)
	}
}

// TestReadPcap: the adverts carpd and ucarp sent, captured by the e2e
// tests (internal/carp/testdata), decode and verify; a synthetic file of
// every link type and byte order reads back.
func TestReadPcap(t *testing.T) {
	vip := []netip.Addr{netip.MustParseAddr("192.0.2.50")}
	for _, name := range []string{"carpd-adverts.pcap", "ucarp-adverts.pcap"} {
		f, err := os.Open("../carp/testdata/" + name)
		if err != nil {
			t.Fatal(err)
		}
		caps, err := ReadPcap(f)
		f.Close()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(caps) < 2 {
			t.Fatalf("%s: %d adverts", name, len(caps))
		}
		for _, c := range caps {
			a, err := carp.ParseAdvert(c.Payload)
			if err != nil || c.TTL != 255 || c.Dst != carp.GroupIPv4 {
				t.Fatalf("%s: %+v: %v", name, c, err)
			}
			if !carp.NewAuthenticator("lampros", a.VHID, vip).Verify(a.Counter, a.Digest) {
				t.Errorf("%s: advert from %v does not verify", name, c.Src)
			}
		}
	}

	ip4, _ := IPv4{Src: netip.MustParseAddr("192.0.2.1"), Dst: carp.GroupIPv4, TTL: 255}.Packet(NewAdvert(1).Bytes())
	ip6, _ := IPv6{Src: netip.MustParseAddr("fe80::1"), Dst: carp.GroupIPv6, HopLimit: 255}.Packet(NewAdvert(2).Bytes())
	other := bytes.Clone(ip4)
	other[9] = 17
	for _, tc := range []struct {
		link  uint32
		order binary.ByteOrder
		frame func(ip []byte, etype uint16) []byte
	}{
		{linkEthernet, binary.LittleEndian, func(ip []byte, et uint16) []byte {
			return append(binary.BigEndian.AppendUint16(make([]byte, 12), et), ip...)
		}},
		{linkEthernet, binary.BigEndian, func(ip []byte, et uint16) []byte { // with a VLAN tag
			h := binary.BigEndian.AppendUint16(make([]byte, 12), 0x8100)
			h = binary.BigEndian.AppendUint16(append(h, 0, 5), et)
			return append(h, ip...)
		}},
		{linkRaw, binary.LittleEndian, func(ip []byte, _ uint16) []byte { return ip }},
		{linkSLL, binary.BigEndian, func(ip []byte, et uint16) []byte {
			return append(binary.BigEndian.AppendUint16(make([]byte, 14), et), ip...)
		}},
		{linkSLL2, binary.LittleEndian, func(ip []byte, et uint16) []byte {
			return append(append(binary.BigEndian.AppendUint16(nil, et), make([]byte, 18)...), ip...)
		}},
	} {
		var f bytes.Buffer
		gh := make([]byte, 24)
		tc.order.PutUint32(gh[0:4], 0xa1b2c3d4)
		tc.order.PutUint32(gh[20:24], tc.link)
		f.Write(gh)
		for _, p := range []struct {
			ip []byte
			et uint16
		}{{ip4, 0x0800}, {other, 0x0800}, {ip6, 0x86dd}} {
			fr := tc.frame(p.ip, p.et)
			rh := make([]byte, 16)
			tc.order.PutUint32(rh[8:12], uint32(len(fr)))
			tc.order.PutUint32(rh[12:16], uint32(len(fr)))
			f.Write(rh)
			f.Write(fr)
		}
		caps, err := ReadPcap(&f)
		if err != nil {
			t.Fatalf("link %d: %v", tc.link, err)
		}
		if len(caps) != 2 || caps[0].Payload[1] != 1 || caps[1].Payload[1] != 2 || !caps[1].Src.Is6() {
			t.Errorf("link %d %v: %+v", tc.link, tc.order, caps)
		}
	}
	if _, err := ReadPcap(bytes.NewReader([]byte("not a pcap file at all, no"))); err == nil {
		t.Error("garbage read as pcap")
	}
}
