package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/carpd/carpd/internal/lab"
	"github.com/carpd/carpd/internal/probe"
)

// startPair starts carpd on both hosts and waits for the master to hold the
// address (a fresh pair waits a full master-down interval first).
func startPair(t *testing.T, c *cluster) {
	t.Helper()
	// The backup once the master's master-down timer runs (its INIT ->
	// BACKUP): the master's is the shorter by 0.39 s only, and a start of
	// the master's carpd that a busy machine delays by more would let the
	// backup take the VIP first.
	if err := waitOutput(c.start(c.master), "INIT -> BACKUP", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	c.start(c.backup)
	if took, ok := c.waitHolder(c.master, 15*time.Second); !ok {
		t.Fatalf("after %v the VIP is held by %v, want only master", took, c.holders())
	}
}

// TestSteadyState: exactly one host holds the VIP for 10 s and the client's
// pings all succeed.
func TestSteadyState(t *testing.T) {
	t.Parallel() // bounds of seconds at advbase 1: see parallel_test.go
	c := newCluster(t)
	startPair(t, c)
	pr := c.ping(100 * time.Millisecond)
	end := time.Now().Add(10 * time.Second)
	for time.Now().Before(end) {
		if got := c.holders(); len(got) != 1 || got[0] != "master" {
			t.Fatalf("VIP held by %v, want only master", got)
		}
		time.Sleep(200 * time.Millisecond)
	}
	pr.stop()
	st := probe.Summarize(pr.results())
	if st.Sent < 50 || st.Lost != 0 {
		t.Errorf("client pings: sent %d, lost %d; want >= 50 sent and none lost", st.Sent, st.Lost)
	}
	mac, _, err := c.client.Neigh(vip)
	if err != nil {
		t.Fatal(err)
	}
	if mac.String() != c.master.MAC.String() {
		t.Errorf("client's ARP entry for %v is %v, want the master's %v", vip, mac, c.master.MAC)
	}
}

// TestUnplannedFailover: the master "reboots" (carpd SIGKILLed, link down,
// addresses gone); the backup holds the VIP within the master-down interval
// + 1 s, the client's pings recover and its ARP entry points at the backup.
// The old master returns with preempt off: it stays BACKUP and never holds
// the address.
func TestUnplannedFailover(t *testing.T) {
	t.Parallel() // bounds of seconds at advbase 1: see parallel_test.go
	c := newCluster(t)
	startPair(t, c)
	pr := c.ping(100 * time.Millisecond)
	time.Sleep(2 * time.Second)

	killed := time.Now()
	c.reboot(c.master)
	took, ok := c.waitHolder(c.backup, masterDown+5*time.Second)
	if !ok {
		t.Fatalf("backup does not hold the VIP %v after the master died (holders %v)", took, c.holders())
	}
	if bound := masterDown + time.Second; took > bound {
		t.Errorf("backup took the VIP after %v, want within %v", took, bound)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !pr.answeredSince(killed.Add(took)) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if !pr.answeredSince(killed.Add(took)) {
		t.Fatal("the client's pings did not recover after the takeover")
	}
	mac, _, err := c.client.Neigh(vip)
	if err != nil {
		t.Fatal(err)
	}
	if mac.String() != c.backup.MAC.String() {
		t.Errorf("client's ARP entry for %v is %v, want the backup's %v", vip, mac, c.backup.MAC)
	}
	t.Logf("VIP on the backup %v after the kill", took)

	// The old master comes back; preempt is off.
	p := c.bootBack(c.master, masterAddr)
	if err := waitOutput(p, "INIT -> BACKUP", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	end := time.Now().Add(8 * time.Second)
	for time.Now().Before(end) {
		if got := c.holders(); len(got) != 1 || got[0] != "backup" {
			t.Fatalf("after the old master returned, the VIP is held by %v, want only backup", got)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if tr := transitions(p.Output()); len(tr) != 1 {
		t.Errorf("returned master's transitions = %q, want only INIT -> BACKUP", tr)
	}
	pr.stop()
	st := probe.Summarize(pr.results())
	if !st.Recovered || st.LostRuns != 1 {
		t.Errorf("client pings: %+v; want one run of losses, recovered", st)
	}
}

// TestPreemptTakesBack: with preempt on, the returning master (advskew 100)
// takes the address back from the backup (advskew 200).
func TestPreemptTakesBack(t *testing.T) {
	t.Parallel() // bounds of seconds at advbase 1: see parallel_test.go
	c := newCluster(t, "--preempt")
	startPair(t, c)
	c.reboot(c.master)
	if _, ok := c.waitHolder(c.backup, masterDown+5*time.Second); !ok {
		t.Fatalf("backup does not hold the VIP (holders %v)", c.holders())
	}
	p := c.bootBack(c.master, masterAddr)
	// It waits to hear the backup's advert (at most 1.8 s) and preempts.
	if took, ok := c.waitHolder(c.master, 10*time.Second); !ok {
		t.Fatalf("the returning master does not take the VIP back after %v (holders %v)", took, c.holders())
	}
	if err := waitOutput(p, "BACKUP -> MASTER (preempting a slower master)", 2*time.Second); err != nil {
		t.Error(err)
	}
	end := time.Now().Add(5 * time.Second)
	for time.Now().Before(end) {
		if got := c.holders(); len(got) != 1 || got[0] != "master" {
			t.Fatalf("after preempting, the VIP is held by %v, want only master", got)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestStaleAddressRemovedAtStart: a VIP left on the interface (by a crash)
// is removed when carpd starts, before it is BACKUP.
func TestStaleAddressRemovedAtStart(t *testing.T) {
	t.Parallel() // bounds of seconds at advbase 1: see parallel_test.go
	c := newCluster(t)
	if err := c.backup.AddAddr(netipPrefix("192.0.2.50/32")); err != nil {
		t.Fatal(err)
	}
	p := c.start(c.backup)
	if err := waitOutput(p, "INIT -> BACKUP", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if ok, _ := c.backup.Holds(vip); ok {
		t.Error("the stale VIP is still on the backup after carpd started")
	}
}

// TestBadConfigTouchesNothing: a bad rc.conf makes carpd exit 78 with the
// file, line and word, before it touches the interface.
func TestBadConfigTouchesNothing(t *testing.T) {
	t.Parallel() // bounds of seconds at advbase 1: see parallel_test.go
	c := newCluster(t)
	if err := c.master.AddAddr(netipPrefix("192.0.2.50/32")); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(c.dir, "bad.rc.conf")
	body := rcConf(masterAddr, true) + `ifconfig_eth0_alias1="inet 192.0.2.51/32 vhid 0 pass lampros"` + "\n"
	if err := os.WriteFile(bad, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ip", "netns", "exec", c.master.NS, carpdBin, "--rc-conf", bad)
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 78 {
		t.Fatalf("carpd with a bad config: %v, want exit status 78; output:\n%s", err, out)
	}
	if !strings.Contains(string(out), "bad.rc.conf:3") || !strings.Contains(string(out), "vhid") {
		t.Errorf("error does not name the file, line 3 and the word:\n%s", out)
	}
	if ok, _ := c.master.Holds(vip); !ok {
		t.Error("carpd removed an address although its configuration was bad")
	}
	// A configuration naming a missing interface is rejected the same way.
	missing := filepath.Join(c.dir, "missing.rc.conf")
	if err := os.WriteFile(missing, []byte(`ifconfig_eth9_alias0="inet 192.0.2.50/32 vhid 100 pass lampros"`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err = exec.Command("ip", "netns", "exec", c.master.NS, carpdBin, "--rc-conf", missing).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 78 || !strings.Contains(string(out), "eth9") {
		t.Errorf("carpd with a missing interface: %v, want exit status 78 naming eth9; output:\n%s", err, out)
	}
}

func waitOutput(p *lab.Proc, substr string, timeout time.Duration) error {
	ctx, cancel := contextWithTimeout(timeout)
	defer cancel()
	if err := p.WaitOutput(ctx, substr); err != nil {
		return fmt.Errorf("waiting for %q: %w\n%s", substr, err, p.Output())
	}
	return nil
}
