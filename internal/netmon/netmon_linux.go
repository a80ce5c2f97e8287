// Package netmon reports the state of network interfaces and their changes,
// from rtnetlink (vishvananda/netlink).
package netmon

import (
	"context"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Link is what carpd needs to know of an interface.
type Link struct {
	Index int
	Name  string
	MAC   net.HardwareAddr
	// Up is true when the interface is administratively up and running
	// (has carrier): CARP's "interface up and running".
	Up bool
}

func fromNetlink(l netlink.Link) Link {
	a := l.Attrs()
	return Link{
		Index: a.Index,
		Name:  a.Name,
		MAC:   append(net.HardwareAddr(nil), a.HardwareAddr...),
		Up:    a.RawFlags&unix.IFF_UP != 0 && a.RawFlags&unix.IFF_RUNNING != 0,
	}
}

// LinkByName returns the current state of the named interface.
func LinkByName(name string) (Link, error) {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return Link{}, fmt.Errorf("interface %s: %w", name, err)
	}
	return fromNetlink(l), nil
}

// WatchLinks sends the state of an interface every time the kernel reports
// a change of it, until ctx is done. The subscription is made before
// WatchLinks returns, so no change after the call is missed; callers read
// the initial state with LinkByName after calling WatchLinks.
func WatchLinks(ctx context.Context) (<-chan Link, error) {
	updates := make(chan netlink.LinkUpdate, 64)
	done := make(chan struct{})
	if err := netlink.LinkSubscribeWithOptions(updates, done, netlink.LinkSubscribeOptions{
		ErrorCallback: func(error) {},
	}); err != nil {
		return nil, fmt.Errorf("subscribe to link changes: %w", err)
	}
	out := make(chan Link, 64)
	go func() {
		defer close(out)
		defer close(done)
		for {
			select {
			case <-ctx.Done():
				return
			case u, ok := <-updates:
				if !ok {
					return
				}
				select {
				case out <- fromNetlink(u.Link):
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out, nil
}

// AddrChange is an address added to or removed from an interface.
type AddrChange struct {
	LinkIndex int
	Prefix    netip.Prefix
	Removed   bool
}

// WatchAddrs sends every address change the kernel reports, until ctx is
// done. Like WatchLinks, the subscription is in place when it returns.
func WatchAddrs(ctx context.Context) (<-chan AddrChange, error) {
	updates := make(chan netlink.AddrUpdate, 64)
	done := make(chan struct{})
	if err := netlink.AddrSubscribeWithOptions(updates, done, netlink.AddrSubscribeOptions{
		ErrorCallback: func(error) {},
	}); err != nil {
		return nil, fmt.Errorf("subscribe to address changes: %w", err)
	}
	out := make(chan AddrChange, 64)
	go func() {
		defer close(out)
		defer close(done)
		for {
			select {
			case <-ctx.Done():
				return
			case u, ok := <-updates:
				if !ok {
					return
				}
				ip, ok := netip.AddrFromSlice(u.LinkAddress.IP)
				if !ok {
					continue
				}
				ones, _ := u.LinkAddress.Mask.Size()
				c := AddrChange{LinkIndex: u.LinkIndex, Prefix: netip.PrefixFrom(ip.Unmap(), ones), Removed: !u.NewAddr}
				select {
				case out <- c:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out, nil
}
