package vip

import (
	"errors"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// vips returns n /32 addresses from 198.51.100.1 on, then 203.0.113.1 on.
func vips(n int) []netip.Prefix {
	var ps []netip.Prefix
	for i := 0; i < n; i++ {
		a := netip.AddrFrom4([4]byte{198, 51, 100, byte(1 + i)})
		if i >= 200 {
			a = netip.AddrFrom4([4]byte{203, 0, 113, byte(1 + i - 200)})
		}
		ps = append(ps, netip.PrefixFrom(a, 32))
	}
	return ps
}

// TestManagerBatches: a Manager of the current namespace (New(nil)) adds
// and removes many addresses in batches of batchSize, each in place with
// its lifetime, and reports each change as ip(8) would.
func TestManagerBatches(t *testing.T) {
	requireRoot(t)
	ns := newNS(t, "vipb")
	ns.ip(t, "link", "add", "v0", "type", "veth", "peer", "name", "v1")
	ns.ip(t, "link", "set", "v0", "up")
	ns.ip(t, "addr", "add", "192.0.2.1/24", "dev", "v0")
	managed := vips(255)
	err := ns.do(func() error {
		m := New(nil, AddOptions{ValidLifetime: 3 * time.Second})
		defer m.Close()
		if m.os.(*netlinkOS).batch == nil {
			t.Fatal("no batch socket")
		}
		t0 := time.Now()
		calls := 0
		lines, err := m.SetPaced("v0", managed, managed, func() { calls++ })
		t.Logf("255 added in %v", time.Since(t0))
		if calls != 4 {
			t.Errorf("255 added in %d batches, want 4", calls)
		}
		if err != nil {
			t.Fatalf("Set: %v", err)
		}
		if len(lines) != 255 || lines[254] != "ip addr add 203.0.113.55/32 dev v0 valid_lft 3 preferred_lft 3" {
			t.Errorf("Set: %d lines, the last %q", len(lines), lines[len(lines)-1])
		}
		got := kernelAddrs(t, ns.nl, "v0")
		for _, p := range managed {
			a, ok := got[p]
			if !ok {
				t.Errorf("%v not added", p)
				continue
			}
			if a.ValidLft < 1 || a.ValidLft > 3 {
				t.Errorf("%v: valid lifetime %d, want 3", p, a.ValidLft)
			}
		}
		// Keep the first 10: 245 removed, in batches too.
		t0 = time.Now()
		lines, err = m.Set("v0", managed, managed[:10])
		t.Logf("245 removed in %v", time.Since(t0))
		if err != nil {
			t.Fatalf("Set: %v", err)
		}
		if len(lines) != 245 || lines[0] != "ip addr del 198.51.100.11/32 dev v0" {
			t.Errorf("Set: %d lines, the first %q", len(lines), lines[0])
		}
		if got := kernelAddrs(t, ns.nl, "v0"); len(got) != 11 {
			t.Errorf("%d addresses left, want the 10 kept and the host's own", len(got))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestBatcherErrors: each request of a batch gets its own answer, in
// order, whatever the others' (an address present already: EEXIST).
func TestBatcherErrors(t *testing.T) {
	requireRoot(t)
	ns := newNS(t, "vipe")
	ns.ip(t, "link", "add", "v0", "type", "veth", "peer", "name", "v1")
	ns.ip(t, "addr", "add", "198.51.100.2/32", "dev", "v0")
	err := ns.do(func() error {
		x, err := newBatcher()
		if err != nil {
			return err
		}
		defer x.close()
		l, err := ns.nl.LinkByName("v0")
		if err != nil {
			return err
		}
		var rs []addReq
		for _, p := range vips(3) {
			rs = append(rs, addReq{Prefix: p})
		}
		errs, err := x.do(unix.RTM_NEWADDR, unix.NLM_F_CREATE|unix.NLM_F_EXCL, l.Attrs().Index, rs, nil)
		if err != nil {
			return err
		}
		if len(errs) != 3 || errs[0] != nil || !errors.Is(errs[1], syscall.EEXIST) || errs[2] != nil {
			t.Errorf("answers %v, want [nil EEXIST nil]", errs)
		}
		// On an interface that is not there: every request refused.
		errs, err = x.do(unix.RTM_NEWADDR, unix.NLM_F_CREATE|unix.NLM_F_EXCL, 9999, rs, nil)
		if err != nil {
			return err
		}
		for i, e := range errs {
			if !errors.Is(e, syscall.ENODEV) {
				t.Errorf("request %d on no interface: %v, want ENODEV", i, e)
			}
		}
		// Closed: refused at once, nothing done.
		x.close()
		if errs, err := x.do(unix.RTM_NEWADDR, 0, l.Attrs().Index, rs, nil); len(errs) != 0 || !errors.Is(err, syscall.EBADF) {
			t.Errorf("closed: %v, %v; want none done, EBADF", errs, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
