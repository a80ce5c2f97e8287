package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
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

// TestVRRPPair: two carpd in VRRPv3 mode at 10 ms: the priority 155 holds
// the VIP, status says so in FreeBSD 15's words; a power cut of the master
// moves the VIP to the backup within a generous margin of the bound
// (3 x 10 ms + Skew_Time 7.85 ms); back, the master preempts.
func TestVRRPPair(t *testing.T) {
	c := newCluster(t)
	for _, h := range []struct {
		master bool
	}{{true}, {false}} {
		host := c.backup
		if h.master {
			host = c.master
		}
		if err := os.WriteFile(c.rcPath(host), []byte(vrrpRC(c, h.master, 10)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	c.start(c.master)
	c.start(c.backup)
	if _, ok := c.waitHolder(c.master, 10*time.Second); !ok {
		t.Fatalf("the priority 155 does not hold the VIP alone (holders %v)", c.holders())
	}
	time.Sleep(time.Second)
	if h := c.holders(); len(h) != 1 || h[0] != "master" {
		t.Fatalf("holders %v after 1 s", h)
	}
	out, err := exec.Command(carpctlBin, "--control", c.ctlPath(c.master), "status").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "eth0: vrrp: MASTER vrid 1 prio 155 interval 10\n") {
		t.Errorf("master's status (%v):\n%s", err, out)
	}
	out, err = exec.Command(carpctlBin, "--control", c.ctlPath(c.backup), "status").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "eth0: vrrp: BACKUP vrid 1 prio 55 interval 10\n") {
		t.Errorf("backup's status (%v):\n%s", err, out)
	}
	c.reboot(c.master)
	d, ok := c.waitHolder(c.backup, 5*time.Second)
	if !ok {
		t.Fatalf("the backup did not take over (holders %v)", c.holders())
	}
	t.Logf("backup holds the VIP %v after the power cut", d)
	c.bootBack(c.master, masterAddr)
	if _, ok := c.waitHolder(c.master, 10*time.Second); !ok {
		t.Fatalf("the master did not preempt (holders %v)", c.holders())
	}
}

// TestVRRPManyVRIDs is BenchmarkManyVRIDs' short form: 255 VRRP vrids at
// 10 ms on a pair for 5 s (25,500 adverts a second from the master): every
// VIP stays on the master, no transition on either side (a master advert
// more than ~27 ms late would be a false failover), and the adverts'
// lateness p99 under a generous 10 ms (the benchmark's target is 5 ms).
func TestVRRPManyVRIDs(t *testing.T) {
	requireRoot(t)
	r := oneScaleRun(t, 1, 5*time.Second)
	t.Log(r)
	if r.lateP99 >= 10 {
		t.Errorf("advert lateness p99 %.2f ms, want < 10 ms", r.lateP99)
	}
}
