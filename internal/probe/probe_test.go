package probe_test

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/carpd/carpd/internal/lab"
	"github.com/carpd/carpd/internal/lab/labtest"
	"github.com/carpd/carpd/internal/probe"
)

func listen(t *testing.T, h *lab.Host) *probe.Prober {
	t.Helper()
	var p *probe.Prober
	if err := h.Do(func() (err error) {
		p, err = probe.Listen()
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// TestProbeLossAndRecovery pings a host, pulls its cable for a while, and
// checks that the prober saw answers, then one run of losses, then answers.
func TestProbeLossAndRecovery(t *testing.T) {
	l := labtest.New(t, "probe")
	a, err := l.AddHost("a", netip.MustParsePrefix("192.0.2.1/24"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := l.AddHost("b", netip.MustParsePrefix("192.0.2.2/24"))
	if err != nil {
		t.Fatal(err)
	}
	p := listen(t, a)

	const interval = 100 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		time.Sleep(time.Second)
		if err := b.PortDown(); err != nil {
			t.Error(err)
		}
		time.Sleep(time.Second)
		if err := b.PortUp(); err != nil {
			t.Error(err)
		}
		time.Sleep(1500 * time.Millisecond)
		cancel()
	}()
	var settled int
	rs, err := p.Run(ctx, netip.MustParseAddr("192.0.2.2"), interval, func(probe.Result) { settled++ })
	if err != nil {
		t.Fatal(err)
	}
	if settled != len(rs) {
		t.Errorf("onResult called %d times for %d results", settled, len(rs))
	}
	for i, r := range rs {
		if r.Seq != i+1 {
			t.Fatalf("result %d has Seq %d", i, r.Seq)
		}
		if !r.Lost && r.RTT <= 0 {
			t.Errorf("answered probe %d has RTT %v", r.Seq, r.RTT)
		}
	}
	s := probe.Summarize(rs)
	t.Logf("%+v", s)
	if s.Sent < 20 || s.Received < 10 {
		t.Errorf("sent %d, received %d: want >= 20 sent and >= 10 answered", s.Sent, s.Received)
	}
	if s.LostRuns != 1 || !s.Recovered {
		t.Errorf("LostRuns = %d, Recovered = %v; want one run of losses, then recovery", s.LostRuns, s.Recovered)
	}
	// The cable was out for 1 s; the outage seen is about that, within a
	// generous margin for a busy machine.
	if s.Outage < 800*time.Millisecond || s.Outage > 3*time.Second {
		t.Errorf("Outage = %v, want about 1s", s.Outage)
	}
}

// TestProbeUnreachable checks that probes to an address nobody holds are
// lost and that Run waits out their timeout after ctx ends.
func TestProbeUnreachable(t *testing.T) {
	l := labtest.New(t, "probe")
	a, err := l.AddHost("a", netip.MustParsePrefix("192.0.2.1/24"))
	if err != nil {
		t.Fatal(err)
	}
	p := listen(t, a)
	ctx, cancel := context.WithTimeout(context.Background(), 250*time.Millisecond)
	defer cancel()
	start := time.Now()
	rs, err := p.Run(ctx, netip.MustParseAddr("192.0.2.99"), 100*time.Millisecond, nil)
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < probe.MinTimeout {
		t.Errorf("Run returned after %v, before the reply timeout %v", took, probe.MinTimeout)
	}
	s := probe.Summarize(rs)
	if s.Sent == 0 || s.Received != 0 || s.Lost != s.Sent || s.Recovered {
		t.Errorf("got %+v, want every probe lost", s)
	}
}

// TestProbeIPv6 pings over IPv6 (DAD is off in the lab).
func TestProbeIPv6(t *testing.T) {
	l := labtest.New(t, "probe")
	a, err := l.AddHost("a", netip.MustParsePrefix("2001:db8::1/64"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.AddHost("b", netip.MustParsePrefix("2001:db8::2/64")); err != nil {
		t.Fatal(err)
	}
	p := listen(t, a)
	ctx, cancel := context.WithTimeout(context.Background(), 550*time.Millisecond)
	defer cancel()
	rs, err := p.Run(ctx, netip.MustParseAddr("2001:db8::2"), 100*time.Millisecond, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s := probe.Summarize(rs); s.Received < 3 || !s.Recovered {
		t.Errorf("got %+v, want answers", s)
	}
}
