package mover

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"time"
)

// Addresses adds and removes the virtual addresses of interfaces,
// declaratively: vip.Manager.
type Addresses interface {
	// Set makes ifname hold exactly the addresses of want among managed
	// and returns what it changed as ip(8) command lines.
	Set(ifname string, managed, want []netip.Prefix) ([]string, error)
	// Refresh renews the lifetime of want on ifname, putting back any
	// that went missing.
	Refresh(ifname string, want []netip.Prefix) error
	// List returns the addresses ifname holds.
	List(ifname string) ([]netip.Prefix, error)
}

// Announcer tells the link that addresses moved here: announce.Announcer.
type Announcer interface {
	Announce(ifindex int, hw net.HardwareAddr, addrs []netip.Addr) error
}

// LinkFunc returns the index and hardware address of the named interface.
type LinkFunc func(name string) (index int, hw net.HardwareAddr, err error)

// SystemLink is the LinkFunc of the current network namespace.
func SystemLink(name string) (int, net.HardwareAddr, error) {
	ifc, err := net.InterfaceByName(name)
	if err != nil {
		return 0, nil, err
	}
	return ifc.Index, ifc.HardwareAddr, nil
}

// LocalActionTime bounds how long a local action (a netlink request, a
// gratuitous ARP) takes: what Acquire asks of the deadline before one.
const LocalActionTime = 50 * time.Millisecond

// L2 is the l2 mover, carpd's classic way: the addresses on the interface,
// then gratuitous ARP (IPv4) and unsolicited neighbour advertisements
// (IPv6) from the interface's MAC. It adapts internal/vip and
// internal/announce; their lifetimes (the dead-man switch) are the
// Addresses' options. The repeated announcements that follow a takeover
// are the caller's schedule: Announce sends one round.
type L2 struct {
	Iface     string
	Prefixes  []netip.Prefix
	Addresses Addresses
	Announcer Announcer
	// Link looks the interface up at each announcement (SystemLink when
	// nil): its index and MAC may change when it is recreated.
	Link LinkFunc
	// Now is the clock of the deadline checks (time.Now when nil).
	Now func() time.Time
	// Log gets the address changes (slog.Default when nil).
	Log *slog.Logger

	held bool
}

var _ Mover = (*L2)(nil)

func (m *L2) now() time.Time {
	if m.Now != nil {
		return m.Now()
	}
	return time.Now()
}

func (m *L2) log() *slog.Logger {
	if m.Log != nil {
		return m.Log
	}
	return slog.Default()
}

// Acquire adds the addresses and announces them the first time; while
// holding, it renews their lifetimes and puts back any that went missing.
func (m *L2) Acquire(_ context.Context, t Tenure) error {
	if err := Fits(m.now(), t, LocalActionTime); err != nil {
		return err
	}
	if m.held {
		return m.Addresses.Refresh(m.Iface, m.Prefixes)
	}
	changes, err := m.Addresses.Set(m.Iface, m.Prefixes, m.Prefixes)
	m.logChanges(changes)
	if err != nil {
		return err
	}
	m.held = true
	if err := Fits(m.now(), t, LocalActionTime); err != nil {
		return err
	}
	return m.Announce()
}

// Announce sends one round of gratuitous ARP and neighbour advertisements
// for the addresses.
func (m *L2) Announce() error {
	link := m.Link
	if link == nil {
		link = SystemLink
	}
	idx, hw, err := link(m.Iface)
	if err != nil {
		return fmt.Errorf("announcing on %s: %w", m.Iface, err)
	}
	addrs := make([]netip.Addr, len(m.Prefixes))
	for i, p := range m.Prefixes {
		addrs[i] = p.Addr()
	}
	return m.Announcer.Announce(idx, hw, addrs)
}

// Release removes the addresses.
func (m *L2) Release(context.Context) error {
	changes, err := m.Addresses.Set(m.Iface, m.Prefixes, nil)
	m.logChanges(changes)
	if err == nil {
		m.held = false
	}
	return err
}

// Holder reports which of the addresses the interface holds.
func (m *L2) Holder(context.Context) (Holding, error) {
	have, err := m.Addresses.List(m.Iface)
	if err != nil {
		return Holding{}, err
	}
	return Compare(m.Prefixes, have), nil
}

// Compare returns the Holding of the addresses want when have are held.
func Compare(want, have []netip.Prefix) Holding {
	var h Holding
	for _, p := range want {
		if !slices.Contains(have, p) {
			h.Missing = append(h.Missing, p)
		}
	}
	h.Here = len(h.Missing) == 0
	return h
}

// Settle is zero: the addresses are in place when Acquire returns.
func (m *L2) Settle() time.Duration { return 0 }

// Close does nothing: the Addresses and Announcer are the caller's.
func (m *L2) Close() error { return nil }

func (m *L2) logChanges(changes []string) {
	for _, c := range changes {
		m.log().Info("mover l2: addresses changed", "dev", m.Iface, "cmd", c)
	}
}
