package advsock

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/carpd/carpd/internal/carp"
	"golang.org/x/net/ipv6"
)

// capture6 is a plain raw IPv6 protocol-112 socket that reports the header
// fields in control messages.
type capture6 struct{ *ipv6.PacketConn }

func openCapture6() (capture, error) {
	c, err := net.ListenPacket("ip6:112", "::")
	if err != nil {
		return nil, err
	}
	pc := ipv6.NewPacketConn(c)
	if err := pc.SetControlMessage(ipv6.FlagTrafficClass|ipv6.FlagHopLimit|ipv6.FlagDst, true); err != nil {
		pc.Close()
		return nil, err
	}
	return capture6{pc}, nil
}

func (c capture6) next(src netip.Addr, timeout time.Duration) (wire, error) {
	if err := c.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		return wire{}, err
	}
	buf := make([]byte, 2048)
	for {
		n, cm, from, err := c.ReadFrom(buf)
		if err != nil {
			return wire{}, err
		}
		if a, ok := addr6FromIP(from.(*net.IPAddr).IP); !ok || a != src || cm == nil {
			continue
		}
		dst, _ := addr6FromIP(cm.Dst)
		return wire{Class: cm.TrafficClass, TTL: cm.HopLimit, Dst: dst, PayloadLen: n}, nil
	}
}

var ipv6Family = family{
	listen:      func() (advConn, error) { return ListenIPv6(0xE0) },
	openCapture: openCapture6,
	group:       carp.GroupIPv6,
	wire: func(dst netip.Addr, n int) wire {
		return wire{Class: 0xE0, TTL: 255, Dst: dst, PayloadLen: n}
	},
}

// TestIPv6Advert runs the socket test over IPv6 between two lab hosts. The
// sender's interface holds a virtual address, listed first, and a global
// address: SourceIPv6To must pick the link-local address, and the adverts
// carry it, to the multicast group and to the receiver's global address
// alike (the kernel would not choose a link-local source for a global
// destination by itself, so this shows the source is the one given).
func TestIPv6Advert(t *testing.T) {
	vip := netip.MustParseAddr("2001:db8::50")
	a, b, idxA, idxB := twoHosts(t,
		[]string{"2001:db8::50/128", "2001:db8::1/64"},
		[]string{"2001:db8::2/64"})
	var src netip.Addr
	if err := a.Do(func() (err error) {
		src, err = SourceIPv6To(idxA, carp.GroupIPv6, []netip.Addr{vip})
		return err
	}); err != nil {
		t.Fatalf("SourceIPv6To: %v", err)
	}
	held, err := a.HoldsOn("eth1", src)
	if err != nil {
		t.Fatal(err)
	}
	if !src.IsLinkLocalUnicast() || src.Zone() != "" || !held {
		t.Fatalf("SourceIPv6To() = %v, want eth1's link-local address without zone", src)
	}
	testAdverts(t, ipv6Family, a, b, idxA, idxB, src, netip.MustParseAddr("2001:db8::2"))
}
