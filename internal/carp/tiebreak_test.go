package carp

import (
	"net/netip"
	"testing"
)

// TestPreferredSource: ucarp's order on a little-endian host, the last
// byte weighing most; an IPv4-mapped address is its IPv4 address.
func TestPreferredSource(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{"192.0.2.21", "192.0.2.22", true},
		{"192.0.2.22", "192.0.2.21", false},
		{"192.0.2.22", "192.0.2.22", false},
		{"198.51.100.9", "192.0.2.22", true}, // numerically greater, last byte lower
		{"192.0.1.30", "192.0.2.22", false},  // numerically lower, last byte greater
		{"192.0.1.22", "192.0.2.22", true},   // last bytes equal: the third decides
		{"::ffff:192.0.2.21", "192.0.2.22", true},
		{"fe80::21", "fe80::22", true},
		{"fe80::1:22", "fe80::2:21", false},
	} {
		if got := PreferredSource(netip.MustParseAddr(tc.a), netip.MustParseAddr(tc.b)); got != tc.want {
			t.Errorf("PreferredSource(%s, %s) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}
