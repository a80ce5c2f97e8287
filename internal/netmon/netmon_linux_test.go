package netmon

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/carpd/carpd/internal/lab/labtest"
	"github.com/carpd/carpd/internal/vip"
)

// TestSubscribe subscribes inside a lab host and checks that an address
// added and removed with ip(8), and the link going down and up, are
// reported, and that cancelling ends the subscription.
func TestSubscribe(t *testing.T) {
	l := labtest.New(t, "netmon")
	h, err := l.AddHost("a", netip.MustParsePrefix("192.0.2.1/24"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	updates := make(chan Update, 1024)
	var ended <-chan error
	var eth0 Link
	if err := h.Do(func() (err error) {
		if ended, err = Subscribe(ctx, func(u Update) { updates <- u }); err != nil {
			return err
		}
		eth0, err = LinkByName("eth0")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if !eth0.Up || eth0.MAC.String() != h.MAC.String() {
		t.Fatalf("LinkByName(eth0) = %+v, want up with MAC %v", eth0, h.MAC)
	}
	wait := func(what string, match func(Update) bool) {
		t.Helper()
		deadline := time.After(5 * time.Second)
		for {
			select {
			case err := <-ended:
				t.Fatalf("subscription ended waiting for %s: %v", what, err)
			case u := <-updates:
				if match(u) {
					return
				}
			case <-deadline:
				t.Fatalf("no %s", what)
			}
		}
	}
	vip := netip.MustParsePrefix("192.0.2.50/32")
	addr := func(removed bool) func(Update) bool {
		return func(u Update) bool {
			return !u.IsLink && u.Addr.Prefix == vip && u.Addr.Removed == removed && u.Addr.LinkIndex == eth0.Index
		}
	}
	link := func(up bool) func(Update) bool {
		return func(u Update) bool { return u.IsLink && u.Link.Index == eth0.Index && u.Link.Up == up }
	}
	if err := h.AddAddr(vip); err != nil {
		t.Fatal(err)
	}
	wait("address added", addr(false))
	if err := h.DelAddr(vip); err != nil {
		t.Fatal(err)
	}
	wait("address removed", addr(true))
	// The cable pulled: the link is up but not running.
	if err := h.PortDown(); err != nil {
		t.Fatal(err)
	}
	wait("link down", link(false))
	if err := h.PortUp(); err != nil {
		t.Fatal(err)
	}
	wait("link up", link(true))
	cancel()
	select {
	case err := <-ended:
		if err != nil {
			t.Errorf("ended with %v after cancel, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the subscription does not end after cancel")
	}
}

// fakeSubscriber hands out the channels and callbacks of the subscriptions
// it opens, so that a test can feed and fail them.
type fakeSubscriber struct {
	failAddrs            error
	linkCh               chan netlink.LinkUpdate
	addrCh               chan netlink.AddrUpdate
	linkErr, addrErr     func(error)
	linksDone, addrsDone chan struct{}
}

func (f *fakeSubscriber) links(ch chan netlink.LinkUpdate, done chan struct{}, onError func(error)) error {
	f.linkCh, f.linksDone, f.linkErr = ch, done, onError
	// As vishvananda/netlink: the reader closes ch once the socket is
	// closed.
	go func() { <-done; close(ch) }()
	return nil
}

func (f *fakeSubscriber) addrs(ch chan netlink.AddrUpdate, done chan struct{}, onError func(error)) error {
	if f.failAddrs != nil {
		return f.failAddrs
	}
	f.addrCh, f.addrsDone, f.addrErr = ch, done, onError
	return nil
}

// TestSubscribeLost: when the kernel overflows a subscription (the
// library calls the error callback and closes its channel), the merged
// subscription ends with the cause, closing the other socket too.
func TestSubscribeLost(t *testing.T) {
	f := &fakeSubscriber{}
	updates := make(chan Update, 8)
	ended, err := subscribe(context.Background(), f, func(u Update) { updates <- u })
	if err != nil {
		t.Fatal(err)
	}
	f.linkCh <- netlink.LinkUpdate{Link: &netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Index: 7, Name: "eth0"}}}
	if u := <-updates; !u.IsLink || u.Link.Index != 7 {
		t.Fatalf("first update = %+v, want link 7", u)
	}
	// What vishvananda/netlink does on ENOBUFS.
	f.addrErr(errors.New("Receive failed: no buffer space available"))
	close(f.addrCh)
	select {
	case err := <-ended:
		if err == nil || !strings.Contains(err.Error(), "address subscription: Receive failed: no buffer space available") {
			t.Fatalf("ended with %v, want the cause", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the subscription does not end")
	}
	if len(updates) != 0 {
		t.Errorf("updates after the end: %v", <-updates)
	}
	select {
	case <-f.linksDone:
	case <-time.After(time.Second):
		t.Fatal("the link subscription was not closed")
	}
}

// TestSubscribeFails: a subscription that cannot be opened is an error,
// and the one already open is closed.
func TestSubscribeFails(t *testing.T) {
	f := &fakeSubscriber{failAddrs: errors.New("permission denied")}
	before := runtime.NumGoroutine()
	if _, err := subscribe(context.Background(), f, func(Update) {}); err == nil || !strings.Contains(err.Error(), "subscribing to address changes: permission denied") {
		t.Fatalf("err = %v", err)
	}
	select {
	case <-f.linksDone:
	case <-time.After(time.Second):
		t.Fatal("the link subscription was not closed")
	}
	deadline := time.Now().Add(time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Errorf("%d goroutines left behind", n-before)
	}
}

// TestSubscribeRenewals: a notification of an address already reported,
// with the same flags and scope (a lifetime renewal), is not reported; a
// change of flags, a removal and an add after it are, and so is an add
// after the link was deleted.
func TestSubscribeRenewals(t *testing.T) {
	f := &fakeSubscriber{}
	updates := make(chan Update, 16)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ended, err := subscribe(ctx, f, func(u Update) { updates <- u })
	if err != nil {
		t.Fatal(err)
	}
	vip := netip.MustParsePrefix("192.0.2.50/32")
	ipnet := *netipToIPNet(vip)
	addr := func(link int, added bool, flags, valid int) netlink.AddrUpdate {
		return netlink.AddrUpdate{LinkAddress: ipnet, LinkIndex: link, NewAddr: added, Flags: flags, ValidLft: valid}
	}
	var got []string
	collect := func(n int) {
		t.Helper()
		deadline := time.After(5 * time.Second)
		for k := 0; k < n; k++ {
			select {
			case u := <-updates:
				switch {
				case u.IsLink:
					got = append(got, "link "+strconv.Itoa(u.Link.Index))
				case u.Addr.Prefix != vip:
					t.Fatalf("prefix %v", u.Addr.Prefix)
				case u.Addr.Removed:
					got = append(got, strconv.Itoa(u.Addr.LinkIndex)+" del")
				default:
					got = append(got, strconv.Itoa(u.Addr.LinkIndex)+" add")
				}
			case err := <-ended:
				t.Fatalf("ended: %v", err)
			case <-deadline:
				t.Fatalf("got %v", got)
			}
		}
	}
	for _, u := range []netlink.AddrUpdate{
		addr(2, true, 0, 3),    // reported
		addr(2, true, 0, 3),    // renewal
		addr(2, true, 0, 2),    // renewal
		addr(3, true, 0, 3),    // another link: reported
		addr(2, true, 0x40, 3), // flags changed: reported
		addr(2, true, 0x40, 3), // renewal
		addr(2, false, 0x40, 0),
		addr(2, true, 0x40, 3), // added again: reported
	} {
		f.addrCh <- u
	}
	collect(5)
	// Links and addresses are two orders: the link's deletion is
	// reported before the next address notification is sent.
	f.linkCh <- netlink.LinkUpdate{Header: unix.NlMsghdr{Type: unix.RTM_DELLINK}, Link: &netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Index: 3, Name: "eth1"}}}
	collect(1)
	f.addrCh <- addr(3, true, 0, 3) // the link was deleted: reported
	f.addrCh <- addr(2, true, 0x40, 3)
	collect(1)
	select {
	case u := <-updates:
		t.Fatalf("got %v then %+v", got, u)
	case <-time.After(100 * time.Millisecond):
	}
	if want := []string{"2 add", "3 add", "2 add", "2 del", "2 add", "link 3", "3 add"}; !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func netipToIPNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// TestSubscribeIgnoresEchoes: carpd's own address subscription reports
// what vishvananda/netlink's would (an add and a removal, with their
// prefix and link), and with the address manager's netlink port to
// ignore, the kernel leaves out the notifications of its renewals
// (RTM_NEWADDR from that port) but not those of its other requests nor a
// removal. Orders are per socket: once the removal is read, the renewal's
// notification would have been read before it.
func TestSubscribeIgnoresEchoes(t *testing.T) {
	l := labtest.New(t, "netmonecho")
	h, err := l.AddHost("a", netip.MustParsePrefix("192.0.2.1/24"))
	if err != nil {
		t.Fatal(err)
	}
	vipPfx := netip.MustParsePrefix("192.0.2.50/32")
	all, filtered := make(chan netlink.AddrUpdate, 64), make(chan netlink.AddrUpdate, 64)
	done := make(chan struct{})
	defer close(done)
	var m *vip.Manager
	var eth0 Link
	fail := func(err error) { t.Errorf("subscription error: %v", err) }
	if err := h.Do(func() (err error) {
		m = vip.New(nil, vip.AddOptions{ValidLifetime: time.Minute})
		if m.EchoPort() == 0 {
			return errors.New("the address manager has no renewal socket")
		}
		if err := subscribeAddrs(all, done, fail, 0); err != nil {
			return err
		}
		if err := subscribeAddrs(filtered, done, fail, m.EchoPort()); err != nil {
			return err
		}
		eth0, err = LinkByName("eth0")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	pfx := []netip.Prefix{vipPfx}
	if _, err := m.Set("eth0", pfx, pfx); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := m.Refresh("eth0", pfx); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.DelAddr(vipPfx); err != nil {
		t.Fatal(err)
	}
	read := func(ch chan netlink.AddrUpdate) []string {
		t.Helper()
		var got []string
		deadline := time.After(5 * time.Second)
		for {
			select {
			case u := <-ch:
				c, ok := addrChange(u)
				if !ok || c.Prefix != vipPfx || c.LinkIndex != eth0.Index {
					continue // the link-local address of eth0, say
				}
				if c.Removed {
					return append(got, "del")
				}
				got = append(got, "add")
			case <-deadline:
				t.Fatalf("no removal read; got %v", got)
			}
		}
	}
	if got, want := read(all), []string{"add", "add", "add", "add", "del"}; !slices.Equal(got, want) {
		t.Errorf("without a port to ignore: %v, want %v (the add, three renewals, the removal)", got, want)
	}
	if got, want := read(filtered), []string{"add", "del"}; !slices.Equal(got, want) {
		t.Errorf("ignoring the manager's port: %v, want %v", got, want)
	}
}
