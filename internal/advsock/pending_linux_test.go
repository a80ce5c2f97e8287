package advsock

import (
	"net/netip"
	"testing"
	"time"
)

// TestPending: Pending says whether a datagram waits unread in the socket:
// false on a fresh socket, true once an advert arrived, false again once
// it was read.
func TestPending(t *testing.T) {
	a, b, idxA, idxB := twoHosts(t, []string{"192.0.2.1/24"}, []string{"192.0.2.2/24"})
	src, peer := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	var sender, recv *IPv4Conn
	if err := a.Do(func() (err error) { sender, err = ListenIPv4(0); return err }); err != nil {
		t.Fatal(err)
	}
	defer sender.Close()
	if err := b.Do(func() (err error) {
		if recv, err = ListenIPv4(0); err != nil {
			return err
		}
		return recv.Join(idxB)
	}); err != nil {
		t.Fatal(err)
	}
	defer recv.Close()
	if recv.Pending() {
		t.Fatal("a fresh socket has a datagram pending")
	}
	payload := make([]byte, 36)
	deadline := time.Now().Add(10 * time.Second)
	for !recv.Pending() {
		// The first ones may be lost while neighbour discovery runs.
		if time.Now().After(deadline) {
			t.Fatal("no datagram pending 10 s after the first advert")
		}
		if err := sender.WriteAdvert(idxA, src, peer, payload); err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for recv.Pending() {
		if _, err := recv.ReadPacket(); err != nil {
			t.Fatal(err)
		}
	}
	ps := make([]Packet, 1)
	done := make(chan struct{})
	go func() {
		// Pending does not wait for a reader blocked in ReadBatch.
		defer close(done)
		_, _ = recv.ReadBatch(ps)
	}()
	time.Sleep(50 * time.Millisecond)
	start := time.Now()
	if recv.Pending() {
		t.Error("a datagram pending after every one was read")
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Pending took %v beside a blocked reader", d)
	}
	recv.Close()
	<-done
}
