package advsock

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/net/ipv4"
)

// rawCapture opens, in the current namespace, a plain raw protocol-112
// socket that sees every protocol-112 datagram delivered locally, header
// included.
func rawCapture() (*ipv4.RawConn, error) {
	pc, err := net.ListenPacket("ip4:112", "0.0.0.0")
	if err != nil {
		return nil, err
	}
	raw, err := ipv4.NewRawConn(pc)
	if err != nil {
		pc.Close()
		return nil, err
	}
	return raw, nil
}

// readHeader reads datagrams from c until one comes from src, and returns
// its header.
func readHeader(c *ipv4.RawConn, src netip.Addr, timeout time.Duration) (*ipv4.Header, error) {
	if err := c.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		return nil, err
	}
	buf := make([]byte, 2048)
	for {
		h, _, _, err := c.ReadFrom(buf)
		if err != nil {
			return nil, err
		}
		if a, ok := addrFromIP(h.Src); ok && a == src {
			return h, nil
		}
	}
}

// TestIPv4Advert sends advertisements between two namespaces cabled by a
// veth pair and checks what the receiver's IPv4Conn reports and what is on
// the wire: TTL 255, TOS, DF, protocol 112, source = the sender's primary
// address (not the VIP it also holds), the receiving interface's index,
// multicast and unicast destinations, no loopback to the sender.
func TestIPv4Advert(t *testing.T) {
	requireRoot(t)
	a := newNS(t, "advA")
	b := newNS(t, "advB")
	// A spare veth pair first, so that vB's index differs from vA's and a
	// wrong IfIndex cannot pass by chance.
	b.ip(t, "link", "add", "spare0", "type", "veth", "peer", "name", "spare1")
	veth(t, a, "vA", b, "vB")
	// The VIP first, so that it is listed before the primary and must be
	// excluded; then the primary; then a secondary of the primary's subnet.
	a.ip(t, "addr", "add", "192.0.2.50/32", "dev", "vA")
	a.ip(t, "addr", "add", "192.0.2.1/24", "dev", "vA")
	a.ip(t, "addr", "add", "192.0.2.3/24", "dev", "vA")
	b.ip(t, "addr", "add", "192.0.2.2/24", "dev", "vB")
	idxA, idxB := a.ifindex(t, "vA"), b.ifindex(t, "vB")
	if idxA == idxB {
		t.Fatalf("vA and vB both have index %d", idxA)
	}
	vip := netip.MustParseAddr("192.0.2.50")
	peer := netip.MustParseAddr("192.0.2.2")

	var src netip.Addr
	var sender *IPv4Conn
	var loopCap *ipv4.RawConn
	err := a.do(func() error {
		var err error
		if src, err = PrimaryIPv4(idxA, []netip.Addr{vip}); err != nil {
			return err
		}
		if sender, err = ListenIPv4(DefaultTOS); err != nil {
			return err
		}
		if err := sender.Join(idxA); err != nil {
			return err
		}
		if err := sender.Join(idxA); err != nil { // joining twice is fine
			return err
		}
		loopCap, err = rawCapture()
		return err
	})
	if sender != nil {
		t.Cleanup(func() { sender.Close() })
	}
	if loopCap != nil {
		t.Cleanup(func() { loopCap.Close() })
	}
	if err != nil {
		t.Fatalf("sender side: %v", err)
	}
	if want := netip.MustParseAddr("192.0.2.1"); src != want {
		t.Fatalf("PrimaryIPv4() = %v, want %v", src, want)
	}

	var recv *IPv4Conn
	var capture *ipv4.RawConn
	err = b.do(func() error {
		var err error
		if recv, err = ListenIPv4(DefaultTOS); err != nil {
			return err
		}
		if err := recv.Join(idxB); err != nil {
			return err
		}
		capture, err = rawCapture()
		return err
	})
	if capture != nil {
		t.Cleanup(func() { capture.Close() })
	}
	if err != nil {
		if recv != nil {
			recv.Close()
		}
		t.Fatalf("receiver side: %v", err)
	}
	type result struct {
		p   Packet
		err error
	}
	got := make(chan result, 16)
	go func() {
		for {
			p, err := recv.ReadPacket()
			got <- result{p, err}
			if err != nil {
				return
			}
		}
	}()
	closed := false
	t.Cleanup(func() {
		if !closed {
			recv.Close()
		}
	})

	// receive sends payload to dst until the receiver reports a datagram
	// (the first ones may be lost while the veth comes up) and returns it.
	receive := func(dst netip.Addr, payload []byte) Packet {
		t.Helper()
		deadline := time.After(10 * time.Second)
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			if err := sender.WriteAdvert(idxA, src, dst, payload); err != nil {
				t.Fatalf("WriteAdvert(%d, %v, %v): %v", idxA, src, dst, err)
			}
			select {
			case r := <-got:
				if r.err != nil {
					t.Fatalf("ReadPacket: %v", r.err)
				}
				return r.p
			case <-tick.C:
			case <-deadline:
				t.Fatalf("no datagram to %v received within 10s", dst)
			}
		}
	}
	drain := func() {
		for {
			select {
			case <-got:
			case <-time.After(300 * time.Millisecond):
				return
			}
		}
	}

	payload := make([]byte, 36)
	for i := range payload {
		payload[i] = byte(0x21 + i)
	}
	cmpAddr := cmp.Comparer(func(x, y netip.Addr) bool { return x == y })

	t.Run("multicast", func(t *testing.T) {
		p := receive(GroupIPv4, payload)
		want := Packet{IfIndex: idxB, Src: src, Dst: GroupIPv4, TTL: 255, Payload: payload}
		if diff := cmp.Diff(want, p, cmpAddr); diff != "" {
			t.Errorf("received packet mismatch (-want +got):\n%s", diff)
		}
		h, err := readHeader(capture, src, 5*time.Second)
		if err != nil {
			t.Fatalf("capture: %v", err)
		}
		checkHeader(t, h, GroupIPv4, len(payload))
	})

	t.Run("no loopback", func(t *testing.T) {
		// The sender's namespace is a member of 224.0.0.18 on vA, so with
		// multicast loopback on, its own adverts would come back to it.
		h, err := readHeader(loopCap, src, time.Second)
		if err == nil {
			t.Fatalf("sender's namespace received its own advert: %+v", h)
		}
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("capture in sender namespace: %v", err)
		}
	})

	t.Run("unicast", func(t *testing.T) {
		drain()
		for {
			// Drop the remaining datagrams of the multicast subtest.
			if _, err := readHeader(capture, src, 300*time.Millisecond); err != nil {
				break
			}
		}
		p := receive(peer, payload[:8])
		want := Packet{IfIndex: idxB, Src: src, Dst: peer, TTL: 255, Payload: payload[:8]}
		if diff := cmp.Diff(want, p, cmpAddr); diff != "" {
			t.Errorf("received packet mismatch (-want +got):\n%s", diff)
		}
		h, err := readHeader(capture, src, 5*time.Second)
		if err != nil {
			t.Fatalf("capture: %v", err)
		}
		checkHeader(t, h, peer, 8)
	})

	t.Run("leave", func(t *testing.T) {
		drain()
		for i := 0; i < 2; i++ { // leaving twice is fine
			if err := recv.Leave(idxB); err != nil {
				t.Fatalf("Leave #%d: %v", i+1, err)
			}
		}
		if _, err := readHeader(capture, src, 300*time.Millisecond); err == nil {
			t.Log("dropped a late datagram")
		}
		if err := sender.WriteAdvert(idxA, src, GroupIPv4, payload); err != nil {
			t.Fatalf("WriteAdvert: %v", err)
		}
		// No socket in the receiver's namespace is a member any more, so
		// the kernel drops the advert before any raw socket sees it.
		if h, err := readHeader(capture, src, time.Second); err == nil {
			t.Fatalf("advert to %v delivered after Leave: %+v", GroupIPv4, h)
		}
		select {
		case r := <-got:
			t.Fatalf("ReadPacket after Leave: %+v, %v", r.p, r.err)
		default:
		}
	})

	t.Run("close unblocks read", func(t *testing.T) {
		drain()
		closed = true
		if err := recv.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		select {
		case r := <-got:
			if !errors.Is(r.err, net.ErrClosed) {
				t.Errorf("ReadPacket after Close: got %+v, %v; want net.ErrClosed", r.p, r.err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("ReadPacket still blocked 5s after Close")
		}
	})
}

// checkHeader checks the IPv4 header of an advert as received.
func checkHeader(t *testing.T, h *ipv4.Header, dst netip.Addr, payloadLen int) {
	t.Helper()
	type hdr struct {
		Version, Len, TOS, TotalLen, TTL, Protocol int
		DF                                         bool
		Dst                                        string
	}
	want := hdr{Version: 4, Len: 20, TOS: 0xE0, TotalLen: 20 + payloadLen, TTL: 255, Protocol: 112, DF: true, Dst: dst.String()}
	got := hdr{Version: h.Version, Len: h.Len, TOS: h.TOS, TotalLen: h.TotalLen, TTL: h.TTL, Protocol: h.Protocol,
		DF: h.Flags&ipv4.DontFragment != 0, Dst: h.Dst.String()}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("IPv4 header mismatch (-want +got):\n%s", diff)
	}
}
