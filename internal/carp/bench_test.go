package carp_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/carpd/carpd/internal/carp"
)

// benchAdvert is a master's advert of vhid 100 (advskew 0, passphrase
// "lampros", VIP 192.0.2.50) with its HMAC, as it comes off the wire.
func benchAdvert(b *testing.B) (cfg carp.Config, wire []byte) {
	b.Helper()
	cfg = carp.Config{VHID: 100, AdvBase: 1, Password: "lampros", Addrs: []netip.Addr{netip.MustParseAddr("192.0.2.50")}}
	auth := carp.NewAuthenticator(cfg.Password, cfg.VHID, cfg.Addrs)
	const counter = 0x1234_5678_9abc_def0
	a := carp.Advert{VHID: cfg.VHID, AdvBase: 1, Counter: counter, Digest: auth.Digest(counter)}
	return cfg, a.Marshal()
}

// BenchmarkParseVerify is the receive path's cost of one valid advert as a
// socket reader runs it (internal/daemon admitPacket): the decoding
// (length, version, type, checksum), then the vhid's stateless checks and
// the HMAC (Filter.Check).
func BenchmarkParseVerify(b *testing.B) {
	cfg, wire := benchAdvert(b)
	m, err := carp.NewMachine(cfg, 1)
	if err != nil {
		b.Fatal(err)
	}
	f := m.Filter()
	src := netip.MustParseAddr("192.0.2.21")
	b.ReportAllocs()
	for b.Loop() {
		a, err := carp.ParseAdvert(wire)
		if err != nil {
			b.Fatal(err)
		}
		if reason, ok := f.Check(carp.Received{Family: carp.IPv4, Src: src, TTL: carp.TTL, Advert: a}); !ok {
			b.Fatalf("dropped: %v", reason)
		}
	}
}

// BenchmarkStep is one state-machine step in the steady state: a MASTER's
// advert at its deadline (tick), and a BACKUP hearing the master's advert
// (received: the checks again, the HMAC included, and the master-down
// timer's restart).
func BenchmarkStep(b *testing.B) {
	cfg, wire := benchAdvert(b)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	b.Run("tick", func(b *testing.B) {
		m, err := carp.NewMachine(cfg, 1)
		if err != nil {
			b.Fatal(err)
		}
		m.Step(now, carp.LinkUp{})
		m.Step(now, carp.Force{State: carp.Master})
		if m.State() != carp.Master {
			b.Fatalf("state %v", m.State())
		}
		b.ReportAllocs()
		for b.Loop() {
			if len(m.Step(m.NextDeadline(), carp.Tick{})) == 0 {
				b.Fatal("no advert at the deadline")
			}
		}
		if m.State() != carp.Master {
			b.Fatalf("state %v", m.State())
		}
	})
	b.Run("received", func(b *testing.B) {
		bc := cfg
		bc.AdvSkew = 100
		m, err := carp.NewMachine(bc, 1)
		if err != nil {
			b.Fatal(err)
		}
		m.Step(now, carp.LinkUp{})
		a, err := carp.ParseAdvert(wire)
		if err != nil {
			b.Fatal(err)
		}
		r := carp.Received{Family: carp.IPv4, Src: netip.MustParseAddr("192.0.2.21"), TTL: carp.TTL, Advert: a}
		t := now
		b.ReportAllocs()
		for b.Loop() {
			t = t.Add(time.Second)
			for _, act := range m.Step(t, r) {
				if d, ok := act.(carp.Drop); ok {
					b.Fatalf("dropped: %v", d.Reason)
				}
			}
		}
		if m.State() != carp.Backup {
			b.Fatalf("state %v", m.State())
		}
	})
}
