package advsock

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
)

// groupMember is the multicast part of ipv4.RawConn and ipv6.PacketConn.
type groupMember interface {
	JoinGroup(ifi *net.Interface, group net.Addr) error
}

// join makes c a member of group on the interface with index ifindex.
// Already being a member (EADDRINUSE) is not an error.
func join(c groupMember, ifindex int, group netip.Addr) error {
	err := c.JoinGroup(&net.Interface{Index: ifindex}, &net.IPAddr{IP: group.AsSlice()})
	if err != nil && !errors.Is(err, syscall.EADDRINUSE) {
		return fmt.Errorf("join %v on ifindex %d: %w", group, ifindex, err)
	}
	return nil
}
