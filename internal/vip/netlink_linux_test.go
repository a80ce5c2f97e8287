package vip

import (
	"net"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

func TestNetlinkAddr(t *testing.T) {
	tests := []struct {
		name string
		r    addReq
		want netlink.Addr
	}{
		{
			name: "IPv4 permanent",
			r:    addReq{Prefix: netip.MustParsePrefix("192.0.2.50/24")},
			want: netlink.Addr{IPNet: &net.IPNet{IP: net.IP{192, 0, 2, 50}, Mask: net.CIDRMask(24, 32)}},
		},
		{
			name: "IPv6 without DAD, finite lifetimes",
			r:    addReq{Prefix: netip.MustParsePrefix("2001:db8::50/64"), NoDAD: true, Lifetimes: true, ValidLft: 30, PreferredLft: 10},
			want: netlink.Addr{
				IPNet: &net.IPNet{IP: net.ParseIP("2001:db8::50"), Mask: net.CIDRMask(64, 128)},
				Flags: unix.IFA_F_NODAD, ValidLft: 30, PreferedLft: 10,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(&tt.want, netlinkAddr(tt.r)); diff != "" {
				t.Errorf("netlinkAddr() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPrefixOf(t *testing.T) {
	tests := []struct {
		name   string
		a      netlink.Addr
		want   netip.Prefix
		wantOK bool
	}{
		{
			name:   "IPv4 in 16-byte form keeps the host bits",
			a:      netlink.Addr{IPNet: &net.IPNet{IP: net.ParseIP("192.0.2.50"), Mask: net.CIDRMask(24, 32)}},
			want:   netip.MustParsePrefix("192.0.2.50/24"),
			wantOK: true,
		},
		{
			name:   "IPv6",
			a:      netlink.Addr{IPNet: &net.IPNet{IP: net.ParseIP("2001:db8::50"), Mask: net.CIDRMask(128, 128)}},
			want:   netip.MustParsePrefix("2001:db8::50/128"),
			wantOK: true,
		},
		{name: "no address", a: netlink.Addr{}},
		{
			name: "mask of the wrong family",
			a:    netlink.Addr{IPNet: &net.IPNet{IP: net.ParseIP("2001:db8::50"), Mask: net.CIDRMask(24, 32)}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := prefixOf(tt.a)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("prefixOf() = %v, %v; want %v, %v", got, ok, tt.want, tt.wantOK)
			}
		})
	}
}
