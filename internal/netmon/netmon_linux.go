// Package netmon reports the state of network interfaces and the changes of
// links and addresses, from rtnetlink (vishvananda/netlink).
package netmon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"

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

// ErrNotFound is wrapped by LinkByName's error when no interface has the
// name.
var ErrNotFound = errors.New("no such interface")

// LinkByName returns the current state of the named interface.
func LinkByName(name string) (Link, error) {
	l, err := netlink.LinkByName(name)
	if err != nil {
		if errors.As(err, new(netlink.LinkNotFoundError)) {
			return Link{}, ErrNotFound
		}
		return Link{}, err
	}
	return fromNetlink(l), nil
}

// AddrChange is an address added to or removed from an interface.
type AddrChange struct {
	LinkIndex int
	Prefix    netip.Prefix
	Removed   bool
}

// Update is one change a subscription reports: a link's new state
// (IsLink) or an address added or removed.
type Update struct {
	IsLink bool
	Link   Link
	// Deleted says that the link was deleted (RTM_DELLINK); Link is its
	// last state.
	Deleted bool
	Addr    AddrChange
}

// ReceiveBuffer is the receive buffer of the subscription sockets, 4 MiB
// (the kernel's default is about 200 KiB): a burst of a few thousand
// changes fits. A larger burst (an interface with tens of thousands of
// addresses going away) still overflows it, and the subscription then
// ends with Lost.
const ReceiveBuffer = 4 << 20

// Subscribe subscribes to the changes of every link and every address in
// the current network namespace, and calls report with each change, from
// one goroutine, in the kernel's order for links and for addresses, from
// the moment it returns. The subscription ends when ctx is done (ended
// then gives nil) or when it fails (ended gives the cause: most often the
// kernel dropped notifications because the socket's buffer was full,
// ENOBUFS); the caller then subscribes again and reads the state afresh.
// report is not called after ended has given its value, and the ended
// subscription leaves no goroutine or socket behind. report may block;
// changes wait in the kernel meanwhile.
//
// An address notification that changes nothing of an address already
// reported present but its lifetimes (the kernel's echo of a lifetime
// renewal) is not reported: it is no change to carpd, and at every advert
// it would wake the event loop for nothing. A change of its flags or scope
// (an IPv6 address done with DAD, deprecated) is reported.
func Subscribe(ctx context.Context, report func(Update)) (ended <-chan error, err error) {
	return subscribe(ctx, netlinkSubscriber{}, report)
}

// SubscribeIgnoring is Subscribe, but the kernel leaves out the address
// notifications (RTM_NEWADDR) of the requests made on the netlink port
// echo: the address manager's renewals of the lifetimes of the addresses
// carpd holds (vip.Manager.EchoPort), which change nothing carpd must
// hear of (Subscribe would not report them either) but would wake it at
// every advert.
func SubscribeIgnoring(ctx context.Context, echo uint32, report func(Update)) (ended <-chan error, err error) {
	return subscribe(ctx, netlinkSubscriber{ignore: echo}, report)
}

// subscriber opens the two kernel subscriptions; a fake one stands in for
// it in tests.
type subscriber interface {
	links(ch chan netlink.LinkUpdate, done chan struct{}, onError func(error)) error
	addrs(ch chan netlink.AddrUpdate, done chan struct{}, onError func(error)) error
}

type netlinkSubscriber struct {
	ignore uint32 // the netlink port whose address notifications are left out
}

func (netlinkSubscriber) links(ch chan netlink.LinkUpdate, done chan struct{}, onError func(error)) error {
	o := netlink.LinkSubscribeOptions{ErrorCallback: onError, ReceiveBufferSize: ReceiveBuffer, ReceiveBufferForceSize: true}
	if err := netlink.LinkSubscribeWithOptions(ch, done, o); err == nil {
		return nil
	}
	// SO_RCVBUFFORCE needs CAP_NET_ADMIN; the plain size is capped by
	// net.core.rmem_max.
	o.ReceiveBufferForceSize = false
	return netlink.LinkSubscribeWithOptions(ch, done, o)
}

func (s netlinkSubscriber) addrs(ch chan netlink.AddrUpdate, done chan struct{}, onError func(error)) error {
	return subscribeAddrs(ch, done, onError, s.ignore)
}

// lastError keeps the last error a subscription reported: the cause of its
// end when it closes its channel.
type lastError struct {
	mu  sync.Mutex
	err error
}

func (l *lastError) set(err error) {
	l.mu.Lock()
	l.err = err
	l.mu.Unlock()
}

func (l *lastError) get(what string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err == nil {
		return fmt.Errorf("%s subscription closed", what)
	}
	return fmt.Errorf("%s subscription: %w", what, l.err)
}

func subscribe(ctx context.Context, s subscriber, report func(Update)) (<-chan error, error) {
	links := make(chan netlink.LinkUpdate, 64)
	addrs := make(chan netlink.AddrUpdate, 64)
	linksDone, addrsDone := make(chan struct{}), make(chan struct{})
	var linkErr, addrErr lastError
	if err := s.links(links, linksDone, linkErr.set); err != nil {
		return nil, fmt.Errorf("subscribing to link changes: %w", err)
	}
	if err := s.addrs(addrs, addrsDone, addrErr.set); err != nil {
		close(linksDone)
		go drain(links)
		return nil, fmt.Errorf("subscribing to address changes: %w", err)
	}
	ended := make(chan error, 1)
	go func() {
		var cause error
		// known are the attributes of the addresses last reported
		// present: a notification that changes nothing of an address
		// but its lifetimes (carpd's own renewal of a virtual
		// address's, at every advert) is not a change.
		known := map[addrKey]addrAttrs{}
		defer func() {
			// Close both sockets and wait for their readers to end.
			close(linksDone)
			close(addrsDone)
			drain(links)
			drain(addrs)
			ended <- cause
		}()
		for {
			select {
			case <-ctx.Done():
				return
			case u, ok := <-links:
				if !ok {
					cause = linkErr.get("link")
					return
				}
				l := fromNetlink(u.Link)
				deleted := u.Header.Type == unix.RTM_DELLINK
				if deleted {
					for k := range known {
						if k.link == l.Index {
							delete(known, k)
						}
					}
				}
				report(Update{IsLink: true, Link: l, Deleted: deleted})
			case u, ok := <-addrs:
				if !ok {
					cause = addrErr.get("address")
					return
				}
				c, ok := addrChange(u)
				if !ok {
					continue
				}
				k := addrKey{c.LinkIndex, c.Prefix}
				if c.Removed {
					delete(known, k)
				} else {
					a := addrAttrs{u.Flags, u.Scope}
					if prev, seen := known[k]; seen && prev == a {
						continue // a renewal of its lifetimes
					}
					known[k] = a
				}
				report(Update{Addr: c})
			}
		}
	}()
	return ended, nil
}

// addrKey and addrAttrs are an address and what of it besides its
// lifetimes a notification reports.
type addrKey struct {
	link   int
	prefix netip.Prefix
}

type addrAttrs struct{ flags, scope int }

// drain reads ch until it is closed.
func drain[T any](ch <-chan T) {
	for range ch {
	}
}

func addrChange(u netlink.AddrUpdate) (AddrChange, bool) {
	ip, ok := netip.AddrFromSlice(u.LinkAddress.IP)
	if !ok {
		return AddrChange{}, false
	}
	ones, _ := u.LinkAddress.Mask.Size()
	return AddrChange{LinkIndex: u.LinkIndex, Prefix: netip.PrefixFrom(ip.Unmap(), ones), Removed: !u.NewAddr}, true
}
