package netmon

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/carpd/carpd/internal/lab/labtest"
	"github.com/carpd/carpd/internal/vip"
)

// BenchmarkRenewal is what a master's renewal of an address's lifetime
// costs carpd's process: the request (vip.Manager.Refresh) and the kernel's
// notification of it, which the subscription reads or the kernel leaves
// out. It reports the process's CPU time (user + system, getrusage) per
// renewal, measured until the subscription has read every notification
// (the address's removal, read after them, is waited for).
//
// Three ways, in one build:
//
//	carpd       as carpd runs: renewals without acknowledgement on the
//	            Manager's own socket (vip.New(nil, ...)), and their
//	            notifications left out by the kernel (SubscribeIgnoring
//	            with the Manager's EchoPort: the socket filter)
//	unfiltered  the same renewals, their notifications read and dropped
//	            by the subscription (Subscribe)
//	acked       the standard path: each renewal a request acknowledged
//	            through a netlink handle (vip.New(handle, ...)), its
//	            notification read and dropped by the subscription
//
// "paced" renews once a millisecond, so that each renewal wakes the reader
// as at idle; "burst" renews back to back.
//
//	go test ./internal/netmon -run '^$' -bench Renewal -benchtime=3000x -count=5
//
// docs/design.md gives the figures.
func BenchmarkRenewal(b *testing.B) {
	for _, way := range []string{"carpd", "unfiltered", "acked"} {
		for _, c := range []struct {
			name string
			gap  time.Duration
		}{{"paced", time.Millisecond}, {"burst", 0}} {
			b.Run(way+"/"+c.name, func(b *testing.B) { benchRenewal(b, way, c.gap) })
		}
	}
}

func benchRenewal(b *testing.B, way string, gap time.Duration) {
	l := labtest.New(b, "netmonrenew")
	h, err := l.AddHost("a", netip.MustParsePrefix("192.0.2.1/24"))
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pfx := netip.MustParsePrefix("192.0.2.50/32")
	removed := make(chan struct{}, 1)
	report := func(u Update) {
		if !u.IsLink && u.Addr.Prefix == pfx && u.Addr.Removed {
			select {
			case removed <- struct{}{}:
			default:
			}
		}
	}
	var m *vip.Manager
	var ended <-chan error
	if err := h.Do(func() (err error) {
		var nh *netlink.Handle // nil: the Manager's own handle and renewal socket
		if way == "acked" {
			if nh, err = netlink.NewHandle(); err != nil {
				return err
			}
			b.Cleanup(nh.Close)
		}
		m = vip.New(nh, vip.AddOptions{ValidLifetime: time.Minute})
		if way == "carpd" {
			if m.EchoPort() == 0 {
				b.Fatal("the address manager has no renewal socket")
			}
			ended, err = SubscribeIgnoring(ctx, m.EchoPort(), report)
		} else {
			ended, err = Subscribe(ctx, report)
		}
		return err
	}); err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	want := []netip.Prefix{pfx}
	if _, err := m.Set("eth0", want, want); err != nil {
		b.Fatal(err)
	}
	var r0, r1 unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &r0); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		if err := m.Refresh("eth0", want); err != nil {
			b.Fatal(err)
		}
		if gap > 0 {
			time.Sleep(gap)
		}
	}
	b.StopTimer()
	if _, err := m.Set("eth0", want, nil); err != nil {
		b.Fatal(err)
	}
	select {
	case <-removed:
	case err := <-ended:
		b.Fatalf("subscription ended: %v", err)
	case <-time.After(10 * time.Second):
		b.Fatal("the removal was not reported")
	}
	if err := unix.Getrusage(unix.RUSAGE_SELF, &r1); err != nil {
		b.Fatal(err)
	}
	cpu := time.Duration(r1.Utime.Nano() + r1.Stime.Nano() - r0.Utime.Nano() - r0.Stime.Nano())
	b.ReportMetric(float64(cpu.Nanoseconds())/1e3/float64(b.N), "cpu-µs/renewal")
}
