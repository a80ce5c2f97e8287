package e2e

import (
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/carpd/carpd/internal/probe"
)

// TestPlannedFailover: SIGTERM on the master: it bows out and keeps the
// VIP until the backup's first advert (make before break); the client,
// probing every 10 ms, loses nothing; carpd exits 0 and leaves no address
// behind.
func TestPlannedFailover(t *testing.T) {
	c := newCluster(t)
	startPair(t, c)
	pr := c.ping(10 * time.Millisecond)
	time.Sleep(time.Second)
	p := c.procs[c.master]
	if err := p.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if took, ok := c.waitHolder(c.backup, 5*time.Second); !ok {
		t.Fatalf("backup does not hold the VIP alone %v after SIGTERM (holders %v)", took, c.holders())
	}
	select {
	case <-p.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("carpd did not exit after SIGTERM")
	}
	if code := p.ExitCode(); code != 0 {
		t.Errorf("carpd exit status %d after SIGTERM, want 0", code)
	}
	if err := waitOutput(p, "MASTER -> INIT (shutting down)", time.Second); err != nil {
		t.Error(err)
	}
	if err := waitOutput(c.procs[c.backup], "BACKUP -> MASTER (master will time out)", time.Second); err != nil {
		t.Error(err)
	}
	time.Sleep(1500 * time.Millisecond)
	pr.stop()
	st := probe.Summarize(pr.results())
	t.Logf("planned failover: %d probes sent, %d lost", st.Sent, st.Lost)
	// The target, 0, asserted: scripts/bench.sh's planned stop (bench/
	// results.csv, 2026-11-30: carpd CARP 1 s and VRRPv3 10 ms, 5 runs
	// each) lost 0 every time, and so did this test in the runs of
	// 2026-12-07 (see the note). A lost probe is the regression
	// this test is for.
	if st.Lost > 0 || st.Sent < 100 {
		t.Errorf("client probes: %+v; want 0 lost of >= 100", st)
	}
}

// TestSIGKILLLeavesNoAddress: carpd SIGKILLed on the master, link
// untouched. The VIP's lifetime runs out: within the backup's master-down
// interval (+1 s margin) the killed host no longer holds it, the backup
// does, and the client's ARP entry points at the backup.
func TestSIGKILLLeavesNoAddress(t *testing.T) {
	t.Parallel() // bounds of seconds at advbase 1: see parallel_test.go
	c := newCluster(t)
	startPair(t, c)
	pr := c.ping(100 * time.Millisecond)
	time.Sleep(time.Second)
	p := c.procs[c.master]
	killed := time.Now()
	if err := p.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	var gone time.Duration
	for time.Since(killed) < masterDown+5*time.Second {
		if ok, err := c.master.Holds(vip); err != nil {
			t.Fatal(err)
		} else if !ok {
			gone = time.Since(killed)
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if gone == 0 {
		t.Fatalf("the killed master still holds the VIP %v after the kill", time.Since(killed))
	}
	if gone > masterDown+time.Second {
		t.Errorf("the killed master kept the VIP %v, want within %v", gone, masterDown+time.Second)
	}
	if _, ok := c.waitHolder(c.backup, masterDown+5*time.Second); !ok {
		t.Fatalf("the backup does not hold the VIP alone (holders %v)", c.holders())
	}
	held := time.Since(killed)
	t.Logf("VIP gone from the killed host after %v; backup alone holds it %v after the kill", gone, held)
	// The bound the test states: the master-down interval, plus 1 s for
	// the VIP's lifetime, the polling and a loaded machine.
	if held > masterDown+time.Second {
		t.Errorf("the backup alone holds the VIP %v after the kill, want within %v", held, masterDown+time.Second)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !pr.answeredSince(time.Now().Add(-200*time.Millisecond)) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	mac, _, err := c.client.Neigh(vip)
	if err != nil {
		t.Fatal(err)
	}
	if mac.String() != c.backup.MAC.String() {
		t.Errorf("client's ARP entry for %v is %v, want the backup's %v", vip, mac, c.backup.MAC)
	}
	pr.stop()
	if st := probe.Summarize(pr.results()); !st.Recovered {
		t.Errorf("the client's pings did not recover: %+v", st)
	}
}

// TestAddressRemovedUnderneath: `ip addr del` of the VIP on the master (as
// systemd-networkd does): carpd puts it back and announces it within
// restoreBound; on the backup, a VIP added underneath is removed.
func TestAddressRemovedUnderneath(t *testing.T) {
	c := newCluster(t)
	startPair(t, c)
	w := watchVIP(t, c.master)
	var took []time.Duration
	for range 3 {
		start := time.Now()
		if err := c.master.DelAddr(netipPrefix("192.0.2.50/32")); err != nil {
			t.Fatal(err)
		}
		// Until the watch has seen the removal and the restore: right
		// after the removal it may not have read the removal's
		// notification yet, and still shows the master holding.
		var gaps []span
		for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(time.Millisecond) {
			_, ok := w.waitSoleHolder(c.master, time.Until(deadline))
			if gaps = w.unheld(start); ok && len(gaps) > 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the master did not restore its VIP within 2 s (%d intervals without it seen)", len(gaps))
			}
		}
		// The time without the VIP, from the removal's notification to
		// the restored address's.
		if len(gaps) != 1 {
			t.Fatalf("%d intervals without the VIP after one removal, want 1", len(gaps))
		}
		took = append(took, gaps[0].len())
		time.Sleep(300 * time.Millisecond)
	}
	worst := slices.Max(took)
	t.Logf("VIP restored %v after each removal (bound %v)", took, restoreBound)
	if worst > restoreBound {
		t.Errorf("restoring the VIP took %v, want within %v", worst, restoreBound)
	}
	if err := waitOutput(c.procs[c.master], "removed underneath carpd", time.Second); err != nil {
		t.Error(err)
	}

	if err := c.backup.AddAddr(netipPrefix("192.0.2.50/32")); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for {
		if ok, _ := c.backup.Holds(vip); !ok {
			break
		}
		if time.Since(start) > 2*time.Second {
			t.Fatal("the backup did not remove a VIP added underneath it")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if got := c.holders(); len(got) != 1 || got[0] != "master" {
		t.Errorf("holders %v, want only master", got)
	}
}

// restoreBound is TestAddressRemovedUnderneath's target, 100 ms, for the
// time from the removal's netlink notification to the restored address's.
// carpd reacts to the notification (no polling): measured with
//
//	go test ./e2e -run 'TestAddressRemovedUnderneath$' -count=1 -v | grep restored
//
// on this machine kind at load 10 to 16 (2026-12-07): see the note.
const restoreBound = 100 * time.Millisecond

// partition cuts the master and the backup off from each other, while the
// client still reaches both and no carrier drops (isolate false joins them
// again).
func (c *cluster) partition(t *testing.T, isolate bool) {
	t.Helper()
	isolatePorts(t, c.lab, isolate, c.master, c.backup)
}

// TestSplitBrainHeal: master and backup cannot hear each other (carrier
// up, the client reaches both): both become MASTER, and the client follows
// the backup's announcement. On heal, within about one advert
// interval only the better master holds the VIP, and it announces again so
// that the client's ARP entry follows it and the pings keep working.
func TestSplitBrainHeal(t *testing.T) {
	t.Parallel() // bounds of seconds at advbase 1: see parallel_test.go
	c := newCluster(t)
	startPair(t, c)
	c.partition(t, true)
	deadline := time.Now().Add(masterDown + 5*time.Second)
	for {
		got := c.holders()
		if len(got) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("partitioned, the holders are %v, want both", got)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The client follows the backup's announcement.
	pr := c.ping(100 * time.Millisecond)
	deadline = time.Now().Add(5 * time.Second)
	for !pr.answeredSince(time.Now().Add(-300*time.Millisecond)) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if mac, _, _ := c.client.Neigh(vip); mac.String() != c.backup.MAC.String() {
		t.Fatalf("during the partition the client's ARP entry is %v, want the backup's %v", mac, c.backup.MAC)
	}

	c.partition(t, false)
	healed := time.Now()
	took, ok := c.waitHolder(c.master, 5*time.Second)
	if !ok {
		t.Fatalf("after the heal the holders are %v, want only master", c.holders())
	}
	t.Logf("one holder %v after the heal", took)
	if took > 3*time.Second {
		t.Errorf("the split brain lasted %v after the heal, want about one advert interval", took)
	}
	deadline = time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		if mac, _, _ := c.client.Neigh(vip); mac.String() == c.master.MAC.String() {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if mac, _, _ := c.client.Neigh(vip); mac.String() != c.master.MAC.String() {
		t.Errorf("after the heal the client's ARP entry is %v, want the master's %v", mac, c.master.MAC)
	}
	time.Sleep(time.Second)
	pr.stop()
	var lostAfter int
	for _, r := range pr.results() {
		if r.Sent.After(healed.Add(took+500*time.Millisecond)) && r.Lost {
			lostAfter++
		}
	}
	if lostAfter > 0 {
		t.Errorf("%d probes lost after the heal settled", lostAfter)
	}
}

// TestSecondSignalReleasesAtOnce: a lone master bows out on SIGTERM and
// keeps its VIP while it waits for a new master (up to 3*advbase + 1 s); a
// second SIGTERM makes it release the VIP and exit at once.
func TestSecondSignalReleasesAtOnce(t *testing.T) {
	t.Parallel() // bounds of seconds at advbase 1: see parallel_test.go
	c := newCluster(t)
	p := c.start(c.master)
	if took, ok := c.waitHolder(c.master, 15*time.Second); !ok {
		t.Fatalf("the master does not hold the VIP after %v", took)
	}
	if err := p.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	if ok, _ := c.master.Holds(vip); !ok {
		t.Fatal("the master released its VIP before any new master was heard")
	}
	select {
	case <-p.Done():
		t.Fatal("carpd exited before the new master was heard or the deadline passed")
	default:
	}
	second := time.Now()
	if err := p.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.Done():
	case <-time.After(2 * time.Second):
		t.Fatal("carpd still runs 2 s after the second SIGTERM")
	}
	t.Logf("exited %v after the second SIGTERM", time.Since(second))
	if code := p.ExitCode(); code != 0 {
		t.Errorf("exit status %d, want 0", code)
	}
	if ok, _ := c.master.Holds(vip); ok {
		t.Error("the VIP is still on the master after carpd exited")
	}
}
