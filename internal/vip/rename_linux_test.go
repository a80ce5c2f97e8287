package vip

import (
	"errors"
	"net/netip"
	"strings"
	"syscall"
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

// TestRefreshWithoutAck: a Manager made without a handle renews lifetimes
// on a socket of its own without waiting for the kernel's answers
// (refresher). A renewal takes effect (the new lifetime, IPv4's broadcast
// address as AddrReplace gives it, an address removed underneath put
// back), and one the kernel refuses (the interface deleted and made again
// under the same name: the cached index is stale) is reported by a later
// renewal, which is then made by name, on the new interface. An accepted
// renewal costs no read of the socket.
func TestRefreshWithoutAck(t *testing.T) {
	requireRoot(t)
	ns := newNS(t, "vipnoack")
	ns.ip(t, "link", "add", "eth0", "type", "veth", "peer", "name", "p0")
	ns.ip(t, "link", "set", "eth0", "up")
	vips := []netip.Prefix{netip.MustParsePrefix("192.0.2.50/24"), netip.MustParsePrefix("2001:db8::50/64")}
	var m *Manager
	if err := ns.do(func() error {
		m = New(nil, AddOptions{ValidLifetime: 30 * time.Second})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if m.EchoPort() == 0 {
		t.Fatal("a Manager without a handle has no renewal socket (EchoPort 0)")
	}
	if _, err := m.Set("eth0", vips, vips); err != nil {
		t.Fatal(err)
	}
	m.SetOptions(AddOptions{ValidLifetime: 300 * time.Second})
	if err := m.Refresh("eth0", vips); err != nil {
		t.Fatal(err)
	}
	got := kernelAddrs(t, ns.nl, "eth0")
	for _, p := range vips {
		a, ok := got[p]
		if !ok || a.ValidLft < 240 || a.ValidLft > 300 {
			t.Errorf("%v after the renewal: present %v, valid_lft %d; want about 300", p, ok, a.ValidLft)
		}
	}
	if brd := got[vips[0]].Broadcast; brd.String() != "192.0.2.255" {
		t.Errorf("broadcast of %v = %v, want 192.0.2.255 (as AddrReplace sets it)", vips[0], brd)
	}

	ns.ip(t, "addr", "del", vips[0].String(), "dev", "eth0")
	if err := m.Refresh("eth0", vips); err != nil {
		t.Fatal(err)
	}
	if _, ok := kernelAddrs(t, ns.nl, "eth0")[vips[0]]; !ok {
		t.Errorf("%v removed underneath is not put back by Refresh", vips[0])
	}

	// The renewals the kernel accepts are not followed by a read of the
	// socket: the refresher's watcher reads it when an answer comes.
	x := m.os.(*netlinkOS).async
	x.mu.Lock()
	reads := x.reads
	x.mu.Unlock()
	for range 20 {
		if err := m.Refresh("eth0", vips); err != nil {
			t.Fatal(err)
		}
	}
	x.mu.Lock()
	if x.reads != reads {
		t.Errorf("20 accepted renewals read the socket %d times; want 0", x.reads-reads)
	}
	x.mu.Unlock()

	o := m.os.(*netlinkOS)
	o.mu.Lock()
	staleIdx := o.index["eth0"]
	o.mu.Unlock()
	ns.ip(t, "link", "del", "eth0")
	ns.ip(t, "link", "add", "eth0", "type", "veth", "peer", "name", "p1")
	ns.ip(t, "link", "set", "eth0", "up")
	// A renewal goes to the stale index; the kernel refuses it, the
	// watcher reads the refusal, and the next renewal reports it and
	// goes by name. Whether the watcher is done before the second
	// address's renewal of the same call depends on the scheduler: the
	// failure is reported by this call or the next.
	err := m.Refresh("eth0", vips)
	if err == nil {
		for deadline := time.Now().Add(5 * time.Second); x.nFailed.Load() == 0 && time.Now().Before(deadline); {
			time.Sleep(time.Millisecond)
		}
		err = m.Refresh("eth0", vips)
	}
	if err == nil || !strings.Contains(err.Error(), "an earlier ip addr replace 192.0.2.50/24 dev eth0") ||
		!errors.Is(err, syscall.ENODEV) {
		t.Errorf("Refresh on the stale index, twice: %v; want the failure (ENODEV) of its first renewal reported", err)
	}
	if err := m.Refresh("eth0", vips); err != nil {
		t.Errorf("Refresh once the index is right again: %v", err)
	}
	got = kernelAddrs(t, ns.nl, "eth0")
	for _, p := range vips {
		if _, ok := got[p]; !ok {
			t.Errorf("%v not on the new eth0 after the renewal by name", p)
		}
	}
	if err := m.Refresh("eth0", vips); err != nil {
		t.Errorf("Refresh again: %v", err)
	}
	// A refusal of a renewal sent to the stale index that arrives only now
	// (the other address's, read late by the watcher) is not reported:
	// the renewals since went to the new index.
	x.mu.Lock()
	x.failed = append(x.failed, refreshFailure{ifname: "eth0", index: staleIdx, err: syscall.ENODEV})
	x.nFailed.Add(1)
	x.mu.Unlock()
	if err := m.Refresh("eth0", vips); err != nil {
		t.Errorf("Refresh after a late refusal on the stale index: %v", err)
	}

	// Close: the watcher ends, and a renewal goes by name through the
	// handle, never to the closed socket's number.
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	ns.ip(t, "addr", "del", vips[0].String(), "dev", "eth0")
	if err := m.Refresh("eth0", vips); err != nil {
		t.Errorf("Refresh after Close: %v", err)
	}
	if _, ok := kernelAddrs(t, ns.nl, "eth0")[vips[0]]; !ok {
		t.Errorf("%v not put back by a Refresh after Close", vips[0])
	}
	select {
	case <-x.watchEnded:
	case <-time.After(5 * time.Second):
		t.Error("the refresher's watcher still runs 5 s after Close")
	}
}
