package etcd

import (
	"testing"
	"time"
)

func TestAddressLifetime(t *testing.T) {
	for _, tc := range []struct {
		left time.Duration
		want time.Duration
		ok   bool
	}{
		{8 * time.Second, 7 * time.Second, true},
		{8*time.Second - time.Nanosecond, 6 * time.Second, true},
		{2 * time.Second, time.Second, true},
		{2*time.Second - time.Millisecond, 0, false},
		{0, 0, false},
		{-time.Second, 0, false},
	} {
		got, ok := AddressLifetime(t0.Add(tc.left), t0)
		if got != tc.want || ok != tc.ok {
			t.Errorf("%v left: got %v %v, want %v %v", tc.left, got, ok, tc.want, tc.ok)
		}
		// The lifetime always ends at least a second before D.
		if ok && !t0.Add(got).Before(t0.Add(tc.left-time.Second+time.Nanosecond)) {
			t.Errorf("%v left: lifetime %v ends less than a second before D", tc.left, got)
		}
	}
}

// TestRenewLifetimeAt: a renewal just before the whole seconds left drop
// gives a lifetime that ends about a second before D, never after it.
func TestRenewLifetimeAt(t *testing.T) {
	d := time.Unix(1000, 0)
	for _, tc := range []struct {
		left, want time.Duration // before D: now, and the renewal (0: none)
	}{
		{2990 * time.Millisecond, 2050 * time.Millisecond},
		{2500 * time.Millisecond, 2050 * time.Millisecond},
		{2040 * time.Millisecond, 0},
		{2050 * time.Millisecond, 0},
		{3500 * time.Millisecond, 3050 * time.Millisecond},
		{1500 * time.Millisecond, 0},
	} {
		now := d.Add(-tc.left)
		at := RenewLifetimeAt(d, now)
		if tc.want == 0 {
			if !at.IsZero() {
				t.Errorf("%v before D: renew at %v before D, want none", tc.left, d.Sub(at))
			}
			continue
		}
		if got := d.Sub(at); got != tc.want {
			t.Errorf("%v before D: renew %v before D, want %v", tc.left, got, tc.want)
		}
		lft, ok := AddressLifetime(d, at)
		if !ok || at.Add(lft).After(d.Add(-time.Second)) || at.Add(lft).Before(d.Add(-time.Second-leaseSlack)) {
			t.Errorf("%v before D: lifetime %v from the renewal ends %v before D", tc.left, lft, d.Sub(at.Add(lft)))
		}
	}
}
