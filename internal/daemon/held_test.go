package daemon

import (
	"context"
	"net/netip"
	"slices"
	"testing"
	"time"
)

// List is the kernel's view of eth0's addresses (AddressLister).
func (f *fakeHost) List(ifname string) ([]netip.Prefix, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []netip.Prefix
	for p, ok := range f.held {
		if ok && ifname == eth0.Name {
			out = append(out, p)
		}
	}
	return out, nil
}

// TestStatusShowsHeldAddresses: with manage-addresses = false, a MASTER
// whose up script did not add the address shows none; once the interface
// holds it (as the script adds it, /24), status shows it so.
func TestStatusShowsHeldAddresses(t *testing.T) {
	f := newFakeHost()
	d, err := New(testConfig(), f.host(), Options{UnmanagedAddresses: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, mon := started(t, d, f, ctx)
	bg := context.Background()
	st, err := d.Force(bg, 100, "", "master")
	if err != nil || st.VHIDs[0].State != "MASTER" {
		t.Fatalf("Force: %v", err)
	}
	if got := st.VHIDs[0].Addresses; len(got) != 0 {
		t.Errorf("a MASTER whose interface holds no VIP shows %v", got)
	}
	f.mu.Lock()
	f.held[netip.MustParsePrefix("192.0.2.50/24")] = true
	f.held[netip.MustParsePrefix("198.51.100.7/24")] = true // not the vhid's
	f.mu.Unlock()
	// The kernel tells of each address added; the status the loop
	// publishes then shows what the interface holds.
	mon.send(Change{Addr: AddrChange{LinkIndex: 2, Prefix: netip.MustParsePrefix("192.0.2.50/24")}})
	mon.send(Change{Addr: AddrChange{LinkIndex: 2, Prefix: netip.MustParsePrefix("198.51.100.7/24")}})
	want := []string{"192.0.2.50/24"}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		st, _ = d.Status(bg)
		if got := st.VHIDs[0].Addresses; slices.Equal(got, want) {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("status shows %v, want the held 192.0.2.50/24", got)
		}
	}
}

func TestHeldOf(t *testing.T) {
	want := []netip.Prefix{netip.MustParsePrefix("192.0.2.50/32"), netip.MustParsePrefix("2001:db8::50/64")}
	held := []netip.Prefix{netip.MustParsePrefix("2001:db8::50/128"), netip.MustParsePrefix("192.0.2.1/24")}
	if got := heldOf(want, held); !slices.Equal(got, []string{"2001:db8::50/128"}) {
		t.Errorf("heldOf = %v", got)
	}
}
