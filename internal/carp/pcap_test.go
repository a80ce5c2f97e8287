package carp_test

// Real adverts: testdata/carpd-adverts.pcap and testdata/ucarp-adverts.pcap
// were captured on the switch ports of carpd's and ucarp 1.5.2's hosts
// (vhid 100, advskew 100, advbase 1, pass lampros, VIP 192.0.2.50) by the
// e2e test TestTsharkDecodesAdverts; run it with CARPD_UPDATE_PCAPS=1 to
// capture them again. Each holds the adverts and the gratuitous ARPs that
// the new master sent.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/carpd/carpd/internal/carp"
)

// Classic pcap (libpcap) file format: a 24-byte global header, then records
// of a 16-byte header and the captured bytes.
const (
	pcapMagicMicro  = 0xa1b2c3d4
	pcapMagicNano   = 0xa1b23c4d
	linkTypeEther   = 1
	etherTypeIPv4   = 0x0800
	etherTypeARP    = 0x0806
	etherTypeVLAN   = 0x8100
	pcapHeaderLen   = 24
	pcapRecordLen   = 16
	ethernetHdrLen  = 14
	ipv4MinHdrLen   = 20
	arpEthernetLen  = 28
	ipv4FlagDF      = 0x4000
	ipv4FragMask    = 0x3fff
	arpHTypeEther   = 1
	maxPcapSnapshot = 1 << 18
)

// readPcap returns the frames of a classic pcap file of Ethernet frames, in
// either byte order, with micro- or nanosecond timestamps.
func readPcap(b []byte) ([][]byte, error) {
	if len(b) < pcapHeaderLen {
		return nil, errors.New("pcap: short global header")
	}
	var order binary.ByteOrder
	switch {
	case binary.LittleEndian.Uint32(b) == pcapMagicMicro || binary.LittleEndian.Uint32(b) == pcapMagicNano:
		order = binary.LittleEndian
	case binary.BigEndian.Uint32(b) == pcapMagicMicro || binary.BigEndian.Uint32(b) == pcapMagicNano:
		order = binary.BigEndian
	default:
		return nil, fmt.Errorf("pcap: magic %#x: not a classic pcap file", b[:4])
	}
	if lt := order.Uint32(b[20:24]) & 0x0fffffff; lt != linkTypeEther {
		return nil, fmt.Errorf("pcap: link type %d, want Ethernet (1)", lt)
	}
	var frames [][]byte
	for off := pcapHeaderLen; off < len(b); {
		if len(b)-off < pcapRecordLen {
			return nil, fmt.Errorf("pcap: record %d: short header", len(frames)+1)
		}
		n := int(order.Uint32(b[off+8 : off+12]))
		off += pcapRecordLen
		if n > maxPcapSnapshot || len(b)-off < n {
			return nil, fmt.Errorf("pcap: record %d: %d bytes, %d left", len(frames)+1, n, len(b)-off)
		}
		frames = append(frames, b[off:off+n])
		off += n
	}
	return frames, nil
}

// ethernet is a decoded Ethernet II frame (one 802.1Q tag skipped).
type ethernet struct {
	dst, src  net.HardwareAddr
	etherType uint16
	payload   []byte
}

func parseEthernet(b []byte) (ethernet, error) {
	if len(b) < ethernetHdrLen {
		return ethernet{}, errors.New("ethernet: short frame")
	}
	e := ethernet{dst: net.HardwareAddr(b[0:6]), src: net.HardwareAddr(b[6:12]), etherType: binary.BigEndian.Uint16(b[12:14]), payload: b[14:]}
	if e.etherType == etherTypeVLAN {
		if len(e.payload) < 4 {
			return ethernet{}, errors.New("ethernet: short 802.1Q tag")
		}
		e.etherType, e.payload = binary.BigEndian.Uint16(e.payload[2:4]), e.payload[4:]
	}
	return e, nil
}

// ipv4 is a decoded IPv4 header and its payload (trailer padding removed).
type ipv4 struct {
	tos, ttl, proto uint8
	df              bool
	src, dst        netip.Addr
	payload         []byte
}

func parseIPv4(b []byte) (ipv4, error) {
	if len(b) < ipv4MinHdrLen || b[0]>>4 != 4 {
		return ipv4{}, errors.New("ipv4: short or not version 4")
	}
	hl, total := int(b[0]&0x0f)*4, int(binary.BigEndian.Uint16(b[2:4]))
	if hl < ipv4MinHdrLen || total < hl || total > len(b) {
		return ipv4{}, fmt.Errorf("ipv4: header length %d, total length %d, %d bytes", hl, total, len(b))
	}
	if carp.Checksum(b[:hl]) != 0 {
		return ipv4{}, errors.New("ipv4: bad header checksum")
	}
	frag := binary.BigEndian.Uint16(b[6:8])
	if frag&ipv4FragMask != 0 {
		return ipv4{}, errors.New("ipv4: fragment")
	}
	return ipv4{
		tos:     b[1],
		ttl:     b[8],
		proto:   b[9],
		df:      frag&ipv4FlagDF != 0,
		src:     netip.AddrFrom4([4]byte(b[12:16])),
		dst:     netip.AddrFrom4([4]byte(b[16:20])),
		payload: b[hl:total],
	}, nil
}

// arp is a decoded Ethernet/IPv4 ARP packet.
type arp struct {
	senderMAC          net.HardwareAddr
	senderIP, targetIP netip.Addr
}

func parseARP(b []byte) (arp, error) {
	if len(b) < arpEthernetLen || binary.BigEndian.Uint16(b[0:2]) != arpHTypeEther ||
		binary.BigEndian.Uint16(b[2:4]) != etherTypeIPv4 || b[4] != 6 || b[5] != 4 {
		return arp{}, errors.New("arp: not Ethernet/IPv4")
	}
	return arp{
		senderMAC: net.HardwareAddr(b[8:14]),
		senderIP:  netip.AddrFrom4([4]byte(b[14:18])),
		targetIP:  netip.AddrFrom4([4]byte(b[24:28])),
	}, nil
}

// advertFrame is one captured CARP advert with its headers.
type advertFrame struct {
	eth ethernet
	ip  ipv4
}

// capture holds the adverts and the ARP packets of a pcap file.
type capture struct {
	adverts []advertFrame
	arps    []arp
}

func loadCapture(t *testing.T, name string) capture {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	frames, err := readPcap(b)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	var c capture
	for i, f := range frames {
		e, err := parseEthernet(f)
		if err != nil {
			t.Fatalf("%s: frame %d: %v", name, i+1, err)
		}
		switch e.etherType {
		case etherTypeARP:
			a, err := parseARP(e.payload)
			if err != nil {
				t.Fatalf("%s: frame %d: %v", name, i+1, err)
			}
			c.arps = append(c.arps, a)
		case etherTypeIPv4:
			ip, err := parseIPv4(e.payload)
			if err != nil {
				t.Fatalf("%s: frame %d: %v", name, i+1, err)
			}
			if ip.proto == carp.Protocol {
				c.adverts = append(c.adverts, advertFrame{eth: e, ip: ip})
			}
		}
	}
	return c
}

var (
	pcapVIP   = netip.MustParseAddr("192.0.2.50")
	groupV4   = netip.MustParseAddr("224.0.0.18")
	groupMAC  = net.HardwareAddr{0x01, 0x00, 0x5e, 0x00, 0x00, 0x12}
	ucarpMAC  = net.HardwareAddr{0x00, 0x00, 0x5e, 0x00, 0x00, 100} // ucarp's bug: vhid in the wrong byte
	carpVMAC  = net.HardwareAddr{0x00, 0x00, 0x5e, 0x00, 0x01, 100} // FreeBSD's virtual MAC for vhid 100
	ianaOUI   = []byte{0x00, 0x00, 0x5e}
	pcapFiles = []struct {
		file   string
		src    netip.Addr
		tos    uint8
		srcMAC func(c capture) net.HardwareAddr // the MAC the adverts must come from
	}{
		{
			// carpd: FreeBSD's DSCP 56 and the host's own MAC, the one its
			// gratuitous ARPs carry (carpd does not use the virtual MAC).
			file: "carpd-adverts.pcap", src: netip.MustParseAddr("192.0.2.22"), tos: 0xe0,
			srcMAC: func(c capture) net.HardwareAddr { return announcerMAC(c) },
		},
		{
			// ucarp 1.5.2: OpenBSD's TOS 0x10 and 00:00:5e:00:00:<vhid>.
			file: "ucarp-adverts.pcap", src: netip.MustParseAddr("192.0.2.21"), tos: 0x10,
			srcMAC: func(capture) net.HardwareAddr { return ucarpMAC },
		},
	}
)

// announcerMAC returns the sender MAC of the capture's gratuitous ARPs for
// the VIP (sender and target address both the VIP), or nil if they are
// missing or disagree.
func announcerMAC(c capture) net.HardwareAddr {
	var mac net.HardwareAddr
	for _, a := range c.arps {
		if a.senderIP != pcapVIP || a.targetIP != pcapVIP {
			continue
		}
		if mac != nil && !bytes.Equal(mac, a.senderMAC) {
			return nil
		}
		mac = a.senderMAC
	}
	return mac
}

// header is the part of an advert that is fixed by the configuration.
type header struct {
	VHID, AdvSkew, Demote, AdvBase uint8
}

// TestPcapAdverts decodes the captured adverts of carpd and ucarp with
// ParseAdvert, checks their configured fields, re-encodes them byte for
// byte, verifies their HMAC with the vhid's authenticator, and checks the
// IP and Ethernet headers each implementation is known to send.
func TestPcapAdverts(t *testing.T) {
	auth := carp.NewAuthenticator("lampros", 100, []netip.Addr{pcapVIP})
	for _, tc := range pcapFiles {
		t.Run(tc.file, func(t *testing.T) {
			c := loadCapture(t, tc.file)
			if len(c.adverts) < 2 {
				t.Fatalf("%d adverts in the capture, want at least 2", len(c.adverts))
			}
			wantMAC := tc.srcMAC(c)
			if wantMAC == nil {
				t.Fatal("no (consistent) gratuitous ARP for the VIP in the capture")
			}
			counters := map[uint64]bool{}
			for i, f := range c.adverts {
				p := f.ip.payload
				if len(p) != carp.AdvertLen {
					t.Errorf("advert %d: %d bytes of payload, want %d", i+1, len(p), carp.AdvertLen)
				}
				a, err := carp.ParseAdvert(p)
				if err != nil {
					t.Fatalf("advert %d: ParseAdvert: %v", i+1, err)
				}
				got := header{VHID: a.VHID, AdvSkew: a.AdvSkew, Demote: a.Demote, AdvBase: a.AdvBase}
				if diff := cmp.Diff(header{VHID: 100, AdvSkew: 100, AdvBase: 1}, got); diff != "" {
					t.Errorf("advert %d: header (-want +got):\n%s", i+1, diff)
				}
				if diff := cmp.Diff(p[:carp.AdvertLen], a.Marshal()); diff != "" {
					t.Errorf("advert %d: Marshal does not give the captured bytes back (-want +got):\n%s", i+1, diff)
				}
				if !auth.Verify(a.Counter, a.Digest) {
					t.Errorf("advert %d: HMAC does not verify (counter %#016x)", i+1, a.Counter)
				}
				counters[a.Counter] = true

				if f.ip.src != tc.src || f.ip.dst != groupV4 {
					t.Errorf("advert %d: %v -> %v, want %v -> %v", i+1, f.ip.src, f.ip.dst, tc.src, groupV4)
				}
				if f.ip.ttl != carp.TTL || f.ip.tos != tc.tos || !f.ip.df {
					t.Errorf("advert %d: TTL %d, TOS %#02x, DF %v; want TTL %d, TOS %#02x, DF", i+1, f.ip.ttl, f.ip.tos, f.ip.df, carp.TTL, tc.tos)
				}
				if !bytes.Equal(f.eth.dst, groupMAC) {
					t.Errorf("advert %d: destination MAC %v, want %v", i+1, f.eth.dst, groupMAC)
				}
				if !bytes.Equal(f.eth.src, wantMAC) {
					t.Errorf("advert %d: source MAC %v, want %v", i+1, f.eth.src, wantMAC)
				}
			}
			if len(counters) != len(c.adverts) {
				t.Errorf("%d adverts carry only %d distinct counters", len(c.adverts), len(counters))
			}
		})
	}
}

// TestPcapSourceMACs pins what distinguishes the two implementations on
// the wire: carpd sends from the host's own MAC, which is neither IANA's
// virtual-router range nor FreeBSD's virtual MAC; ucarp sends from
// 00:00:5e:00:00:64 although its gratuitous ARPs carry the host's own MAC.
func TestPcapSourceMACs(t *testing.T) {
	cd := loadCapture(t, "carpd-adverts.pcap")
	own := announcerMAC(cd)
	if own == nil || bytes.HasPrefix(own, ianaOUI) || own[0]&1 != 0 {
		t.Errorf("carpd's gratuitous ARPs carry %v, want the host's own unicast MAC", own)
	}
	for i, f := range cd.adverts {
		if bytes.Equal(f.eth.src, carpVMAC) {
			t.Errorf("carpd advert %d comes from the virtual MAC %v", i+1, carpVMAC)
		}
	}
	uc := loadCapture(t, "ucarp-adverts.pcap")
	if real := announcerMAC(uc); real == nil || bytes.Equal(real, ucarpMAC) {
		t.Errorf("ucarp's gratuitous ARPs carry %v, want the host's own MAC", real)
	}
}

// TestPcapAuthRejects checks that the captured adverts fail verification
// when anything the HMAC covers differs: the passphrase, the vhid, the
// address set, the counter or one bit of the digest.
func TestPcapAuthRejects(t *testing.T) {
	vip := []netip.Addr{pcapVIP}
	good := carp.NewAuthenticator("lampros", 100, vip)
	for _, tc := range pcapFiles {
		c := loadCapture(t, tc.file)
		if len(c.adverts) == 0 {
			t.Fatalf("%s: no adverts", tc.file)
		}
		a, err := carp.ParseAdvert(c.adverts[0].ip.payload)
		if err != nil {
			t.Fatalf("%s: %v", tc.file, err)
		}
		flipped := a.Digest
		flipped[carp.DigestLen-1] ^= 1
		for _, bad := range []struct {
			name    string
			auth    *carp.Authenticator
			counter uint64
			digest  [carp.DigestLen]byte
		}{
			{"wrong pass", carp.NewAuthenticator("lampros2", 100, vip), a.Counter, a.Digest},
			{"empty pass", carp.NewAuthenticator("", 100, vip), a.Counter, a.Digest},
			{"other vhid", carp.NewAuthenticator("lampros", 101, vip), a.Counter, a.Digest},
			{"extra address", carp.NewAuthenticator("lampros", 100, append(vip, netip.MustParseAddr("192.0.2.51"))), a.Counter, a.Digest},
			{"other address", carp.NewAuthenticator("lampros", 100, []netip.Addr{netip.MustParseAddr("192.0.2.51")}), a.Counter, a.Digest},
			{"counter + 1", good, a.Counter + 1, a.Digest},
			{"digest bit", good, a.Counter, flipped},
		} {
			if bad.auth.Verify(bad.counter, bad.digest) {
				t.Errorf("%s: %s: Verify accepted the advert", tc.file, bad.name)
			}
		}
	}
}

// TestReadPcap checks the test's pcap reader on both byte orders and both
// timestamp resolutions, and its errors.
func TestReadPcap(t *testing.T) {
	frame := []byte{1, 2, 3, 4, 5}
	file := func(order binary.AppendByteOrder, magic uint32, linkType uint32, frames ...[]byte) []byte {
		b := order.AppendUint32(nil, magic)
		b = order.AppendUint16(b, 2)
		b = order.AppendUint16(b, 4)
		b = order.AppendUint32(b, 0)
		b = order.AppendUint32(b, 0)
		b = order.AppendUint32(b, 65535)
		b = order.AppendUint32(b, linkType)
		for _, f := range frames {
			b = order.AppendUint32(b, 1)
			b = order.AppendUint32(b, 2)
			b = order.AppendUint32(b, uint32(len(f)))
			b = order.AppendUint32(b, uint32(len(f)))
			b = append(b, f...)
		}
		return b
	}
	for _, tc := range []struct {
		name    string
		in      []byte
		want    [][]byte
		wantErr bool
	}{
		{"little endian", file(binary.LittleEndian, pcapMagicMicro, linkTypeEther, frame, frame), [][]byte{frame, frame}, false},
		{"big endian nanoseconds", file(binary.BigEndian, pcapMagicNano, linkTypeEther, frame), [][]byte{frame}, false},
		{"no frames", file(binary.LittleEndian, pcapMagicMicro, linkTypeEther), nil, false},
		{"pcapng", append([]byte{0x0a, 0x0d, 0x0d, 0x0a}, make([]byte, 20)...), nil, true},
		{"not Ethernet", file(binary.LittleEndian, pcapMagicMicro, 113, frame), nil, true},
		{"truncated frame", file(binary.LittleEndian, pcapMagicMicro, linkTypeEther, frame)[:pcapHeaderLen+pcapRecordLen+2], nil, true},
		{"short header", []byte{0xd4, 0xc3, 0xb2, 0xa1}, nil, true},
	} {
		got, err := readPcap(tc.in)
		if (err != nil) != tc.wantErr {
			t.Errorf("%s: error %v, want error %v", tc.name, err, tc.wantErr)
			continue
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("%s: frames (-want +got):\n%s", tc.name, diff)
		}
	}
}
