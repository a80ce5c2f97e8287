package craft

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Link types of the pcap files ReadPcap understands (tcpdump's DLT_ and
// LINKTYPE_ values).
const (
	linkEthernet = 1
	linkRaw      = 101
	linkSLL      = 113 // Linux cooked capture (tcpdump -i any)
	linkSLL2     = 276
)

// ReadPcap returns the protocol-112 packets (IPv4 or IPv6, without
// extension headers) of a classic pcap file, as tcpdump -w writes it:
// microsecond or nanosecond timestamps, either byte order, link type
// Ethernet (with at most one VLAN tag), raw IP or Linux cooked capture.
// Other packets of the file are skipped.
func ReadPcap(r io.Reader) ([]Captured, error) {
	var gh [24]byte
	if _, err := io.ReadFull(r, gh[:]); err != nil {
		return nil, fmt.Errorf("pcap file header: %w", err)
	}
	var bo binary.ByteOrder
	switch magic := binary.LittleEndian.Uint32(gh[0:4]); magic {
	case 0xa1b2c3d4, 0xa1b23c4d:
		bo = binary.LittleEndian
	case 0xd4c3b2a1, 0x4d3cb2a1:
		bo = binary.BigEndian
	default:
		return nil, fmt.Errorf("not a pcap file (magic %#08x; pcapng is not read)", magic)
	}
	link := bo.Uint32(gh[20:24]) & 0x0fffffff
	switch link {
	case linkEthernet, linkRaw, linkSLL, linkSLL2:
	default:
		return nil, fmt.Errorf("pcap link type %d not read (Ethernet, raw IP and Linux cooked are)", link)
	}
	var out []Captured
	for n := 1; ; n++ {
		var rh [16]byte
		if _, err := io.ReadFull(r, rh[:]); err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return out, fmt.Errorf("pcap record %d header: %w", n, err)
		}
		incl := bo.Uint32(rh[8:12])
		if incl > 1<<18 {
			return out, fmt.Errorf("pcap record %d of %d bytes", n, incl)
		}
		frame := make([]byte, incl)
		if _, err := io.ReadFull(r, frame); err != nil {
			return out, fmt.Errorf("pcap record %d: %w", n, err)
		}
		ip, ok := ipOfFrame(link, frame)
		if !ok {
			continue
		}
		c, err := ParseIP(ip)
		if err != nil {
			continue
		}
		out = append(out, c)
	}
}

// ipOfFrame returns the IPv4 or IPv6 packet in a captured frame.
func ipOfFrame(link uint32, f []byte) ([]byte, bool) {
	var etype uint16
	switch link {
	case linkRaw:
		return f, true
	case linkEthernet:
		if len(f) < 14 {
			return nil, false
		}
		etype, f = binary.BigEndian.Uint16(f[12:14]), f[14:]
		if etype == 0x8100 && len(f) >= 4 {
			etype, f = binary.BigEndian.Uint16(f[2:4]), f[4:]
		}
	case linkSLL:
		if len(f) < 16 {
			return nil, false
		}
		etype, f = binary.BigEndian.Uint16(f[14:16]), f[16:]
	case linkSLL2:
		if len(f) < 20 {
			return nil, false
		}
		etype, f = binary.BigEndian.Uint16(f[0:2]), f[20:]
	}
	return f, etype == 0x0800 || etype == 0x86dd
}
