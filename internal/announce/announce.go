// Package announce tells the link that a virtual address has moved to this
// node: gratuitous ARP for IPv4 (unsolicited neighbour advertisements for
// IPv6 will sit beside it).
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
)

// zeroHW is the target hardware address of a gratuitous ARP request.
var zeroHW = net.HardwareAddr{0, 0, 0, 0, 0, 0}

// errClosed is returned by GratuitousARP after Close.
var errClosed = errors.New("announcer closed")

// arpWriter is what an Announcer needs of an *arp.Client.
type arpWriter interface {
	WriteTo(p *arp.Packet, addr net.HardwareAddr) error
	Close() error
}

// Announcer sends gratuitous ARP. It keeps one ARP client per interface,
// opened on first use in the network namespace current at that moment, and
// is safe for concurrent use.
type Announcer struct {
	dial func(ifindex int) (arpWriter, error)

	mu      sync.Mutex
	clients map[int]arpWriter
	closed  bool
}

// newAnnouncer returns an Announcer that opens its per-interface clients
// with dial.
func newAnnouncer(dial func(ifindex int) (arpWriter, error)) *Announcer {
	return &Announcer{dial: dial, clients: make(map[int]arpWriter)}
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
	if len(hw) != 6 {
		return fmt.Errorf("announce: ifindex %d: hardware address %q is not an Ethernet address", ifindex, hw)
	}
	var v4 []netip.Addr
	for _, ip := range addrs {
		switch {
		case !ip.IsValid():
			return fmt.Errorf("announce: ifindex %d: invalid address in %v", ifindex, addrs)
		case ip.Unmap().Is4():
			v4 = append(v4, ip.Unmap())
		}
	}
	if len(v4) == 0 {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return fmt.Errorf("announce: ifindex %d: %w", ifindex, errClosed)
	}
	c, ok := a.clients[ifindex]
	if !ok {
		var err error
		if c, err = a.dial(ifindex); err != nil {
			return fmt.Errorf("announce: open ARP client on ifindex %d: %w", ifindex, err)
		}
		a.clients[ifindex] = c
	}
	for _, ip := range v4 {
		for _, p := range garp(hw, ip) {
			if err := c.WriteTo(p, ethernet.Broadcast); err != nil {
				delete(a.clients, ifindex)
				c.Close()
				return fmt.Errorf("announce: gratuitous ARP %s for %v on ifindex %d: %w", p.Operation, ip, ifindex, err)
			}
		}
	}
	return nil
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

// Close closes every ARP client. GratuitousARP fails after Close.
func (a *Announcer) Close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.closed = true
	var errs []error
	for ifindex, c := range a.clients {
		if err := c.Close(); err != nil {
			errs = append(errs, fmt.Errorf("announce: close ARP client on ifindex %d: %w", ifindex, err))
		}
		delete(a.clients, ifindex)
	}
	return errors.Join(errs...)
}
