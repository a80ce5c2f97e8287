package carp

import (
	"net/netip"
	"testing"
	"time"
)

// FuzzMachine drives a machine with an arbitrary sequence of events, the
// adverts built from arbitrary bytes (most with a bad HMAC, some valid),
// and checks that it never panics and keeps its invariants: addresses are
// held only by a MASTER (or by one that bowed out and waits for the new
// master), nothing is held with the link down, a deadline is never in the
// past after a Tick, and a dropped advert changes nothing.
func FuzzMachine(f *testing.F) {
	f.Add([]byte{0, 2, 255, 2, 255, 3, 1, 100, 1, 7, 0, 6, 3, 1, 255, 255, 9})
	f.Add([]byte{0, 3, 0, 0, 1, 1, 5, 200, 2, 200, 1, 0, 6})
	f.Fuzz(func(t *testing.T, data []byte) {
		vip := netip.MustParseAddr("192.0.2.50")
		m, err := NewMachine(Config{VHID: 100, AdvBase: 1, AdvSkew: 100, Password: "p", Addrs: []netip.Addr{vip, netip.MustParseAddr("2001:db8::50")},
			Preempt: len(data) > 0 && data[0]&1 == 1, IfDownDemotion: 240, SendErrDemotion: 240}, 7)
		if err != nil {
			t.Fatal(err)
		}
		auth := NewAuthenticator("p", 100, []netip.Addr{vip, netip.MustParseAddr("2001:db8::50")})
		now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		held, linkUp := false, false
		next := func() byte {
			if len(data) == 0 {
				return 0
			}
			b := data[0]
			data = data[1:]
			return b
		}
		for len(data) > 0 {
			var ev Event
			switch next() % 10 {
			case 0:
				ev, linkUp = LinkUp{Again: true}, true
			case 1:
				ev, linkUp = LinkDown{}, false
			case 2:
				now = now.Add(time.Duration(next()) * 20 * time.Millisecond)
				ev = Tick{}
			case 3, 4:
				a := Advert{VHID: 100 + next()%2, AdvBase: next(), AdvSkew: next(), Demote: next() % 3, Counter: uint64(next())}
				if next()%2 == 0 {
					a.Digest = auth.Digest(a.Counter)
				}
				ev = Received{Family: Family(next() % 2), Src: vip, TTL: 254 + int(next()%2), Advert: a}
			case 5:
				ev = Force{State: State(1 + next()%2)}
			case 6:
				ev = SetDemotion{Demotion: int(int8(next()))}
			case 7:
				ev = Shutdown{}
			case 8:
				ev = SendResult{Err: next()%2 == 0}
			case 9:
				ev = Release{On: next()%2 == 0}
			}
			before := *m
			out := m.Step(now, ev)
			for _, a := range out {
				switch a := a.(type) {
				case HoldAddresses:
					held = a.Hold
				case Drop:
					if len(out) != 1 || m.state != before.state || m.counter != before.counter || m.NextDeadline() != before.NextDeadline() {
						t.Fatalf("a dropped advert changed the machine: %+v -> %+v, actions %v", before, *m, out)
					}
				}
			}
			if held && m.State() != Master {
				t.Fatalf("addresses held in state %v after %T", m.State(), ev)
			}
			if held && !linkUp {
				t.Fatalf("addresses held with the link down after %T", ev)
			}
			if _, tick := ev.(Tick); tick {
				if d := m.NextDeadline(); !d.IsZero() && !d.After(now) {
					t.Fatalf("deadline %v not after now %v after a Tick", d, now)
				}
			}
		}
	})
}
