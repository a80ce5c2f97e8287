package vip

import (
	"net/netip"
	"testing"
	"time"
)

// TestRefreshFollowsName: Refresh renews the addresses of the interface
// that has the name now. eth0 holds the VIP and is renewed (its index
// noted), is renamed to eth9 (the daemon removes the VIP from it), and a
// new eth0 is made: once Set has put the VIP on the new eth0, Refresh
// renews it there and never puts it back on eth9, the old index.
func TestRefreshFollowsName(t *testing.T) {
	requireRoot(t)
	ns := newNS(t, "vipren")
	ns.ip(t, "link", "add", "eth0", "type", "veth", "peer", "name", "p0")
	ns.ip(t, "link", "set", "eth0", "up")
	vips := []netip.Prefix{netip.MustParsePrefix("192.0.2.50/32")}
	m := New(ns.nl, AddOptions{ValidLifetime: 30 * time.Second})
	holds := func(ifname string) bool {
		t.Helper()
		_, ok := kernelAddrs(t, ns.nl, ifname)[vips[0]]
		return ok
	}
	if _, err := m.Set("eth0", vips, vips); err != nil {
		t.Fatal(err)
	}
	if err := m.Refresh("eth0", vips); err != nil {
		t.Fatal(err)
	}

	ns.ip(t, "link", "set", "dev", "eth0", "name", "eth9")
	if _, err := m.Set("eth9", vips, nil); err != nil {
		t.Fatal(err)
	}
	ns.ip(t, "link", "add", "eth0", "type", "veth", "peer", "name", "p1")
	ns.ip(t, "link", "set", "eth0", "up")
	if _, err := m.Set("eth0", vips, vips); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := m.Refresh("eth0", vips); err != nil {
			t.Fatal(err)
		}
	}
	if !holds("eth0") || holds("eth9") {
		t.Errorf("the new eth0 holds the VIP: %v, the renamed eth9: %v; want only eth0", holds("eth0"), holds("eth9"))
	}
}
