package daemon

import (
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/carpd/carpd/internal/carp"
	"github.com/carpd/carpd/internal/vrrp"
)

// scanDeadline is the earliest deadline by a pass over every vhost: what
// deadlines must agree with.
func scanDeadline(vs []*vhost) time.Time {
	var next time.Time
	for _, v := range vs {
		if dl := v.el.NextDeadline(); !dl.IsZero() && (next.IsZero() || dl.Before(next)) {
			next = dl
		}
	}
	return next
}

// TestDeadlines: 255 VRRP vrids hear adverts of better and worse masters
// on random vrids, their link goes down and up, time passes; after each
// input the heap's earliest deadline is the pass's.
func TestDeadlines(t *testing.T) {
	s, n := batchNode(t)
	rng := rand.New(rand.NewPCG(1, 2))
	src, dst := netip.MustParseAddr("192.0.2.99"), netip.MustParseAddr("224.0.0.18")
	check := func(what string) {
		t.Helper()
		if got, want := n.d.nextDeadline(), scanDeadline(n.d.vhosts); !got.Equal(want) {
			t.Fatalf("after %s: nextDeadline %v, want %v", what, got.Sub(s.start), want.Sub(s.start))
		}
	}
	check("the start")
	for i := range 3000 {
		switch k := rng.IntN(10); {
		case k < 7:
			v := n.d.vhosts[rng.IntN(len(n.d.vhosts))]
			prio := uint8(50 + rng.IntN(200))
			b, err := vrrp.Advert{VRID: uint8(v.cfg.VHID), Priority: prio, Interval: 1, Addrs: []netip.Addr{v.prefixes[0].Addr()}}.Marshal(src, dst)
			if err != nil {
				t.Fatal(err)
			}
			if in, ok := n.d.admitPacket(carp.IPv4, Packet{IfIndex: 2, Src: src, Dst: dst, TTL: carp.TTL, Payload: b}, &vrrp.Advert{}); ok {
				n.d.handle(s.now, in)
			}
			check("an advert")
		case k < 8 && i%50 == 0:
			l := n.link()
			l.Up = rng.IntN(2) == 0
			n.d.handle(s.now, linkIn{l})
			check("a link change")
		default:
			s.advance(time.Duration(rng.IntN(20)) * time.Millisecond)
			check("time passing")
		}
	}
}

// BenchmarkDeadlines is the cost of the earliest deadline after one vrid
// of 255 stepped.
func BenchmarkDeadlines(b *testing.B) {
	s := newSim(1)
	if err := s.addNode("a", map[string]string{"vhids": "1-255", "vrrp": "100", "interval": "1"}, []string{"quiet"}); err != nil {
		b.Fatal(err)
	}
	n := s.nodes[0]
	if err := n.startDaemon(); err != nil {
		b.Fatal(err)
	}
	s.advance(time.Second)
	i := 0
	for b.Loop() {
		n.d.deadlines.Touch(n.d.vhosts[i%len(n.d.vhosts)])
		i++
		n.d.nextDeadline()
	}
}
