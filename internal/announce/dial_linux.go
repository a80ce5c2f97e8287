package announce

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ndp"
	"github.com/mdlayher/packet"
	"golang.org/x/net/bpf"
	"golang.org/x/net/ipv6"
)

// etherTypeARP is the EtherType of ARP.
const etherTypeARP = 0x0806

// New returns an Announcer that sends ARP through arp.Client values bound
// to AF_PACKET sockets, and NDP through ICMPv6 raw sockets.
func New() *Announcer {
	return newAnnouncer(dialARP, dialNDP)
}

// dialARP opens an ARP client on the interface with index ifindex. Its
// socket only sends: a filter attached before bind drops every received
// frame, so that unread ARP traffic does not pile up in its buffer.
func dialARP(ifindex int) (arpWriter, error) {
	ifi, err := net.InterfaceByIndex(ifindex)
	if err != nil {
		return nil, err
	}
	dropAll, err := bpf.Assemble([]bpf.Instruction{bpf.RetConstant{Val: 0}})
	if err != nil {
		return nil, fmt.Errorf("assemble BPF filter: %w", err)
	}
	p, err := packet.Listen(ifi, packet.Raw, etherTypeARP, &packet.Config{Filter: dropAll})
	if err != nil {
		return nil, err
	}
	c, err := arp.New(ifi, p)
	if err != nil {
		p.Close()
		return nil, fmt.Errorf("%s: %w", ifi.Name, err)
	}
	return c, nil
}

// ndpConn sends NDP messages out of one interface through an ICMPv6 raw
// socket. The kernel computes the ICMPv6 checksum, which covers the IPv6
// pseudo-header, and chooses the source address.
//
// It does not use ndp.Conn, which names the interface by a zone on every
// address it binds and sends to: Go resolves zone names through a
// process-wide cache that ignores network namespaces and is refreshed at
// most once a minute, so with two namespaces holding an eth1 (as in the
// lab), or an interface recreated under its old name, the name resolves to
// the wrong index and bind or send fails. The interface index travels in
// the control message instead.
type ndpConn struct {
	pc      *ipv6.PacketConn
	ifindex int
}

// dialNDP opens an NDP connection for the interface with index ifindex: an
// ICMPv6 raw socket with hop limit 255 (RFC 4861 requires it, and
// receivers drop anything else), multicast loopback off, and an ICMPv6
// filter that blocks every received message, so that nothing piles up in
// its buffer.
func dialNDP(ifindex int) (ndpWriter, error) {
	if _, err := net.InterfaceByIndex(ifindex); err != nil {
		return nil, err
	}
	c, err := net.ListenPacket("ip6:ipv6-icmp", "::")
	if err != nil {
		return nil, err
	}
	pc := ipv6.NewPacketConn(c)
	var blockAll ipv6.ICMPFilter
	blockAll.SetAll(true)
	steps := []struct {
		what string
		do   func() error
	}{
		{"block all received ICMPv6", func() error { return pc.SetICMPFilter(&blockAll) }},
		{"turn multicast loopback off", func() error { return pc.SetMulticastLoopback(false) }},
		{"set multicast hop limit", func() error { return pc.SetMulticastHopLimit(ndp.HopLimit) }},
		{"set unicast hop limit", func() error { return pc.SetHopLimit(ndp.HopLimit) }},
	}
	for _, s := range steps {
		if err := s.do(); err != nil {
			pc.Close()
			return nil, fmt.Errorf("%s: %w", s.what, err)
		}
	}
	return &ndpConn{pc: pc, ifindex: ifindex}, nil
}

// WriteTo sends m to dst out of the connection's interface.
func (c *ndpConn) WriteTo(m ndp.Message, dst netip.Addr) error {
	b, err := ndp.MarshalMessage(m)
	if err != nil {
		return err
	}
	cm := &ipv6.ControlMessage{HopLimit: ndp.HopLimit, IfIndex: c.ifindex}
	_, err = c.pc.WriteTo(b, cm, &net.IPAddr{IP: dst.AsSlice()})
	return err
}

// Close closes the socket.
func (c *ndpConn) Close() error { return c.pc.Close() }
