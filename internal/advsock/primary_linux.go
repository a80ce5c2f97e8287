package advsock

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// ErrNoPrimary is returned by PrimaryIPv4 when the interface has no usable
// IPv4 address of its own.
var ErrNoPrimary = errors.New("no primary IPv4 address")

// ErrNoSourceIPv6 is returned by SourceIPv6To when the interface has no usable
// IPv6 address of its own.
var ErrNoSourceIPv6 = errors.New("no usable IPv6 source address")

// PrimaryIPv4 returns the interface's own IPv4 address, the source of its
// advertisements: the first address, in the kernel's order, that is neither
// secondary nor deprecated and is not one of exclude (the virtual
// addresses, which are added and removed as the node becomes master or
// backup). It asks the kernel through netlink in the current network
// namespace and returns an error wrapping ErrNoPrimary when no address
// qualifies.
func PrimaryIPv4(ifindex int, exclude []netip.Addr) (netip.Addr, error) {
	name, addrs, err := listAddrs(ifindex, netlink.FAMILY_V4)
	if err != nil {
		return netip.Addr{}, err
	}
	a, err := pickPrimaryIPv4(addrs, exclude)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("%s: %w", name, err)
	}
	return a, nil
}

// SourceIPv6To returns the interface's own IPv6 address to send
// advertisements to dst from. For a link-scoped dst (ff02::12, a link-local
// peer) it is the link-local address (fe80::/10) if it has a
// usable one, else its first usable address of wider scope, in the
// kernel's order. Usable means not tentative (duplicate address detection
// still running: the kernel refuses it as a source), not failed duplicate
// address detection, not deprecated, and not one of exclude (the virtual
// addresses). It asks the kernel through netlink in the current network
// namespace and returns an error wrapping ErrNoSourceIPv6 when no address
// qualifies; right after the link comes up that is usually DAD, so the
// caller retries later. The address carries no zone.
//
// The link-local address is what FreeBSD and OpenBSD send from in practice:
// both take the first IPv6 address of the parent interface, FreeBSD
// skipping CARP addresses (carp_best_ifa), OpenBSD just the first
// (ifaof_ifpforaddr), and the link-local address, made when IPv6 starts on
// the interface, normally heads that list. It is also what RFC 6724 picks
// for the link-scoped ff02::12, is never a virtual address, and stays put
// while virtual and global addresses come and go. Linux lists global
// addresses before link-local ones, hence the explicit preference rather
// than "the first address". A link-local source does not cross a router:
// for a dst beyond the link (a global peer6 behind a router) it is an
// address of wider scope, which a router forwards, the link-local one
// failing that.
func SourceIPv6To(ifindex int, dst netip.Addr, exclude []netip.Addr) (netip.Addr, error) {
	return sourceIPv6(ifindex, exclude, dst.IsLinkLocalUnicast() || dst.IsLinkLocalMulticast())
}

func sourceIPv6(ifindex int, exclude []netip.Addr, linkLocal bool) (netip.Addr, error) {
	name, addrs, err := listAddrs(ifindex, netlink.FAMILY_V6)
	if err != nil {
		return netip.Addr{}, err
	}
	a, err := pickSourceIPv6(addrs, exclude, linkLocal)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("%s: %w", name, err)
	}
	return a, nil
}

// listAddrs returns the name of the interface with index ifindex and its
// addresses of the given family, in the kernel's order.
func listAddrs(ifindex, family int) (string, []netlink.Addr, error) {
	var h netlink.Handle // the zero Handle works in the current namespace
	link, err := h.LinkByIndex(ifindex)
	if err != nil {
		return "", nil, fmt.Errorf("ifindex %d: %w", ifindex, err)
	}
	name := link.Attrs().Name
	var addrs []netlink.Addr
	for range 3 { // a dump interrupted by a concurrent change is retried
		addrs, err = h.AddrList(link, family)
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			break
		}
	}
	if err != nil {
		return "", nil, fmt.Errorf("list addresses of %s: %w", name, err)
	}
	return name, addrs, nil
}

// pickPrimaryIPv4 is the choice made by PrimaryIPv4 among the addresses the
// kernel listed.
func pickPrimaryIPv4(addrs []netlink.Addr, exclude []netip.Addr) (netip.Addr, error) {
	for _, a := range addrs {
		if a.IPNet == nil || a.Flags&(unix.IFA_F_SECONDARY|unix.IFA_F_DEPRECATED) != 0 {
			continue
		}
		ip, ok := addrFromIP(a.IP)
		if !ok || excluded(exclude, ip) {
			continue
		}
		return ip, nil
	}
	return netip.Addr{}, ErrNoPrimary
}

// pickSourceIPv6 is the choice made by SourceIPv6To among the addresses the
// kernel listed.
func pickSourceIPv6(addrs []netlink.Addr, exclude []netip.Addr, linkLocal bool) (netip.Addr, error) {
	const unusable = unix.IFA_F_TENTATIVE | unix.IFA_F_DADFAILED | unix.IFA_F_DEPRECATED
	var wider, ll netip.Addr
	for _, a := range addrs {
		if a.IPNet == nil || a.Flags&unusable != 0 {
			continue
		}
		ip, ok := addr6FromIP(a.IP.To16())
		if !ok || ip.IsLoopback() || ip.IsMulticast() || ip.IsUnspecified() || excluded(exclude, ip) {
			continue
		}
		switch {
		case ip.IsLinkLocalUnicast() && !ll.IsValid():
			ll = ip
		case !ip.IsLinkLocalUnicast() && !wider.IsValid():
			wider = ip
		}
	}
	if !linkLocal {
		ll, wider = wider, ll
	}
	switch {
	case ll.IsValid():
		return ll, nil
	case wider.IsValid():
		return wider, nil
	}
	return netip.Addr{}, ErrNoSourceIPv6
}

// excluded reports whether ip is one of exclude, ignoring zones and the
// IPv4-mapped form.
func excluded(exclude []netip.Addr, ip netip.Addr) bool {
	return slices.ContainsFunc(exclude, func(x netip.Addr) bool { return x.Unmap().WithZone("") == ip })
}
