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
	return watch(ctx, "link", func(ch chan netlink.LinkUpdate, done chan struct{}) error {
		return netlink.LinkSubscribeWithOptions(ch, done, netlink.LinkSubscribeOptions{ErrorCallback: func(error) {}})
	}, func(u netlink.LinkUpdate) (Link, bool) { return fromNetlink(u.Link), true })
}

// watch subscribes to one kind of rtnetlink notification and sends each
// one, converted (ok false: skipped), until ctx is done.
func watch[U, T any](ctx context.Context, kind string, subscribe func(chan U, chan struct{}) error, convert func(U) (T, bool)) (<-chan T, error) {
	updates := make(chan U, 64)
	done := make(chan struct{})
	if err := subscribe(updates, done); err != nil {
		return nil, fmt.Errorf("subscribe to %s changes: %w", kind, err)
	}
	out := make(chan T, 64)
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
				t, ok := convert(u)
				if !ok {
					continue
				}
				select {
				case out <- t:
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
	return watch(ctx, "address", func(ch chan netlink.AddrUpdate, done chan struct{}) error {
		return netlink.AddrSubscribeWithOptions(ch, done, netlink.AddrSubscribeOptions{ErrorCallback: func(error) {}})
	}, func(u netlink.AddrUpdate) (AddrChange, bool) {
		ip, ok := netip.AddrFromSlice(u.LinkAddress.IP)
		if !ok {
			return AddrChange{}, false
		}
		ones, _ := u.LinkAddress.Mask.Size()
		return AddrChange{LinkIndex: u.LinkIndex, Prefix: netip.PrefixFrom(ip.Unmap(), ones), Removed: !u.NewAddr}, true
	})
}
