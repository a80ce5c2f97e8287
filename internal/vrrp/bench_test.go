package vrrp

import (
	"net/netip"
	"testing"
	"time"
)

// BenchmarkStep is one state-machine step in the steady state: a MASTER's
// advert at its deadline (tick), and a BACKUP hearing the master's advert
// (received: the checks and the Master_Down_Timer's restart). The decoding
// and checksum of a received advert are BenchmarkParseInto's.
func BenchmarkStep(b *testing.B) {
	addrs := []netip.Addr{netip.MustParseAddr("192.0.2.50")}
	masterIP, backupIP := netip.MustParseAddr("192.0.2.21"), netip.MustParseAddr("192.0.2.22")
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	b.Run("tick", func(b *testing.B) {
		m, err := NewMachine(Config{VRID: 1, Priority: 155, Interval: 100, Addrs: addrs, PrimaryIP: masterIP, Preempt: true})
		if err != nil {
			b.Fatal(err)
		}
		m.Step(now, LinkUp{})
		m.Step(now, Force{State: Master})
		if m.State() != Master {
			b.Fatalf("state %v", m.State())
		}
		b.ReportAllocs()
		for b.Loop() {
			if len(m.Step(m.NextDeadline(), Tick{})) == 0 {
				b.Fatal("no advert at the deadline")
			}
		}
		if m.State() != Master {
			b.Fatalf("state %v", m.State())
		}
	})
	b.Run("received", func(b *testing.B) {
		m, err := NewMachine(Config{VRID: 1, Priority: 55, Interval: 100, Addrs: addrs, PrimaryIP: backupIP, Preempt: true})
		if err != nil {
			b.Fatal(err)
		}
		m.Step(now, LinkUp{})
		r := Received{Src: masterIP, TTL: TTL, Advert: Advert{VRID: 1, Priority: 155, Interval: 100, Addrs: addrs}}
		t := now
		b.ReportAllocs()
		for b.Loop() {
			t = t.Add(time.Second)
			m.Step(t, r)
		}
		if m.State() != Backup {
			b.Fatalf("state %v", m.State())
		}
	})
}
