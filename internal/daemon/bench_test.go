package daemon

import (
	"strconv"
	"testing"
	"time"

	"github.com/carpd/carpd/internal/carp"
)

// benchDaemon returns a daemon of n vhids, all MASTER, on the simulation's
// adapters (nothing leaves the process).
func benchDaemon(b testing.TB, n int) (*Daemon, *sim) {
	s := newSim(1)
	if err := s.addNode("a", map[string]string{"vhids": "1-" + itoa(n)}, []string{"quiet"}); err != nil {
		b.Fatal(err)
	}
	node := s.nodes[0]
	if err := node.startDaemon(); err != nil {
		b.Fatal(err)
	}
	s.advance(4 * time.Second)
	for _, v := range node.d.vhosts {
		if v.el.State() != carp.Master {
			b.Fatalf("vhid %d is %v", v.cfg.VHID, v.el.State())
		}
	}
	return node.d, s
}

func itoa(n int) string { return strconv.Itoa(n) }

// BenchmarkHandleTick is the loop's cost of one deadline of 255 CARP
// masters that advertise at the same moment (they started together): the
// timer input that sends the 255 adverts and what follows (the send
// results, the lifetime renewals); divide by 255 for one advert.
func BenchmarkHandleTick(b *testing.B) {
	d, _ := benchDaemon(b, 255)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		d.handle(d.next, tickIn{})
	}
}

// TestTickAllocs: the adverts of a deadline of 255 CARP masters cost
// fewer than two allocations each (the advert boxed as the machine's
// action, and a few per deadline; before: five per advert, the machine's
// slices, the marshalled advert and the send result's input).
func TestTickAllocs(t *testing.T) {
	d, _ := benchDaemon(t, 255)
	n := testing.AllocsPerRun(20, func() { d.handle(d.next, tickIn{}) })
	if per := n / 255; per >= 2 {
		t.Errorf("%v allocations per advert, want fewer than 2", per)
	}
}

// BenchmarkHandleAddrChange is the loop's cost of an address notification
// that changes nothing (the kernel's echo of a lifetime renewal).
func BenchmarkHandleAddrChange(b *testing.B) {
	d, s := benchDaemon(b, 255)
	in := addrIn{AddrChange{LinkIndex: 2, Prefix: simVIP(7)}}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		d.handle(s.now, in)
	}
}
