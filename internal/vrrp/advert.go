// Package vrrp is the pure core of carpd's VRRPv3 mode (RFC 5798): the
// advertisement wire format and the per-VRID state machine.
//
// Nothing here opens a socket, reads a clock or starts a goroutine.
package vrrp

import "net/netip"

// Advert is a VRRPv3 advertisement (RFC 5798 section 5.2).
type Advert struct {
	VRID     uint8
	Priority uint8
	Interval uint16       // Max Advertise Interval in centiseconds, 1..4095 (12 bits)
	Addrs    []netip.Addr // IPvX addresses, all of the packet's family
}
