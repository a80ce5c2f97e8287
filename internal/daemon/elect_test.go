package daemon

import (
	"context"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/carpd/carpd/internal/api"
	"github.com/carpd/carpd/internal/elect"
)

// leaseEvent is the event of a packetless electorate (etcd's shape): its
// lease was won, with a fence deadline, or lost.
type leaseEvent struct {
	won   bool
	fence time.Time
}

func (leaseEvent) ElectEvent() {}

// leaseElectorate holds the addresses while it holds a lease, until the
// lease is lost or its fence deadline passes. It sends nothing.
type leaseElectorate struct {
	state elect.State
	fence time.Time
	w     elect.Wire
	// until: its HoldAddresses carry the fence deadline (etcd's), and a
	// lease won again renews them.
	until bool
}

func (l *leaseElectorate) AppendStep(out []elect.Action, now time.Time, ev elect.Event) []elect.Action {
	to := l.state
	switch ev := ev.(type) {
	case elect.LinkUp:
		to = elect.Backup
	case leaseEvent:
		to, l.fence = elect.Backup, time.Time{}
		if ev.won && now.Before(ev.fence) {
			to, l.fence = elect.Master, ev.fence
		}
	case elect.Tick:
		to, l.fence = elect.Backup, time.Time{}
	}
	hold := elect.HoldAddresses{Hold: to == elect.Master}
	if l.until && hold.Hold {
		hold.Until = l.fence
	}
	if to != l.state {
		out = append(out, elect.Transition{From: l.state, To: to, Reason: "lease"}, hold)
		l.state = to
	} else if hold.Until != (time.Time{}) {
		out = append(out, hold)
	}
	return out
}

func (l *leaseElectorate) State() elect.State                  { return l.state }
func (l *leaseElectorate) NextDeadline() time.Time             { return l.fence }
func (l *leaseElectorate) Left() bool                          { return true }
func (l *leaseElectorate) MasterDownInterval() time.Duration   { return time.Second }
func (l *leaseElectorate) Proto() string                       { return "lease" }
func (l *leaseElectorate) Family() string                      { return "" }
func (l *leaseElectorate) Attach(w elect.Wire, _ *slog.Logger) { l.w = w }
func (l *leaseElectorate) Send(elect.Action) (int, error)      { return -1, nil }
func (l *leaseElectorate) Why(*api.Heard, bool) string         { return l.state.String() + ": lease" }
func (l *leaseElectorate) Status(*api.VHID)                    {}
func (l *leaseElectorate) Rank() (int, int)                    { return 0, 0 }
func (l *leaseElectorate) Heard(time.Time, elect.Event) (api.Heard, netip.Addr, int, bool) {
	return api.Heard{}, netip.Addr{}, 0, false
}
func (l *leaseElectorate) Reconfigure(time.Time, elect.Electorate) ([]elect.Action, bool, string, error) {
	return nil, false, "", nil
}

// TestPacketlessElectorate: an electorate that sends no packets and is
// driven by events from its own goroutine (Wire.Post) runs on the one
// surface: it takes the addresses when it wins, and releases them at its
// fence deadline (a Tick) and when it loses.
func TestPacketlessElectorate(t *testing.T) {
	f := newFakeHost()
	d, err := New(testConfig(), f.host(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	l := &leaseElectorate{}
	v := d.vhosts[0]
	v.el = l
	l.Attach(&v.wire, v.log)
	ctx, cancel := context.WithCancel(context.Background())
	done, _ := started(t, d, f, ctx)
	defer func() { cancel(); <-done }()
	waitState := func(held bool) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for f.holds(vip50) != held {
			if time.Now().After(deadline) {
				t.Fatalf("holds %v, want %v", !held, held)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	n := f.count()
	if err := l.w.Post(ctx, leaseEvent{won: true, fence: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	waitState(true)
	if err := l.w.Post(ctx, leaseEvent{won: false}); err != nil {
		t.Fatal(err)
	}
	waitState(false)
	if err := l.w.Post(ctx, leaseEvent{won: true, fence: time.Now().Add(200 * time.Millisecond)}); err != nil {
		t.Fatal(err)
	}
	waitState(true)
	waitState(false) // the fence deadline passed: released on its own
	for _, op := range f.opsSince(n) {
		if len(op) > 6 && op[:6] == "advert" {
			t.Errorf("a packetless electorate sent %q", op)
		}
	}
	if st, _ := d.Status(ctx); st.VHIDs[0].Protocol != "lease" || st.VHIDs[0].State != "BACKUP" {
		t.Errorf("status %+v", st.VHIDs[0])
	}
}

// Lease records the call and holds the addresses.
func (f *fakeHost) Lease(ifname string, want []netip.Prefix, valid time.Duration) error {
	f.record("lease %s %v %v", ifname, want, valid)
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, p := range want {
		f.held[p] = true
	}
	return nil
}

// TestLeasedAddresses: addresses held under a fence deadline (an etcd
// holder's Until) get a lifetime of their own that ends at least a second
// before it, rounded down, renewed by each HoldAddresses; never the
// daemon's lifetime (no Set adding them, no advert-driven Refresh); and
// once less than a second of lifetime would remain they are removed, also
// when the kernel's removal of them is reported (no restore).
func TestLeasedAddresses(t *testing.T) {
	f := newFakeHost()
	d, err := New(testConfig(), f.host(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	l := &leaseElectorate{until: true}
	v := d.vhosts[0]
	v.el = l
	l.Attach(&v.wire, v.log)
	ctx, cancel := context.WithCancel(context.Background())
	done, sub := started(t, d, f, ctx)
	defer func() { cancel(); <-done }()
	post := func(ev elect.Event) {
		t.Helper()
		if err := l.w.Post(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	expect := func(n int, want ...string) {
		t.Helper()
		ops := f.opsSince(n)
		for _, w := range want {
			if !slices.Contains(ops, w) {
				t.Errorf("ops %q, want %q among them", ops, w)
			}
		}
		for _, op := range ops {
			if strings.HasPrefix(op, "refresh") || strings.HasPrefix(op, "set") && strings.Contains(op, "want=[192.0.2.50/32]") {
				t.Errorf("%q: the daemon's lifetime given to leased addresses", op)
			}
		}
	}
	n := f.count()
	post(leaseEvent{won: true, fence: time.Now().Add(3500 * time.Millisecond)})
	expect(n, "lease eth0 [192.0.2.50/32] 2s")
	if !f.holds(vip50) {
		t.Fatal("not held")
	}
	n = f.count()
	post(leaseEvent{won: true, fence: time.Now().Add(10500 * time.Millisecond)})
	expect(n, "lease eth0 [192.0.2.50/32] 9s")
	// A renewal of a held lease renews the lifetime alone: no sync of the
	// interface (a dump of its addresses every second on an idle holder).
	for _, op := range f.opsSince(n) {
		if strings.HasPrefix(op, "set") {
			t.Errorf("a renewal of the lease synced the interface: %q", f.opsSince(n))
		}
	}
	// The kernel removed it (a late renewal): put back, with the lifetime
	// to D.
	n = f.count()
	f.remove(vip50)
	sub.send(Change{Addr: AddrChange{LinkIndex: 2, Prefix: vip50, Removed: true}})
	deadline := time.Now().Add(5 * time.Second)
	for !f.holds(vip50) && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	expect(n, "lease eth0 [192.0.2.50/32] 9s")
	// Less than two seconds to D: not renewed but removed, and not put
	// back when the kernel reports it gone.
	n = f.count()
	post(leaseEvent{won: true, fence: time.Now().Add(1900 * time.Millisecond)})
	if f.holds(vip50) {
		t.Errorf("held with under a second of lifetime left: %q", f.opsSince(n))
	}
	for _, op := range f.opsSince(n) {
		if strings.HasPrefix(op, "lease") {
			t.Errorf("%q with under a second of lifetime left", op)
		}
	}
	sub.send(Change{Addr: AddrChange{LinkIndex: 2, Prefix: vip50, Removed: true}})
	time.Sleep(200 * time.Millisecond) // the change handled
	if f.holds(vip50) {
		t.Errorf("put back with under a second of lifetime left: %q", f.opsSince(n))
	}
}
