package vip

import (
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// kernelAddrs returns the addresses of ifname as the kernel lists them,
// keyed by prefix.
func kernelAddrs(t *testing.T, h *netlink.Handle, ifname string) map[netip.Prefix]netlink.Addr {
	t.Helper()
	l, err := h.LinkByName(ifname)
	if err != nil {
		t.Fatalf("link %s: %v", ifname, err)
	}
	addrs, err := h.AddrList(l, netlink.FAMILY_ALL)
	if err != nil {
		t.Fatalf("list addresses of %s: %v", ifname, err)
	}
	out := make(map[netip.Prefix]netlink.Addr)
	for _, a := range addrs {
		if p, ok := prefixOf(a); ok && !p.Addr().IsLinkLocalUnicast() {
			out[p] = a
		}
	}
	return out
}

func prefixes(m map[netip.Prefix]netlink.Addr) map[netip.Prefix]bool {
	out := make(map[netip.Prefix]bool)
	for p := range m {
		out[p] = true
	}
	return out
}

// TestManagerNetns drives a Manager against the kernel of a fresh network
// namespace, through a netlink handle into it.
func TestManagerNetns(t *testing.T) {
	requireRoot(t)
	ns := newNS(t, "vip")
	ns.vethUp(t)
	ns.ip(t, "addr", "add", "192.0.2.1/24", "dev", "v0")
	ns.ip(t, "addr", "add", "198.51.100.7/24", "dev", "v0") // not managed

	m := New(ns.nl, AddOptions{})
	v4a, v4b, v6 := netip.MustParsePrefix("192.0.2.50/32"), netip.MustParsePrefix("192.0.2.51/24"), netip.MustParsePrefix("2001:db8::50/64")
	own, other := netip.MustParsePrefix("192.0.2.1/24"), netip.MustParsePrefix("198.51.100.7/24")
	managed := []netip.Prefix{v4a, v4b, v6}

	set := func(want []netip.Prefix, wantLines []string) {
		t.Helper()
		lines, err := m.Set("v0", managed, want)
		if err != nil {
			t.Fatalf("Set(%v): %v", want, err)
		}
		if diff := cmp.Diff(wantLines, lines); diff != "" {
			t.Errorf("Set(%v) lines mismatch (-want +got):\n%s", want, diff)
		}
	}
	check := func(want ...netip.Prefix) map[netip.Prefix]netlink.Addr {
		t.Helper()
		got := kernelAddrs(t, ns.nl, "v0")
		wantSet := make(map[netip.Prefix]bool)
		for _, p := range want {
			wantSet[p] = true
		}
		if diff := cmp.Diff(wantSet, prefixes(got), cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
			t.Errorf("addresses of v0 mismatch (-want +got):\n%s", diff)
		}
		return got
	}

	// Master: everything.
	set(managed, []string{
		"ip addr add 192.0.2.50/32 dev v0",
		"ip addr add 192.0.2.51/24 dev v0",
		"ip addr add 2001:db8::50/64 dev v0 nodad",
	})
	got := check(own, other, v4a, v4b, v6)
	if f := got[v6].Flags; f&unix.IFA_F_NODAD == 0 || f&unix.IFA_F_TENTATIVE != 0 {
		t.Errorf("IPv6 VIP flags %#x: want NODAD set and TENTATIVE clear", f)
	}
	if f := got[v4b].Flags; f&unix.IFA_F_SECONDARY == 0 {
		t.Errorf("192.0.2.51/24 flags %#x: want SECONDARY (it shares 192.0.2.1/24's subnet)", f)
	}

	// Again: nothing to do.
	set(managed, nil)
	check(own, other, v4a, v4b, v6)

	// Backup for two of them.
	set([]netip.Prefix{v4a}, []string{
		"ip addr del 192.0.2.51/24 dev v0",
		"ip addr del 2001:db8::50/64 dev v0",
	})
	check(own, other, v4a)

	// Removed underneath (as systemd-networkd does): put back.
	ns.ip(t, "addr", "del", "192.0.2.50/32", "dev", "v0")
	set([]netip.Prefix{v4a}, []string{"ip addr add 192.0.2.50/32 dev v0"})
	check(own, other, v4a)

	// All backup: the interface's own addresses survive.
	set(nil, []string{"ip addr del 192.0.2.50/32 dev v0"})
	check(own, other)

	if _, err := m.Set("nosuch0", managed, nil); err == nil {
		t.Error("Set on a missing interface succeeded, want an error")
	}

	// Nothing leaked into the test's own namespace.
	host, err := netlink.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		t.Fatalf("list host addresses: %v", err)
	}
	for _, a := range host {
		if p, ok := prefixOf(a); ok && (p.Addr() == v4a.Addr() || p.Addr() == v4b.Addr() || p.Addr() == v6.Addr()) {
			t.Errorf("address %v appeared in the test's own namespace", p)
		}
	}
}

// TestManagerLifetimes checks that finite lifetimes reach the kernel, for
// IPv4 and IPv6.
func TestManagerLifetimes(t *testing.T) {
	requireRoot(t)
	ns := newNS(t, "viplft")
	ns.ip(t, "link", "add", "v0", "type", "veth", "peer", "name", "v1")
	ns.ip(t, "link", "set", "v0", "up")

	m := New(ns.nl, AddOptions{ValidLifetime: 300 * time.Second, PreferredLifetime: 200 * time.Second})
	vips := []netip.Prefix{netip.MustParsePrefix("192.0.2.50/32"), netip.MustParsePrefix("2001:db8::50/128")}
	if _, err := m.Set("v0", vips, vips); err != nil {
		t.Fatalf("Set: %v", err)
	}
	got := kernelAddrs(t, ns.nl, "v0")
	for _, p := range vips {
		a, ok := got[p]
		if !ok {
			t.Errorf("%v missing", p)
			continue
		}
		// The kernel counts down from the moment of the add; allow a
		// minute for a slow machine.
		if a.ValidLft > 300 || a.ValidLft < 240 || a.PreferedLft > 200 || a.PreferedLft < 140 {
			t.Errorf("%v: valid_lft %d preferred_lft %d, want about 300 and 200", p, a.ValidLft, a.PreferedLft)
		}
		if a.Flags&unix.IFA_F_PERMANENT != 0 {
			t.Errorf("%v: flags %#x, want not PERMANENT", p, a.Flags)
		}
	}
}

// TestManagerNilHandle checks that a Manager without a handle works in the
// namespace of the calling thread.
func TestManagerNilHandle(t *testing.T) {
	requireRoot(t)
	ns := newNS(t, "vipnil")
	ns.ip(t, "link", "add", "v0", "type", "veth", "peer", "name", "v1")
	vip := netip.MustParsePrefix("192.0.2.50/32")
	var lines []string
	err := ns.do(func() error {
		var err error
		lines, err = New(nil, AddOptions{}).Set("v0", []netip.Prefix{vip}, []netip.Prefix{vip})
		return err
	})
	if err != nil {
		t.Fatalf("Set in namespace: %v", err)
	}
	if diff := cmp.Diff([]string{"ip addr add 192.0.2.50/32 dev v0"}, lines); diff != "" {
		t.Errorf("Set lines mismatch (-want +got):\n%s", diff)
	}
	if _, ok := kernelAddrs(t, ns.nl, "v0")[vip]; !ok {
		t.Errorf("%v not on v0", vip)
	}
}

// TestSetIPv6Usable: Set returns only once the kernel delivers packets for
// the IPv6 addresses it added (their local route in place), so that the
// daemon announces an address a neighbour can reach at once. Linux
// installs that route from a work queue after the request has returned;
// the control below (a plain AddrAdd) shows how often it is missing then.
// Both of the Manager's paths for Set (through a handle, and with its own
// batch socket, the daemon's), and Lease (an etcd holder's addresses).
func TestSetIPv6Usable(t *testing.T) {
	requireRoot(t)
	ns := newNS(t, "vip6")
	ns.vethUp(t)
	ns.ip(t, "addr", "add", "2001:db8::1/64", "dev", "v0", "nodad")
	vip := netip.MustParsePrefix("2001:db8::50/128")
	local := func() bool {
		rs, err := ns.nl.RouteGetWithOptions(vip.Addr().AsSlice(), &netlink.RouteGetOptions{Oif: "v0"})
		return err == nil && len(rs) > 0 && rs[0].Type == unix.RTN_LOCAL
	}
	const rounds = 300
	l, err := ns.nl.LinkByName("v0")
	if err != nil {
		t.Fatal(err)
	}
	missing := 0
	for range rounds {
		a := &netlink.Addr{IPNet: ipNet(vip), Flags: unix.IFA_F_NODAD}
		if err := ns.nl.AddrAdd(l, a); err != nil {
			t.Fatal(err)
		}
		if !local() {
			missing++
		}
		if err := ns.nl.AddrDel(l, a); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("control: after a plain AddrAdd, the local route missing in %d of %d rounds", missing, rounds)

	var batch *Manager
	if err := ns.do(func() error { batch = New(nil, AddOptions{ValidLifetime: 3 * time.Second}); return nil }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { batch.Close() })
	one := []netip.Prefix{vip}
	for _, c := range []struct {
		name string
		m    *Manager
		add  func(m *Manager) error
	}{
		{"Set, handle", New(ns.nl, AddOptions{}), func(m *Manager) error { _, err := m.Set("v0", one, one); return err }},
		{"Set, batch", batch, func(m *Manager) error { _, err := m.Set("v0", one, one); return err }},
		{"Lease, batch", batch, func(m *Manager) error { return m.Lease("v0", one, 3*time.Second) }},
	} {
		notUsable := 0
		for range rounds {
			if err := c.add(c.m); err != nil {
				t.Fatal(err)
			}
			if !local() {
				notUsable++
			}
			if _, err := c.m.Set("v0", one, nil); err != nil {
				t.Fatal(err)
			}
		}
		if notUsable > 0 {
			t.Errorf("%s: after it added %s, the kernel did not deliver packets for it in %d of %d rounds", c.name, vip, notUsable, rounds)
		}
	}
}
