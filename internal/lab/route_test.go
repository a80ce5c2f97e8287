package lab_test

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/carpd/carpd/internal/lab/labtest"
)

// TestRouter: a host on the segment "far" (AddHostOn) is not on br0, and
// reaches a host on br0 only through a router with forwarding on and routes
// on both sides; replies arrive with the TTL one lower than sent.
func TestRouter(t *testing.T) {
	l := labtest.New(t, "labtest")
	if err := l.AddSegment("far"); err != nil {
		t.Fatal(err)
	}
	near := addHost(t, l, "near", "203.0.113.10/24")
	far, err := l.AddHostOn("far", "farhost", netip.MustParsePrefix("198.51.100.224/24"))
	if err != nil {
		t.Fatal(err)
	}
	// A host on br0 with an address of far's subnet cannot reach it: far
	// is on another segment.
	lost := addHost(t, l, "lost", "198.51.100.2/24")
	if s := ping(t, lost, "198.51.100.224", 250*time.Millisecond); s.Received != 0 {
		t.Fatalf("a host on br0 reaches the host on segment far: %+v", s)
	}

	r := addHost(t, l, "router", "203.0.113.1/24")
	if err := r.Attach("far", "eth1", netip.MustParsePrefix("198.51.100.1/24")); err != nil {
		t.Fatal(err)
	}
	if err := near.AddRoute(netip.MustParsePrefix("0.0.0.0/0"), netip.MustParseAddr("203.0.113.1")); err != nil {
		t.Fatal(err)
	}
	if err := far.AddRoute(netip.MustParsePrefix("0.0.0.0/0"), netip.MustParseAddr("198.51.100.1")); err != nil {
		t.Fatal(err)
	}
	if err := r.SetForwarding(false); err != nil {
		t.Fatal(err)
	}
	if s := ping(t, near, "198.51.100.224", 250*time.Millisecond); s.Received != 0 {
		t.Errorf("with forwarding off: %+v, want no answer", s)
	}
	if err := r.SetForwarding(true); err != nil {
		t.Fatal(err)
	}
	if s := ping(t, near, "198.51.100.224", 450*time.Millisecond); s.Received == 0 {
		t.Fatalf("with forwarding on: %+v, want answers", s)
	}
	// ping(8) prints the reply's TTL: Linux sends with 64, the router
	// takes one off.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := near.Run(ctx, "ping", "-n", "-c", "1", "-W", "2", "198.51.100.224")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "ttl=63") {
		t.Errorf("ping across the router: %q, want ttl=63", out)
	}

	for _, c := range []struct {
		dst string
		gw  string
	}{{"0.0.0.0/0", "2001:db8::1"}, {"::/0", "203.0.113.1"}} {
		if err := near.AddRoute(netip.MustParsePrefix(c.dst), netip.MustParseAddr(c.gw)); err == nil {
			t.Errorf("AddRoute(%s, %s) with mixed families succeeded", c.dst, c.gw)
		}
	}
	if _, err := l.AddHostOn("nosuch", "orphan"); err == nil {
		t.Error("AddHostOn a missing segment succeeded")
	}
}
