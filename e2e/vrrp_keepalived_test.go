package e2e

// Interop with keepalived (Debian 12's 2.2.7) in VRRPv3 mode: carpd with a
// carpver 3 vhid and keepalived with a vrrp_instance of vrrp_version 3 on
// one segment, VRID 1, VIP 192.0.2.50 or 2001:db8::50, advert_int 1 and
// 0.01 (vrrpinterval 100 and 1), both roles.
//
// The subtests each build their own lab. Those at advert_int 0.01
// (TestVRRPKeepalived) run one at a time, and the test is not parallel, so
// nothing else runs beside them: their Master_Down_Interval is 38 ms, and
// 16 labs at once made the very stalls (gaps of 50 to 130 ms between a
// master's adverts) that the test then had to excuse. Those at advert_int
// 1 (TestVRRPKeepalived1s) run concurrently, from goroutines rather than
// with t.Parallel, in the parallel phase: a stall of the shared machine
// lasts milliseconds, their Master_Down_Interval seconds.

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/carpd/carpd/internal/api"
	"github.com/carpd/carpd/internal/carp"
	"github.com/carpd/carpd/internal/lab"
	"github.com/carpd/carpd/internal/lab/labtest"
)

const keepalivedPath = "/usr/sbin/keepalived"

// kaTiming is one advert interval: keepalived's advert_int and carpd's
// vrrpinterval (centiseconds), and the bounds the tests allow.
type kaTiming struct {
	name     string
	advert   string // keepalived's advert_int
	interval int    // carpd's vrrpinterval
	// failover bounds a takeover after the master's power cut; handover
	// one after its planned stop (priority 0); startup a fresh instance's
	// way to MASTER (master-down interval plus start-up).
	failover, handover, startup time.Duration
	// probe is the client's probe interval during the handover; kaLoss
	// the longest loss it may see when keepalived, which drops the VIP
	// at once, hands over (carpd, which keeps it until it hears the new
	// master, may lose none).
	probe, kaLoss time.Duration
	// steady is the time the roles' steady phase and the tie-break's
	// watch after the heal run without any transition.
	steady, tieSteady time.Duration
}

var (
	// Master_Down_Interval of the priority 55: 3 s + 201/256 s = 3.79 s;
	// Skew_Time 0.79 s. 12 s steady: three Master_Down_Intervals, a
	// dozen adverts each way.
	kaInt1 = kaTiming{name: "int1", advert: "1", interval: 100,
		failover: kaMasterDown(55, 100) + kaMargin1s, handover: kaSkew(55, 100) + kaMargin1s,
		kaLoss: kaSkew(55, 100) + kaMargin1s, startup: 10 * time.Second, probe: 10 * time.Millisecond,
		steady: 12 * time.Second, tieSteady: 8 * time.Second}
	// 30 ms + 7.85 ms; 7.85 ms. 10 s steady: 1,000 adverts each way,
	// 264 Master_Down_Intervals.
	kaInt001 = kaTiming{name: "int001", advert: "0.01", interval: 1,
		failover: kaMasterDown(55, 1) + kaFailoverMargin10ms, handover: kaSkew(55, 1) + kaHandoverMargin10ms,
		kaLoss: kaSkew(55, 1) + kaHandoverMargin10ms, startup: 5 * time.Second, probe: time.Millisecond,
		steady: 10 * time.Second, tieSteady: 3 * time.Second}
)

// The margins past the protocol's bounds (Master_Down_Interval for a power
// cut, Skew_Time for a priority-0 handover), on this machine kind (2
// cores):
//
//   - kaMargin1s: in 3 runs of the advert_int 1 subtests (go test ./e2e
//     -run 'TestVRRPKeepalived1s$' -v | grep -E 'failover \(|handover'),
//     on 2026-12-07 with the machine at load 13 to 20: 12 takeovers 2.76
//     to 3.80 s after the power cut (bound 3.79 s: 17 ms over at most),
//     12 handovers 791 to 833 ms after the SIGTERM (Skew_Time 785 ms: 48
//     ms over at most), keepalived's handovers losing 730 to 800 ms of
//     probes. 250 ms is five times the worst excess.
//   - the 10 ms margins: scripts/bench.sh's comparison (bench/results.csv,
//     2026-11-30, quiet, 5 runs each): link cut takeover 38.8 to 39.5 ms
//     (carpd) and 38.3 to 38.9 ms (keepalived), bound 37.85 ms, so at
//     most 1.7 ms over (bound_distance at most 3.2 ms); SIGTERM takeover
//     8.9 to 10.7 ms (carpd) and 9.0 to 9.3 ms (keepalived), Skew_Time
//     7.85 ms, so at most 2.9 ms over; keepalived's handover outage 9.6
//     to 10.6 ms. The margins add this test's 1 ms poll and the power
//     cut's own steps (kill, link down, flush) to those: 12 ms and 10 ms.
//     Measured quietly on 2026-12-07 (no other work on the machine; go
//     test ./e2e -run 'TestVRRPKeepalived$' -v | grep -E 'handover \(|failover \(',
//     in a loop): the power cut's takeover 30 to 39 ms, N=22 (at most
//     1.2 ms over the bound); the handover 9 to 15 ms after the SIGTERM
//     in 26 of 27 (Skew_Time 7.85 ms; median 10 ms), 20.1 ms once, when
//     the machine held carpd's priority-0 advert back 4.2 ms and
//     keepalived's answer 6 ms (12.2 ms over Skew_Time). The handover
//     margin is 15 ms for that; the failover's stays 12 ms.
const (
	kaMargin1s           = 250 * time.Millisecond
	kaFailoverMargin10ms = 12 * time.Millisecond
	kaHandoverMargin10ms = 15 * time.Millisecond
)

// kaSkew is the Skew_Time of a backup of priority prio at interval
// centiseconds.
func kaSkew(prio, interval int) time.Duration {
	i := time.Duration(interval) * 10 * time.Millisecond
	return time.Duration(256-prio) * i / 256
}

// kaFamily is the address family of the VRRP instance.
type kaFamily struct {
	name string
	v6   bool
}

var kaFamilies = []kaFamily{{"v4", false}, {"v6", true}}

// kaLab is a carpd host, a keepalived host and a client on one segment.
type kaLab struct {
	t                 testing.TB
	lab               *lab.Lab
	dir               string
	fam               kaFamily
	tm                kaTiming
	vip               netip.Addr
	carpd, ka, client *lab.Host
	// primary is each VRRP host's primary address of the family: the
	// source of its adverts and the tie-break's operand (IPv6: link-local).
	primary map[*lab.Host]netip.Addr

	mu    sync.Mutex
	procs []*lab.Proc
}

// newKALab builds the segment. carpdHigh gives carpd the higher primary
// address (.22, fe80::22) and keepalived the lower (.21, fe80::21); false
// swaps them. For IPv6 the link-local addresses are set to those, so that
// their order is known.
func newKALab(t *testing.T, fam kaFamily, tm kaTiming, carpdHigh bool) *kaLab {
	t.Helper()
	requireRoot(t)
	labtest.File(t, keepalivedPath)
	// The captures are read with tshark: the adverts' pace, the stalls and
	// the priority-0 handover are checked on them.
	labtest.Tool(t, "tshark")
	// The lab goes with the subtest (the 10 ms labs run one at a time,
	// so no other lab is in a steady phase then); its processes end
	// before it.
	l, err := lab.New("carpka")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("removing the lab: %v", err)
		}
	})
	k := &kaLab{t: t, lab: l, dir: t.TempDir(), fam: fam, tm: tm, primary: map[*lab.Host]netip.Addr{}}
	low, high := 21, 22
	cdN, kaN := high, low
	if !carpdHigh {
		cdN, kaN = low, high
	}
	addrs := func(n int) []netip.Prefix {
		return []netip.Prefix{
			netip.MustParsePrefix(fmt.Sprintf("192.0.2.%d/24", n)),
			netip.MustParsePrefix(fmt.Sprintf("2001:db8::%d/64", n)),
		}
	}
	for _, h := range []struct {
		name string
		n    int
		dst  **lab.Host
	}{{"carpd", cdN, &k.carpd}, {"keepalived", kaN, &k.ka}, {"client", 100, &k.client}} {
		host, err := l.AddHost(h.name, addrs(h.n)...)
		if err != nil {
			t.Fatal(err)
		}
		*h.dst = host
		if h.dst == &k.client {
			continue
		}
		if !fam.v6 {
			k.primary[host] = netip.MustParseAddr(fmt.Sprintf("192.0.2.%d", h.n))
			continue
		}
		ll := netip.MustParseAddr(fmt.Sprintf("fe80::%d", h.n))
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		for _, args := range [][]string{
			{"ip", "-6", "addr", "flush", "dev", lab.Iface, "scope", "link"},
			{"ip", "addr", "add", ll.String() + "/64", "dev", lab.Iface},
		} {
			if out, err := host.Run(ctx, args...); err != nil {
				cancel()
				t.Fatalf("%v: %s", err, out)
			}
		}
		cancel()
		k.primary[host] = ll
	}
	k.vip = vip
	if fam.v6 {
		k.vip = ipv6VIP
	}
	t.Cleanup(func() {
		k.mu.Lock()
		defer k.mu.Unlock()
		for _, p := range k.procs {
			if err := p.Kill(); err != nil {
				t.Error(err)
			}
		}
		if !t.Failed() {
			return
		}
		for _, p := range k.procs {
			t.Logf("%s output (last 400 lines):\n%s", p.Name, strings.Join(tail(p.Output(), 400), "\n"))
		}
	})
	return k
}

func (k *kaLab) record(p *lab.Proc) {
	k.mu.Lock()
	k.procs = append(k.procs, p)
	k.mu.Unlock()
}

func (k *kaLab) ctl() string { return filepath.Join(k.dir, "carpd.sock") }

// startCarpd starts carpd with a carpver 3 vhid 1 of priority prio at the
// lab's interval; tiebreak, when not "", is written as vrrp-tiebreak.
func (k *kaLab) startCarpd(prio int, tiebreak string) *lab.Proc {
	k.t.Helper()
	addr := "192.0.2.50/32"
	if k.fam.v6 {
		addr = "2001:db8::50/128"
	}
	conf := fmt.Sprintf("[[vhid]]\ninterface = %q\nvhid = 1\ncarpver = 3\nvrrp-priority = %d\nvrrp-interval = %d\naddresses = [%q]\n",
		lab.Iface, prio, k.tm.interval, addr)
	if tiebreak != "" {
		conf += "vrrp-tiebreak = " + tiebreak + "\n"
	}
	path := filepath.Join(k.dir, "carpd.toml")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		k.t.Fatal(err)
	}
	p, err := k.carpd.Start("carpd", carpdBin, "--config", path, "--log-level", "debug",
		"--control", k.ctl(), "--state-file", filepath.Join(k.dir, "carpd.state"))
	if err != nil {
		k.t.Fatal(err)
	}
	k.record(p)
	return p
}

// keepalivedConf is keepalived's configuration: one vrrp_instance, VRID 1,
// starting as BACKUP, preempting (no nopreempt), the VIP /32 or /64.
func (k *kaLab) keepalivedConf(prio int) string {
	addr := "192.0.2.50/32"
	if k.fam.v6 {
		addr = "2001:db8::50/64"
	}
	return fmt.Sprintf(`global_defs {
	router_id carpka
	vrrp_version 3
	vrrp_priority -10
	vrrp_garp_master_delay 1
}
vrrp_instance VI_1 {
	interface %s
	state BACKUP
	virtual_router_id 1
	priority %d
	advert_int %s
	virtual_ipaddress {
		%s
	}
}
`, lab.Iface, prio, k.tm.advert, addr)
}

// startKeepalived starts keepalived (its VRRP process only) in the
// foreground, logging to the console, with pid files of its own.
func (k *kaLab) startKeepalived(prio int) *lab.Proc {
	k.t.Helper()
	conf := filepath.Join(k.dir, "keepalived.conf")
	if err := os.WriteFile(conf, []byte(k.keepalivedConf(prio)), 0o644); err != nil {
		k.t.Fatal(err)
	}
	p, err := k.ka.Start("keepalived", keepalivedPath, "--dont-fork", "--log-console", "--no-syslog", "--log-detail",
		"--vrrp", "--use-file="+conf, "--pid="+filepath.Join(k.dir, "k.pid"),
		"--vrrp_pid="+filepath.Join(k.dir, "v.pid"), "--checkers_pid="+filepath.Join(k.dir, "c.pid"))
	if err != nil {
		k.t.Fatal(err)
	}
	k.record(p)
	return p
}

var kaStateRE = regexp.MustCompile(`Entering ([A-Z]+) STATE`)

// kaStates returns the states keepalived entered, in order.
func kaStates(out string) []string {
	var s []string
	for _, m := range kaStateRE.FindAllStringSubmatch(out, -1) {
		s = append(s, m[1])
	}
	return s
}

// kaComplaintRE matches keepalived's words for an advert it found wrong
// ("Invalid VRRPv3 checksum", "invalid TTL/HL", "wrong version", "bad
// password", "interval mismatch", "not present in MASTER advert",
// "discarding ..."), as whole words.
var kaComplaintRE = regexp.MustCompile(`(?i)\b(checksum|invalid|mismatch|not present|discard\w*|bad|wrong|ttl)\b`)

// kaAddressRE matches the addresses keepalived prints (IPv6, MAC): their
// hex may spell a word ("Assigned address fe80::a484:b0ff:fe18:6bad").
var kaAddressRE = regexp.MustCompile(`[0-9A-Fa-f]*(:[0-9A-Fa-f]*){2,}(\.[0-9]+)*`)

// kaComplaints returns keepalived's lines about adverts it found wrong.
func kaComplaints(out string) []string {
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		// "received lower priority (55) advert from ... - discarding" is
		// a preempting backup's normal word.
		if strings.Contains(strings.ToLower(l), "lower priority") {
			continue
		}
		if kaComplaintRE.MatchString(kaAddressRE.ReplaceAllString(l, "")) {
			lines = append(lines, l)
		}
	}
	return lines
}

// carpdVRRPDrops returns carpd's lines for dropped VRRP adverts.
func carpdVRRPDrops(out string) []string { return grepLines(out, "vrrp: dropped advert") }

// checkClean fails the test if either side complained about the other's
// adverts.
func (k *kaLab) checkClean(cd, kp *lab.Proc) {
	k.t.Helper()
	if cd != nil {
		if d := carpdVRRPDrops(cd.Output()); len(d) > 0 {
			k.t.Errorf("carpd dropped %d VRRP adverts:\n%s", len(d), strings.Join(d, "\n"))
		}
	}
	if kp != nil {
		if c := kaComplaints(kp.Output()); len(c) > 0 {
			k.t.Errorf("keepalived complained %d times:\n%s", len(c), strings.Join(c, "\n"))
		}
	}
}

// kaHolds reports whether h's eth0 holds a. It asks netlink from a thread
// in h's namespace rather than running ip(8): the tests poll often, 16 labs
// at once, and with a fork and exec per poll the 10 ms masters' adverts
// showed gaps of 50 to 130 ms (14 to 17 ms without, in the next run).
func kaHolds(h *lab.Host, a netip.Addr) (bool, error) {
	held := false
	err := h.Do(func() error {
		ifi, err := net.InterfaceByName(lab.Iface)
		if err != nil {
			return err
		}
		addrs, err := ifi.Addrs()
		if err != nil {
			return err
		}
		for _, x := range addrs {
			if n, ok := x.(*net.IPNet); ok {
				if ip, ok := netip.AddrFromSlice(n.IP); ok && ip.Unmap() == a {
					held = true
				}
			}
		}
		return nil
	})
	return held, err
}

func (k *kaLab) holders() []string {
	k.t.Helper()
	var names []string
	for _, h := range []*lab.Host{k.carpd, k.ka} {
		ok, err := kaHolds(h, k.vip)
		if err != nil {
			k.t.Fatal(err)
		}
		if ok {
			names = append(names, h.Name)
		}
	}
	return names
}

// waitSole polls until h alone holds the VIP, and returns how long it took.
func (k *kaLab) waitSole(h *lab.Host, timeout time.Duration) (time.Duration, bool) {
	k.t.Helper()
	start := time.Now()
	for time.Since(start) < timeout {
		if got := k.holders(); len(got) == 1 && got[0] == h.Name {
			return time.Since(start), true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start), false
}

// waitHolds polls until h holds the VIP, whoever else does, and returns the
// time since from: every 10 ms, every 1 ms in a 10 ms lab (which runs
// alone), so that the poll adds at most that to the figure.
func (k *kaLab) waitHolds(h *lab.Host, from time.Time, timeout time.Duration) (time.Duration, bool) {
	k.t.Helper()
	for time.Since(from) < timeout {
		ok, err := kaHolds(h, k.vip)
		if err != nil {
			k.t.Fatal(err)
		}
		if ok {
			return time.Since(from), true
		}
		time.Sleep(min(10*time.Millisecond, k.tm.probe))
	}
	return time.Since(from), false
}

// waitFor polls cond every 20 ms for at most timeout.
func kaWaitFor(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

// watch samples the VIP's holders every 250 ms during d and returns how
// many samples did not find h alone.
func (k *kaLab) watch(h *lab.Host, d time.Duration) int {
	k.t.Helper()
	bad := 0
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		if got := k.holders(); len(got) != 1 || got[0] != h.Name {
			bad++
			k.t.Logf("%s: VIP held by %v, want only %s", time.Now().Format("15:04:05.000"), got, h.Name)
		}
		time.Sleep(250 * time.Millisecond)
	}
	return bad
}

// status returns carpd's vhid 1 from carpctl --json status.
func (k *kaLab) status() api.VHID {
	k.t.Helper()
	out, err := exec.Command(carpctlBin, "--control", k.ctl(), "--json", "status").Output()
	if err != nil {
		// What carpctl said, and whether the socket and carpd were
		// there: "not running" from a carpd that runs is a fault to
		// find.
		var said []byte
		if ee, ok := err.(*exec.ExitError); ok {
			said = ee.Stderr
		}
		_, serr := os.Lstat(k.ctl())
		k.t.Fatalf("carpctl status: %v: %s %s (the socket: %v; the lab's processes: %v)", err, out, said, serr, k.procStates())
	}
	var st api.Status
	if err := json.Unmarshal(out, &st); err != nil {
		k.t.Fatalf("carpctl status: %v: %s", err, out)
	}
	for _, v := range st.VHIDs {
		if v.VHID == 1 {
			return v
		}
	}
	k.t.Fatalf("carpctl status: no vhid 1: %s", out)
	return api.VHID{}
}

// procStates says of each process the lab started whether it still runs
// or how it ended (for a failure's message).
func (k *kaLab) procStates() []string {
	var st []string
	for _, p := range k.procs {
		select {
		case <-p.Done():
			st = append(st, fmt.Sprintf("%s (pid %d) ended: %v", p.Name, p.PID(), p.Wait()))
		default:
			st = append(st, fmt.Sprintf("%s (pid %d) runs", p.Name, p.PID()))
		}
	}
	return st
}

// powerCut takes h down as a power cut would: its process group SIGKILLed
// (keepalived's VRRP child too), its link down, its addresses gone. It
// returns the moment of the kill.
func (k *kaLab) powerCut(h *lab.Host, p *lab.Proc) time.Time {
	k.t.Helper()
	at := time.Now()
	if err := p.Kill(); err != nil {
		k.t.Fatal(err)
	}
	if err := h.LinkDown(); err != nil {
		k.t.Fatal(err)
	}
	if err := h.FlushAddrs(); err != nil {
		k.t.Fatal(err)
	}
	return at
}

// lost counts the lost probes sent from from on.
func kaLost(p *prober) (lost, sent int) {
	for _, r := range p.results() {
		sent++
		if r.Lost {
			lost++
		}
	}
	return lost, sent
}

// runConcurrently runs the subtests at once, each in its own goroutine.
func runConcurrently(t *testing.T, subtests map[string]func(*testing.T)) {
	names := make([]string, 0, len(subtests))
	for n := range subtests {
		names = append(names, n)
	}
	slices.Sort(names)
	var wg sync.WaitGroup
	for _, n := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t.Run(n, subtests[n])
		}()
	}
	wg.Wait()
}

// TestVRRPKeepalived: carpd and keepalived 2.2.7 in VRRPv3 mode, for IPv4
// and IPv6 at advert_int 1 and 0.01.
//
// roles (carpd-master, keepalived-master): the priority 155 and the 55
// (started second); one holder; 30 s steady with no transition on either
// side, no lost probe and no advert dropped by either; a planned stop
// (SIGTERM) of the master: the other takes over on its priority-0 advert
// well within the master-down interval, the probes' loss counted; the
// master back, it preempts; its power cut: the other takes over. With
// carpd the master, tshark decodes carpd's adverts as VRRPv3 with a good
// checksum.
//
// tiebreak (carpd-high, carpd-low): both priority 100; once settled, a
// split makes both MASTER and the heal must leave the one of the greater
// primary address MASTER (RFC 5798 6.4.3), the other going BACKUP once,
// and then 10 s with no transition.
//
// Any transition in a steady phase fails the test, as does any lost probe
// or holder sample off, and any gap between the master's adverts longer
// than the backup's Master_Down_Interval (36 to 38 ms at 10 ms): there is
// no excused takeover. The 10 ms labs run alone for that.
func TestVRRPKeepalived(t *testing.T) {
	requireRoot(t)
	start := time.Now()
	subtests := kaSubtests(kaInt001)
	for _, n := range slices.Sorted(maps.Keys(subtests)) {
		t.Run(n, subtests[n])
	}
	t.Logf("wall time of the subtests: %v", time.Since(start).Round(100*time.Millisecond))
}

// TestVRRPKeepalived1s is TestVRRPKeepalived at advert_int 1, its labs
// concurrently, in the parallel phase (parallel_test.go): its bounds are
// the protocol's plus 250 ms, where another lab costs milliseconds.
func TestVRRPKeepalived1s(t *testing.T) {
	t.Parallel() // bounds of seconds at advbase 1: see parallel_test.go
	requireRoot(t)
	start := time.Now()
	runConcurrently(t, kaSubtests(kaInt1))
	t.Logf("wall time of the subtests: %v", time.Since(start).Round(100*time.Millisecond))
}

// kaSubtests returns the subtests of one timing, by name.
func kaSubtests(tm kaTiming) map[string]func(*testing.T) {
	subtests := map[string]func(*testing.T){}
	for _, fam := range kaFamilies {
		for _, carpdMaster := range []bool{true, false} {
			role := map[bool]string{true: "carpd-master", false: "keepalived-master"}[carpdMaster]
			subtests[fam.name+"/"+tm.name+"/"+role] = func(st *testing.T) { kaRoles(st, fam, tm, carpdMaster) }
		}
		for _, carpdHigh := range []bool{true, false} {
			order := map[bool]string{true: "tiebreak-carpd-high", false: "tiebreak-carpd-low"}[carpdHigh]
			subtests[fam.name+"/"+tm.name+"/"+order] = func(st *testing.T) { kaTieBreak(st, fam, tm, carpdHigh) }
		}
	}
	return subtests
}

func kaRoles(t *testing.T, fam kaFamily, tm kaTiming, carpdMaster bool) {
	k := newKALab(t, fam, tm, true)
	const hi, lo = 155, 55
	var cd, kp *lab.Proc
	var master, backup *lab.Host
	startMaster := func() *lab.Proc {
		if carpdMaster {
			cd = k.startCarpd(hi, "")
			return cd
		}
		kp = k.startKeepalived(hi)
		return kp
	}
	if carpdMaster {
		master, backup = k.carpd, k.ka
	} else {
		master, backup = k.ka, k.carpd
	}

	// The master first, alone; then the backup.
	var pc *pcap
	if carpdMaster {
		filter := "ip proto 112"
		if fam.v6 {
			filter = "ip6 proto 112"
		}
		pc = startPcap(t, k.carpd.NS, lab.Iface, k.dir, filter, "-Q", "out")
	}
	mp := startMaster()
	if took, ok := k.waitSole(master, tm.startup); !ok {
		t.Fatalf("%s does not hold the VIP alone after %v (holders %v)", master.Name, took, k.holders())
	}
	if carpdMaster {
		kp = k.startKeepalived(lo)
		if !kaWaitFor(10*time.Second, func() bool { return slices.Contains(kaStates(kp.Output()), "BACKUP") }) {
			t.Fatalf("keepalived did not enter BACKUP: states %q", kaStates(kp.Output()))
		}
	} else {
		cd = k.startCarpd(lo, "")
		if err := waitOutput(cd, "INIT -> BACKUP", 10*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	// Let a few adverts pass and the log lines arrive.
	time.Sleep(500 * time.Millisecond)
	if carpdMaster {
		time.Sleep(2 * time.Second)
		pc.stop(t)
		// Decoded at the end: tshark's CPU would delay the 10 ms
		// adverts of the labs in their steady phase.
		defer kaCheckTshark(t, k, pc.path)
	}

	// The steady phase: no transition on either side, no lost probe, the
	// master alone holding the VIP, and no gap between the master's
	// adverts as long as the backup's Master_Down_Interval (a backup
	// that heard nothing that long must take over: a false failover
	// whichever side caused it). A window is run again (kaSteadyTries in
	// all) only when every such gap is the machine's: the canary, a
	// thread at the daemons' nice value (-10, both) sleeping 1 ms at a
	// time, overslept in it by as much (kaMachineStalls). A gap the canary
	// does not match, or any other fault in a window without such a
	// gap, fails the test; so does a machine that stalls in every window.
	down := kaMasterDown(lo, tm.interval)
	var st api.VHID
	for try := 1; ; try++ {
		w := k.steadyWindow(cd, kp, master, tm, down)
		st = w.status
		if w.clean() {
			break
		}
		if !w.machine || try == kaSteadyTries {
			t.Errorf("steady %v (window %d of at most %d): %s; want none of these", tm.steady, try, kaSteadyTries, w.faults())
			break
		}
		t.Logf("steady window %d not judged: %s's adverts silent past %v only while the machine stalled the canary as long (%s); %s",
			try, master.Name, down, strings.Join(w.why, ", "), w.faults())
		if _, ok := k.waitSole(master, 10*time.Second); !ok {
			t.Fatalf("after steady window %d: holders %v, want only %s", try, k.holders(), master.Name)
		}
		time.Sleep(time.Second)
	}
	wantState := map[bool]string{true: "MASTER", false: "BACKUP"}[carpdMaster]
	if st.State != wantState || st.Protocol != "vrrp" || st.Priority != map[bool]int{true: hi, false: lo}[carpdMaster] {
		t.Errorf("carpd's status: state %s proto %s priority %d; want %s vrrp", st.State, st.Protocol, st.Priority, wantState)
	}
	if !carpdMaster {
		if st.Heard == nil || st.Heard.Priority != hi || st.Heard.Interval != tm.interval ||
			st.Heard.Source != k.primary[k.ka].String() {
			t.Errorf("carpd heard %+v, want keepalived's adverts from %v, priority %d, interval %d",
				st.Heard, k.primary[k.ka], hi, tm.interval)
		}
		if st.MasterAdverInterval != tm.interval {
			t.Errorf("carpd's Master_Adver_Interval = %d, want %d", st.MasterAdverInterval, tm.interval)
		}
	}
	k.checkClean(cd, kp)

	// Planned stop of the master: priority 0, captured on the client
	// with the announcements (ARP, and ICMPv6 neighbour advertisements):
	// the handover's make before break is judged against them.
	filter := "ip proto 112 or arp"
	if fam.v6 {
		filter = "ip6 proto 112 or (icmp6 and ip6[40] == 136)"
	}
	cpc := startPcap(t, k.client.NS, lab.Iface, k.dir, filter)
	pr := startPing(t, k.client, k.vip, tm.probe)
	time.Sleep(300 * time.Millisecond)
	kaBefore := kaStates(kp.Output())
	cdBefore := transitions(cd.Output())
	stopAt := time.Now()
	if err := mp.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	took, ok := k.waitHolds(backup, stopAt, tm.handover+5*time.Second)
	if !ok {
		t.Fatalf("handover: %s does not hold the VIP %v after the master's SIGTERM", backup.Name, took)
	}
	if took > tm.handover {
		t.Errorf("handover: %s took the VIP %v after the master's SIGTERM, want within %v", backup.Name, took, tm.handover)
	}
	select {
	case <-mp.Done():
	case <-time.After(10 * time.Second):
		t.Fatalf("%s did not exit within 10 s of SIGTERM", master.Name)
	}
	exited := time.Since(stopAt)
	if _, ok := k.waitSole(backup, 5*time.Second); !ok {
		t.Errorf("handover: holders %v after the stop, want only %s", k.holders(), backup.Name)
	}
	time.Sleep(500 * time.Millisecond)
	pr.stop()
	cpc.stop(t)
	ads := kaReadAdverts(t, cpc.path)
	p0 := slices.IndexFunc(ads, func(a kaAdvert) bool { return a.src == k.primary[master] && a.prio == 0 })
	var announced time.Time // the new master's first announcement of the VIP, seen by the client
	if p0 < 0 {
		t.Errorf("handover: the client saw no priority-0 advert from %s", master.Name)
	} else {
		n := slices.IndexFunc(ads[p0:], func(a kaAdvert) bool { return a.src == k.primary[backup] && a.prio == lo })
		if n < 0 {
			t.Errorf("handover: the client saw no advert of %s after %s's priority 0", backup.Name, master.Name)
		} else {
			took0 := ads[p0+n].at.Sub(ads[p0].at)
			ann := "none seen"
			if at, ok := kaFirstAnnounce(t, cpc.path, k.vip, ads[p0+n].at); ok {
				ann = at.Sub(ads[p0+n].at).Round(10 * time.Microsecond).String()
				announced = at
			}
			t.Logf("handover: %s's priority-0 advert %v after its SIGTERM; %s's first advert %v after that, its first announcement of the VIP %s after its advert (carp.HandOverHold %v)",
				master.Name, ads[p0].at.Sub(stopAt).Round(100*time.Microsecond), backup.Name, took0.Round(100*time.Microsecond),
				ann, carp.HandOverHold)
			if took0 > tm.handover {
				t.Errorf("handover: %s's first advert %v after the priority 0, want within %v", backup.Name, took0, tm.handover)
			}
		}
	}
	lost, sent := kaLost(pr)
	lostTime := time.Duration(lost) * tm.probe
	var lostAt []string // when the lost probes were sent, from the SIGTERM
	lostNew := 0        // of them, sent after the client was told of the new master
	for _, r := range pr.results() {
		if !r.Lost {
			continue
		}
		if len(lostAt) < 20 {
			lostAt = append(lostAt, r.Sent.Sub(stopAt).Round(100*time.Microsecond).String())
		}
		if !announced.IsZero() && !r.Sent.Before(announced) {
			lostNew++
		}
	}
	t.Logf("handover (SIGTERM of %s, exited %v later): %s holds the VIP %v after the SIGTERM; probes every %v: %d sent, %d lost (~%v), sent at %v from the SIGTERM, %d of them after %s's first announcement",
		master.Name, exited.Round(time.Millisecond), backup.Name, took.Round(time.Millisecond), tm.probe, sent, lost, lostTime, lostAt, lostNew, backup.Name)
	if carpdMaster {
		// carpd keeps the address until the new master is heard, and
		// HandOverHold more: a probe sent before the client is told of
		// keepalived reaches carpd, which answers it. No such probe is
		// lost. One sent after it goes to keepalived's host: lost there
		// when keepalived announced an IPv6 address its kernel had not
		// yet made usable (the local route comes from a work queue after
		// the address is added; see vip.usableOS, measured up to 7 ms
		// late here idle; carpd itself waits for it). That loss is
		// keepalived's, held to the bound of keepalived's own takeover.
		if own := lost - lostNew; own > 0 {
			t.Errorf("handover: %d probes sent before keepalived's first announcement lost, want 0 (carpd holds the VIP until then)", own)
		}
		if newTime := time.Duration(lostNew) * tm.probe; newTime > tm.kaLoss {
			t.Errorf("handover: %d probes sent after keepalived's first announcement lost (%v), want at most %v", lostNew, newTime, tm.kaLoss)
		}
	} else if lostTime > tm.kaLoss {
		// keepalived drops the address at once: the loss is about
		// Skew_Time plus the ARP/ND update (kaLoss).
		t.Errorf("handover: %d probes lost (%v), want at most %v", lost, lostTime, tm.kaLoss)
	}
	if carpdMaster {
		if c := kaStates(kp.Output())[len(kaBefore):]; !slices.Equal(c, []string{"MASTER"}) {
			t.Errorf("handover: keepalived's states since the stop %q, want MASTER", c)
		}
		if !strings.Contains(kp.Output(), "priority 0") {
			t.Errorf("handover: keepalived does not log carpd's priority 0 advert")
		}
	} else {
		if c := transitions(cd.Output())[len(cdBefore):]; len(c) != 1 || !strings.Contains(c[0], "BACKUP -> MASTER") {
			t.Errorf("handover: carpd's transitions since the stop %q, want one, BACKUP -> MASTER", c)
		}
	}

	// The master back: it preempts.
	mp = startMaster()
	if took, ok := k.waitSole(master, tm.startup); !ok {
		t.Fatalf("preempt: %s does not hold the VIP alone %v after its restart (holders %v)", master.Name, took, k.holders())
	} else {
		t.Logf("preempt: %s alone holds the VIP %v after its restart", master.Name, took.Round(time.Millisecond))
	}
	time.Sleep(time.Second)
	if got := k.holders(); len(got) != 1 || got[0] != master.Name {
		t.Fatalf("preempt: holders %v 1 s later", got)
	}
	k.checkClean(cd, kp)

	// Power cut of the master.
	cut := k.powerCut(master, mp)
	took, ok = k.waitHolds(backup, cut, tm.failover+5*time.Second)
	if !ok {
		t.Fatalf("failover: %s does not hold the VIP %v after the master's power cut", backup.Name, took)
	}
	if took > tm.failover {
		t.Errorf("failover: %s took the VIP %v after the master's power cut, want within %v", backup.Name, took, tm.failover)
	}
	t.Logf("failover (power cut of %s): %s holds the VIP %v later", master.Name, backup.Name, took.Round(time.Millisecond))
}

// kaCheckTshark decodes carpd's adverts in a capture of its outgoing VRRP
// with tshark: VRRPv3 advertisements of VRID 1, priority 155, the lab's
// interval, the VIP, a good checksum, TTL 255, from the primary address.
func kaCheckTshark(t *testing.T, k *kaLab, path string) {
	t.Helper()
	tshark := labtest.Tool(t, "tshark")
	src, ttl, addr := "ip.src", "ip.ttl", "vrrp.ip_addr"
	if k.fam.v6 {
		src, ttl, addr = "ipv6.src", "ipv6.hlim", "vrrp.ipv6_addr"
	}
	fields := []string{"_ws.col.Protocol", "vrrp.version", "vrrp.type", "vrrp.virt_rtr_id", "vrrp.prio",
		"vrrp.short_adver_int", "vrrp.addr_count", "vrrp.checksum.status", addr, src, ttl}
	rows := runTshark(t, tshark, []string{"-n", "-r", path, "-T", "fields"}, fields)
	want := map[string]string{
		"_ws.col.Protocol": "VRRP", "vrrp.version": "3", "vrrp.type": "1", "vrrp.virt_rtr_id": "1",
		"vrrp.prio": "155", "vrrp.short_adver_int": fmt.Sprint(k.tm.interval), "vrrp.addr_count": "1",
		"vrrp.checksum.status": "1", // good
		addr:                   k.vip.String(), src: k.primary[k.carpd].String(), ttl: "255",
	}
	atLeast := 2
	if k.tm.interval == 1 {
		atLeast = 100
	}
	if len(rows) < atLeast {
		t.Errorf("tshark: %d adverts of carpd in %s, want at least %d", len(rows), path, atLeast)
	}
	bad := 0
	for i, r := range rows {
		for f, w := range want {
			if r[f] != w {
				bad++
				if bad <= 5 {
					t.Errorf("tshark: advert %d: %s = %q, want %q (%v)", i+1, f, r[f], w, r)
				}
			}
		}
	}
	if len(rows) > 0 {
		t.Logf("tshark: %d adverts of carpd decoded, %d field mismatches; first: %v", len(rows), bad, rows[0])
	}
}

// kaAdvert is one VRRP advert seen in a capture.
type kaAdvert struct {
	at   time.Time
	src  netip.Addr
	prio int
}

// kaReadAdverts reads the VRRP adverts of a capture with tshark (which the
// test needs: labtest.Tool).
func kaReadAdverts(t testing.TB, path string) []kaAdvert {
	t.Helper()
	tshark := labtest.Tool(t, "tshark")
	rows := runTshark(t, tshark, []string{"-n", "-r", path, "-Y", "vrrp", "-T", "fields"},
		[]string{"frame.time_epoch", "ip.src", "ipv6.src", "vrrp.prio"})
	ads := []kaAdvert{}
	for _, r := range rows {
		at, err := parseEpoch(r["frame.time_epoch"])
		if err != nil {
			t.Fatalf("tshark: %v", err)
		}
		src := r["ip.src"]
		if src == "" {
			src = r["ipv6.src"]
		}
		a, err := netip.ParseAddr(src)
		if err != nil {
			t.Fatalf("tshark: source %q: %v", src, err)
		}
		prio, err := strconv.Atoi(r["vrrp.prio"])
		if err != nil {
			t.Fatalf("tshark: vrrp.prio %q", r["vrrp.prio"])
		}
		ads = append(ads, kaAdvert{at: at, src: a, prio: prio})
	}
	return ads
}

// kaSteadyTries is how many steady windows a test may run: a window is run
// again only when the machine stalled (kaMachineStalls).
const kaSteadyTries = 3

// kaSteady is what one steady window saw.
type kaSteady struct {
	master       string
	steady, down time.Duration
	cd, ka       []string // the transitions logged in the window
	counter      uint64   // carpd's transition counter's increase
	badSamples   int      // holder samples not the master alone
	sent, lost   int      // the client's probes
	stalls       int      // gaps between the master's adverts over down
	gap          time.Duration
	paceErr      string
	canary       time.Duration // the canary's longest oversleep
	canaryN      int           // its oversleeps over 10 ms
	machine      bool          // every gap over down was the machine's
	why          []string      // those gaps and the canary's oversleeps
	status       api.VHID      // carpd's status at the window's end
}

// clean reports whether the window saw nothing wrong.
func (w kaSteady) clean() bool {
	return len(w.cd) == 0 && len(w.ka) == 0 && w.counter == 0 && w.badSamples == 0 && w.lost == 0 && w.stalls == 0 &&
		w.paceErr == "" && w.sent >= int(w.steady/(150*time.Millisecond))
}

// faults describes the window.
func (w kaSteady) faults() string {
	s := fmt.Sprintf("transitions carpd %q (counter +%d), keepalived %q; %d holder samples not %s alone; %d of %d probes lost "+
		"(every 100 ms, want at least %d sent); %s's adverts silent for more than %v %d times (longest %v)",
		w.cd, w.counter, w.ka, w.badSamples, w.master, w.lost, w.sent, int(w.steady/(150*time.Millisecond)), w.master, w.down, w.stalls, w.gap)
	if w.paceErr != "" {
		s += "; " + w.paceErr
	}
	return s
}

// steadyWindow runs one steady window of tm.steady with master holding the
// VIP: the master's adverts captured on the client, probes every 100 ms,
// the holders sampled, and the canary at the daemons' nice value.
func (k *kaLab) steadyWindow(cd, kp *lab.Proc, master *lab.Host, tm kaTiming, down time.Duration) kaSteady {
	t := k.t
	t.Helper()
	filter := "ip proto 112"
	if k.vip.Is6() {
		filter = "ip6 proto 112"
	}
	cpc := startPcap(t, k.client.NS, lab.Iface, k.dir, filter)
	from := time.Now()
	canary := startCanaryNice(t, -10)
	cdBefore, kaBefore := transitions(cd.Output()), kaStates(kp.Output())
	trBefore := k.status().Counters.Transitions
	pr := startPing(t, k.client, k.vip, 100*time.Millisecond)
	w := kaSteady{master: master.Name, steady: tm.steady, down: down}
	w.badSamples = k.watch(master, tm.steady)
	pr.stop()
	to := time.Now()
	w.canary, w.canaryN = canary.stop()
	w.status = k.status()
	w.cd, w.ka = transitions(cd.Output())[len(cdBefore):], kaStates(kp.Output())[len(kaBefore):]
	w.counter = w.status.Counters.Transitions - trBefore
	w.lost, w.sent = kaLost(pr)
	cpc.stop(t)
	ads := kaReadAdverts(t, cpc.path)
	src := k.primary[master]
	w.stalls, w.gap = kaStalls(ads, src, from, to, down)
	var sd kaStepDowns
	if master == k.carpd {
		sd = kaStepDowns{at: stallTimes(cd.Output()), md: kaMasterDown(w.status.Priority, tm.interval)}
	}
	w.machine, w.why = kaMachineStalls(ads, src, from, to, down, time.Duration(tm.interval)*10*time.Millisecond, canary, sd)
	w.paceErr = kaPace(ads, src, from, to, tm.interval)
	t.Logf("steady %v: longest gap between %s's adverts seen by the client %v (backup's Master_Down_Interval %v); "+
		"transitions: carpd %q (counter +%d), keepalived %q; holder samples off: %d; probes %d sent, %d lost; "+
		"the canary (1 ms sleeps, nice -10): longest oversleep %v, %d over 10 ms",
		tm.steady, master.Name, w.gap.Round(100*time.Microsecond), down, w.cd, w.counter, w.ka, w.badSamples, w.sent, w.lost,
		w.canary.Round(100*time.Microsecond), w.canaryN)
	return w
}

// kaMachineStalls reports whether there is a gap longer than d between
// src's adverts in [from, to] and each such gap is the machine's: the
// canary overslept during it by at least the gap less one advert
// interval and 2 ms (a master stalled that long sends that late), less
// what sd allows for a step-down of carpd's in the gap (sd is empty when
// src is not carpd's). It returns each gap with the canary's oversleep in
// it.
func kaMachineStalls(ads []kaAdvert, src netip.Addr, from, to time.Time, d, interval time.Duration, c *canary,
	sd kaStepDowns) (bool, []string) {
	var ats []time.Time
	for _, a := range ads {
		if a.src == src && !a.at.Before(from) && !a.at.After(to) {
			ats = append(ats, a.at)
		}
	}
	all, why := machineGapsLess(ats, d, c, stallNeed(interval), sd.in)
	return all && len(why) > 0, why
}

// kaStepDowns are the times carpd stepped down for a stall (at) and its
// Master_Down_Interval (md): a gap in its adverts with a step-down in it
// is carpd's documented answer to a stall past its StallBound (it sends
// again only as a BACKUP that times out or preempts, one md after the
// step-down), so the canary need match the gap less md only.
type kaStepDowns struct {
	at []time.Time
	md time.Duration
}

// in is what sd takes off the need of the gap from last to at, and why
// (machineGapsLess).
func (sd kaStepDowns) in(last, at time.Time) (time.Duration, string) {
	j := slices.IndexFunc(sd.at, func(s time.Time) bool { return s.After(last) && s.Before(at) })
	if j < 0 {
		return 0, ""
	}
	return sd.md, fmt.Sprintf(", carpd stepped down for the stall at %s (then waits its Master_Down_Interval %v)",
		sd.at[j].Format("15:04:05.000"), sd.md.Round(100*time.Microsecond))
}

// stallNeed is how long the canary must have overslept in a gap g between
// a sender's adverts at interval for the gap to be the machine's: g less
// one interval and 2 ms (a sender stalled that long sends that late).
func stallNeed(interval time.Duration) func(g time.Duration) time.Duration {
	return func(g time.Duration) time.Duration { return g - interval - 2*time.Millisecond }
}

// machineGaps judges the gaps longer than d between one sender's adverts
// at ats (in order): all is whether each was the machine's, the canary
// having overslept during it by at least need(the gap); why has each gap
// with the canary's oversleep in it.
func machineGaps(ats []time.Time, d time.Duration, c *canary, need func(time.Duration) time.Duration) (all bool, why []string) {
	return machineGapsLess(ats, d, c, need, nil)
}

// machineGapsLess is machineGaps with less(last, at) (when not nil)
// taken off the need of the gap from last to at, for a reason it gives.
func machineGapsLess(ats []time.Time, d time.Duration, c *canary, need func(time.Duration) time.Duration,
	less func(last, at time.Time) (time.Duration, string)) (all bool, why []string) {
	all = true
	for i := 1; i < len(ats); i++ {
		last, at := ats[i-1], ats[i]
		if g := at.Sub(last); g > d {
			n, reason := need(g), ""
			if less != nil {
				var l time.Duration
				l, reason = less(last, at)
				n -= l
			}
			over := c.during(last, at)
			why = append(why, fmt.Sprintf("a gap of %v at %s, the canary %v%s", g.Round(100*time.Microsecond),
				last.Format("15:04:05.000"), over.Round(100*time.Microsecond), reason))
			if over < n {
				all = false
			}
		}
	}
	return all, why
}

// advertTimes returns each vhid's advert times in ads, in order.
func advertTimes(ads []wireAdvert) map[int][]time.Time {
	by := map[int][]time.Time{}
	for _, a := range ads {
		by[a.VHID] = append(by[a.VHID], a.At)
	}
	for _, ats := range by {
		slices.SortFunc(ats, func(x, y time.Time) int { return x.Compare(y) })
	}
	return by
}

// vhidGapsMachine judges the gaps longer than d between each vhid's
// adverts in by (machineGaps, with need): whether there is one and each
// was the machine's, with the first six such gaps.
func vhidGapsMachine(by map[int][]time.Time, d time.Duration, c *canary, need func(time.Duration) time.Duration) (bool, []string) {
	all := true
	var why []string
	for _, vhid := range slices.Sorted(maps.Keys(by)) {
		a, w := machineGaps(by[vhid], d, c, need)
		all = all && a
		for _, s := range w {
			why = append(why, fmt.Sprintf("vhid %d: %s", vhid, s))
		}
	}
	if n := len(why); n > 6 {
		why = append(why[:6:6], fmt.Sprintf("%d more", n-6))
	}
	return all && len(why) > 0, why
}

// kaFirstAnnounce returns the time of the first gratuitous ARP or
// unsolicited neighbour advertisement for vip in the capture at path from
// from on (a millisecond before it, for the capture's own clock).
func kaFirstAnnounce(t *testing.T, path string, vip netip.Addr, from time.Time) (time.Time, bool) {
	t.Helper()
	filter := "arp.src.proto_ipv4 == " + vip.String()
	if vip.Is6() {
		filter = "icmpv6.type == 136 && icmpv6.nd.na.target_address == " + vip.String()
	}
	rows := runTshark(t, labtest.Tool(t, "tshark"), []string{"-n", "-r", path, "-Y", filter, "-T", "fields"},
		[]string{"frame.time_epoch"})
	for _, r := range rows {
		at, err := parseEpoch(r["frame.time_epoch"])
		if err != nil {
			t.Fatalf("tshark: %v", err)
		}
		if !at.Before(from.Add(-time.Millisecond)) {
			return at, true
		}
	}
	return time.Time{}, false
}

// kaMasterDown is the Master_Down_Interval of a backup of priority prio
// under a master advertising every interval centiseconds.
func kaMasterDown(prio, interval int) time.Duration {
	i := time.Duration(interval) * 10 * time.Millisecond
	return 3*i + time.Duration(256-prio)*i/256
}

// kaStalls counts the gaps longer than d between src's adverts in
// [from, to] and returns the longest gap; with no capture, 0 and 0.
func kaStalls(ads []kaAdvert, src netip.Addr, from, to time.Time, d time.Duration) (int, time.Duration) {
	n := 0
	var longest time.Duration
	for _, g := range kaGaps(ads, src, from, to) {
		longest = max(longest, g)
		if g > d {
			n++
		}
	}
	return n, longest
}

// kaGaps returns the times between consecutive adverts of src in
// [from, to].
func kaGaps(ads []kaAdvert, src netip.Addr, from, to time.Time) []time.Duration {
	var gaps []time.Duration
	var last time.Time
	for _, a := range ads {
		if a.src != src || a.at.Before(from) || a.at.After(to) {
			continue
		}
		if !last.IsZero() {
			gaps = append(gaps, a.at.Sub(last))
		}
		last = a.at
	}
	return gaps
}

// kaPace says what is wrong with the pace of src's adverts in [from, to]:
// too few captured, or a median time between them off the interval (in
// centiseconds) by more than 20 %; "" if nothing.
func kaPace(ads []kaAdvert, src netip.Addr, from, to time.Time, interval int) string {
	gaps := kaGaps(ads, src, from, to)
	if len(gaps) < 5 {
		return fmt.Sprintf("%d adverts captured, want more", len(gaps)+1)
	}
	slices.Sort(gaps)
	med, want := gaps[len(gaps)/2], time.Duration(interval)*10*time.Millisecond
	if med < want*8/10 || med > want*12/10 {
		return fmt.Sprintf("median time between adverts %v, want %v +- 20%%", med, want)
	}
	return ""
}

// kaTiePrio is both daemons' priority in the tie-break.
const kaTiePrio = 100

func kaTieBreak(t *testing.T, fam kaFamily, tm kaTiming, carpdHigh bool) {
	k := newKALab(t, fam, tm, carpdHigh)
	winner, loser := k.carpd, k.ka
	if !carpdHigh {
		winner, loser = k.ka, k.carpd
	}
	cd := k.startCarpd(kaTiePrio, "true")
	kp := k.startKeepalived(kaTiePrio)
	states := func() string {
		return fmt.Sprintf("carpd %q, keepalived %q", transitions(cd.Output()), kaStates(kp.Output()))
	}
	hold := 2 * time.Second
	holder, took := k.settle(hold, tm.startup+10*time.Second)
	if holder == "" {
		t.Fatalf("start: not settled after %v (holders %v); %s", took, k.holders(), states())
	}
	t.Logf("started together: settled after %v with %s holding the VIP; %s", took.Round(time.Millisecond), holder, states())
	if st := k.status(); !st.TieBreak {
		t.Errorf("carpd's status says tiebreak off: %+v", st)
	}

	// Split and heal, judged; run again (kaSteadyTries in all) only when
	// the fault is the machine's (kaTieMachine).
	for try := 1; ; try++ {
		h := k.splitAndHeal(cd, kp, tm, fam, winner, loser, hold)
		if h.fault == "" {
			break
		}
		if !h.machine || try == kaSteadyTries {
			t.Errorf("heal (split %d of at most %d): %s", try, kaSteadyTries, h.fault)
			break
		}
		t.Logf("heal %d not judged: every stall behind it was the machine's (%s); %s", try, strings.Join(h.why, ", "), h.fault)
		if !kaWaitFor(10*time.Second, func() bool { return len(k.holders()) == 1 }) {
			t.Fatalf("after heal %d: holders %v, want one", try, k.holders())
		}
		time.Sleep(time.Second)
	}
	k.checkClean(cd, kp)
}

// kaHeal is what one split and heal saw.
type kaHeal struct {
	holder  string   // the VIP's holder after the heal ("" if none settled)
	fault   string   // what went wrong ("" if nothing)
	machine bool     // every stall behind the fault was the machine's
	why     []string // those stalls and the canary's oversleeps
}

// splitAndHeal isolates both daemons' switch ports until both hold the
// VIP, heals the split, and judges it: the one of the greater primary
// address (winner) holds the VIP, the other goes BACKUP once, and
// tm.tieSteady follow with no transition and no gap in the winner's
// adverts as long as the loser's Master_Down_Interval. The canary, at the
// daemons' nice value, runs from before the heal: a fault is the
// machine's (kaTieMachine) when each stall of either daemon in it (a gap
// in its adverts past the other's patience, or carpd stepping down for a
// stall) is matched by the canary oversleeping as long.
func (k *kaLab) splitAndHeal(cd, kp *lab.Proc, tm kaTiming, fam kaFamily, winner, loser *lab.Host, hold time.Duration) kaHeal {
	t := k.t
	t.Helper()
	states := func() string {
		return fmt.Sprintf("carpd %q, keepalived %q", transitions(cd.Output()), kaStates(kp.Output()))
	}
	isolatePorts(t, k.lab, true, k.carpd, k.ka)
	if !kaWaitFor(tm.startup+5*time.Second, func() bool { return len(k.holders()) == 2 }) {
		t.Fatalf("split: both do not hold the VIP (holders %v); %s", k.holders(), states())
	}
	time.Sleep(300 * time.Millisecond)
	filter := "ip proto 112"
	if fam.v6 {
		filter = "ip6 proto 112"
	}
	cpc := startPcap(t, k.client.NS, lab.Iface, k.dir, filter)
	canary := startCanaryNice(t, -10)
	cdBefore, kaBefore := len(transitions(cd.Output())), len(kaStates(kp.Output()))
	outBefore := len(cd.Output())
	from := time.Now()
	isolatePorts(t, k.lab, false, k.carpd, k.ka)
	healed := time.Now()
	var h kaHeal
	var faults []string
	holder, took := k.settle(hold, 10*time.Second)
	h.holder = holder
	if holder == "" {
		faults = append(faults, fmt.Sprintf("not settled after %v (holders %v); %s", took, k.holders(), states()))
	} else if holder != winner.Name {
		faults = append(faults, fmt.Sprintf("%s (primary %v) holds the VIP; want %s (primary %v), the greater primary address",
			holder, k.primary[k.hostNamed(holder)], winner.Name, k.primary[winner]))
	}
	// tieSteady more with no transition.
	badSamples := 0
	if holder != "" {
		badSamples = k.watch(winner, tm.tieSteady)
	}
	end := time.Now()
	canaryGap, canaryN := canary.stop()
	cpc.stop(t)
	cdNew, kaNew := transitions(cd.Output())[cdBefore:], kaStates(kp.Output())[kaBefore:]
	loserNew, winnerNew := kaNew, cdNew
	if loser == k.carpd {
		loserNew, winnerNew = cdNew, kaNew
	}
	// As in the roles' steady phase: the loser goes BACKUP once and no
	// transition follows; the winner is never silent for the loser's
	// Master_Down_Interval. No takeover is excused.
	down := kaMasterDown(100, tm.interval)
	ads := kaReadAdverts(t, cpc.path)
	stalls, gap := kaStalls(ads, k.primary[winner], healed.Add(100*time.Millisecond), end, down)
	if err := kaPace(ads, k.primary[winner], healed.Add(100*time.Millisecond), end, tm.interval); err != "" && holder == winner.Name {
		faults = append(faults, winner.Name+": "+err)
	}
	t.Logf("heal: %s holds the VIP %v after the heal; since the heal carpd %q, keepalived %q; "+
		"longest gap between %s's adverts %v (the loser's Master_Down_Interval %v); holder samples off %d; "+
		"the canary (1 ms sleeps, nice -10): longest oversleep %v, %d over 10 ms",
		holder, took.Round(time.Millisecond), cdNew, kaNew, winner.Name, gap.Round(100*time.Microsecond), down, badSamples,
		canaryGap.Round(100*time.Microsecond), canaryN)
	if len(loserNew) != 1 || len(winnerNew) != 0 || badSamples != 0 || stalls != 0 {
		faults = append(faults, fmt.Sprintf("%d transitions of %s (want 1: to BACKUP), %d of %s (want 0), %d holder samples not %s alone, in the %v since; "+
			"carpd %q, keepalived %q; %s's adverts silent for more than %v %d times (longest %v)",
			len(loserNew), loser.Name, len(winnerNew), winner.Name, badSamples, winner.Name, time.Since(healed).Round(time.Millisecond),
			cdNew, kaNew, winner.Name, down, stalls, gap))
	}
	if len(faults) == 0 {
		return h
	}
	h.fault = strings.Join(faults, "; ")
	iv := time.Duration(tm.interval) * 10 * time.Millisecond
	h.machine, h.why = kaTieMachine(ads, []netip.Addr{k.primary[k.carpd], k.primary[k.ka]}, k.primary[k.carpd],
		kaStepDowns{at: stallTimes(cd.Output()[outBefore:]), md: kaMasterDown(kaTiePrio, tm.interval)}, from, end, down, iv, canary)
	return h
}

// kaTieMachine reports whether a fault in [from, to] had stalls behind it
// and each was the machine's: every gap longer than d between the adverts
// of one of srcs (kaMachineStalls, carpd's with sd's allowance), and every
// step-down of carpd (whose adverts come from cdSrc) for a stall, at the
// times sd.at, measured from its last advert before it, matched by the
// canary oversleeping by at least the stall less one advert interval and
// 2 ms.
func kaTieMachine(ads []kaAdvert, srcs []netip.Addr, cdSrc netip.Addr, sd kaStepDowns, from, to time.Time,
	d, interval time.Duration, c *canary) (bool, []string) {
	all := true
	var why []string
	for _, src := range srcs {
		var own kaStepDowns
		if src == cdSrc {
			own = sd
		}
		m, w := kaMachineStalls(ads, src, from, to, d, interval, c, own)
		if len(w) > 0 && !m {
			all = false
		}
		why = append(why, w...)
	}
	for _, at := range sd.at {
		if at.Before(from) || at.After(to) {
			continue
		}
		var last time.Time
		for _, a := range ads {
			if a.src == cdSrc && !a.at.After(at) {
				last = a.at
			}
		}
		if last.IsZero() || last.Before(from) {
			why = append(why, fmt.Sprintf("carpd stepped down for a stall at %s, no advert of it captured before", at.Format("15:04:05.000")))
			all = false
			continue
		}
		g := at.Sub(last)
		over := c.during(last, at)
		why = append(why, fmt.Sprintf("carpd stepped down for a stall at %s, %v after its last advert, the canary %v",
			at.Format("15:04:05.000"), g.Round(100*time.Microsecond), over.Round(100*time.Microsecond)))
		if over < stallNeed(interval)(g) {
			all = false
		}
	}
	return all && len(why) > 0, why
}

// stallTimes returns the times of carpd's log lines (out) that step down
// for a stall.
func stallTimes(out string) []time.Time {
	var ts []time.Time
	for _, l := range strings.Split(out, "\n") {
		if !strings.Contains(l, "("+carp.ReasonStalled+")") || !strings.HasPrefix(l, "time=") {
			continue
		}
		f, _, _ := strings.Cut(strings.TrimPrefix(l, "time="), " ")
		if at, err := time.Parse(time.RFC3339Nano, f); err == nil {
			ts = append(ts, at)
		}
	}
	return ts
}

func (k *kaLab) hostNamed(name string) *lab.Host {
	if name == k.carpd.Name {
		return k.carpd
	}
	return k.ka
}

// settle waits until one host alone has held the VIP for hold, at most
// limit, and returns its name ("" if none) and the time to the start of
// the hold.
func (k *kaLab) settle(hold, limit time.Duration) (string, time.Duration) {
	start := time.Now()
	since := start
	holder := ""
	for time.Since(start) < limit {
		now := time.Now()
		got := k.holders()
		if len(got) != 1 || got[0] != holder {
			holder, since = "", now
			if len(got) == 1 {
				holder = got[0]
			}
		}
		if holder != "" && now.Sub(since) >= hold {
			return holder, since.Sub(start)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return "", time.Since(start)
}

// TestKAMachineStalls: a gap past the master-down interval is the
// machine's only when the canary overslept in it as long.
func TestKAMachineStalls(t *testing.T) {
	src := netip.MustParseAddr("192.0.2.1")
	at := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)
	ms := func(n int) time.Time { return at.Add(time.Duration(n) * time.Millisecond) }
	// Adverts every 10 ms, then one 40 ms late (a gap of 50 ms at 100).
	var ads []kaAdvert
	for _, n := range []int{0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 150, 160} {
		ads = append(ads, kaAdvert{at: ms(n), src: src})
	}
	down, iv := 38*time.Millisecond, 10*time.Millisecond
	for _, c := range []struct {
		name   string
		stalls []heldSpan
		want   bool
	}{
		{"no stall", nil, false},
		{"a stall as long, in the gap", []heldSpan{{from: ms(105), to: ms(145)}}, true},
		{"a stall as long, elsewhere", []heldSpan{{from: ms(10), to: ms(50)}}, false},
		{"a shorter stall in the gap", []heldSpan{{from: ms(110), to: ms(130)}}, false},
	} {
		got, why := kaMachineStalls(ads, src, at, ms(200), down, iv, &canary{stalls: c.stalls}, kaStepDowns{})
		if got != c.want || len(why) != 1 {
			t.Errorf("%s: machine's %v (%q), want %v and one gap", c.name, got, why, c.want)
		}
	}
	if got, why := kaMachineStalls(ads[:10], src, at, ms(200), down, iv, &canary{}, kaStepDowns{}); got || len(why) != 0 {
		t.Errorf("no gap: machine's %v (%q), want false and none", got, why)
	}
	// carpd's step-down for a stall: adverts to 100, the next at 190 (a
	// gap of 90 ms: the stall, then its Master_Down_Interval of 34 ms as a
	// BACKUP). The canary must match the gap less an interval, 2 ms and
	// that interval: 44 ms.
	stepped := append(slices.Clone(ads[:11]), kaAdvert{at: ms(190), src: src})
	md := 34 * time.Millisecond
	for _, c := range []struct {
		name  string
		steps []time.Time
		stall heldSpan
		want  bool
	}{
		{"a step-down in the gap, a stall as long as the gap less its wait", []time.Time{ms(150)}, heldSpan{from: ms(104), to: ms(150)}, true},
		{"a step-down in the gap, a shorter stall", []time.Time{ms(150)}, heldSpan{from: ms(110), to: ms(140)}, false},
		{"no step-down, the same stall", nil, heldSpan{from: ms(104), to: ms(150)}, false},
		{"a step-down outside the gap", []time.Time{ms(50)}, heldSpan{from: ms(104), to: ms(150)}, false},
	} {
		got, why := kaMachineStalls(stepped, src, at, ms(200), down, iv, &canary{stalls: []heldSpan{c.stall}}, kaStepDowns{at: c.steps, md: md})
		if got != c.want || len(why) != 1 {
			t.Errorf("%s: machine's %v (%q), want %v and one gap", c.name, got, why, c.want)
		}
	}
}

// TestKATieMachine: a heal's fault is the machine's only when it had a
// stall behind it (a gap in either daemon's adverts, or carpd stepping
// down for a stall) and the canary overslept as long in each.
func TestKATieMachine(t *testing.T) {
	cdSrc, kaSrc := netip.MustParseAddr("192.0.2.22"), netip.MustParseAddr("192.0.2.21")
	at := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)
	ms := func(n int) time.Time { return at.Add(time.Duration(n) * time.Millisecond) }
	// carpd advertises every 10 ms until 100, then steps down for a
	// stall at 150; keepalived advertises every 10 ms throughout.
	var ads []kaAdvert
	for n := 0; n <= 300; n += 10 {
		if n <= 100 {
			ads = append(ads, kaAdvert{at: ms(n), src: cdSrc})
		}
		ads = append(ads, kaAdvert{at: ms(n), src: kaSrc})
	}
	srcs := []netip.Addr{cdSrc, kaSrc}
	down, iv := 36*time.Millisecond, 10*time.Millisecond
	for _, c := range []struct {
		name    string
		stalled []time.Time
		stalls  []heldSpan
		want    bool
	}{
		{"no stall at all", nil, nil, false},
		{"carpd's stall, the canary as long in it", []time.Time{ms(150)}, []heldSpan{{from: ms(105), to: ms(148)}}, true},
		{"carpd's stall, the canary shorter", []time.Time{ms(150)}, []heldSpan{{from: ms(120), to: ms(140)}}, false},
		{"carpd's stall, the canary elsewhere", []time.Time{ms(150)}, []heldSpan{{from: ms(200), to: ms(260)}}, false},
		{"carpd's stall outside the window", []time.Time{ms(400)}, []heldSpan{{from: ms(105), to: ms(148)}}, false},
	} {
		got, why := kaTieMachine(ads, srcs, cdSrc, kaStepDowns{at: c.stalled, md: down}, at, ms(300), down, iv, &canary{stalls: c.stalls})
		if got != c.want {
			t.Errorf("%s: machine's %v (%q), want %v", c.name, got, why, c.want)
		}
	}
	// A gap in keepalived's adverts counts as well: matched, and not.
	gapped := slices.DeleteFunc(slices.Clone(ads), func(a kaAdvert) bool {
		return a.src == kaSrc && a.at.After(ms(200)) && a.at.Before(ms(260))
	})
	if got, why := kaTieMachine(gapped, srcs, cdSrc, kaStepDowns{md: down}, at, ms(300), down, iv, &canary{stalls: []heldSpan{{from: ms(205), to: ms(255)}}}); !got {
		t.Errorf("keepalived's gap, the canary as long: machine's %v (%q), want true", got, why)
	}
	if got, why := kaTieMachine(gapped, srcs, cdSrc, kaStepDowns{at: []time.Time{ms(150)}, md: down}, at, ms(300), down, iv,
		&canary{stalls: []heldSpan{{from: ms(105), to: ms(148)}}}); got {
		t.Errorf("keepalived's gap unmatched: machine's %v (%q), want false", got, why)
	}
	out := "time=2026-12-07T13:45:41.588Z level=INFO msg=\"carp: 1@eth0: BACKUP -> MASTER (master timed out)\"\n" +
		"time=2026-12-07T13:45:42.520Z level=INFO msg=\"carp: 1@eth0: MASTER -> BACKUP (stalled longer than a backup waits)\" vhid=1\n"
	if got := stallTimes(out); len(got) != 1 || !got[0].Equal(time.Date(2026, 12, 7, 13, 45, 42, 520e6, time.UTC)) {
		t.Errorf("stallTimes = %v, want [13:45:42.520]", got)
	}
}

// TestVHIDGapsMachine: adverts grouped by vhid and put in order; a gap of
// one vhid matched by the canary is the machine's, one of another vhid
// not matched makes the whole not the machine's.
func TestVHIDGapsMachine(t *testing.T) {
	at := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)
	ms := func(n int) time.Time { return at.Add(time.Duration(n) * time.Millisecond) }
	var ads []wireAdvert
	for n := 100; n >= 0; n -= 10 { // out of order
		if n != 50 && n != 60 {
			ads = append(ads, wireAdvert{At: ms(n), VHID: 1})
		}
		ads = append(ads, wireAdvert{At: ms(n), VHID: 2})
	}
	by := advertTimes(ads)
	if len(by[1]) != 9 || len(by[2]) != 11 || !slices.IsSortedFunc(by[2], func(x, y time.Time) int { return x.Compare(y) }) {
		t.Fatalf("advertTimes: %v", by)
	}
	need := stallNeed(10 * time.Millisecond)
	vhid1 := &canary{stalls: []heldSpan{{from: ms(41), to: ms(70)}}}
	if m, why := vhidGapsMachine(by, 25*time.Millisecond, vhid1, need); !m || len(why) != 1 {
		t.Errorf("vhid 1's 30 ms gap with the canary 28 ms late: %v %q, want the machine's, one gap", m, why)
	}
	// vhid 2 silent from 70 to 100 ms too, the canary on time then.
	by[2] = slices.DeleteFunc(by[2], func(x time.Time) bool { return x.Equal(ms(80)) || x.Equal(ms(90)) })
	if m, why := vhidGapsMachine(by, 25*time.Millisecond, vhid1, need); m || len(why) != 2 {
		t.Errorf("vhid 1's gap matched, vhid 2's not: %v %q, want not the machine's, two gaps", m, why)
	}
	by = advertTimes(ads)
	if m, _ := vhidGapsMachine(by, 25*time.Millisecond, &canary{}, need); m {
		t.Error("the gap with no canary stall: the machine's, want not")
	}
	if m, why := vhidGapsMachine(by, 40*time.Millisecond, &canary{}, need); m || len(why) != 0 {
		t.Errorf("no gap over 40 ms: %v %q, want false and none", m, why)
	}
}

// TestKAComplaints: keepalived's complaints about adverts are found, its
// ordinary lines are not, whatever word an address's hex spells (CI's
// run of 23:55: "Assigned address fe80::a484:b0ff:fe18:6bad for
// interface eth0" read as "bad ").
func TestKAComplaints(t *testing.T) {
	for _, c := range []struct {
		line string
		want bool
	}{
		{"Mon Dec  7 23:55:17 2026: Assigned address fe80::a484:b0ff:fe18:6bad for interface eth0", false},
		{"Mon Dec  7 23:55:17 2026: Assigned address fe80::bad:b0ff:fe18:1 for interface eth0", false},
		{"Mon Dec  7 23:55:17 2026: Registering gratuitous ARP shared channel", false},
		{"Mon Dec  7 23:55:17 2026: (VI_1) received lower priority (55) advert from 192.0.2.22 - discarding", false},
		{"Mon Dec  7 23:55:17 2026: (VI_1) Invalid VRRPv3 checksum", true},
		{"Mon Dec  7 23:55:17 2026: (VI_1) invalid TTL/HL. Received 254 and expect 255", true},
		{"Mon Dec  7 23:55:17 2026: (VI_1) wrong version. Received 2 and expect 3", true},
		{"Mon Dec  7 23:55:17 2026: (VI_1) advertisement interval mismatch mine=1 sec rcv'd=2 sec", true},
		{"Mon Dec  7 23:55:17 2026: (VI_1) ip address associated with VRID 1 not present in MASTER advert: 2001:db8::50", true},
		{"Mon Dec  7 23:55:17 2026: (VI_1) discarding unicast packet on multicast instance", true},
		{"Mon Dec  7 23:55:17 2026: (VI_1) IPSEC-AH : invalid IPSEC HMAC-MD5 value. Due to fields mutation or bad password !", true},
	} {
		if got := len(kaComplaints(c.line)) == 1; got != c.want {
			t.Errorf("%q: a complaint %v, want %v", c.line, got, c.want)
		}
	}
}
