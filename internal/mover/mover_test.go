package mover

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/carpd/carpd/internal/announce"
	"github.com/carpd/carpd/internal/vip"
)

func TestFits(t *testing.T) {
	now := time.Now()
	tenure := Tenure{Token: 7, Deadline: now.Add(time.Second)}
	for _, c := range []struct {
		t    Tenure
		need time.Duration
		ok   bool
	}{
		{Tenure{}, time.Hour, true}, // no deadline: CARP, VRRP
		{tenure, 0, true},
		{tenure, 999 * time.Millisecond, true},
		{tenure, time.Second, false}, // ends at the deadline: too late
		{tenure, 2 * time.Second, false},
		{Tenure{Deadline: now.Add(-time.Millisecond)}, 0, false},
	} {
		err := Fits(now, c.t, c.need)
		if (err == nil) != c.ok || (err != nil && !errors.Is(err, ErrFenced)) {
			t.Errorf("Fits(deadline in %v, need %v) = %v, want ok %v", c.t.Deadline.Sub(now), c.need, err, c.ok)
		}
	}
}

// fakeAddrs is an in-memory Addresses with a log of the calls.
type fakeAddrs struct {
	have  []netip.Prefix
	calls []string
}

func (f *fakeAddrs) Set(_ string, managed, want []netip.Prefix) ([]string, error) {
	f.calls = append(f.calls, "set")
	var changes []string
	f.have = slices.DeleteFunc(f.have, func(p netip.Prefix) bool {
		drop := slices.Contains(managed, p) && !slices.Contains(want, p)
		if drop {
			changes = append(changes, "del "+p.String())
		}
		return drop
	})
	for _, p := range want {
		if !slices.Contains(f.have, p) {
			f.have = append(f.have, p)
			changes = append(changes, "add "+p.String())
		}
	}
	return changes, nil
}

func (f *fakeAddrs) Refresh(_ string, want []netip.Prefix) error {
	f.calls = append(f.calls, "refresh")
	for _, p := range want {
		if !slices.Contains(f.have, p) {
			f.have = append(f.have, p)
		}
	}
	return nil
}

func (f *fakeAddrs) List(string) ([]netip.Prefix, error) { return slices.Clone(f.have), nil }

type fakeAnnouncer struct{ rounds [][]netip.Addr }

func (f *fakeAnnouncer) Announce(_ int, _ net.HardwareAddr, addrs []netip.Addr) error {
	f.rounds = append(f.rounds, addrs)
	return nil
}

func TestL2(t *testing.T) {
	ctx := context.Background()
	vip := []netip.Prefix{netip.MustParsePrefix("192.0.2.50/32"), netip.MustParsePrefix("2001:db8::50/64")}
	addrs, ann := &fakeAddrs{}, &fakeAnnouncer{}
	now := time.Now()
	m := &L2{
		Iface: "eth0", Prefixes: vip, Addresses: addrs, Announcer: ann,
		Link: func(string) (int, net.HardwareAddr, error) { return 2, net.HardwareAddr{2, 0, 0, 0, 0, 1}, nil },
		Now:  func() time.Time { return now },
	}
	tenure := Tenure{Token: 1, Deadline: now.Add(10 * time.Second)}

	if h, _ := m.Holder(ctx); h.Here || len(h.Missing) != 2 {
		t.Fatalf("before Acquire: %+v, want nothing held", h)
	}
	if err := m.Acquire(ctx, tenure); err != nil {
		t.Fatal(err)
	}
	if h, _ := m.Holder(ctx); !h.Here {
		t.Fatalf("after Acquire: %+v, want held", h)
	}
	if len(ann.rounds) != 1 || len(ann.rounds[0]) != 2 {
		t.Fatalf("announcements %v, want one round of both addresses", ann.rounds)
	}
	// Re-asserting renews the lifetimes and puts back a lost address,
	// without announcing again.
	addrs.have = addrs.have[:1]
	if err := m.Acquire(ctx, tenure); err != nil {
		t.Fatal(err)
	}
	if h, _ := m.Holder(ctx); !h.Here || len(ann.rounds) != 1 {
		t.Fatalf("after re-Acquire: %+v, %d rounds; want held, 1 round", h, len(ann.rounds))
	}
	if err := m.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if h, _ := m.Holder(ctx); h.Here || len(h.Missing) != 2 {
		t.Fatalf("after Release: %+v, want nothing held", h)
	}

	// Past the deadline nothing is done: no address, no announcement.
	calls := len(addrs.calls)
	now = tenure.Deadline
	if err := m.Acquire(ctx, tenure); !errors.Is(err, ErrFenced) {
		t.Fatalf("Acquire at the deadline: %v, want ErrFenced", err)
	}
	if len(addrs.calls) != calls || len(addrs.have) != 0 || len(ann.rounds) != 1 {
		t.Fatalf("a fenced Acquire acted: calls %v, have %v, %d rounds", addrs.calls[calls:], addrs.have, len(ann.rounds))
	}
}

// The l2 mover adapts carpd's address manager and announcer as they are.
var (
	_ Addresses = (*vip.Manager)(nil)
	_ Announcer = (*announce.Announcer)(nil)
)
