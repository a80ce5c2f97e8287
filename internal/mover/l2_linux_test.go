package mover

import (
	"context"
	"net/netip"
	"regexp"
	"testing"
	"time"

	"github.com/carpd/carpd/internal/announce"
	"github.com/carpd/carpd/internal/lab"
	"github.com/carpd/carpd/internal/lab/labtest"
	"github.com/carpd/carpd/internal/vip"
)

// TestL2OnLink runs the l2 mover over carpd's own address manager and
// announcer in a namespace: acquiring adds the address with its lifetime
// and repoints a neighbour's stale ARP entry at the holder; releasing
// removes the address.
func TestL2OnLink(t *testing.T) {
	l := labtest.New(t, "l2m")
	h1, err := l.AddHost("h1", netip.MustParsePrefix("192.0.2.11/24"))
	if err != nil {
		t.Fatal(err)
	}
	h2, err := l.AddHost("h2", netip.MustParsePrefix("192.0.2.12/24"))
	if err != nil {
		t.Fatal(err)
	}
	addr := netip.MustParseAddr("192.0.2.50")
	// h2 believes the address is elsewhere.
	if _, err := h2.Run(context.Background(), "ip", "neigh", "replace", addr.String(), "lladdr", "02:00:00:00:00:99", "dev", lab.Iface, "nud", "stale"); err != nil {
		t.Fatal(err)
	}

	var m *L2
	var ann *announce.Announcer
	var addrs *vip.Manager
	do := func(f func() error) {
		t.Helper()
		if err := h1.Do(f); err != nil {
			t.Fatal(err)
		}
	}
	do(func() error {
		addrs = vip.New(nil, vip.AddOptions{ValidLifetime: 30 * time.Second})
		ann = announce.New()
		m = &L2{Iface: lab.Iface, Prefixes: []netip.Prefix{netip.PrefixFrom(addr, 32)}, Addresses: addrs, Announcer: ann}
		return nil
	})
	t.Cleanup(func() { ann.Close(); addrs.Close() })

	tenure := Tenure{Token: 1, Deadline: time.Now().Add(10 * time.Second)}
	do(func() error { return m.Acquire(context.Background(), tenure) })
	if held, err := h1.Holds(addr); err != nil || !held {
		t.Fatalf("h1 holds %v: %v, %v; want true", addr, held, err)
	}
	out, err := h1.Run(context.Background(), "ip", "-4", "addr", "show", "dev", lab.Iface, "to", addr.String())
	if err != nil || !regexp.MustCompile(`valid_lft (2[0-9]|30)sec`).MatchString(out) {
		t.Fatalf("the address has no lifetime of about 30 s: %q, %v", out, err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for {
		mac, _, err := h2.Neigh(addr)
		if err != nil {
			t.Fatal(err)
		}
		if mac.String() == h1.MAC.String() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("h2's ARP entry for %v is %v, want h1's %v after the announcement", addr, mac, h1.MAC)
		}
		time.Sleep(10 * time.Millisecond)
	}
	var h Holding
	do(func() (err error) { h, err = m.Holder(context.Background()); return err })
	if !h.Here {
		t.Fatalf("Holder after Acquire: %+v", h)
	}

	do(func() error { return m.Release(context.Background()) })
	if held, err := h1.Holds(addr); err != nil || held {
		t.Fatalf("h1 holds %v after Release: %v, %v; want false", addr, held, err)
	}
}
