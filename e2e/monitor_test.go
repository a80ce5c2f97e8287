package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestMonitorSurvivesOverflow: a burst of tens of thousands of address
// changes inside the master's namespace overflows carpd's netlink
// subscription (ENOBUFS). carpd says so once, subscribes again and goes on
// watching: (a) its VIP deleted underneath is restored by the monitor
// within 500 ms, with its log line, and (b) a cut cable still takes the
// vhid to INIT with the demotion applied.
func TestMonitorSurvivesOverflow(t *testing.T) {
	c := newCluster(t)
	startPair(t, c)
	mp := c.procs[c.master]

	// A scratch interface that only the master's namespace sees, with
	// 19,200 addresses of the documentation ranges (each /24 with every
	// prefix length from /8 to /32; down, no routes, no traffic).
	var b strings.Builder
	b.WriteString("link add ovf0 type veth peer name ovf1\n")
	n := 0
	for _, block := range []string{"192.0.2", "198.51.100", "203.0.113"} {
		for bits := 8; bits <= 32; bits++ {
			for i := range 256 {
				fmt.Fprintf(&b, "addr add %s.%d/%d dev ovf0 noprefixroute\n", block, i, bits)
				n++
			}
		}
	}
	batch := filepath.Join(c.dir, "overflow.batch")
	if err := os.WriteFile(batch, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	start := time.Now()
	if out, err := c.master.Run(ctx, "ip", "-batch", batch); err != nil {
		t.Fatalf("adding the addresses: %v\n%s", err, out)
	}
	t.Logf("%d addresses added in %v", n, time.Since(start).Round(time.Millisecond))
	// The burst: deleting the interface removes them all in one kernel
	// call (about 0.1 s), 19,200 notifications of about 800 bytes each
	// against the subscription's 4 MB buffer (8 MB as the kernel counts).
	// carpd is stopped meanwhile, as a loaded host deschedules it, so that
	// the overflow does not depend on how fast this machine reads: far
	// within the master-down interval, the backup does not notice.
	if err := mp.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	_, err := c.master.Run(ctx, "ip", "link", "del", "ovf0")
	if cerr := mp.Signal(syscall.SIGCONT); cerr != nil {
		t.Fatal(cerr)
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := waitOutput(mp, "carp: link and address monitor lost changes; resubscribed and resynchronised", 10*time.Second); err != nil {
		t.Fatalf("no overflow reported (the burst must overflow the subscription): %v", err)
	}
	for _, l := range grepLines(mp.Output(), "lost changes") {
		t.Log(l)
	}
	if !strings.Contains(mp.Output(), "no buffer space available") {
		t.Errorf("the warning does not give ENOBUFS as the cause:\n%s", tail(mp.Output(), 10))
	}
	// The state was read afresh: still MASTER, the VIP held.
	if got := c.holders(); len(got) != 1 || got[0] != "master" {
		t.Fatalf("after the overflow the VIP is held by %v, want only master", got)
	}
	time.Sleep(500 * time.Millisecond) // the burst's tail drained

	// (a) The VIP deleted underneath: the monitor, not the next lifetime
	// refresh, puts it back at once and says so.
	before := strings.Count(mp.Output(), "address removed underneath carpd; restored")
	if err := c.master.DelAddr(netipPrefix("192.0.2.50/32")); err != nil {
		t.Fatal(err)
	}
	deleted := time.Now()
	for {
		if ok, err := c.master.Holds(vip); err != nil {
			t.Fatal(err)
		} else if ok {
			break
		}
		if time.Since(deleted) > 3*time.Second {
			t.Fatal("the master did not restore its VIP within 3 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	took := time.Since(deleted)
	t.Logf("VIP restored %v after it was deleted", took.Round(time.Millisecond))
	if took > 500*time.Millisecond {
		t.Errorf("restoring the VIP took %v, want < 500 ms", took)
	}
	if err := waitOutput(mp, "address removed underneath carpd; restored", time.Second); err != nil || strings.Count(mp.Output(), "address removed underneath carpd; restored") == before {
		t.Errorf("no log line for the restored VIP: %v", err)
	}

	// (b) The cable cut: INIT and the demotion, seen by the monitor.
	if err := c.master.PortDown(); err != nil {
		t.Fatal(err)
	}
	if err := waitOutput(mp, "carp: 100@eth0: MASTER -> INIT (hardware interface down)", 2*time.Second); err != nil {
		t.Error(err)
	}
	if err := waitOutput(mp, "carp: demoted by 240 to 240 (interface down)", 2*time.Second); err != nil {
		t.Error(err)
	}
	if ok, err := c.master.Holds(vip); err != nil || ok {
		t.Errorf("the master holds the VIP with its cable cut (%v)", err)
	}
}
