package craft

import (
	"context"
	"math"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/carpd/carpd/internal/carp"
	"github.com/carpd/carpd/internal/lab"
	"github.com/carpd/carpd/internal/lab/labtest"
)

// TestSenderOnTheWire: in a lab of two hosts, packets built with a spoofed
// source and TTL / hop limit 254 arrive at the other host as built, over
// IPv4 and IPv6, multicast and unicast; a batch of 300 arrives whole; a
// paced run keeps its rate.
func TestSenderOnTheWire(t *testing.T) {
	l := labtest.New(t, "craft")
	a, err := l.AddHost("a", netip.MustParsePrefix("192.0.2.1/24"), netip.MustParsePrefix("2001:db8::1/64"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := l.AddHost("b", netip.MustParsePrefix("192.0.2.2/24"), netip.MustParsePrefix("2001:db8::2/64"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		family   int
		src, dst string
	}{
		{4, "198.51.100.7", "224.0.0.18"},
		{4, "192.0.2.99", "192.0.2.2"},
		{6, "2001:db8::99", "ff02::12"},
		{6, "fe80::99", "2001:db8::2"},
	} {
		src, dst := netip.MustParseAddr(tc.src), netip.MustParseAddr(tc.dst)
		var ln *Listener
		if err := b.Do(func() (err error) { ln, err = Listen(tc.family, lab.Iface); return err }); err != nil {
			t.Fatal(err)
		}
		var s *Sender
		if err := a.Do(func() (err error) { s, err = NewSender(tc.family, lab.Iface); return err }); err != nil {
			ln.Close()
			t.Fatal(err)
		}
		var mu sync.Mutex
		var got []Captured
		done := make(chan struct{})
		go func() {
			defer close(done)
			for {
				c, err := ln.Read()
				if err != nil {
					return
				}
				mu.Lock()
				got = append(got, c)
				mu.Unlock()
			}
		}()
		o := Options{Kind: "ttl", Family: tc.family, VHID: 5, Ring: 300, Src: netip.PrefixFrom(src, src.BitLen()), Dst: dst}
		pkts, err := o.Packets()
		if err != nil {
			t.Fatal(err)
		}
		// The first packet alone, so that the neighbour entry of a
		// unicast destination is resolved before the batch (the kernel
		// queues only a few packets while it resolves).
		if n, err := s.WriteBatch(pkts[:1], dst); n != 1 || err != nil {
			t.Errorf("IPv%d to %v: WriteBatch wrote %d of 1: %v", tc.family, dst, n, err)
		}
		time.Sleep(200 * time.Millisecond)
		n, err := s.WriteBatch(pkts[1:], dst)
		if n != len(pkts)-1 || err != nil {
			t.Errorf("IPv%d to %v: WriteBatch wrote %d of %d: %v", tc.family, dst, n, len(pkts)-1, err)
		}
		deadline := time.Now().Add(5 * time.Second)
		for {
			mu.Lock()
			k := len(got)
			mu.Unlock()
			if k >= len(pkts) || time.Now().After(deadline) {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		ln.Close()
		s.Close()
		<-done
		if len(got) != len(pkts) {
			t.Errorf("IPv%d to %v: %d of %d packets arrived", tc.family, dst, len(got), len(pkts))
		}
		for i, c := range got {
			want, _ := ParseIP(pkts[i])
			if c.Src != src || c.Dst != dst || c.TTL != 254 || string(c.Payload) != string(want.Payload) {
				t.Errorf("IPv%d packet %d arrived as %v -> %v ttl %d %x, sent as %v -> %v ttl 254 %x",
					tc.family, i, c.Src, c.Dst, c.TTL, c.Payload, src, dst, want.Payload)
				break
			}
		}
	}

	// Pacing: 40 packets at 200/s take 0.2 s, sent one by one.
	var s *Sender
	if err := a.Do(func() (err error) { s, err = NewSender(4, lab.Iface); return err }); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	pkt, _ := IPv4{Src: netip.MustParseAddr("192.0.2.1"), Dst: carp.GroupIPv4, TTL: 255}.Packet(NewAdvert(5).Bytes())
	var times []time.Time
	res := s.Run(context.Background(), func(int) []byte { times = append(times, time.Now()); return pkt }, carp.GroupIPv4,
		Plan{Rate: 200, Count: 40})
	if res.Sent != 40 || res.Failed != 0 || res.FirstErr != nil {
		t.Errorf("paced run: %+v", res)
	}
	if res.Elapsed < 195*time.Millisecond || res.Elapsed > 400*time.Millisecond || math.Abs(res.Rate()-200) > 20 && res.Elapsed < 210*time.Millisecond {
		t.Errorf("40 packets at 200/s took %v (%.1f/s), want about 200 ms", res.Elapsed, res.Rate())
	}
	for i := 1; i < len(times); i++ {
		due := times[0].Add(time.Duration(i) * 5 * time.Millisecond)
		if times[i].Before(due.Add(-time.Millisecond)) {
			t.Errorf("packet %d sent %v before it was due", i, due.Sub(times[i]))
		}
	}
	// Duration: 0.3 s at 100/s is 30 packets.
	res = s.Run(context.Background(), func(int) []byte { return pkt }, carp.GroupIPv4, Plan{Rate: 100, Duration: 300 * time.Millisecond})
	if res.Sent < 29 || res.Sent > 31 || res.Elapsed < 300*time.Millisecond {
		t.Errorf("0.3 s at 100/s: %+v", res)
	}
}
