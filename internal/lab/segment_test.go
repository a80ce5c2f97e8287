package lab_test

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/carpd/carpd/internal/lab/labtest"
)

// TestSegments: two hosts on br0 and on a second segment reach each other
// on both; pulling one host's second cable cuts only that segment, and the
// interface loses carrier while staying administratively up.
func TestSegments(t *testing.T) {
	l := labtest.New(t, "labtest")
	a := addHost(t, l, "alpha", "192.0.2.1/24")
	b := addHost(t, l, "bravo", "192.0.2.2/24")
	if err := l.AddSegment("seg1"); err != nil {
		t.Fatal(err)
	}
	if err := a.Attach("seg1", "eth1", netip.MustParsePrefix("198.51.100.1/24")); err != nil {
		t.Fatal(err)
	}
	if err := b.Attach("seg1", "eth1", netip.MustParsePrefix("198.51.100.2/24")); err != nil {
		t.Fatal(err)
	}
	if got := b.PortName("eth1"); got != "bravo-eth1" {
		t.Errorf("PortName(eth1) = %q, want bravo-eth1", got)
	}
	if got := b.PortName("eth0"); got != "bravo" {
		t.Errorf("PortName(eth0) = %q, want bravo", got)
	}
	ok, err := b.HoldsOn("eth1", netip.MustParseAddr("198.51.100.2"))
	if err != nil || !ok {
		t.Errorf("HoldsOn(eth1, 198.51.100.2) = %v, %v; want true", ok, err)
	}
	if ok, _ := b.HoldsOn("eth0", netip.MustParseAddr("198.51.100.2")); ok {
		t.Error("eth0 holds eth1's address")
	}
	if ok, _ := b.Holds(netip.MustParseAddr("198.51.100.2")); ok {
		t.Error("Holds (eth0) reports eth1's address")
	}
	for _, dst := range []string{"192.0.2.2", "198.51.100.2"} {
		if s := ping(t, a, dst, 450*time.Millisecond); s.Received == 0 {
			t.Errorf("alpha -> %s: %+v, want answers", dst, s)
		}
	}

	if err := b.PortDownOn("eth1"); err != nil {
		t.Fatal(err)
	}
	out, err := b.Run(context.Background(), "ip", "-o", "link", "show", "dev", "eth1")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "NO-CARRIER") || !strings.Contains(out, ",UP") {
		t.Errorf("bravo's eth1 with its port down: %q, want UP and NO-CARRIER", out)
	}
	if s := ping(t, a, "198.51.100.2", 250*time.Millisecond); s.Received != 0 {
		t.Errorf("with bravo's eth1 port down: %+v, want no answer", s)
	}
	if s := ping(t, a, "192.0.2.2", 450*time.Millisecond); s.Received == 0 {
		t.Errorf("eth0 with bravo's eth1 port down: %+v, want answers", s)
	}
	if err := b.PortUpOn("eth1"); err != nil {
		t.Fatal(err)
	}
	if s := ping(t, a, "198.51.100.2", 450*time.Millisecond); s.Received == 0 {
		t.Errorf("with bravo's eth1 port up again: %+v, want answers", s)
	}
}

func TestSegmentBadNames(t *testing.T) {
	l := labtest.New(t, "labtest")
	h := addHost(t, l, "host")
	for _, n := range []string{"", "br0", "sw", "host", "Upper", "has-dash", "sixteen-chars-xx"} {
		if err := l.AddSegment(n); err == nil {
			t.Errorf("AddSegment(%q) succeeded", n)
		}
	}
	if err := l.AddSegment("seg1"); err != nil {
		t.Fatal(err)
	}
	long := addHost(t, l, "averylonghostnm")
	for _, c := range []struct {
		h     string
		iface string
	}{{"host", "eth0"}, {"host", "lo"}, {"host", "Eth1"}, {"host", "e-1"}, {"averylonghostnm", "eth1"}} {
		target := h
		if c.h != "host" {
			target = long
		}
		if err := target.Attach("seg1", c.iface); err == nil {
			t.Errorf("%s.Attach(seg1, %q) succeeded", c.h, c.iface)
		}
	}
	if err := h.Attach("nosuch", "eth1"); err == nil {
		t.Error("Attach to a missing segment succeeded")
	}
	// The failed Attach left nothing behind: the same cable can be made.
	if err := h.Attach("seg1", "eth1"); err != nil {
		t.Errorf("Attach after a failed Attach: %v", err)
	}
}
