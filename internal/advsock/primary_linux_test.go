package advsock

import (
	"errors"
	"net"
	"net/netip"
	"testing"

	"github.com/carpd/carpd/internal/carp"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

func nlAddr(t *testing.T, s string, flags int) netlink.Addr {
	t.Helper()
	ip, ipnet, err := net.ParseCIDR(s)
	if err != nil {
		t.Fatal(err)
	}
	ipnet.IP = ip
	return netlink.Addr{IPNet: ipnet, Flags: flags}
}

func TestPickPrimaryIPv4(t *testing.T) {
	vip := netip.MustParseAddr("192.0.2.50")
	tests := []struct {
		name    string
		addrs   []netlink.Addr
		exclude []netip.Addr
		want    netip.Addr
		wantErr error
	}{
		{
			name:  "first plain address",
			addrs: []netlink.Addr{nlAddr(t, "192.0.2.1/24", 0), nlAddr(t, "198.51.100.1/24", 0)},
			want:  netip.MustParseAddr("192.0.2.1"),
		},
		{
			name:    "VIP listed first is skipped",
			addrs:   []netlink.Addr{nlAddr(t, "192.0.2.50/32", 0), nlAddr(t, "192.0.2.1/24", 0)},
			exclude: []netip.Addr{vip},
			want:    netip.MustParseAddr("192.0.2.1"),
		},
		{
			name:    "IPv4-mapped exclude matches too",
			addrs:   []netlink.Addr{nlAddr(t, "192.0.2.50/32", 0), nlAddr(t, "192.0.2.1/24", 0)},
			exclude: []netip.Addr{netip.MustParseAddr("::ffff:192.0.2.50")},
			want:    netip.MustParseAddr("192.0.2.1"),
		},
		{
			name: "secondary and deprecated are skipped",
			addrs: []netlink.Addr{
				nlAddr(t, "192.0.2.9/24", unix.IFA_F_DEPRECATED),
				nlAddr(t, "192.0.2.8/24", unix.IFA_F_SECONDARY),
				nlAddr(t, "203.0.113.1/24", unix.IFA_F_PERMANENT),
			},
			want: netip.MustParseAddr("203.0.113.1"),
		},
		{
			name:    "only the VIP",
			addrs:   []netlink.Addr{nlAddr(t, "192.0.2.50/24", 0)},
			exclude: []netip.Addr{vip},
			wantErr: ErrNoPrimary,
		},
		{name: "no address", wantErr: ErrNoPrimary},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := pickPrimaryIPv4(tt.addrs, tt.exclude)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("pickPrimaryIPv4() error = %v, want %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("pickPrimaryIPv4() = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestPickSourceIPv6(t *testing.T) {
	vip := netip.MustParseAddr("2001:db8::50")
	llVIP := netip.MustParseAddr("fe80::50")
	tests := []struct {
		name    string
		addrs   []netlink.Addr
		exclude []netip.Addr
		want    netip.Addr
		wantErr error
	}{
		{
			name: "link-local preferred over a global listed first, as Linux lists them",
			addrs: []netlink.Addr{
				nlAddr(t, "2001:db8::1/64", unix.IFA_F_PERMANENT),
				nlAddr(t, "fe80::1/64", unix.IFA_F_PERMANENT),
			},
			want: netip.MustParseAddr("fe80::1"),
		},
		{
			name:  "only global: the global",
			addrs: []netlink.Addr{nlAddr(t, "2001:db8::1/64", 0), nlAddr(t, "2001:db8:1::1/64", 0)},
			want:  netip.MustParseAddr("2001:db8::1"),
		},
		{
			name: "VIPs skipped, link-local VIP included",
			addrs: []netlink.Addr{
				nlAddr(t, "2001:db8::50/64", 0),
				nlAddr(t, "fe80::50/64", 0),
				nlAddr(t, "2001:db8::1/64", 0),
			},
			exclude: []netip.Addr{vip, llVIP.WithZone("eth0")},
			want:    netip.MustParseAddr("2001:db8::1"),
		},
		{
			name: "tentative, failed and deprecated skipped",
			addrs: []netlink.Addr{
				nlAddr(t, "fe80::1/64", unix.IFA_F_TENTATIVE),
				nlAddr(t, "fe80::2/64", unix.IFA_F_DADFAILED),
				nlAddr(t, "fe80::3/64", unix.IFA_F_DEPRECATED),
				nlAddr(t, "2001:db8::9/64", unix.IFA_F_TENTATIVE),
				nlAddr(t, "2001:db8::1/64", 0),
				nlAddr(t, "fe80::4/64", unix.IFA_F_OPTIMISTIC),
			},
			want: netip.MustParseAddr("fe80::4"),
		},
		{
			name:    "only the VIP",
			addrs:   []netlink.Addr{nlAddr(t, "2001:db8::50/64", 0)},
			exclude: []netip.Addr{vip},
			wantErr: ErrNoSourceIPv6,
		},
		{
			name:    "only tentative: retry later",
			addrs:   []netlink.Addr{nlAddr(t, "fe80::1/64", unix.IFA_F_TENTATIVE)},
			wantErr: ErrNoSourceIPv6,
		},
		{
			name:    "IPv4 and loopback are not sources",
			addrs:   []netlink.Addr{nlAddr(t, "192.0.2.1/24", 0), nlAddr(t, "::1/128", 0)},
			wantErr: ErrNoSourceIPv6,
		},
		{name: "no address", wantErr: ErrNoSourceIPv6},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := pickSourceIPv6(tt.addrs, tt.exclude, true)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("pickSourceIPv6() error = %v, want %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("pickSourceIPv6() = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestPickSourceIPv6Global: for a peer beyond the link, an address of wider
// scope is preferred, and the link-local one is the fallback.
func TestPickSourceIPv6Global(t *testing.T) {
	addrs := []netlink.Addr{
		nlAddr(t, "fe80::1/64", 0),
		nlAddr(t, "2001:db8::50/64", 0), // the VIP
		nlAddr(t, "2001:db8::1/64", 0),
	}
	vip := []netip.Addr{netip.MustParseAddr("2001:db8::50")}
	if got, err := pickSourceIPv6(addrs, vip, false); err != nil || got != netip.MustParseAddr("2001:db8::1") {
		t.Errorf("global preferred: %v, %v; want 2001:db8::1", got, err)
	}
	if got, err := pickSourceIPv6(addrs[:2], vip, false); err != nil || got != netip.MustParseAddr("fe80::1") {
		t.Errorf("no global: %v, %v; want the link-local fe80::1", got, err)
	}
	if got, err := pickSourceIPv6(addrs, vip, true); err != nil || got != netip.MustParseAddr("fe80::1") {
		t.Errorf("link-local preferred: %v, %v; want fe80::1", got, err)
	}
}

// TestSourceIPv6UnknownInterface checks that SourceIPv6To reports an
// interface that does not exist.
func TestSourceIPv6UnknownInterface(t *testing.T) {
	if a, err := SourceIPv6To(1<<30, carp.GroupIPv6, nil); err == nil {
		t.Errorf("SourceIPv6To(unknown ifindex) = %v, want an error", a)
	}
}
