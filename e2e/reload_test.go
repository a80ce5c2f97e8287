package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/carpd/carpd/internal/carp"
	"github.com/carpd/carpd/internal/lab"
	"github.com/carpd/carpd/internal/probe"
)

// reloadTOML writes a host's configuration: vhid 100 with advskew, and
// with extra vhid 101 (198.51.100.50) when with101.
func reloadTOML(t testing.TB, path string, advskew int, with101 bool, global string) {
	t.Helper()
	body := fmt.Sprintf(`%s

[[vhid]]
interface = "eth0"
vhid = 100
advskew = %d
password = "lampros"
addresses = ["192.0.2.50/32"]
`, global, advskew)
	if with101 {
		body += fmt.Sprintf(`
[[vhid]]
interface = "eth0"
vhid = 101
advskew = %d
password = "lampros"
addresses = ["198.51.100.50/32"]
`, advskew)
	}
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

// waitCond polls cond every 20 ms until it holds, for at most timeout, and
// reports whether it held: synchronisation on a condition, not a sleep.
func waitCond(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

// waitAnnounced waits, at most timeout, until h's carpd has made the
// announcements of its takeover of its first vhid: one at once and
// carp.AnnounceRepeats more, carp.AnnounceInterval apart.
func (c *cluster) waitAnnounced(t testing.TB, h *lab.Host, timeout time.Duration) {
	t.Helper()
	want := uint64(1 + carp.AnnounceRepeats)
	var got uint64
	if !waitCond(timeout, func() bool { got = c.status(h).VHIDs[0].Counters.Announcements; return got >= want }) {
		t.Fatalf("%s made %d announcements in %v, want the %d of its takeover", h.Name, got, timeout, want)
	}
}

// waitAdverts waits, at most timeout, until the master's carpd has sent n
// IPv4 adverts of its first vhid and the backup's has received n.
func (c *cluster) waitAdverts(t testing.TB, n uint64, timeout time.Duration) {
	t.Helper()
	var sent, received uint64
	if !waitCond(timeout, func() bool {
		sent, received = c.status(c.master).VHIDs[0].Counters.SentInet, c.status(c.backup).VHIDs[0].Counters.ReceivedInet
		return sent >= n && received >= n
	}) {
		t.Fatalf("in %v the master sent %d adverts and the backup received %d, want %d each", timeout, sent, received, n)
	}
}

// fdCount counts the open file descriptors of a process.
func fdCount(t testing.TB, pid int) int {
	t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// TestReloadWithoutTransitions: 100 reloads of an unchanged configuration
// (SIGHUP and carpctl reload) under 10 ms client probes: no transition, no
// announcement, no lost probe, no growth of goroutines or file
// descriptors. Then an added vhid, a removed one, a changed advskew that
// makes the backup preempt, and an invalid file refused.
func TestReloadWithoutTransitions(t *testing.T) {
	c := newCluster(t)
	mcfg, bcfg := filepath.Join(c.dir, "master.toml"), filepath.Join(c.dir, "backup.toml")
	reloadTOML(t, mcfg, 100, false, "")
	reloadTOML(t, bcfg, 200, false, "preempt = true")
	mp := c.startCarpd(c.master, "--config", mcfg, "--metrics-listen", metricsAddr)
	bp := c.startCarpd(c.backup, "--config", bcfg)
	if _, ok := c.waitHolder(c.master, 15*time.Second); !ok {
		t.Fatalf("holders %v", c.holders())
	}
	c.waitAnnounced(t, c.master, 10*time.Second)
	before := map[*lab.Host]uint64{}
	for _, h := range []*lab.Host{c.master, c.backup} {
		before[h] = c.status(h).VHIDs[0].Counters.Announcements
	}
	goroutines := func() float64 {
		v, _ := value(scrape(t, c.master), "go_goroutines")
		return v
	}
	g0, fd0 := goroutines(), fdCount(t, mp.PID())
	mLog, bLog := len(mp.Output()), len(bp.Output())
	pr := c.ping(10 * time.Millisecond)
	for i := range 100 {
		for _, h := range []*lab.Host{c.master, c.backup} {
			if i%2 == 0 {
				if out, errOut, code := c.carpctl(h, "reload"); code != 0 || !strings.Contains(out, "0 added, 0 removed, 0 changed, 1 unchanged") {
					t.Fatalf("reload #%d on %s: exit %d, %q %q", i, h.Name, code, out, errOut)
				}
			} else if err := c.procs[h].Signal(syscall.SIGHUP); err != nil {
				t.Fatal(err)
			}
		}
	}
	// The SIGHUPs are handled asynchronously: wait until both have logged
	// every reload (at most 10 s), then probe 1 s more, the window in which
	// a loss the last reloads caused would show.
	for _, p := range []struct {
		proc *lab.Proc
		from int
	}{{mp, mLog}, {bp, bLog}} {
		if !waitCond(10*time.Second, func() bool { return strings.Count(p.proc.Output()[p.from:], "configuration reloaded") >= 100 }) {
			t.Errorf("%s logged %d reloads in 10 s, want 100", p.proc.Name, strings.Count(p.proc.Output()[p.from:], "configuration reloaded"))
		}
	}
	time.Sleep(time.Second)
	pr.stop()
	st := probe.Summarize(pr.results())
	if st.Lost != 0 {
		t.Errorf("%d probes lost during 100 reloads: %+v", st.Lost, st)
	}
	for _, h := range []*lab.Host{c.master, c.backup} {
		if got := c.status(h).VHIDs[0].Counters.Announcements; got != before[h] {
			t.Errorf("%s announced %d times during the reloads", h.Name, got-before[h])
		}
	}
	if tr := transitions(mp.Output()[mLog:]); len(tr) != 0 {
		t.Errorf("master transitions during the reloads: %v", tr)
	}
	if tr := transitions(bp.Output()[bLog:]); len(tr) != 0 {
		t.Errorf("backup transitions during the reloads: %v", tr)
	}
	if n := strings.Count(mp.Output()[mLog:], "configuration reloaded"); n != 100 {
		t.Errorf("the master logged %d reloads, want 100", n)
	}
	if n := strings.Count(bp.Output()[bLog:], "configuration reloaded"); n != 100 {
		t.Errorf("the backup logged %d reloads, want 100", n)
	}
	g1, fd1 := goroutines(), fdCount(t, mp.PID())
	t.Logf("goroutines %v -> %v, fds %d -> %d", g0, g1, fd0, fd1)
	if g1 > g0+2 || fd1 > fd0+2 {
		t.Errorf("growth across 100 reloads: goroutines %v -> %v, fds %d -> %d", g0, g1, fd0, fd1)
	}

	// An added vhid: the master takes it.
	vip101 := netipPrefix("198.51.100.50/32").Addr()
	reloadTOML(t, mcfg, 100, true, "")
	reloadTOML(t, bcfg, 200, true, "preempt = true")
	for _, h := range []*lab.Host{c.master, c.backup} {
		if out, errOut, code := c.carpctl(h, "reload"); code != 0 || !strings.Contains(out, "1 added") {
			t.Fatalf("adding on %s: %q %q", h.Name, out, errOut)
		}
	}
	deadline := time.Now().Add(masterDown + 3*time.Second)
	for {
		if got := holdersOf(t, vip101, c.master, c.backup); len(got) == 1 && got[0] == "master" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("vhid 101: holders %v", holdersOf(t, vip101, c.master, c.backup))
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Removed again: its address goes from both.
	reloadTOML(t, mcfg, 100, false, "")
	reloadTOML(t, bcfg, 200, false, "preempt = true")
	for _, h := range []*lab.Host{c.master, c.backup} {
		if out, errOut, code := c.carpctl(h, "reload"); code != 0 || !strings.Contains(out, "1 removed") {
			t.Fatalf("removing on %s: %q %q", h.Name, out, errOut)
		}
	}
	deadline = time.Now().Add(6 * time.Second)
	for len(holdersOf(t, vip101, c.master, c.backup)) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("vhid 101 removed, still held by %v", holdersOf(t, vip101, c.master, c.backup))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if st := c.status(c.master); len(st.VHIDs) != 1 {
		t.Errorf("after the removal: %d vhids", len(st.VHIDs))
	}

	// The backup's advskew changed to 50: with preempt it takes over.
	reloadTOML(t, bcfg, 50, false, "preempt = true")
	if out, errOut, code := c.carpctl(c.backup, "reload"); code != 0 || !strings.Contains(out, "1 changed") {
		t.Fatalf("changing the backup: %q %q", out, errOut)
	}
	if _, ok := c.waitHolder(c.backup, 5*time.Second); !ok {
		t.Fatalf("the backup with advskew 50 did not preempt: holders %v", c.holders())
	}
	if err := waitOutput(bp, "carp: 100@eth0: BACKUP -> MASTER (preempting a slower master)", time.Second); err != nil {
		t.Error(err)
	}

	// An invalid file: refused with its errors, the configuration stays.
	if err := os.WriteFile(bcfg, []byte("[[vhid]]\ninterface = \"eth0\"\nvhid = 300\nadvskew = 255\naddresses = [\"192.0.2.50/33\"]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, errOut, code := c.carpctl(c.backup, "reload")
	if code != 2 || !strings.Contains(errOut, `backup.toml:3: "vhid = 300": vhid must be 1..255`) ||
		!strings.Contains(errOut, `backup.toml:5: "192.0.2.50/33": malformed address`) {
		t.Errorf("invalid file: exit %d, %s", code, errOut)
	}
	// carpd logs the refusal itself, as an error: under systemd,
	// `journalctl -p warning` tells why `systemctl reload` failed.
	if err := waitOutput(bp, `level=ERROR msg="carpd: reload refused; the running configuration stays" by=control err=`, 2*time.Second); err != nil {
		t.Error(err)
	}
	if err := c.procs[c.backup].Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if err := waitOutput(bp, `level=ERROR msg="carpd: reload refused; the running configuration stays" by=SIGHUP err=`, 2*time.Second); err != nil {
		t.Error(err)
	}
	if st := c.status(c.backup); st.VHIDs[0].AdvSkew != 50 || st.VHIDs[0].State != "MASTER" {
		t.Errorf("after the refused reload: %+v", st.VHIDs[0])
	}
}
