package advsock

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/carpd/carpd/internal/carp"
	"golang.org/x/net/ipv4"
)

// IPv4Conn is a raw IPv4 socket for protocol 112 in the network namespace
// that was current when ListenIPv4 ran. WriteAdvert, Join and Close
// are safe for concurrent use; ReadBatch and ReadPacket calls are serialised.
type IPv4Conn struct {
	raw *ipv4.RawConn
	tos int
	snd *sender // sends, apart from the poller (see sender)

	r reader
}

// ListenIPv4 opens a raw IPv4 socket for protocol 112 on all interfaces
// (net.ListenPacket("ip4:112", "0.0.0.0")) with IP_HDRINCL, asks for the
// incoming interface with every datagram, turns multicast loopback off (a
// node must not hear its own advertisements) and sets the multicast TTL to
// 255. Advertisements written through it carry the TOS byte tos
// (0xE0 in carpd by default). It needs CAP_NET_RAW. Multicast advertisements are
// received only on interfaces joined with Join.
func ListenIPv4(tos int) (*IPv4Conn, error) {
	if tos < 0 || tos > 0xff {
		return nil, fmt.Errorf("TOS %d out of range 0..255", tos)
	}
	pc, err := net.ListenPacket(fmt.Sprintf("ip4:%d", carp.Protocol), "0.0.0.0")
	if err != nil {
		return nil, fmt.Errorf("open raw IPv4 socket for protocol %d: %w", carp.Protocol, err)
	}
	raw, err := ipv4.NewRawConn(pc)
	if err != nil {
		pc.Close()
		return nil, fmt.Errorf("set IP_HDRINCL: %w", err)
	}
	b, err := newBatch(pc, false)
	if err != nil {
		raw.Close()
		return nil, err
	}
	snd, err := newSender4()
	if err != nil {
		raw.Close()
		return nil, err
	}
	c := &IPv4Conn{raw: raw, tos: tos, snd: snd, r: reader{b: b}}
	steps := []struct {
		what string
		do   func() error
	}{
		{"ask for the incoming interface", func() error { return raw.SetControlMessage(ipv4.FlagInterface, true) }},
		{"turn multicast loopback off", func() error { return raw.SetMulticastLoopback(false) }},
		{"set multicast TTL", func() error { return raw.SetMulticastTTL(carp.TTL) }},
		{"set TOS", func() error { return raw.SetTOS(tos) }},
	}
	for _, s := range steps {
		if err := s.do(); err != nil {
			raw.Close()
			snd.close()
			return nil, fmt.Errorf("%s: %w", s.what, err)
		}
	}
	return c, nil
}

// Join makes the socket receive advertisements sent to 224.0.0.18 on the
// interface with index ifindex. Joining a group already joined is not an
// error.
func (c *IPv4Conn) Join(ifindex int) error {
	return join(c.raw, ifindex, carp.GroupIPv4)
}

// ReadBatch blocks until protocol-112 datagrams arrive and reads up to
// len(ps) of them (at most 64) into ps, returning how many: for each, the
// TTL, source and destination of its IPv4 header, the index of the
// interface it arrived on, and the payload (at most 2 KB of it). The
// payloads are the socket's buffers, valid until the next ReadBatch or
// ReadPacket. The datagrams are not checked in any way. After Close,
// ReadBatch returns an error wrapping net.ErrClosed.
func (c *IPv4Conn) ReadBatch(ps []Packet) (int, error) {
	return c.r.readBatch(ps, (*batch).decode4)
}

// ReadPacket is ReadBatch of one datagram, whose payload is a copy.
func (c *IPv4Conn) ReadPacket() (Packet, error) {
	return readOne(c.ReadBatch)
}

// WriteAdvert sends payload in one IPv4 datagram whose header it builds:
// source src (the interface's own primary address, see PrimaryIPv4, never
// a virtual address), destination dst (GroupIPv4 or a unicast peer), TTL
// 255, the TOS given to ListenIPv4, DF set, no options, protocol 112. The
// datagram leaves through the interface with index ifindex (chosen per
// packet, so one socket serves every interface); ifindex 0 leaves the
// choice to the routing table.
func (c *IPv4Conn) WriteAdvert(ifindex int, src, dst netip.Addr, payload []byte) error {
	return c.snd.send4(c.tos, ifindex, src, dst, payload)
}

// Pending reports whether a datagram waits in the socket, unread: a
// ReadBatch now would not block. It may be called while another goroutine
// waits in ReadBatch.
func (c *IPv4Conn) Pending() bool { return c.r.b.pending() }

// Close closes the socket; a blocked ReadBatch or ReadPacket returns.
func (c *IPv4Conn) Close() error {
	_ = c.snd.close()
	if err := c.raw.Close(); err != nil {
		return err
	}
	return nil
}
