package electorate

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/carpd/carpd/internal/config"
)

// TestNew: a CARP vhid is one electorate of every family; a VRRP vhid one
// per family of its addresses; a bad one is refused with its origin.
func TestNew(t *testing.T) {
	p := netip.MustParsePrefix
	cfg := &config.Config{}
	counter := func() uint64 { return 7 }
	both := []netip.Prefix{p("192.0.2.50/32"), p("2001:db8::50/64")}
	for _, tc := range []struct {
		name string
		vc   config.VHID
		want []string // proto/family
		err  string
	}{
		{"carp", config.VHID{VHID: 1, AdvBase: 1, Addresses: both}, []string{"carp/"}, ""},
		{"vrrp", config.VHID{VHID: 1, Version: config.VersionVRRP, VRRPPriority: 100, VRRPInterval: 100, Addresses: both},
			[]string{"vrrp/inet", "vrrp/inet6"}, ""},
		{"vrrp v6", config.VHID{VHID: 1, Version: config.VersionVRRP, VRRPPriority: 100, VRRPInterval: 100, Addresses: both[1:]},
			[]string{"vrrp/inet6"}, ""},
		{"bad advbase", config.VHID{VHID: 1, Addresses: both, Origin: "x.toml:3"}, nil, "x.toml:3"},
		{"vrrp no address", config.VHID{VHID: 1, Version: config.VersionVRRP, VRRPPriority: 100, VRRPInterval: 100, Origin: "x.toml:4"}, nil, "x.toml:4"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			els, err := New(cfg, &tc.vc, counter, nil)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("New = %v, want an error with %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, el := range els {
				got = append(got, el.Proto()+"/"+el.Family())
			}
			if strings.Join(got, " ") != strings.Join(tc.want, " ") {
				t.Errorf("electorates %v, want %v", got, tc.want)
			}
		})
	}
}
