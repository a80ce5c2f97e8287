package daemon

import (
	"net/netip"
	"testing"
	"time"

	"github.com/carpd/carpd/internal/carp"
	"github.com/carpd/carpd/internal/vrrp"
)

// BenchmarkHandleAdvert is the cost of one received advert of the master
// at a BACKUP, from the socket reader's checks (admitPacket: decoding,
// checksum, the HMAC for CARP) to the loop's handling (the state machine,
// the counters, the master-down timer): CARP (vhid 100, advskew 0 heard at
// advskew 100) and VRRPv3 (priority 155 heard at 55, 1 s).
func BenchmarkHandleAdvert(b *testing.B) {
	vip := simVIP(100).Addr()
	for _, tc := range []struct {
		name           string
		master, backup map[string]string
	}{
		{"carp", map[string]string{"advskew": "0"}, map[string]string{"advskew": "100"}},
		{"vrrp", map[string]string{"vrrp": "155"}, map[string]string{"vrrp": "55"}},
		{"vrrp255", map[string]string{"vrrp": "155", "vhids": "1-255"}, map[string]string{"vrrp": "55", "vhids": "1-255"}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			s := newSim(1)
			if err := s.addNode("a", tc.master, []string{"quiet"}); err != nil {
				b.Fatal(err)
			}
			if err := s.addNode("b", tc.backup, []string{"quiet"}); err != nil {
				b.Fatal(err)
			}
			for _, n := range s.nodes {
				if err := n.startDaemon(); err != nil {
					b.Fatal(err)
				}
			}
			s.advance(5 * time.Second)
			a, bk := s.nodes[0], s.nodes[1].d
			pkt := Packet{IfIndex: 2, Src: a.own, TTL: carp.TTL}
			if tc.name == "carp" {
				const counter = 0x1234_5678_9abc_def0
				auth := carp.NewAuthenticator("lampros", 100, []netip.Addr{vip})
				pkt.Dst = carp.GroupIPv4
				pkt.Payload = carp.Advert{VHID: 100, AdvBase: 1, Counter: counter, Digest: auth.Digest(counter)}.Marshal()
			} else {
				pkt.Dst = vrrp.GroupIPv4
				var err error
				pkt.Payload, err = vrrp.Advert{VRID: 100, Priority: 155, Interval: 100, Addrs: []netip.Addr{vip}}.Marshal(pkt.Src, pkt.Dst)
				if err != nil {
					b.Fatal(err)
				}
			}
			v := bk.vhosts[0]
			state := func() string { return v.el.State().String() }
			if st := state(); st != "BACKUP" {
				b.Fatalf("b is %s", st)
			}
			drops := func() (n uint64) {
				for i := range bk.drops.CARP {
					n += bk.drops.CARP[i].Load()
				}
				for i := range bk.drops.VRRP {
					n += bk.drops.VRRP[i].Load()
				}
				return n
			}
			before := drops()
			scratch := &vrrp.Advert{Addrs: make([]netip.Addr, 0, vrrp.MaxAddrs)}
			now := s.now
			b.ReportAllocs()
			for b.Loop() {
				now = now.Add(time.Second)
				in, ok := bk.admitPacket(carp.IPv4, pkt, scratch)
				if !ok {
					b.Fatal("not admitted")
				}
				bk.handle(now, in)
			}
			if n := drops() - before; n != 0 {
				b.Fatalf("%d adverts dropped", n)
			}
			if st := state(); st != "BACKUP" {
				b.Fatalf("b is %s", st)
			}
		})
	}
}
