package advsock

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/carpd/carpd/internal/lab"
	"github.com/google/go-cmp/cmp"
)

// advConn is what the socket tests use of IPv4Conn and IPv6Conn.
type advConn interface {
	ReadPacket() (Packet, error)
	WriteAdvert(ifindex int, src, dst netip.Addr, payload []byte) error
	Join(ifindex int) error
	Close() error
}

// wire is what a plain raw socket sees of an advert's IP header.
type wire struct {
	// Class is the IPv4 TOS or the IPv6 traffic class.
	Class int
	// TTL is the IPv4 TTL or the IPv6 hop limit.
	TTL int
	// DF is the IPv4 don't-fragment flag; always false for IPv6.
	DF bool
	// Dst is the destination address.
	Dst netip.Addr
	// PayloadLen is the length of what follows the IP header.
	PayloadLen int
}

// capture is a plain raw protocol-112 socket that sees every protocol-112
// datagram delivered locally.
type capture interface {
	// next returns the header of the next datagram from src; the error
	// wraps os.ErrDeadlineExceeded when none arrives within timeout.
	next(src netip.Addr, timeout time.Duration) (wire, error)
	Close() error
}

// family is what the socket test needs to know of one address family.
type family struct {
	listen      func() (advConn, error)
	openCapture func() (capture, error)
	group       netip.Addr
	// wire is the header an advert to dst with n bytes of payload has.
	wire func(dst netip.Addr, n int) wire
}

// testAdverts sends advertisements from host a (interface idxA, source
// src) to host b (interface idxB, unicast address peer) and checks what b's
// socket reports and what is on the wire: TTL or hop limit 255, TOS or
// traffic class, the source given, the receiving interface's index,
// multicast and unicast destinations, no loopback to the sender, and Close
// unblocking a read.
func testAdverts(t *testing.T, f family, a, b *lab.Host, idxA, idxB int, src, peer netip.Addr) {
	var sender advConn
	var loopCap capture
	err := a.Do(func() error {
		var err error
		if sender, err = f.listen(); err != nil {
			return err
		}
		if err := sender.Join(idxA); err != nil {
			return err
		}
		if err := sender.Join(idxA); err != nil { // joining twice is fine
			return err
		}
		loopCap, err = f.openCapture()
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

	var recv advConn
	var capture capture
	err = b.Do(func() error {
		var err error
		if recv, err = f.listen(); err != nil {
			return err
		}
		if err := recv.Join(idxB); err != nil {
			return err
		}
		capture, err = f.openCapture()
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
	// (the first ones may be lost while the link and neighbour discovery
	// come up) and returns it.
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
				// Drop what the capture still holds too.
				for {
					if _, err := capture.next(src, 100*time.Millisecond); err != nil {
						return
					}
				}
			}
		}
	}
	checkWire := func(dst netip.Addr, n int) {
		t.Helper()
		w, err := capture.next(src, 5*time.Second)
		if err != nil {
			t.Fatalf("capture: %v", err)
		}
		if diff := cmp.Diff(f.wire(dst, n), w, cmpAddr); diff != "" {
			t.Errorf("IP header on the wire mismatch (-want +got):\n%s", diff)
		}
	}

	payload := make([]byte, 36)
	for i := range payload {
		payload[i] = byte(0x21 + i)
	}

	t.Run("multicast", func(t *testing.T) {
		p := receive(f.group, payload)
		want := Packet{IfIndex: idxB, Src: src, Dst: f.group, TTL: 255, Payload: payload}
		if diff := cmp.Diff(want, p, cmpAddr); diff != "" {
			t.Errorf("received packet mismatch (-want +got):\n%s", diff)
		}
		checkWire(f.group, len(payload))
	})

	t.Run("no loopback", func(t *testing.T) {
		// The sender's namespace is a member of the group on its
		// interface, so with multicast loopback on, its own adverts would
		// come back to it.
		w, err := loopCap.next(src, time.Second)
		if err == nil {
			t.Fatalf("sender's namespace received its own advert: %+v", w)
		}
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("capture in sender namespace: %v", err)
		}
	})

	t.Run("unicast", func(t *testing.T) {
		drain()
		p := receive(peer, payload[:8])
		want := Packet{IfIndex: idxB, Src: src, Dst: peer, TTL: 255, Payload: payload[:8]}
		if diff := cmp.Diff(want, p, cmpAddr); diff != "" {
			t.Errorf("received packet mismatch (-want +got):\n%s", diff)
		}
		checkWire(peer, 8)
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
