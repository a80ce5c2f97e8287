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

// PrimaryIPv4 returns the interface's own IPv4 address, the source of its
// advertisements: the first address, in the kernel's order, that is neither
// secondary nor deprecated and is not one of exclude (the virtual
// addresses, which are added and removed as the node becomes master or
// backup). It asks the kernel through netlink in the current network
// namespace and returns an error wrapping ErrNoPrimary when no address
// qualifies.
func PrimaryIPv4(ifindex int, exclude []netip.Addr) (netip.Addr, error) {
	var h netlink.Handle // the zero Handle works in the current namespace
	link, err := h.LinkByIndex(ifindex)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("advsock: ifindex %d: %w", ifindex, err)
	}
	var addrs []netlink.Addr
	for range 3 { // a dump interrupted by a concurrent change is retried
		addrs, err = h.AddrList(link, netlink.FAMILY_V4)
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			break
		}
	}
	if err != nil {
		return netip.Addr{}, fmt.Errorf("advsock: list addresses of %s: %w", link.Attrs().Name, err)
	}
	a, err := pickPrimaryIPv4(addrs, exclude)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("advsock: %s: %w", link.Attrs().Name, err)
	}
	return a, nil
}

// pickPrimaryIPv4 is the choice made by PrimaryIPv4 among the addresses the
// kernel listed.
func pickPrimaryIPv4(addrs []netlink.Addr, exclude []netip.Addr) (netip.Addr, error) {
	for _, a := range addrs {
		if a.IPNet == nil || a.Flags&(unix.IFA_F_SECONDARY|unix.IFA_F_DEPRECATED) != 0 {
			continue
		}
		ip, ok := addrFromIP(a.IP)
		if !ok || slices.ContainsFunc(exclude, func(x netip.Addr) bool { return x.Unmap() == ip }) {
			continue
		}
		return ip, nil
	}
	return netip.Addr{}, ErrNoPrimary
}
