package vrrp

import (
	"net/netip"
	"testing"
	"time"
)

// FuzzMachine drives a machine with an arbitrary sequence of events (the
// clock moved as the daemon moves it: a Tick after every jump, sometimes
// late) and checks that it never panics and keeps its invariants:
//
//   - a transition goes from the state the machine was in to another one;
//   - addresses are held only by a MASTER, never with the link down;
//   - a MASTER that is not stopping always has its next advert scheduled,
//     a BACKUP its Master_Down_Timer;
//   - no deadline is in the past after a Step, none due after a Tick;
//   - every advert sent is encodable, of this VRID and interval, with the
//     priority in force or 0 (resigning);
//   - the priority in force is 1..255, 255 only for a configured owner not
//     demoted;
//   - a dropped advert changes nothing.
func FuzzMachine(f *testing.F) {
	f.Add([]byte{0, 100, 10, 1, 0, 2, 50, 3, 200, 1, 1, 0, 2, 5, 7, 2, 9, 8, 1})
	f.Add([]byte{255, 1, 3, 1, 3, 0, 1, 1, 6, 20, 4, 2, 100, 2, 7, 1, 2, 200, 0, 9})
	f.Add([]byte{55, 1, 0, 0, 2, 40, 3, 0, 1, 1, 2, 1, 5, 0, 2, 255, 6, 1, 2, 200})
	f.Fuzz(func(t *testing.T, data []byte) {
		next := func() byte {
			if len(data) == 0 {
				return 0
			}
			b := data[0]
			data = data[1:]
			return b
		}
		primary := netip.MustParseAddr("192.0.2.10")
		cfgOf := func(prio, interval, flags byte) Config {
			return Config{VRID: 7, Priority: max(prio, 1), Interval: uint16(interval%100) + 1,
				Addrs: []netip.Addr{netip.MustParseAddr("192.0.2.50")}, PrimaryIP: primary,
				Preempt: flags&1 != 0, TieBreak: flags&2 != 0, PreemptDelay: time.Duration(flags>>2&3) * time.Second,
				IfDownDemotion: 240, SendErrDemotion: 240}
		}
		m, err := NewMachine(cfgOf(next(), next(), next()))
		if err != nil {
			t.Fatal(err)
		}
		now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		held, linkUp := false, false
		for len(data) > 0 {
			var ev Event
			switch next() % 12 {
			case 0:
				ev, linkUp = LinkUp{Again: true}, true
			case 1:
				ev, linkUp = LinkDown{}, false
			case 2:
				// The clock jumps (up to 2.55 s), and the daemon ticks.
				now = now.Add(time.Duration(next()) * 10 * time.Millisecond)
				ev = Tick{}
			case 3:
				// Exactly at the next deadline.
				if d := m.NextDeadline(); !d.IsZero() {
					now = d
				}
				ev = Tick{}
			case 4, 5:
				srcs := []netip.Addr{netip.MustParseAddr("192.0.2.9"), primary, netip.MustParseAddr("192.0.2.11"), netip.MustParseAddr("fe80::1")}
				ev = Received{Src: srcs[next()%4], TTL: 254 + int(next()%2), Advert: Advert{
					VRID: 6 + next()%2, Priority: next(), Interval: uint16(next()) << (next() % 5),
				}}
			case 6:
				ev = Force{State: State(next() % 3)}
			case 7:
				ev = SetDemotion{Demotion: int(int8(next()))}
			case 8:
				ev = Shutdown{}
			case 9:
				ev = SendResult{Err: next()%2 == 0}
			case 10:
				ev = Release{On: next()%2 == 0}
			case 11:
				before := m.State()
				if _, err := m.Reconfigure(now, cfgOf(next(), next(), next())); err != nil {
					t.Fatalf("Reconfigure: %v", err)
				}
				if m.State() != before {
					t.Fatalf("Reconfigure changed the state from %v to %v", before, m.State())
				}
				if d := m.NextDeadline(); !d.IsZero() && d.Before(now) {
					t.Fatalf("deadline %v before now %v after Reconfigure", d, now)
				}
				continue
			}
			before := *m
			state := m.State()
			out := m.Step(now, ev)
			for _, a := range out {
				switch a := a.(type) {
				case Transition:
					if a.From != state || a.To == a.From {
						t.Fatalf("transition %v -> %v from state %v after %T", a.From, a.To, state, ev)
					}
					state = a.To
				case HoldAddresses:
					held = a.Hold
				case SendAdvert:
					ad := a.Advert
					if ad.VRID != 7 || ad.Interval != m.cfg.Interval || (ad.Priority != 0 && ad.Priority != m.Priority()) {
						t.Fatalf("advert %+v from a machine of priority %d interval %d", ad, m.Priority(), m.cfg.Interval)
					}
					if _, err := ad.Marshal(primary, GroupIPv4); err != nil {
						t.Fatalf("advert %+v not encodable: %v", ad, err)
					}
				case Drop:
					if len(out) != 1 || m.state != before.state || m.NextDeadline() != before.NextDeadline() || m.mai != before.mai {
						t.Fatalf("a dropped advert changed the machine: %+v -> %+v, actions %v", before, *m, out)
					}
				}
			}
			if state != m.State() {
				t.Fatalf("transitions end in %v, the machine is %v", state, m.State())
			}
			if held && m.State() != Master {
				t.Fatalf("addresses held in state %v after %T", m.State(), ev)
			}
			if held && !linkUp {
				t.Fatalf("addresses held with the link down after %T", ev)
			}
			if !m.leaving && m.State() == Master && m.adTimer.IsZero() {
				t.Fatalf("MASTER without a next advert after %T", ev)
			}
			if !m.leaving && m.State() == Backup && m.mdTimer.IsZero() {
				t.Fatalf("BACKUP without a master-down timer after %T", ev)
			}
			d := m.NextDeadline()
			if !d.IsZero() && d.Before(now) {
				t.Fatalf("deadline %v before now %v after %T", d, now, ev)
			}
			if _, tick := ev.(Tick); tick && !d.IsZero() && !d.After(now) {
				t.Fatalf("deadline %v not after now %v after a Tick", d, now)
			}
			if p := m.Priority(); p == 0 || (p == OwnerPriority && (m.cfg.Priority != OwnerPriority || m.demotion > 0)) {
				t.Fatalf("priority %d (configured %d, demotion %d)", p, m.cfg.Priority, m.demotion)
			}
		}
	})
}
