package e2e

import (
	"fmt"
	"net/netip"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/carpd/carpd/internal/lab"
)

// The second segment of the link-down test: vhid 101 on eth1.
var (
	vip2        = netip.MustParseAddr("198.51.100.50")
	masterAddr2 = netip.MustParsePrefix("198.51.100.21/24")
	backupAddr2 = netip.MustParsePrefix("198.51.100.22/24")
	clientAddr2 = netip.MustParsePrefix("198.51.100.100/24")
)

// segment2 is the name of the second segment's bridge, iface2 the hosts'
// interface on it.
const (
	segment2 = "seg1"
	iface2   = "eth1"
)

// rcConfTwo returns an rc.conf with vhid 100 on eth0 and vhid 101 on eth1,
// both with the given advskew.
func rcConfTwo(own, own2 netip.Prefix, skew int) string {
	return fmt.Sprintf(`ifconfig_eth0="inet %s netmask 255.255.255.0"
ifconfig_eth0_alias0="inet alias 192.0.2.50/32 vhid 100 advskew %d pass lampros"
ifconfig_eth1="inet %s netmask 255.255.255.0"
ifconfig_eth1_alias0="inet alias 198.51.100.50/32 vhid 101 advskew %d pass lampros"
`, own.Addr(), skew, own2.Addr(), skew)
}

// newTwoSegmentCluster builds the walkthrough's hosts with a second segment:
// master, backup and client each also have eth1 on it. master advertises
// with advskew 100 and backup with 200 on both vhids.
func newTwoSegmentCluster(t *testing.T, flags ...string) *cluster {
	t.Helper()
	c := newCluster(t, flags...)
	if err := c.lab.AddSegment(segment2); err != nil {
		t.Fatal(err)
	}
	for _, h := range []struct {
		host *lab.Host
		addr netip.Prefix
	}{{c.master, masterAddr2}, {c.backup, backupAddr2}, {c.client, clientAddr2}} {
		if err := h.host.Attach(segment2, iface2, h.addr); err != nil {
			t.Fatal(err)
		}
	}
	for _, h := range []struct {
		host      *lab.Host
		own, own2 netip.Prefix
		skew      int
	}{{c.master, masterAddr, masterAddr2, 100}, {c.backup, backupAddr, backupAddr2, 200}} {
		if err := os.WriteFile(c.rcPath(h.host), []byte(rcConfTwo(h.own, h.own2, h.skew)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// holdersOf returns the names of the CARP hosts whose interface iface holds a.
func (c *cluster) holdersOf(iface string, a netip.Addr) []string {
	c.t.Helper()
	var names []string
	for _, h := range []*lab.Host{c.master, c.backup} {
		ok, err := h.HoldsOn(iface, a)
		if err != nil {
			c.t.Fatal(err)
		}
		if ok {
			names = append(names, h.Name)
		}
	}
	return names
}

// bothVIPs returns the holders of 192.0.2.50 (eth0) and 198.51.100.50 (eth1).
func (c *cluster) bothVIPs() (vhid100, vhid101 []string) {
	return c.holdersOf(lab.Iface, vip), c.holdersOf(iface2, vip2)
}

// waitVIPs polls until exactly want100 holds vhid 100's address and exactly
// want101 holds vhid 101's, and returns how long it took.
func (c *cluster) waitVIPs(want100, want101 *lab.Host, timeout time.Duration) (time.Duration, bool) {
	start := time.Now()
	for time.Since(start) < timeout {
		h100, h101 := c.bothVIPs()
		if slices.Equal(h100, []string{want100.Name}) && slices.Equal(h101, []string{want101.Name}) {
			return time.Since(start), true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start), false
}

// steadyVIPs fails the test unless, for d, exactly want holds both
// addresses.
func (c *cluster) steadyVIPs(want *lab.Host, d time.Duration, when string) {
	c.t.Helper()
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		h100, h101 := c.bothVIPs()
		if !slices.Equal(h100, []string{want.Name}) || !slices.Equal(h101, []string{want.Name}) {
			c.t.Fatalf("%s: vhid 100's address held by %v, vhid 101's by %v; want only %s for both", when, h100, h101, want.Name)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestLinkDownDemotion: the master has vhid 100 on eth0 and vhid 101 on
// eth1. Its eth1 loses carrier (the switch port goes down): vhid 101 goes
// INIT and the host's demotion rises by 240, so that vhid 100 advertises
// advskew 240; the backup (advskew 200, preempt) takes vhid 100 at once by
// preempting, and vhid 101 when the master-down interval runs out. The
// master then holds neither address. When the port comes up the demotion
// drops back to 0 and the master, with preempt, takes both back.
func TestLinkDownDemotion(t *testing.T) {
	t.Parallel() // bounds of seconds at advbase 1: see parallel_test.go
	c := newTwoSegmentCluster(t, "--preempt")
	mp := c.start(c.master)
	bp := c.start(c.backup)
	if took, ok := c.waitVIPs(c.master, c.master, 15*time.Second); !ok {
		h100, h101 := c.bothVIPs()
		t.Fatalf("after %v: vhid 100 held by %v, vhid 101 by %v; want master for both", took, h100, h101)
	}
	pr := c.ping(100 * time.Millisecond)
	time.Sleep(time.Second)

	cut := time.Now()
	if err := c.master.PortDownOn(iface2); err != nil {
		t.Fatal(err)
	}
	if err := waitOutput(mp, `carp: demoted by 240 to 240 (interface down)" vhid=101 iface=eth1`, 3*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := waitOutput(mp, "carp: 101@eth1: MASTER -> INIT", 3*time.Second); err != nil {
		t.Error(err)
	}
	// vhid 100: the master advertises advskew 240 at once and the backup
	// preempts it; allow 3 s for the lab's polling on a busy machine.
	took100, ok := c.waitHolder(c.backup, 3*time.Second)
	if !ok {
		t.Errorf("vhid 100: %v after the cut its address is held by %v, want only backup (preempting the demoted master)", took100, c.holders())
	}
	if err := waitOutput(bp, "carp: 100@eth0: BACKUP -> MASTER (preempting a slower master)", time.Second); err != nil {
		t.Error(err)
	}
	// vhid 101: the backup hears nothing more and times out after 3.78 s.
	took, ok := c.waitVIPs(c.backup, c.backup, masterDown+3*time.Second)
	if !ok {
		h100, h101 := c.bothVIPs()
		t.Fatalf("%v after the cut: vhid 100 held by %v, vhid 101 by %v; want backup for both", took, h100, h101)
	}
	if err := waitOutput(bp, "carp: 101@eth1: BACKUP -> MASTER (master timed out)", time.Second); err != nil {
		t.Error(err)
	}
	t.Logf("after the cut: vhid 100 on the backup after %v, both after %v", took100, time.Since(cut))
	// A probe sent 500 ms after the takeover answered (the probes of the
	// last 500 ms may still be in flight: at most 2 s).
	if !pr.waitAnswered(cut.Add(took100).Add(500*time.Millisecond), 2*time.Second) {
		t.Error("the client's pings of 192.0.2.50 did not recover after the backup took vhid 100")
	}
	c.steadyVIPs(c.backup, 2*time.Second, "with the master's eth1 down")

	up := time.Now()
	if err := c.master.PortUpOn(iface2); err != nil {
		t.Fatal(err)
	}
	if err := waitOutput(mp, `carp: demoted by -240 to 0 (interface up)" vhid=101 iface=eth1`, 3*time.Second); err != nil {
		t.Fatal(err)
	}
	// With preempt the master takes both back when it next hears the
	// backup (advert interval 1 + 200/256 s).
	if took, ok := c.waitVIPs(c.master, c.master, 8*time.Second); !ok {
		h100, h101 := c.bothVIPs()
		t.Fatalf("%v after the port came up: vhid 100 held by %v, vhid 101 by %v; want master for both", took, h100, h101)
	}
	t.Logf("after the port came up: master holds both after %v", time.Since(up))
	for _, vh := range []string{"100@eth0", "101@eth1"} {
		if err := waitOutput(mp, "carp: "+vh+": BACKUP -> MASTER (preempting a slower master)", time.Second); err != nil {
			t.Error(err)
		}
	}
	c.steadyVIPs(c.master, 3*time.Second, "after the master took both back")
}

// TestPreemptDelay: with --preempt --preempt-delay 8s, the master that
// returns after a reboot stays BACKUP for the first 8 s after its carpd
// started, although it hears the slower backup, and preempts after that.
func TestPreemptDelay(t *testing.T) {
	t.Parallel() // bounds of seconds at advbase 1: see parallel_test.go
	const delay = 8 * time.Second
	c := newCluster(t, "--preempt", "--preempt-delay", delay.String())
	startPair(t, c)
	c.reboot(c.master)
	if _, ok := c.waitHolder(c.backup, masterDown+5*time.Second); !ok {
		t.Fatalf("backup does not hold the VIP (holders %v)", c.holders())
	}
	started := time.Now()
	p := c.bootBack(c.master, masterAddr)
	if err := waitOutput(p, "INIT -> BACKUP", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	// Without the delay it would preempt within 1.8 s (TestPreemptTakesBack).
	for time.Since(started) < delay-time.Second {
		if got := c.holders(); len(got) != 1 || got[0] != "backup" {
			t.Fatalf("%v after the master's carpd started, the VIP is held by %v; want only backup during the preempt delay", time.Since(started), got)
		}
		time.Sleep(100 * time.Millisecond)
	}
	_, ok := c.waitHolder(c.master, delay+3*time.Second-time.Since(started))
	at := time.Since(started)
	if !ok {
		t.Fatalf("%v after the master's carpd started, the VIP is held by %v; want master (preempting after the delay)", time.Since(started), c.holders())
	}
	t.Logf("master took the VIP back %v after its carpd started", at)
	if err := waitOutput(p, "BACKUP -> MASTER (preempting a slower master)", time.Second); err != nil {
		t.Error(err)
	}
	end := time.Now().Add(3 * time.Second)
	for time.Now().Before(end) {
		if got := c.holders(); len(got) != 1 || got[0] != "master" {
			t.Fatalf("after preempting, the VIP is held by %v, want only master", got)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
