package advsock

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/carpd/carpd/internal/carp"
	"golang.org/x/net/ipv6"
)

// IPv6Conn is a raw IPv6 socket for protocol 112 in the network namespace
// that was current when ListenIPv6 ran. WriteAdvert, Join and Close
// are safe for concurrent use; ReadBatch and ReadPacket calls are serialised.
//
// Unlike an IPv4 raw socket, an IPv6 raw socket never sees the IP header:
// the kernel builds it on send from the socket options and the per-packet
// control message, and reports its fields on receive in a control message.
type IPv6Conn struct {
	pc  *ipv6.PacketConn
	tc  int
	snd *sender // sends, apart from the poller (see sender)

	r reader
}

// ListenIPv6 opens a raw IPv6 socket for protocol 112 on all interfaces
// (net.ListenPacket("ip6:112", "::")), asks for the incoming interface, the
// destination address and the hop limit with every datagram, turns
// multicast loopback off (a node must not hear its own advertisements), and
// sets the unicast and multicast hop limits to 255 and the traffic class to
// trafficClass (0xE0 in carpd by default). The kernel computes no
// checksum on this socket: the CARP checksum is part of the payload. It
// needs CAP_NET_RAW. Multicast advertisements are received only on
// interfaces joined with Join.
func ListenIPv6(trafficClass int) (*IPv6Conn, error) {
	if trafficClass < 0 || trafficClass > 0xff {
		return nil, fmt.Errorf("traffic class %d out of range 0..255", trafficClass)
	}
	c, err := net.ListenPacket(fmt.Sprintf("ip6:%d", carp.Protocol), "::")
	if err != nil {
		return nil, fmt.Errorf("open raw IPv6 socket for protocol %d: %w", carp.Protocol, err)
	}
	pc := ipv6.NewPacketConn(c)
	steps := []struct {
		what string
		do   func() error
	}{
		{"ask for interface, destination and hop limit", func() error {
			return pc.SetControlMessage(ipv6.FlagInterface|ipv6.FlagDst|ipv6.FlagHopLimit, true)
		}},
		{"turn multicast loopback off", func() error { return pc.SetMulticastLoopback(false) }},
		{"set multicast hop limit", func() error { return pc.SetMulticastHopLimit(carp.TTL) }},
		{"set unicast hop limit", func() error { return pc.SetHopLimit(carp.TTL) }},
		{"set traffic class", func() error { return pc.SetTrafficClass(trafficClass) }},
	}
	for _, s := range steps {
		if err := s.do(); err != nil {
			pc.Close()
			return nil, fmt.Errorf("%s: %w", s.what, err)
		}
	}
	b, err := newBatch(c, true)
	if err != nil {
		pc.Close()
		return nil, err
	}
	snd, err := newSender6(trafficClass)
	if err != nil {
		pc.Close()
		return nil, err
	}
	return &IPv6Conn{pc: pc, tc: trafficClass, snd: snd, r: reader{b: b}}, nil
}

// Join makes the socket receive advertisements sent to ff02::12 on the
// interface with index ifindex. Joining a group already joined is not an
// error.
func (c *IPv6Conn) Join(ifindex int) error {
	return join(c.pc, ifindex, carp.GroupIPv6)
}

// ReadBatch blocks until protocol-112 datagrams arrive and reads up to
// len(ps) of them (at most 64) into ps, returning how many: for each, the
// hop limit (in Packet.TTL), source and destination of its IPv6 header,
// without zone, the index of the interface it arrived on, and the payload
// (at most 2 KB of it). The payloads are the socket's buffers, valid until
// the next ReadBatch or ReadPacket. Datagrams without the hop limit or
// the interface are skipped. The datagrams are not checked in any other
// way. After Close, ReadBatch returns an error wrapping net.ErrClosed.
func (c *IPv6Conn) ReadBatch(ps []Packet) (int, error) {
	return c.r.readBatch(ps, (*batch).decode6)
}

// ReadPacket is ReadBatch of one datagram, whose payload is a copy.
func (c *IPv6Conn) ReadPacket() (Packet, error) {
	return readOne(c.ReadBatch)
}

// WriteAdvert sends payload in one IPv6 datagram from src to dst (GroupIPv6
// or a unicast peer) out of the interface with index ifindex, with hop
// limit 255, the traffic class given to ListenIPv6 and next header 112. The
// kernel builds the IPv6 header; src and ifindex reach it through the
// packet's control message (IPV6_PKTINFO), so that one socket serves every
// interface. src must be an address the interface holds, normally the one
// SourceIPv6To picks (never a virtual address); the zero Addr lets the kernel
// choose by RFC 6724, which may pick a virtual address. ifindex 0 leaves
// the choice of interface to the routing table, which for the link-scoped
// ff02::12 means any interface. Zones on src and dst are ignored.
func (c *IPv6Conn) WriteAdvert(ifindex int, src, dst netip.Addr, payload []byte) error {
	if err := checkAdvert6(c.tc, ifindex, src, dst); err != nil {
		return err
	}
	return c.snd.send6(ifindex, src, dst, payload)
}

// Pending reports whether a datagram waits in the socket, unread: a
// ReadBatch now would not block. It may be called while another goroutine
// waits in ReadBatch.
func (c *IPv6Conn) Pending() bool { return c.r.b.pending() }

// Close closes the socket; a blocked ReadBatch or ReadPacket returns.
func (c *IPv6Conn) Close() error {
	_ = c.snd.close()
	if err := c.pc.Close(); err != nil {
		return err
	}
	return nil
}
