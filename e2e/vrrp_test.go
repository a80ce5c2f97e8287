package e2e

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/carpd/carpd/internal/lab"
)

// vrrpRC is an rc.conf of the walkthrough's pair in VRRPv3 mode (FreeBSD
// 15's carpver 3): the master priority 155, the backup 55, at interval
// centiseconds.
func vrrpRC(c *cluster, master bool, interval int) string {
	own, prio := backupAddr, 55
	if master {
		own, prio = masterAddr, 155
	}
	return fmt.Sprintf("ifconfig_eth0=\"inet %s netmask 255.255.255.0\"\n"+
		"ifconfig_eth0_alias0=\"inet 192.0.2.50/32 vhid 1 carpver 3 vrrpprio %d vrrpinterval %d\"\n", own.Addr(), prio, interval)
}

// vip6 is the IPv6 VIP of TestVRRPDualStack.
var vip6 = netip.MustParseAddr("2001:db8::50")

// TestVRRPPair: two carpd in VRRPv3 mode at 10 ms (vrrpinterval 1: FreeBSD
// counts centiseconds; the test ran at 100 ms, vrrpinterval 10, while it
// only logged its takeover, 325 to 387 ms): the priority 155 holds
// the VIP, status says so in FreeBSD 15's words; a power cut of the master
// moves the VIP to the backup within the bound (Master_Down_Interval,
// 3 x 10 ms + Skew_Time 7.85 ms) plus vrrpPairMargin, timed from the
// SIGKILL to the backup's address notification; back, the master
// preempts.
func TestVRRPPair(t *testing.T) {
	c := newCluster(t)
	for _, h := range []struct {
		master bool
	}{{true}, {false}} {
		host := c.backup
		if h.master {
			host = c.master
		}
		if err := os.WriteFile(c.rcPath(host), []byte(vrrpRC(c, h.master, 1)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	c.start(c.master)
	c.start(c.backup)
	if _, ok := c.waitHolder(c.master, 10*time.Second); !ok {
		t.Fatalf("the priority 155 does not hold the VIP alone (holders %v)", c.holders())
	}
	// From here to the power cut the master alone holds the VIP, on
	// every address notification.
	w := watchVIP(t, c.master, c.backup)
	steady := time.Now()
	time.Sleep(time.Second)
	out, err := exec.Command(carpctlBin, "--control", c.ctlPath(c.master), "status").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "eth0: vrrp: MASTER vrid 1 prio 155 interval 1\n") {
		t.Errorf("master's status (%v):\n%s", err, out)
	}
	out, err = exec.Command(carpctlBin, "--control", c.ctlPath(c.backup), "status").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "eth0: vrrp: BACKUP vrid 1 prio 55 interval 1\n") {
		t.Errorf("backup's status (%v):\n%s", err, out)
	}
	cut := time.Now()
	if n := len(w.spans(steady, func(n int) bool { return n != 1 })); n > 0 || !slices.Equal(w.holders(), []string{"master"}) {
		t.Fatalf("before the power cut: %d intervals with the VIP not held once, holders now %v; want the master alone", n, w.holders())
	}
	c.reboot(c.master)
	if _, ok := w.waitSoleHolder(c.backup, 5*time.Second); !ok {
		t.Fatalf("the backup did not take over (holders %v)", c.holders())
	}
	took, ok := w.heldSince(c.backup.Name, cut)
	if !ok {
		t.Fatal("no notification of the backup taking the VIP")
	}
	bound := kaMasterDown(55, 1)
	t.Logf("backup holds the VIP %v after the power cut's SIGKILL (bound %v + margin %v)",
		took.Round(100*time.Microsecond), bound, vrrpPairMargin)
	if took > bound+vrrpPairMargin {
		t.Errorf("the backup took the VIP %v after the master's SIGKILL, want within %v + %v", took, bound, vrrpPairMargin)
	}
	c.bootBack(c.master, masterAddr)
	if _, ok := c.waitHolder(c.master, 10*time.Second); !ok {
		t.Fatalf("the master did not preempt (holders %v)", c.holders())
	}
}

// vrrpPairMargin is what TestVRRPPair allows past the Master_Down_Interval
// (37.85 ms): the kill's delivery, the backup's timer, the address's
// netlink notification. scripts/bench.sh's comparison on this machine kind
// (bench/results.csv, 2026-11-30, quiet, 5 runs each) measured carpd's
// 10 ms takeovers at 30.7 to 38.6 ms after a SIGKILL and 38.8 to 39.5 ms
// after a link cut: at most 1.7 ms past the bound. Measured here with
//
//	go test ./e2e -run 'TestVRRPPair$' -count=1 -v | grep 'after the power cut'
//
// on 2026-12-07 with the machine at load 6 to 16 (not quiet): see the
// report in the note.
const vrrpPairMargin = 10 * time.Millisecond

// TestVRRPManyVRIDs is BenchmarkManyVRIDs' functional form: 255 VRRP
// vrids on a pair for 5 s at 10 ms, the benchmark's and issue 26's
// interval (25,500 adverts a second from the master): every VIP stays on
// the master and neither side makes a transition (oneScaleRun fails on
// either), and no advert of the master comes late enough for the backup
// (priority 55) to time out on it, its Master_Down_Interval less one
// interval, 27.85 ms. The speed target, lateness p99 under 5 ms, is the
// benchmark's (go test ./e2e -run '^$' -bench ManyVRIDs); this test logs
// the p99: 2.1 to 3.9 ms here (N=5), 5.41 ms once on the CI machine.
func TestVRRPManyVRIDs(t *testing.T) {
	requireRoot(t)
	r := oneScaleRun(t, 1, 5*time.Second)
	t.Log(r)
	down := kaMasterDown(scaleVRRPPriority[1], 1) - 10*time.Millisecond
	if late := time.Duration(r.lateMax * float64(time.Millisecond)); late >= down {
		t.Errorf("an advert of the master %v late, want under %v (the backup's Master_Down_Interval less an interval: a false failover)", late, down)
	}
}

// TestVRRPDualStack: a VRRP vhid with an IPv4 and an IPv6 address runs one
// instance per family (RFC 5798), each MASTER on the priority 155 host:
// two status lines, the metrics told apart by af, keepalived's notify
// called per instance with the priority; the power cut moves both VIPs.
func TestVRRPDualStack(t *testing.T) {
	c := newCluster(t, "--metrics-listen", metricsAddr)
	hookLog := filepath.Join(c.dir, "notify.log")
	notify := filepath.Join(c.dir, "notify.sh")
	if err := os.WriteFile(notify, []byte("#!/bin/sh\necho \"$* $CARP_PROTO\" >> "+hookLog+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	both := func(h *lab.Host) bool {
		h4, h6 := holdersOf(t, vip, c.master, c.backup), holdersOf(t, vip6, c.master, c.backup)
		return slices.Equal(h4, []string{h.Name}) && slices.Equal(h6, []string{h.Name})
	}
	// waitBoth waits until h alone holds both VIPs, what failing the test
	// after limit.
	waitBoth := func(h *lab.Host, limit time.Duration, what string) {
		t.Helper()
		deadline := time.Now().Add(limit)
		for !both(h) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: inet %v, inet6 %v", what,
					holdersOf(t, vip, c.master, c.backup), holdersOf(t, vip6, c.master, c.backup))
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	// The master first, holding both VIPs, then the backup: started
	// together at 10 ms, the one whose start came first may time out
	// first (a backup 11 ms ahead went MASTER for 11 ms in CI), which is
	// VRRP's start, not what this test counts.
	for _, h := range []*lab.Host{c.master, c.backup} {
		prio := 55
		if h == c.master {
			prio = 155
		}
		cfg := fmt.Sprintf("notify = %q\n[[vhid]]\ninterface = \"eth0\"\nvhid = 1\ncarpver = 3\nvrrp-priority = %d\nvrrp-interval = 1\n"+
			"name = \"VI_%s\"\naddresses = [\"192.0.2.50/32\", \"2001:db8::50/64\"]\n", notify, prio, h.Name)
		path := filepath.Join(c.dir, h.Name+".toml")
		if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
		c.startCarpd(h, "--config", path)
		waitBoth(c.master, 15*time.Second, "the master does not hold both VIPs alone")
	}
	out, err := exec.Command(carpctlBin, "--control", c.ctlPath(c.master), "status").CombinedOutput()
	if err != nil || strings.Count(string(out), "eth0: vrrp: MASTER vrid 1 prio 155 interval 1\n") != 2 ||
		!strings.Contains(string(out), "af inet group 224.0.0.18 primary 192.0.2.21 preempt tiebreak") ||
		!strings.Contains(string(out), "af inet6 group ff02::12 primary fe80::") {
		t.Errorf("master's status (%v):\n%s", err, out)
	}
	mf := scrape(t, c.master)
	for _, af := range []string{"inet", "inet6"} {
		if v, ok := value(mf, "carpd_vhid_state", "vhid=1", "proto=vrrp", "af="+af); !ok || v != 2 {
			t.Errorf("carpd_vhid_state{proto=vrrp,af=%s} = %v (%v), want 2", af, v, ok)
		}
		if v, ok := value(mf, "carpd_vrrp_priority", "vhid=1", "af="+af); !ok || v != 155 {
			t.Errorf("carpd_vrrp_priority{af=%s} = %v (%v), want 155", af, v, ok)
		}
	}
	if v, ok := value(mf, "carpd_adverts_sent_total", "vhid=1", "af=inet6"); !ok || v < 1 {
		t.Errorf("carpd_adverts_sent_total{af=inet6} = %v (%v), want some", v, ok)
	}
	// The hooks run one after the other, tens of milliseconds each: the
	// power cut waits until the start's have run (the master's two MASTER
	// calls, the backup's two BACKUP calls).
	var before []byte
	for deadline := time.Now().Add(10 * time.Second); ; {
		before, _ = os.ReadFile(hookLog)
		if strings.Count(string(before), "INSTANCE VI_master MASTER 155 vrrp\n") == 2 &&
			strings.Count(string(before), "INSTANCE VI_backup BACKUP 55 vrrp\n") == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("notify calls of the start:\n%s\nwant MASTER twice on the master, BACKUP twice on the backup", before)
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.reboot(c.master)
	waitBoth(c.backup, 10*time.Second, "the backup did not take both VIPs")
	deadline := time.Now().Add(10 * time.Second)
	for {
		data, _ := os.ReadFile(hookLog)
		got := string(data[len(before):])
		if strings.Count(string(before), "INSTANCE VI_master MASTER 155 vrrp\n") == 2 && strings.Count(got, "INSTANCE VI_backup MASTER 55 vrrp\n") == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("notify calls before the power cut:\n%s\nafter:\n%s\nwant MASTER twice (one per family) on each host, with its priority", before, got)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
