package netmon_test

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/carpd/carpd/internal/lab/labtest"
	"github.com/carpd/carpd/internal/netmon"
)

// TestWatch subscribes inside a lab host and checks that an address added
// and removed with ip(8), and the link going down and up, are reported.
func TestWatch(t *testing.T) {
	l := labtest.New(t, "netmon")
	h, err := l.AddHost("a", netip.MustParsePrefix("192.0.2.1/24"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var addrs <-chan netmon.AddrChange
	var links <-chan netmon.Link
	var eth0 netmon.Link
	if err := h.Do(func() (err error) {
		if addrs, err = netmon.WatchAddrs(ctx); err != nil {
			return err
		}
		if links, err = netmon.WatchLinks(ctx); err != nil {
			return err
		}
		eth0, err = netmon.LinkByName("eth0")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if !eth0.Up || eth0.MAC.String() != h.MAC.String() {
		t.Fatalf("LinkByName(eth0) = %+v, want up with MAC %v", eth0, h.MAC)
	}
	vip := netip.MustParsePrefix("192.0.2.50/32")
	waitAddr := func(removed bool) {
		t.Helper()
		deadline := time.After(5 * time.Second)
		for {
			select {
			case c := <-addrs:
				if c.Prefix == vip && c.Removed == removed && c.LinkIndex == eth0.Index {
					return
				}
			case <-deadline:
				t.Fatalf("no address change %v removed=%v", vip, removed)
			}
		}
	}
	waitLink := func(up bool) {
		t.Helper()
		deadline := time.After(5 * time.Second)
		for {
			select {
			case got := <-links:
				if got.Index == eth0.Index && got.Up == up {
					return
				}
			case <-deadline:
				t.Fatalf("no link change of eth0 to up=%v", up)
			}
		}
	}
	if err := h.AddAddr(vip); err != nil {
		t.Fatal(err)
	}
	waitAddr(false)
	if err := h.DelAddr(vip); err != nil {
		t.Fatal(err)
	}
	waitAddr(true)
	// The cable pulled: the link is up but not running.
	if err := h.PortDown(); err != nil {
		t.Fatal(err)
	}
	waitLink(false)
	if err := h.PortUp(); err != nil {
		t.Fatal(err)
	}
	waitLink(true)
}
