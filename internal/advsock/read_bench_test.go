package advsock

import (
	"net/netip"
	"testing"

	"github.com/carpd/carpd/internal/carp"
)

// BenchmarkReadIPv4 is the cost of reading one advert from the raw IPv4
// socket (the system calls, the wake-ups, the decoding of the IP header
// and the control message), in bursts of 1000 queued in the socket's
// buffer, as under a flood. The sending is not timed.
func BenchmarkReadIPv4(b *testing.B) {
	a, h, idxA, idxB := twoHosts(b, []string{"192.0.2.1/24"}, []string{"192.0.2.2/24"})
	var send, recv *IPv4Conn
	if err := a.Do(func() (err error) { send, err = ListenIPv4(0); return err }); err != nil {
		b.Fatal(err)
	}
	defer send.Close()
	if err := h.Do(func() (err error) {
		if recv, err = ListenIPv4(0); err != nil {
			return err
		}
		return recv.Join(idxB)
	}); err != nil {
		b.Fatal(err)
	}
	defer recv.Close()
	payload := carp.Advert{VHID: 1, AdvBase: 1, Counter: 1}.Marshal()
	src := netip.MustParseAddr("192.0.2.1")
	const burst = 1000
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; {
		n := min(burst, b.N-done)
		b.StopTimer()
		for range n {
			if err := send.WriteAdvert(idxA, src, carp.GroupIPv4, payload); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
		readN(b, recv, n)
		done += n
	}
}

// readN reads n datagrams in batches.
func readN(b *testing.B, c *IPv4Conn, n int) {
	var ps [batchLen]Packet
	for n > 0 {
		k, err := c.ReadBatch(ps[:min(n, len(ps))])
		if err != nil {
			b.Fatal(err)
		}
		n -= k
	}
}
