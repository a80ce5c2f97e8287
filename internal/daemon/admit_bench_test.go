package daemon

import (
	"io"
	"log/slog"
	"net/netip"
	"testing"

	"github.com/carpd/carpd/internal/carp"
)

// BenchmarkAdmitForged is the receive path's cost of one forged advert
// (vhid right, HMAC wrong) once it is read from the socket: the decoding,
// the stateless checks and the HMAC, and the drop's counting.
func BenchmarkAdmitForged(b *testing.B) {
	d, _ := benchDaemon(b, 1)
	d.log = slog.New(slog.NewTextHandler(io.Discard, nil)) // the default level
	a := carp.Advert{VHID: 1, AdvBase: 1, Counter: 42, Digest: [carp.DigestLen]byte{1, 2, 3}}
	p := Packet{IfIndex: 2, Src: netip.MustParseAddr("192.0.2.66"), TTL: carp.TTL, Payload: a.Marshal()}
	before := d.drops.CARP[carp.DropAuth].Load()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, ok := d.admitPacket(carp.IPv4, p, nil); ok {
			b.Fatal("a forged advert was admitted")
		}
	}
	b.StopTimer()
	if got := d.drops.CARP[carp.DropAuth].Load() - before; got != uint64(b.N) {
		b.Fatalf("badauth rose by %d, want %d", got, b.N)
	}
}
