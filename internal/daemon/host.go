package daemon

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"time"

	"github.com/carpd/carpd/internal/electorate"
)

// This file declares what the daemon needs of the host it runs on: small
// interfaces, each with its contract in its doc comment, and the plain
// types they speak. internal/host implements them on Linux; the tests
// implement them in memory.

// Packet is one received protocol-112 datagram.
type Packet = electorate.Packet

// Link is what the daemon needs to know of an interface.
type Link struct {
	Index int
	Name  string
	MAC   net.HardwareAddr
	// Up is true when the interface is administratively up and running
	// (has carrier): carp(4)'s "interface up and running".
	Up bool
}

// AddrChange is an address added to or removed from an interface.
type AddrChange struct {
	LinkIndex int
	Prefix    netip.Prefix
	Removed   bool
}

// Change is one change a Monitor reports: a link's new state (IsLink) or
// an address added or removed.
type Change struct {
	IsLink bool
	Link   Link
	// Deleted says that the link was deleted; Link is its last state.
	Deleted bool
	Addr    AddrChange
}

// Conn is the protocol-112 socket of one address family. One Conn serves
// every interface.
type Conn interface {
	// ReadBatch blocks until datagrams arrive and reads up to len(ps)
	// of them into ps (len(ps) > 0), returning how many (at least one).
	// After Close it returns an error; any other error means the socket
	// is broken.
	ReadBatch(ps []Packet) (int, error)
	// WriteAdvert sends payload from src to dst out of the interface with
	// index ifindex, with the TTL, TOS and flags adverts need.
	WriteAdvert(ifindex int, src, dst netip.Addr, payload []byte) error
	// Join joins the family's CARP multicast group on the interface.
	Join(ifindex int) error
	// Close closes the socket; a blocked ReadBatch returns.
	Close() error
}

// Pender is what a Conn may also do: tell whether a datagram waits in its
// socket, unread (see catchingUp). It may be called while a reader waits
// in ReadBatch.
type Pender interface {
	Pending() bool
}

// Addresses holds the virtual addresses on interfaces, declaratively.
type Addresses interface {
	// Set makes the interface hold exactly the addresses of want among
	// managed, leaving every other address alone, and returns what it
	// changed as ip(8) command lines. Calling it again changes nothing.
	Set(ifname string, managed, want []netip.Prefix) ([]string, error)
	// Refresh renews the lifetime of addresses the interface holds
	// (putting back any that went missing), without listing them first.
	Refresh(ifname string, want []netip.Prefix) error
	// SetLifetime sets the valid lifetime given to the addresses from
	// now on (AddressLifetime).
	SetLifetime(valid time.Duration)
}

// Announcer tells the link that addresses moved to this host.
type Announcer interface {
	// Announce sends gratuitous ARP for the IPv4 addresses and unsolicited
	// neighbour advertisements for the IPv6 ones, from hw, out of the
	// interface with index ifindex.
	Announce(ifindex int, hw net.HardwareAddr, addrs []netip.Addr) error
}

// ErrNoInterface is wrapped by the error of Links.Link when no interface
// has the name.
var ErrNoInterface = errors.New("no such interface")

// Links reads the state of interfaces.
type Links interface {
	// Link returns the current state of the named interface; when there
	// is none, the error wraps ErrNoInterface.
	Link(name string) (Link, error)
	// Source returns the address adverts to dst leave from out of the
	// interface: its own address of dst's family (for IPv6, of dst's
	// scope), never one of exclude (the virtual addresses).
	Source(ifindex int, dst netip.Addr, exclude []netip.Addr) (netip.Addr, error)
}

// Monitor reports changes of links and addresses.
type Monitor interface {
	// Subscribe subscribes to the changes of every link and address of
	// the host and, once it returns, calls report with each change, in
	// order, from one goroutine. The subscription ends when ctx is done
	// (ended gives nil) or when it fails (ended gives the cause): changes
	// may then have been missed, and the caller subscribes again and reads
	// the state afresh. report is not called once ended has given its
	// value; it may block until ctx is done.
	Subscribe(ctx context.Context, report func(Change)) (ended <-chan error, err error)
}

// VirtualMACs manages the virtual MAC interfaces of vhids in virtual MAC
// mode.
type VirtualMACs interface {
	// Ensure creates (or reuses) the virtual MAC interface of vhid on the
	// parent interface, up, and returns it.
	Ensure(parent string, vhid uint8) (Link, error)
	// Remove deletes the named virtual MAC interface.
	Remove(name string) error
}

// Host is the set of adapters the daemon runs on.
type Host struct {
	// Conns are the protocol sockets by carp.Family; the one of a family
	// that no vhid uses may be nil.
	Conns     [2]Conn
	Addresses Addresses
	Announcer Announcer
	Links     Links
	Monitor   Monitor
	// VirtualMACs may be nil when no vhid runs in virtual MAC mode.
	VirtualMACs VirtualMACs
	// Routes is the bgp mover's speaker; nil when no vhid has mover =
	// "bgp".
	Routes Routes
	// Hooks may be nil: no scripts.
	Hooks Hooks
	// Prioritize, when not nil, is called once as the event loop starts
	// so that the host can raise carpd's scheduling priority: the loop
	// sends the adverts, and a busy machine (or a flood that keeps the
	// readers busy) must not make them late. Its error is logged, not
	// fatal.
	Prioritize func() error
}
