package advsock

import (
	"net/netip"
	"testing"

	"github.com/carpd/carpd/internal/carp"
)

// TestWriteAdvertAllocs: sending an advert allocates nothing, IPv4 and
// IPv6 (a master sends one at every interval; a VRRP master at 10 ms a
// hundred a second).
func TestWriteAdvertAllocs(t *testing.T) {
	a, _, idxA, _ := twoHosts(t, []string{"192.0.2.1/24", "2001:db8::1/64"}, []string{"192.0.2.2/24"})
	var c4 *IPv4Conn
	var c6 *IPv6Conn
	if err := a.Do(func() (err error) {
		if c4, err = ListenIPv4(0xc0); err != nil {
			return err
		}
		c6, err = ListenIPv6(0xc0)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer c4.Close()
	defer c6.Close()
	payload := carp.Advert{VHID: 1, AdvBase: 1, Counter: 1}.Marshal()
	src4 := netip.MustParseAddr("192.0.2.1")
	for _, tc := range []struct {
		name string
		send func() error
	}{
		{"IPv4", func() error { return c4.WriteAdvert(idxA, src4, carp.GroupIPv4, payload) }},
		{"IPv6", func() error { return c6.WriteAdvert(idxA, netip.Addr{}, carp.GroupIPv6, payload) }},
	} {
		if err := tc.send(); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if n := testing.AllocsPerRun(100, func() {
			if err := tc.send(); err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
		}); n != 0 {
			t.Errorf("%s: WriteAdvert: %v allocs, want 0", tc.name, n)
		}
	}
}
