// Package announce tells the link that a virtual address has moved to this
// node: gratuitous ARP for IPv4, unsolicited neighbour advertisements for
// IPv6.
//
// A new master sends these at once so that hosts and switches on the
// segment repoint their neighbour entries and forwarding tables at it,
// instead of waiting for their entries to age out.
package announce

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
	"github.com/mdlayher/ndp"
)

// zeroHW is the target hardware address of a gratuitous ARP request.
var zeroHW = net.HardwareAddr{0, 0, 0, 0, 0, 0}

// allNodes is the link-local all-nodes multicast group, the destination of
// unsolicited neighbour advertisements (RFC 4861 section 7.2.6).
var allNodes = netip.MustParseAddr("ff02::1")

// errClosed is returned by the Announcer's methods after Close.
var errClosed = errors.New("announcer closed")

// arpWriter is what an Announcer needs of an *arp.Client.
type arpWriter interface {
	WriteTo(p *arp.Packet, addr net.HardwareAddr) error
	Close() error
}

// ndpWriter sends NDP messages out of one interface, with hop limit 255.
type ndpWriter interface {
	WriteTo(m ndp.Message, dst netip.Addr) error
	Close() error
}

// Announcer sends gratuitous ARP and unsolicited neighbour advertisements.
// It keeps one ARP client and one NDP connection per interface, each opened
// on first use in the network namespace current at that moment, and is safe
// for concurrent use.
type Announcer struct {
	mu     sync.Mutex
	arp    conns[arpWriter]
	ndp    conns[ndpWriter]
	closed bool
}

// newAnnouncer returns an Announcer that opens its per-interface ARP
// clients with dialARP and its NDP connections with dialNDP.
func newAnnouncer(dialARP func(ifindex int) (arpWriter, error), dialNDP func(ifindex int) (ndpWriter, error)) *Announcer {
	return &Announcer{
		arp: conns[arpWriter]{what: "ARP client", dial: dialARP},
		ndp: conns[ndpWriter]{what: "NDP connection", dial: dialNDP},
	}
}

// Announce announces that addrs are at hw on the interface with index
// ifindex: GratuitousARP for the IPv4 addresses, UnsolicitedNA for the
// IPv6 ones. It does both even when the first fails, and returns their
// errors joined.
func (a *Announcer) Announce(ifindex int, hw net.HardwareAddr, addrs []netip.Addr) error {
	return errors.Join(a.GratuitousARP(ifindex, hw, addrs), a.UnsolicitedNA(ifindex, hw, addrs))
}

// GratuitousARP sends, for each IPv4 address of addrs in order, one ARP
// request (sender = target = the address, target hardware address
// 00:00:00:00:00:00) and one ARP reply (sender = target = the address,
// target hardware address ff:ff:ff:ff:ff:ff), both from hardware address hw
// (Ethernet source and ARP sender) to the Ethernet broadcast address, out
// of the interface with index ifindex. Some devices honour only the request
// and some only the reply, hence both. IPv6 addresses in addrs are skipped.
//
// The first call for an interface opens its ARP client, which needs
// CAP_NET_RAW and an IPv4 address on the interface (the virtual address
// counts). A write error closes the client and returns; the next call opens
// a new one.
func (a *Announcer) GratuitousARP(ifindex int, hw net.HardwareAddr, addrs []netip.Addr) error {
	v4, err := split(ifindex, hw, addrs, true)
	if err != nil || len(v4) == 0 {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return fmt.Errorf("ifindex %d: %w", ifindex, errClosed)
	}
	c, err := a.arp.get(ifindex)
	if err != nil {
		return err
	}
	for _, ip := range v4 {
		for _, p := range garp(hw, ip) {
			if err := c.WriteTo(p, ethernet.Broadcast); err != nil {
				a.arp.drop(ifindex)
				return fmt.Errorf("gratuitous ARP %s for %v on ifindex %d: %w", p.Operation, ip, ifindex, err)
			}
		}
	}
	return nil
}

// UnsolicitedNA sends, for each IPv6 address of addrs in order, one
// unsolicited neighbour advertisement (RFC 4861 section 7.2.6) to the
// all-nodes group ff02::1 out of the interface with index ifindex: target
// the address, Override set, Solicited and Router clear, and a Target
// Link-Layer Address option carrying hw. Override makes neighbours replace
// the link-layer address of an entry they already have; hosts without an
// entry ignore the advertisement, as RFC 4861 says. The IPv6 header has hop
// limit 255 and, as the kernel chooses the source for the link-scoped
// destination (RFC 6724), the interface's link-local address. IPv4
// addresses in addrs are skipped.
//
// The first call for an interface opens its NDP connection, an ICMPv6 raw
// socket that needs CAP_NET_RAW and receives nothing. A write error closes
// the connection and returns; the next call opens a new one.
func (a *Announcer) UnsolicitedNA(ifindex int, hw net.HardwareAddr, addrs []netip.Addr) error {
	v6, err := split(ifindex, hw, addrs, false)
	if err != nil || len(v6) == 0 {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return fmt.Errorf("ifindex %d: %w", ifindex, errClosed)
	}
	c, err := a.ndp.get(ifindex)
	if err != nil {
		return err
	}
	for _, ip := range v6 {
		if err := c.WriteTo(unsolicitedNA(hw, ip), allNodes); err != nil {
			a.ndp.drop(ifindex)
			return fmt.Errorf("neighbour advertisement for %v on ifindex %d: %w", ip, ifindex, err)
		}
	}
	return nil
}

// split checks hw and addrs and returns the addresses of one family, in
// order: IPv4 (IPv4-mapped IPv6 addresses unmapped) when v4, else IPv6,
// without zone.
func split(ifindex int, hw net.HardwareAddr, addrs []netip.Addr, v4 bool) ([]netip.Addr, error) {
	if len(hw) != 6 {
		return nil, fmt.Errorf("ifindex %d: hardware address %q is not an Ethernet address", ifindex, hw)
	}
	var out []netip.Addr
	for _, ip := range addrs {
		ip = ip.Unmap()
		switch {
		case !ip.IsValid():
			return nil, fmt.Errorf("ifindex %d: invalid address in %v", ifindex, addrs)
		case ip.Is4() == v4:
			out = append(out, ip.WithZone(""))
		}
	}
	return out, nil
}

// garp returns the gratuitous ARP request and reply announcing that ip is
// at hw.
func garp(hw net.HardwareAddr, ip netip.Addr) []*arp.Packet {
	hw = bytes.Clone(hw)
	return []*arp.Packet{
		{
			HardwareType: 1, ProtocolType: uint16(ethernet.EtherTypeIPv4),
			HardwareAddrLength: 6, IPLength: 4,
			Operation:          arp.OperationRequest,
			SenderHardwareAddr: hw, SenderIP: ip,
			TargetHardwareAddr: zeroHW, TargetIP: ip,
		},
		{
			HardwareType: 1, ProtocolType: uint16(ethernet.EtherTypeIPv4),
			HardwareAddrLength: 6, IPLength: 4,
			Operation:          arp.OperationReply,
			SenderHardwareAddr: hw, SenderIP: ip,
			TargetHardwareAddr: ethernet.Broadcast, TargetIP: ip,
		},
	}
}

// unsolicitedNA returns the neighbour advertisement announcing that ip is
// at hw.
func unsolicitedNA(hw net.HardwareAddr, ip netip.Addr) *ndp.NeighborAdvertisement {
	return &ndp.NeighborAdvertisement{
		Override:      true,
		TargetAddress: ip,
		Options: []ndp.Option{
			&ndp.LinkLayerAddress{Direction: ndp.Target, Addr: bytes.Clone(hw)},
		},
	}
}

// Close closes every ARP client and NDP connection. The Announcer's
// methods fail after Close.
func (a *Announcer) Close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.closed = true
	return errors.Join(a.arp.closeAll(), a.ndp.closeAll())
}

// conns is a cache of per-interface connections, guarded by the
// Announcer's mutex.
type conns[C interface{ Close() error }] struct {
	what string // for errors: "ARP client"
	dial func(ifindex int) (C, error)
	m    map[int]C
}

// get returns the connection for ifindex, opening it if there is none.
func (cs *conns[C]) get(ifindex int) (C, error) {
	if c, ok := cs.m[ifindex]; ok {
		return c, nil
	}
	c, err := cs.dial(ifindex)
	if err != nil {
		var zero C
		return zero, fmt.Errorf("open %s on ifindex %d: %w", cs.what, ifindex, err)
	}
	if cs.m == nil {
		cs.m = make(map[int]C)
	}
	cs.m[ifindex] = c
	return c, nil
}

// drop closes and forgets the connection for ifindex, after a write error.
func (cs *conns[C]) drop(ifindex int) {
	if c, ok := cs.m[ifindex]; ok {
		delete(cs.m, ifindex)
		c.Close()
	}
}

// closeAll closes and forgets every connection.
func (cs *conns[C]) closeAll() error {
	var errs []error
	for ifindex, c := range cs.m {
		if err := c.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close %s on ifindex %d: %w", cs.what, ifindex, err))
		}
		delete(cs.m, ifindex)
	}
	return errors.Join(errs...)
}
