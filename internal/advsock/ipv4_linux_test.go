package advsock

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/carpd/carpd/internal/carp"
	"golang.org/x/net/ipv4"
)

// capture4 is a plain raw IPv4 protocol-112 socket, header included.
type capture4 struct{ *ipv4.RawConn }

func openCapture4() (capture, error) {
	pc, err := net.ListenPacket("ip4:112", "0.0.0.0")
	if err != nil {
		return nil, err
	}
	raw, err := ipv4.NewRawConn(pc)
	if err != nil {
		pc.Close()
		return nil, err
	}
	return capture4{raw}, nil
}

func (c capture4) next(src netip.Addr, timeout time.Duration) (wire, error) {
	if err := c.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		return wire{}, err
	}
	buf := make([]byte, 2048)
	for {
		h, _, _, err := c.ReadFrom(buf)
		if err != nil {
			return wire{}, err
		}
		if a, ok := addrFromIP(h.Src); !ok || a != src {
			continue
		}
		if h.Version != 4 || h.Len != ipv4.HeaderLen || h.Protocol != carp.Protocol {
			return wire{}, &net.ParseError{Type: "CARP IPv4 header", Text: h.String()}
		}
		dst, _ := addrFromIP(h.Dst)
		return wire{Class: h.TOS, TTL: h.TTL, DF: h.Flags&ipv4.DontFragment != 0, Dst: dst, PayloadLen: h.TotalLen - h.Len}, nil
	}
}

var ipv4Family = family{
	listen:      func() (advConn, error) { return ListenIPv4(0xE0) },
	openCapture: openCapture4,
	group:       carp.GroupIPv4,
	wire: func(dst netip.Addr, n int) wire {
		return wire{Class: 0xE0, TTL: 255, DF: true, Dst: dst, PayloadLen: n}
	},
}

// TestIPv4Advert runs the socket test over IPv4 between two lab hosts. The
// sender's interface holds a virtual address listed before its primary, and
// a secondary: PrimaryIPv4 must pick the primary, and the adverts carry it.
func TestIPv4Advert(t *testing.T) {
	vip := netip.MustParseAddr("192.0.2.50")
	a, b, idxA, idxB := twoHosts(t,
		[]string{"192.0.2.50/32", "192.0.2.1/24", "192.0.2.3/24"},
		[]string{"192.0.2.2/24"})
	var src netip.Addr
	if err := a.Do(func() (err error) {
		src, err = PrimaryIPv4(idxA, []netip.Addr{vip})
		return err
	}); err != nil {
		t.Fatalf("PrimaryIPv4: %v", err)
	}
	if want := netip.MustParseAddr("192.0.2.1"); src != want {
		t.Fatalf("PrimaryIPv4() = %v, want %v", src, want)
	}
	testAdverts(t, ipv4Family, a, b, idxA, idxB, src, netip.MustParseAddr("192.0.2.2"))
}
