package e2e

// TestBenchmarkMatrix (issue 13) measures carpd (CARP), ucarp (Debian's
// 1.5.2), keepalived VRRPv2 at 1 s, carpd VRRPv3 at 10 ms and keepalived
// VRRPv3 at 10 ms in one run, on the same topology (the walkthrough's
// master, backup and client on one bridge, VIP 192.0.2.50), a fresh lab for
// every run of every daemon, and writes the raw figures (results.csv,
// jitter.csv, meta.json) into its output directory; the report drawn from
// them (BENCHMARKS.md, PNG charts) is the module bench/report's, which
// scripts/bench.sh runs afterwards (`cd bench/report && go run . DIR`).
// It is skipped unless
// CARPD_BENCHMARKS is "full" or "quick"; scripts/bench.sh runs it:
//
//	CARPD_BENCHMARKS=quick go test ./e2e -run '^TestBenchmarkMatrix$' -v -timeout 60m
//
// Settings from the environment:
//
//	CARPD_BENCH_OUT           the report's directory (full: ../bench; quick: a new temporary one)
//	CARPD_BENCH_RUNS          runs per cell (full 5, quick 1)
//	CARPD_BENCH_IDLE_RUNS     runs per idle1 and idle255 cell (CARPD_BENCH_RUNS)
//	CARPD_BENCH_IDLE_WINDOW   the 1-vhid CPU window (full 30s, quick 5s)
//	CARPD_BENCH_SCALE_WINDOW  each 255-vhid window, idle and busy (full 20s, quick 5s)
//	CARPD_BENCH_SCENARIOS     a comma list of scenarios to run (all by default):
//	                          portcut, sigkill, sigterm, failback, idle1, idle255
//	CARPD_BENCH_DAEMONS       a comma list of daemon IDs to run (all by default)
//	CARPD_BENCH_COMMAND       the command line shown in the report
//	CARPD_BENCH_MICRO_COMMAND the command that wrote micro.txt, the micro-
//	                          benchmarks' output scripts/bench.sh puts beside
//	                          the figures for the report
//	CARPD_BENCH_SEED          the seed of the phase draws (random by default)
//	CARPD_BENCH_BASE          another carpd binary (an earlier commit's, say):
//	                          each carpd daemon chosen gets a twin, "base-" and
//	                          its ID, that runs it, in the same runs (an A/B of
//	                          two builds; not for a published report)
//
// The phase of the unplanned failures: each run draws one number u,
// uniform in [0, 1), and every daemon's master is hit u x its advert
// interval after one of its adverts reached the client: the same draws for
// every daemon.

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/carpd/carpd/internal/lab"
	"github.com/carpd/carpd/internal/probe"
)

// mxDaemon is one column of the matrix.
type mxDaemon struct {
	id, title string
	kind      string        // "carpd", "ucarp" or "keepalived"
	vrrp      int           // VRRP version (keepalived, carpd VRRPv3); 0 for CARP
	interval  time.Duration // the master's advert interval
	bound     time.Duration // the backup's master-down interval
	probe     time.Duration // the client's probe interval
}

const (
	mxCARPInterval = time.Second + 100*time.Second/256 // advbase 1, advskew 100
	mxCARPBound    = 3*time.Second + 200*time.Second/256
	mxV2Bound      = 3*time.Second + (256-55)*time.Second/256
	mxV3Bound      = 3*10*time.Millisecond + (256-55)*10*time.Millisecond/256
)

var mxDaemons = []mxDaemon{
	{"carpd-carp", "carpd CARP, advbase 1, advskew 100 / 200", "carpd", 0, mxCARPInterval, mxCARPBound, 10 * time.Millisecond},
	{"ucarp", "ucarp, advbase 1, advskew 100 / 200 (up/down scripts: ip addr, arping)", "ucarp", 0, mxCARPInterval, mxCARPBound, 10 * time.Millisecond},
	{"keepalived-v2-1s", "keepalived VRRPv2, advert_int 1, priority 155 / 55", "keepalived", 2, time.Second, mxV2Bound, 10 * time.Millisecond},
	{"carpd-vrrp3-10ms", "carpd VRRPv3, vrrpinterval 1 (10 ms), vrrpprio 155 / 55", "carpd", 3, 10 * time.Millisecond, mxV3Bound, time.Millisecond},
	{"keepalived-v3-10ms", "keepalived VRRPv3, advert_int 0.01, priority 155 / 55", "keepalived", 3, 10 * time.Millisecond, mxV3Bound, time.Millisecond},
}

// mxBaseBin is CARPD_BENCH_BASE's binary, which the "base-" daemons run.
var mxBaseBin string

// carpd is the carpd binary d runs.
func (d mxDaemon) carpd() string {
	if strings.HasPrefix(d.id, "base-") {
		return mxBaseBin
	}
	return carpdBin
}

// mxScenarios are the scenarios in the order they run.
var mxScenarios = []string{"portcut", "sigkill", "sigterm", "failback", "idle1", "idle255"}

// mxSettings are the run's settings.
type mxSettings struct {
	mode        string
	runs        int
	idleRuns    int // runs of the idle1 and idle255 cells
	idleWindow  time.Duration
	scaleWindow time.Duration
	out         string
	scenarios   []string
	daemons     []mxDaemon
	seed        uint64
}

func mxLoadSettings(t *testing.T) mxSettings {
	mode := os.Getenv("CARPD_BENCHMARKS")
	if mode != "full" && mode != "quick" {
		t.Skip("the comparison benchmark runs with CARPD_BENCHMARKS=full or quick (scripts/bench.sh)")
	}
	requireRoot(t)
	for _, b := range []string{"ucarp", "keepalived", "tcpdump", "arping", "stdbuf"} {
		if _, err := exec.LookPath(b); err != nil {
			t.Fatalf("%s is required (scripts/setup.sh installs it): %v", b, err)
		}
	}
	s := mxSettings{mode: mode, runs: 5, idleWindow: 30 * time.Second, scaleWindow: 20 * time.Second}
	if mode == "quick" {
		s.runs, s.idleWindow, s.scaleWindow = 1, 5*time.Second, 5*time.Second
	}
	s.runs = envInt(t, "CARPD_BENCH_RUNS", s.runs)
	s.idleRuns = envInt(t, "CARPD_BENCH_IDLE_RUNS", s.runs)
	s.idleWindow = envDuration(t, "CARPD_BENCH_IDLE_WINDOW", s.idleWindow)
	s.scaleWindow = envDuration(t, "CARPD_BENCH_SCALE_WINDOW", s.scaleWindow)
	s.out = os.Getenv("CARPD_BENCH_OUT")
	if s.out == "" {
		if mode == "full" {
			s.out = "../bench"
		} else {
			d, err := os.MkdirTemp("", "carpd-bench-quick-")
			if err != nil {
				t.Fatal(err)
			}
			s.out = d
		}
	}
	s.scenarios = mxScenarios
	if v := os.Getenv("CARPD_BENCH_SCENARIOS"); v != "" {
		s.scenarios = strings.Split(v, ",")
		for _, sc := range s.scenarios {
			if !slices.Contains(mxScenarios, sc) {
				t.Fatalf("CARPD_BENCH_SCENARIOS: unknown scenario %q (want some of %v)", sc, mxScenarios)
			}
		}
	}
	s.daemons = mxDaemons
	if v := os.Getenv("CARPD_BENCH_DAEMONS"); v != "" {
		s.daemons = nil
		for _, id := range strings.Split(v, ",") {
			i := slices.IndexFunc(mxDaemons, func(d mxDaemon) bool { return d.id == id })
			if i < 0 {
				t.Fatalf("CARPD_BENCH_DAEMONS: unknown daemon %q", id)
			}
			s.daemons = append(s.daemons, mxDaemons[i])
		}
	}
	if base := os.Getenv("CARPD_BENCH_BASE"); base != "" {
		if _, err := os.Stat(base); err != nil {
			t.Fatalf("CARPD_BENCH_BASE: %v", err)
		}
		mxBaseBin = base
		for _, d := range s.daemons {
			if d.kind == "carpd" {
				d.id, d.title = "base-"+d.id, d.title+" (CARPD_BENCH_BASE)"
				s.daemons = append(s.daemons, d)
			}
		}
	}
	s.seed = rand.Uint64()
	if v := os.Getenv("CARPD_BENCH_SEED"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("CARPD_BENCH_SEED=%q: %v", v, err)
		}
		s.seed = n
	}
	return s
}

// runsOf returns the number of runs of a scenario's cells.
func (s mxSettings) runsOf(scenario string) int {
	if strings.HasPrefix(scenario, "idle") {
		return s.idleRuns
	}
	return s.runs
}

// mxEstimate is a cell run's expected duration in seconds (measured on
// the 2-core machine of issue 13; the lab's setup and removal included).
func mxEstimate(s mxSettings, scenario string, d mxDaemon) float64 {
	slow := d.interval >= time.Second
	switch scenario {
	case "portcut", "sigterm":
		if slow {
			return 15
		}
		return 5
	case "sigkill":
		if slow {
			return 19
		}
		return 8
	case "failback":
		if slow {
			return 18
		}
		return 7
	case "idle1":
		if slow {
			return 4 + (mxIdleSettle + s.idleWindow).Seconds()
		}
		return (mxIdleSettle + s.idleWindow).Seconds()
	case "idle255":
		if slow {
			return 20 + 2*s.scaleWindow.Seconds()
		}
		return 10 + 2*s.scaleWindow.Seconds()
	}
	return 10
}

// mxPair is one daemon's pair on a fresh walkthrough lab.
type mxPair struct {
	t       testing.TB
	d       mxDaemon
	c       *cluster
	preempt bool
	procs   map[*lab.Host]*lab.Proc
}

const mxUp = ucarpUp
const mxDown = ucarpDown

// mxNewPair builds the lab and writes the configurations; nothing runs.
func mxNewPair(t testing.TB, d mxDaemon, preempt bool) *mxPair {
	t.Helper()
	var flags []string
	if d.kind == "carpd" && d.vrrp == 0 && preempt {
		flags = append(flags, "--preempt")
	}
	c := newCluster(t, flags...)
	p := &mxPair{t: t, d: d, c: c, preempt: preempt, procs: map[*lab.Host]*lab.Proc{}}
	for _, h := range []*lab.Host{c.master, c.backup} {
		master := h == c.master
		switch d.kind {
		case "carpd":
			if d.vrrp == 3 {
				if err := os.WriteFile(c.rcPath(h), []byte(vrrpRC(c, master, 1)), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		case "keepalived":
			conf := mxKeepalivedConf(d, master, []int{1}, func(int) netip.Addr { return vip })
			if err := os.WriteFile(filepath.Join(c.dir, h.Name+".keepalived.conf"), []byte(conf), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	if d.kind == "ucarp" {
		mxScripts(t, c.dir)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for h, pr := range p.procs {
				out := pr.Output()
				if len(out) > 3000 {
					out = "..." + out[len(out)-3000:]
				}
				t.Logf("%s on %s:\n%s", d.id, h.Name, out)
			}
		}
	})
	return p
}

func mxScripts(t testing.TB, dir string) {
	t.Helper()
	for name, body := range map[string]string{"up.sh": mxUp, "down.sh": mxDown} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

// mxKeepalivedConf is keepalived's configuration with one instance per
// vrid, each with the address vipOf(vrid).
func mxKeepalivedConf(d mxDaemon, master bool, vrids []int, vipOf func(int) netip.Addr) string {
	state, prio := "BACKUP", 55
	if master {
		state, prio = "MASTER", 155
	}
	adv := "1"
	if d.interval < time.Second {
		adv = strconv.FormatFloat(d.interval.Seconds(), 'f', -1, 64)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "global_defs {\n\tvrrp_version %d\n}\n", d.vrrp)
	for _, n := range vrids {
		fmt.Fprintf(&b, "vrrp_instance VI_%d {\n\tinterface %s\n\tstate %s\n\tvirtual_router_id %d\n\tpriority %d\n\tadvert_int %s\n\tvirtual_ipaddress {\n\t\t%s/32\n\t}\n}\n",
			n, lab.Iface, state, n, prio, adv, vipOf(n))
	}
	return b.String()
}

// mxStartKeepalived starts keepalived on h with the configuration conf.
func mxStartKeepalived(t testing.TB, h *lab.Host, dir, conf string) *lab.Proc {
	t.Helper()
	base := filepath.Join(dir, h.Name)
	p, err := h.Start("keepalived", "keepalived", "--dont-fork", "--log-console", "--no-syslog", "--vrrp",
		"--use-file="+conf, "--pid="+base+".ka.pid", "--vrrp_pid="+base+".vrrp.pid",
		"--checkers_pid="+base+".chk.pid")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// mxUcarpArgs is ucarp's command line for one vhid.
func mxUcarpArgs(dir string, own, addr netip.Addr, vhid, skew int, preempt bool) []string {
	args := []string{"stdbuf", "-oL", "ucarp", "-i", lab.Iface, "-s", own.String(), "-v", strconv.Itoa(vhid),
		"-p", "lampros", "-a", addr.String(), "-k", strconv.Itoa(skew), "-b", "1",
		"-u", filepath.Join(dir, "up.sh"), "-d", filepath.Join(dir, "down.sh"), "-z"}
	if preempt {
		args = append(args, "-P")
	}
	return args
}

// start starts the daemon on h.
func (p *mxPair) start(h *lab.Host) *lab.Proc {
	p.t.Helper()
	c := p.c
	master := h == c.master
	var pr *lab.Proc
	switch p.d.kind {
	case "carpd":
		var wrap []string
		if bin := p.d.carpd(); bin != carpdBin {
			wrap = runInstead(bin)
		}
		pr = c.startWrapped(h, wrap, "--rc-conf", c.rcPath(h))
	case "keepalived":
		pr = mxStartKeepalived(p.t, h, c.dir, filepath.Join(c.dir, h.Name+".keepalived.conf"))
	case "ucarp":
		own, skew := backupAddr.Addr(), 200
		if master {
			own, skew = masterAddr.Addr(), 100
		}
		var err error
		pr, err = h.Start("ucarp", mxUcarpArgs(c.dir, own, vip, 100, skew, p.preempt)...)
		if err != nil {
			p.t.Fatal(err)
		}
	}
	p.procs[h] = pr
	return pr
}

// mxStartPair starts both daemons and waits until the master alone holds
// the VIP, and has for a second.
func mxStartPair(t testing.TB, d mxDaemon) *mxPair {
	t.Helper()
	p := mxNewPair(t, d, false)
	p.start(p.c.master)
	p.start(p.c.backup)
	if _, ok := p.c.waitHolder(p.c.master, 25*time.Second); !ok {
		t.Fatalf("%s: the master does not hold the VIP alone (holders %v)", d.id, p.c.holders())
	}
	time.Sleep(time.Second)
	if h := p.c.holders(); len(h) != 1 || h[0] != "master" {
		t.Fatalf("%s: holders %v a second after the master took the VIP", d.id, h)
	}
	if d.interval >= time.Second {
		// The backup's first adverts and its scripts are done.
		time.Sleep(time.Second)
	}
	return p
}

// mxDaemonPIDs returns the PIDs of the daemon pr runs: its own, and for
// keepalived its VRRP child's too.
func mxDaemonPIDs(t testing.TB, kind, base string, pr *lab.Proc) []int {
	t.Helper()
	pids := []int{pr.PID()}
	if kind != "keepalived" {
		return pids
	}
	path := base + ".vrrp.pid"
	deadline := time.Now().Add(5 * time.Second)
	for {
		data, err := os.ReadFile(path)
		if err == nil {
			if child, err := strconv.Atoi(strings.TrimSpace(string(data))); err == nil {
				return append(pids, child)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("keepalived's VRRP child pid file %s: %v", path, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// mxCPU returns the summed run time of the processes' threads, from
// /proc/PID/task/*/schedstat (nanoseconds).
func mxCPU(pids []int) (time.Duration, error) {
	var sum time.Duration
	for _, pid := range pids {
		dir := fmt.Sprintf("/proc/%d/task", pid)
		ents, err := os.ReadDir(dir)
		if err != nil {
			return 0, err
		}
		for _, e := range ents {
			data, err := os.ReadFile(filepath.Join(dir, e.Name(), "schedstat"))
			if err != nil {
				continue // the thread ended
			}
			f := strings.Fields(string(data))
			if len(f) < 1 {
				continue
			}
			ns, err := strconv.ParseInt(f[0], 10, 64)
			if err != nil {
				return 0, err
			}
			sum += time.Duration(ns)
		}
	}
	return sum, nil
}

// mxCheckNice fails the run when a peer's thread (any but carpd's, which
// renices itself to -10 as in production) does not run at nice 0: the
// daemons inherit the test's nice value (scripts/bench.sh once ran it
// under nice, and keepalived and ucarp ran at 10).
func mxCheckNice(t *testing.T, kind string, pids []int) {
	t.Helper()
	if kind == "carpd" {
		return
	}
	for _, pid := range pids {
		threads, err := snapThreads(pid)
		if err != nil {
			t.Fatal(err)
		}
		for tid, th := range threads {
			if th.nice != 0 {
				t.Errorf("%s (pid %d, thread %d) runs at nice %d, want 0: run the benchmark at nice 0", th.comm, pid, tid, th.nice)
			}
		}
	}
}

// mxRSS returns the summed VmRSS of the processes, in MB.
func mxRSS(pids []int) (float64, error) { return mxMem(pids, vmRSS) }

// mxPSS is the processes' summed proportional set size, in MB.
func mxPSS(pids []int) (float64, error) { return mxMem(pids, vmPSS) }

func mxMem(pids []int, of func(int) (int, error)) (float64, error) {
	var kb int
	for _, pid := range pids {
		n, err := of(pid)
		if err != nil {
			return 0, err
		}
		kb += n
	}
	return float64(kb) / 1024, nil
}

// mxAddrs records the VIP's additions and removals in a host's namespace
// from netlink notifications: no ip(8) polling competes with the daemons.
type mxAddrs struct {
	mu  sync.Mutex
	ev  []mxAddrEvent
	err error // the subscription failed: events may be missing
	// lossy: a failed subscription is a figure's lower bound, not the
	// run's failure (a flood of changes overflows it).
	lossy bool
	done  chan struct{}
}

// failed reports whether the subscription failed (events are missing).
func (w *mxAddrs) failed() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err != nil
}

type mxAddrEvent struct {
	at   time.Time
	addr netip.Addr
	add  bool
}

func mxWatchAddrs(t testing.TB, h *lab.Host) *mxAddrs {
	t.Helper()
	ns, err := netns.GetFromName(h.NS)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	ch := make(chan netlink.AddrUpdate, 1024)
	w := &mxAddrs{done: make(chan struct{})}
	if err := netlink.AddrSubscribeWithOptions(ch, w.done, netlink.AddrSubscribeOptions{
		Namespace: &ns, ReceiveBufferSize: 1 << 20,
		ErrorCallback: func(err error) {
			select {
			case <-w.done:
				// The subscription's socket is closed at cleanup.
			default:
				w.mu.Lock()
				w.err = err
				w.mu.Unlock()
			}
		},
	}); err != nil {
		t.Fatal(err)
	}
	go func() {
		for u := range ch {
			a, ok := netip.AddrFromSlice(u.LinkAddress.IP)
			if !ok {
				continue
			}
			w.mu.Lock()
			w.ev = append(w.ev, mxAddrEvent{time.Now(), a.Unmap(), u.NewAddr})
			w.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		w.mu.Lock()
		err, lossy := w.err, w.lossy
		w.mu.Unlock()
		if err != nil && !lossy {
			t.Errorf("the address notifications of %s failed: %v", h.Name, err)
		}
		close(w.done)
	})
	return w
}

// first returns the first event after t of the address a (add or removal).
func (w *mxAddrs) first(a netip.Addr, add bool, after time.Time) (time.Time, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, e := range w.ev {
		if e.addr == a && e.add == add && e.at.After(after) {
			return e.at, true
		}
	}
	return time.Time{}, false
}

// waitFirst waits up to until for first's event.
func (w *mxAddrs) waitFirst(a netip.Addr, add bool, after, until time.Time) (time.Time, bool) {
	for {
		if at, ok := w.first(a, add, after); ok {
			return at, true
		}
		if time.Now().After(until) {
			return time.Time{}, false
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// changes returns the number of additions and removals of the addresses
// in held (true: held at from) between from and to; the kernel's echoes
// of a held address's lifetime renewals are not changes.
func (w *mxAddrs) changes(held map[netip.Addr]bool, from, to time.Time) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	state := maps.Clone(held)
	n := 0
	for _, e := range w.ev {
		if h, ok := state[e.addr]; ok && e.at.After(from) && e.at.Before(to) && h != e.add {
			state[e.addr] = e.add
			n++
		}
	}
	return n
}

// mxFinish waits for the last probes' answers (or time-outs) and returns
// every result.
func mxFinish(pr *prober, interval time.Duration) []probe.Result {
	time.Sleep(probe.Timeout(interval) + 300*time.Millisecond)
	pr.stop()
	return pr.results()
}

// mxFigures is one run's figures: metric -> value; censored metrics are
// lower bounds.
type mxFigures struct {
	vals     map[string]float64
	censored map[string]bool
	note     string
	pool     map[string][]float64 // lateness values per condition, for the distribution
	// idle255, carpd: moveFault says what moved ("" if nothing);
	// machine, whether every gap behind it was the machine's, why those
	// gaps and the canary's oversleeps.
	moveFault string
	machine   bool
	why       []string
}

func newFigures() *mxFigures {
	return &mxFigures{vals: map[string]float64{}, censored: map[string]bool{}, pool: map[string][]float64{}}
}

func mxMS(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// mxPortCut cuts the master's switch port u x its advert interval after
// one of its adverts reached the client.
func mxPortCut(t *testing.T, d mxDaemon, u float64) *mxFigures {
	p := mxStartPair(t, d)
	c := p.c
	w := watchAdverts(t, c.client)
	bw := mxWatchAddrs(t, c.backup)
	cutter := newPortCutter(t, c.lab, c.master)
	pr := c.ping(d.probe)
	time.Sleep(time.Second)
	t0 := w.waitNext(t)
	sleepUntil(t0.Add(time.Duration(u * float64(d.interval))))
	cutAt, err := cutter.cut()
	if err != nil {
		t.Fatal(err)
	}
	took, ok := bw.waitFirst(vip, true, cutAt, cutAt.Add(d.bound+8*time.Second))
	if !ok {
		t.Fatalf("the backup did not add the VIP within %v of the cut", d.bound+8*time.Second)
	}
	time.Sleep(min(time.Second, 10*d.interval))
	res := mxFinish(pr, d.probe)
	st := probe.Summarize(res)
	last, ok := w.lastBefore(cutAt)
	if !ok {
		t.Fatal("no advert of the master seen before the cut")
	}
	f := newFigures()
	if x, ok := answeredAfterLoss(res, cutAt); ok {
		f.vals["bound_distance_ms"] = mxMS(x.Sent.Sub(last) - d.bound)
	}
	if !st.Recovered || st.LostRuns != 1 {
		t.Errorf("probes %+v, want one run of losses and recovery", st)
	}
	f.vals["outage_ms"] = mxMS(st.Outage)
	f.vals["lost"] = float64(st.Lost)
	f.vals["phase_ms"] = mxMS(cutAt.Sub(last))
	f.vals["takeover_ms"] = mxMS(took.Sub(last))
	f.note = fmt.Sprintf("u=%.4f", u)
	return f
}

// mxSIGKILL kills the master's daemon (SIGKILL to its process group) u x
// its advert interval after one of its adverts reached the client; its
// link stays up.
func mxSIGKILL(t *testing.T, d mxDaemon, u float64) *mxFigures {
	p := mxStartPair(t, d)
	c := p.c
	w := watchAdverts(t, c.client)
	mw, bw := mxWatchAddrs(t, c.master), mxWatchAddrs(t, c.backup)
	pr := c.ping(d.probe)
	time.Sleep(time.Second)
	t0 := w.waitNext(t)
	sleepUntil(t0.Add(time.Duration(u * float64(d.interval))))
	killAt := time.Now()
	if err := p.procs[c.master].Kill(); err != nil {
		t.Fatal(err)
	}
	took, ok := bw.waitFirst(vip, true, killAt, killAt.Add(d.bound+8*time.Second))
	if !ok {
		t.Fatalf("the backup did not add the VIP within %v of the kill", d.bound+8*time.Second)
	}
	window := d.bound + 4*time.Second
	f := newFigures()
	if gone, ok := mw.waitFirst(vip, false, killAt, killAt.Add(window)); ok {
		f.vals["vip_kept_ms"] = mxMS(gone.Sub(killAt))
	} else {
		f.vals["vip_kept_ms"] = mxMS(window)
		f.censored["vip_kept_ms"] = true
		if held, err := c.master.Holds(vip); err != nil || !held {
			t.Errorf("no removal of the VIP seen on the killed host, but it holds it: %v (%v)", held, err)
		}
	}
	res := mxFinish(pr, d.probe)
	st := probe.Summarize(res)
	if !st.Recovered {
		t.Errorf("the client's probes did not recover: %+v", st)
	}
	f.vals["outage_ms"] = mxMS(st.Outage)
	f.vals["lost"] = float64(st.Lost)
	f.vals["takeover_ms"] = mxMS(took.Sub(killAt))
	f.note = fmt.Sprintf("u=%.4f", u)
	return f
}

// mxSIGTERM stops the master's daemon with SIGTERM (a planned stop).
func mxSIGTERM(t *testing.T, d mxDaemon, u float64) *mxFigures {
	p := mxStartPair(t, d)
	c := p.c
	bw := mxWatchAddrs(t, c.backup)
	pr := c.ping(d.probe)
	time.Sleep(time.Second + time.Duration(u*float64(d.interval)))
	proc := p.procs[c.master]
	termAt := time.Now()
	if err := proc.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-proc.Done():
	case <-time.After(15 * time.Second):
		t.Fatal("the daemon did not exit within 15 s of SIGTERM")
	}
	took, ok := bw.waitFirst(vip, true, termAt, termAt.Add(d.bound+8*time.Second))
	if !ok {
		t.Fatalf("the backup did not add the VIP within %v of SIGTERM", d.bound+8*time.Second)
	}
	time.Sleep(min(time.Second, 10*d.interval))
	st := probe.Summarize(mxFinish(pr, d.probe))
	if !st.Recovered {
		t.Errorf("the client's probes did not recover: %+v", st)
	}
	f := newFigures()
	f.vals["lost"] = float64(st.Lost)
	f.vals["outage_ms"] = mxMS(st.Outage)
	f.vals["takeover_ms"] = mxMS(took.Sub(termAt))
	return f
}

// mxFailback runs the backup alone until it holds the VIP, then starts
// the master's daemon with preemption: the VIP comes back to it.
func mxFailback(t *testing.T, d mxDaemon, u float64) *mxFigures {
	p := mxNewPair(t, d, true)
	c := p.c
	p.start(c.backup)
	if _, ok := c.waitHolder(c.backup, d.bound+20*time.Second); !ok {
		t.Fatalf("the backup alone does not take the VIP (holders %v)", c.holders())
	}
	time.Sleep(time.Second)
	mw := mxWatchAddrs(t, c.master)
	pr := c.ping(d.probe)
	time.Sleep(time.Second + time.Duration(u*float64(d.interval)))
	startAt := time.Now()
	p.start(c.master)
	took, ok := mw.waitFirst(vip, true, startAt, startAt.Add(d.bound+20*time.Second))
	if !ok {
		t.Fatalf("the master did not add the VIP within %v of its start", d.bound+20*time.Second)
	}
	time.Sleep(max(time.Second, 3*d.interval))
	if h := c.holders(); len(h) != 1 || h[0] != "master" {
		t.Errorf("holders %v after the failback", h)
	}
	st := probe.Summarize(mxFinish(pr, d.probe))
	if !st.Recovered {
		t.Errorf("the client's probes did not recover: %+v", st)
	}
	f := newFigures()
	f.vals["lost"] = float64(st.Lost)
	f.vals["outage_ms"] = mxMS(st.Outage)
	f.vals["takeover_ms"] = mxMS(took.Sub(startAt))
	return f
}

// mxIdle1 measures the pair's CPU time over the window and its RSS.
func mxIdle1(t *testing.T, d mxDaemon, window time.Duration) *mxFigures {
	p := mxStartPair(t, d)
	c := p.c
	// Idle is the steady state: past the new master's announcements
	// (carpd repeats them 1, 2 and 3 s after the takeover; keepalived
	// 5 s after, vrrp_garp_master_delay), which would otherwise fall in
	// the window of one daemon and not another's.
	time.Sleep(mxIdleSettle)
	pids := map[*lab.Host][]int{}
	for _, h := range []*lab.Host{c.master, c.backup} {
		pids[h] = mxDaemonPIDs(t, d.kind, filepath.Join(c.dir, h.Name), p.procs[h])
	}
	f := newFigures()
	mxMeasureCPU(t, f, d.kind, pids[c.master], pids[c.backup], window)
	if h := c.holders(); len(h) != 1 || h[0] != "master" {
		t.Errorf("holders %v after the window", h)
	}
	return f
}

// mxIdleSettle is how long the idle1 cell waits after the master holds
// the VIP before it measures.
const mxIdleSettle = 6 * time.Second

// mxMeasureCPU adds the CPU of the master's and the backup's processes
// over the window and their RSS at its end.
func mxMeasureCPU(t *testing.T, f *mxFigures, kind string, master, backup []int, window time.Duration) {
	mxCheckNice(t, kind, append(slices.Clone(master), backup...))
	m0, err1 := mxCPU(master)
	b0, err2 := mxCPU(backup)
	t0 := time.Now()
	time.Sleep(window)
	m1, err3 := mxCPU(master)
	b1, err4 := mxCPU(backup)
	el := time.Since(t0)
	for _, err := range []error{err1, err2, err3, err4} {
		if err != nil {
			t.Fatal(err)
		}
	}
	f.vals["cpu_master_pct"] = 100 * (m1 - m0).Seconds() / el.Seconds()
	f.vals["cpu_backup_pct"] = 100 * (b1 - b0).Seconds() / el.Seconds()
	var err error
	if f.vals["rss_master_mb"], err = mxRSS(master); err != nil {
		t.Fatal(err)
	}
	if f.vals["rss_backup_mb"], err = mxRSS(backup); err != nil {
		t.Fatal(err)
	}
	if f.vals["pss_master_mb"], err = mxPSS(master); err != nil {
		t.Fatal(err)
	}
}

// mxVHIDs is the number of vhids of the scale scenario.
const mxVHIDs = 255

// mxScaleVIP is vhid n's address: 198.51.100.n for n <= 200, then
// 203.0.113.(n-200).
func mxScaleVIP(n int) netip.Addr {
	if n <= 200 {
		return netip.AddrFrom4([4]byte{198, 51, 100, byte(n)})
	}
	return netip.AddrFrom4([4]byte{203, 0, 113, byte(n - 200)})
}

// mxIdle255 runs 255 vhids on the pair (ucarp: 255 processes on each
// host), measures the CPU and RSS over one window and the master's advert
// lateness on its own eth0 over that window (idle) and over another with a
// busy loop running in the client's namespace (busy).
func mxIdle255(t *testing.T, d mxDaemon, window time.Duration) *mxFigures {
	c := newCluster(t)
	dir := c.dir
	procs := map[*lab.Host][]*lab.Proc{}
	set := map[netip.Addr]bool{}
	for n := 1; n <= mxVHIDs; n++ {
		set[mxScaleVIP(n)] = true
	}
	if d.kind == "ucarp" {
		mxScripts(t, dir)
	}
	for i, h := range []*lab.Host{c.master, c.backup} {
		master := i == 0
		own := masterAddr.Addr()
		if !master {
			own = backupAddr.Addr()
		}
		switch d.kind {
		case "carpd":
			var vs []tomlVHID
			for n := 1; n <= mxVHIDs; n++ {
				v := tomlVHID{Iface: lab.Iface, VHID: n, AdvSkew: 100 + 100*i, Password: "bench",
					Addrs: []netip.Prefix{netip.PrefixFrom(mxScaleVIP(n), 32)}}
				if d.vrrp == 3 {
					v.VRRPInterval, v.VRRPPriority = int(d.interval/(10*time.Millisecond)), 155-100*i
				}
				vs = append(vs, v)
			}
			cfg := writeTOML(t, dir, h.Name+".toml", false, vs)
			pr, err := h.Start("carpd", append([]string{d.carpd(), "--config", cfg}, ownFiles(cfg)...)...)
			if err != nil {
				t.Fatal(err)
			}
			procs[h] = []*lab.Proc{pr}
		case "keepalived":
			conf := filepath.Join(dir, h.Name+".keepalived.conf")
			if err := os.WriteFile(conf, []byte(mxKeepalivedConf(d, master, mvRange(1, mxVHIDs), mxScaleVIP)), 0o644); err != nil {
				t.Fatal(err)
			}
			procs[h] = []*lab.Proc{mxStartKeepalived(t, h, dir, conf)}
		case "ucarp":
			for n := 1; n <= mxVHIDs; n++ {
				pr, err := h.Start(fmt.Sprintf("ucarp%d", n), mxUcarpArgs(dir, own, mxScaleVIP(n), n, 100+100*i, false)...)
				if err != nil {
					t.Fatal(err)
				}
				procs[h] = append(procs[h], pr)
			}
		}
	}
	all := mvRange(1, mxVHIDs)
	held := func(h *lab.Host) []int { return heldVHIDs(t, h, lab.Iface, mxVHIDs, mxScaleVIP) }
	f := newFigures()
	deadline := time.Now().Add(40 * time.Second)
	for {
		m, bk := held(c.master), held(c.backup)
		if slices.Equal(m, all) && len(bk) == 0 {
			break
		}
		if time.Now().After(deadline) {
			// Measure anyway: the figures (moves, lateness) show why.
			// The daemon's behaviour, not the harness's failure.
			t.Logf("not settled after 40 s: the master holds %d VIPs, the backup %d; want %d and 0", len(m), len(bk), mxVHIDs)
			if d.kind == "carpd" {
				// carpd's own target (a peer's is only reported): 255
				// vrids settle, at 10 ms too (they flapped for good
				// before the loop batched its inputs).
				t.Errorf("%s: 255 vhids did not settle in 40 s", d.id)
			}
			f.note = fmt.Sprintf("not settled after 40 s: the master held %d VIPs, the backup %d", len(m), len(bk))
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	time.Sleep(3 * time.Second)
	pids := map[*lab.Host][]int{}
	for _, h := range []*lab.Host{c.master, c.backup} {
		for _, pr := range procs[h] {
			pids[h] = append(pids[h], mxDaemonPIDs(t, d.kind, filepath.Join(dir, h.Name), pr)...)
		}
	}
	mw, bw := mxWatchAddrs(t, c.master), mxWatchAddrs(t, c.backup)
	mw.lossy, bw.lossy = true, true
	// The canary, at carpd's nice: a move over a gap in the master's
	// adverts that the canary overslept as long is the machine's.
	canary := startCanaryNice(t, -10)
	defer canary.stopOnce()
	start := time.Now()
	idleCap := startPcap(t, c.master.NS, lab.Iface, dir, fmt.Sprintf("ip proto 112 and src host %v", masterAddr.Addr()),
		"-B", "32768", "-s", "64", "-Q", "out")
	mxMeasureCPU(t, f, d.kind, pids[c.master], pids[c.backup], window)
	idleCap.stop(t)
	mxLateness(t, f, d, "idle", idleCap.path)
	burner, err := c.client.Start("burner", "sh", "-c", "while :; do :; done")
	if err != nil {
		t.Fatal(err)
	}
	busyPath := filepath.Join(dir, "busy")
	if err := os.Mkdir(busyPath, 0o755); err != nil {
		t.Fatal(err)
	}
	busyCap := startPcap(t, c.master.NS, lab.Iface, busyPath, fmt.Sprintf("ip proto 112 and src host %v", masterAddr.Addr()),
		"-B", "32768", "-s", "64", "-Q", "out")
	time.Sleep(window)
	busyCap.stop(t)
	if err := burner.Kill(); err != nil {
		t.Error(err)
	}
	mxLateness(t, f, d, "busy", busyCap.path)
	none := map[netip.Addr]bool{}
	for a := range set {
		none[a] = false
	}
	moves := mw.changes(set, start, time.Now()) + bw.changes(none, start, time.Now())
	f.vals["moves"] = float64(moves)
	if mw.failed() || bw.failed() {
		// The changes overflowed the subscription: more were made.
		f.censored["moves"] = true
		f.note = strings.TrimSpace(f.note + " the address notifications overflowed: moves is a lower bound")
	}
	if d.kind == "carpd" && (moves > 0 || mw.failed() || bw.failed()) {
		// carpd's own target (a peer's moves are only reported): after
		// settling, no VIP moves, idle or with the other core busy. A
		// move is a false failover, whatever the host's load, unless
		// the machine stood still: every gap in the master's adverts past
		// the backup's Master_Down_Interval matched by the canary
		// (machineGaps); mxRun then runs the cell again.
		canary.stopOnce()
		f.moveFault = fmt.Sprintf("%s: %d VIP moves (at least) in the idle and busy windows after settling, want 0", d.id, moves)
		down := 3*d.interval + (256-55)*d.interval/256
		f.machine, f.why = mxMachineGaps(t, []string{idleCap.path, busyCap.path}, down, d.interval, canary)
	}
	if m, bk := held(c.master), held(c.backup); !slices.Equal(m, all) || len(bk) != 0 {
		f.note = strings.TrimSpace(f.note + fmt.Sprintf(" at the end the master held %d VIPs, the backup %d", len(m), len(bk)))
		if os.Getenv("CARPD_BENCH_SHOW_OUTPUT") != "" {
			for _, h := range []*lab.Host{c.master, c.backup} {
				out := procs[h][0].Output()
				t.Logf("%s's first daemon, transitions %d, output's end:\n%s", h.Name, len(transitions(out)), strings.Join(tail(out, 30), "\n"))
				if d.kind == "carpd" {
					out, errOut, code := runCarpctl(t, nil, "--control", ownSock(filepath.Join(dir, h.Name+".toml")), "stats")
					t.Logf("%s: carpctl stats (exit %d):\n%s%s", h.Name, code, out, errOut)
				}
			}
		}
	}
	return f
}

// mxLateness reads the master's adverts captured on its eth0 and adds the
// lateness percentiles (each gap between a vhid's consecutive adverts
// minus the nominal interval) of one condition.
func mxLateness(t *testing.T, f *mxFigures, d mxDaemon, cond, path string) {
	ads, err := readAdvertPcap(path)
	if err != nil {
		t.Fatal(err)
	}
	by := advertTimes(ads)
	var lates []float64
	for _, ats := range by {
		for i := 1; i < len(ats); i++ {
			lates = append(lates, mxMS(ats[i].Sub(ats[i-1])-d.interval))
		}
	}
	if len(lates) == 0 {
		t.Errorf("%s: no advert gaps captured", cond)
		return
	}
	if len(by) < mxVHIDs {
		t.Logf("%s: adverts of %d vhids captured, want %d", cond, len(by), mxVHIDs)
		f.note = strings.TrimSpace(f.note + fmt.Sprintf(" %s: adverts of %d vhids captured", cond, len(by)))
	}
	slices.Sort(lates)
	f.vals["late_p50_ms/"+cond] = percentile(lates, 50)
	f.vals["late_p99_ms/"+cond] = percentile(lates, 99)
	f.vals["late_max_ms/"+cond] = lates[len(lates)-1]
	f.vals["adverts/"+cond] = float64(len(ads))
	f.pool[cond] = lates
}

// mxMachine describes the machine: CPU model, cores, kernel.
func mxMachine() (cpu string, cores int, kernel string) {
	cpu = "unknown"
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(data), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				cpu = strings.TrimSpace(v)
				break
			}
		}
	}
	kernel = "unknown"
	if data, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		kernel = strings.TrimSpace(string(data))
	}
	return cpu, runtime.NumCPU(), kernel
}

// mxVersions returns each kind's version.
func mxVersions() map[string]string {
	v := map[string]string{}
	rev := "unknown"
	if out, err := exec.Command("git", "-C", "..", "describe", "--always").Output(); err == nil {
		rev = strings.TrimSpace(string(out))
		// Dirty: changes outside bench/, which the report itself
		// rewrites while it runs.
		if st, err := exec.Command("git", "-C", "..", "status", "--porcelain", "--", ".", ":!bench").Output(); err == nil && len(st) > 0 {
			rev += "-dirty"
		}
	}
	v["carpd"] = "git " + rev
	for _, pkg := range []string{"ucarp", "keepalived"} {
		out, err := exec.Command("dpkg-query", "-W", "-f", "${Version}", pkg).Output()
		v[pkg] = "Debian " + strings.TrimSpace(string(out))
		if err != nil {
			v[pkg] = "unknown"
		}
	}
	return v
}

// mxMetricScenario maps a figure to its report scenario and metric: the
// scale scenario's lateness figures go to jitter-idle and jitter-busy.
func mxMetricScenario(scenario, key string) (string, string) {
	if m, cond, ok := strings.Cut(key, "/"); ok {
		return "jitter-" + cond, m
	}
	return scenario, key
}

// TestBenchmarkMatrix runs the matrix; see the top of the file.
func TestBenchmarkMatrix(t *testing.T) {
	s := mxLoadSettings(t)
	began := time.Now()
	rng := rand.New(rand.NewPCG(s.seed, 0x13))
	// One draw per scenario and run, the same for every daemon.
	draws := map[string][]float64{}
	for _, sc := range s.scenarios {
		for range s.runsOf(sc) {
			draws[sc] = append(draws[sc], rng.Float64())
		}
	}
	total := 0.0
	for _, sc := range s.scenarios {
		for _, d := range s.daemons {
			total += float64(s.runsOf(sc)) * mxEstimate(s, sc, d)
		}
	}
	cells := len(s.scenarios) * len(s.daemons)
	fmt.Printf("benchmark matrix (%s): %d scenarios x %d daemons = %d cells, %d run(s) each (idle cells %d); estimated %v; report in %s; phase seed %d\n",
		s.mode, len(s.scenarios), len(s.daemons), cells, s.runs, s.idleRuns, (time.Duration(total) * time.Second).Round(time.Second), s.out, s.seed)

	cpu, cores, kernel := mxMachine()
	vers := mxVersions()
	meta := mxMeta{
		Date: began.UTC().Format(time.RFC3339), Mode: s.mode, Runs: s.runs, CPU: cpu, Cores: cores, Kernel: kernel,
		Command: os.Getenv("CARPD_BENCH_COMMAND"),
	}
	if meta.Command == "" {
		meta.Command = fmt.Sprintf("CARPD_BENCHMARKS=%s go test ./e2e -run '^TestBenchmarkMatrix$' -v", s.mode)
	}
	for _, d := range s.daemons {
		meta.Daemons = append(meta.Daemons, mxMetaDaemon{ID: d.id, Title: d.title, Version: vers[d.kind],
			Probe: d.probe.String(), BoundMS: mxMS(d.bound)})
	}
	meta.Settings = mxSettingsText(s)
	meta.Notes = mxNotes
	// The micro-benchmarks scripts/bench.sh ran first are in micro.txt
	// beside the figures; the report tool reads them.
	meta.MicroCommand = os.Getenv("CARPD_BENCH_MICRO_COMMAND")
	var rows []mxRow
	pools := map[string]map[string][]float64{} // daemon -> condition -> lateness
	write := func() {
		var qs []mxQuantile
		for _, d := range s.daemons {
			for _, cond := range []string{"idle", "busy"} {
				qs = append(qs, mxPercentiles(d.id, cond, pools[d.id][cond])...)
			}
		}
		meta.Elapsed = time.Since(began).Round(time.Second).String()
		if err := mxWriteRaw(s.out, meta, rows, qs); err != nil {
			t.Errorf("writing the report: %v", err)
		}
	}
	// The runs of a scenario are interleaved: run 1 of every daemon, then
	// run 2 of every daemon, the order rotated each run, so that a drift
	// of the machine (other work on the host, the idle figures are a few
	// milliseconds of CPU a second) falls on every daemon alike.
	// record adds a run's figures to the report and returns its progress
	// line.
	record := func(sc string, d mxDaemon, run int, f *mxFigures, ok bool, took time.Duration) string {
		if f == nil {
			return fmt.Sprintf("run %d failed", run)
		}
		note := f.note
		if !ok {
			note = strings.TrimSpace(note + " (the run reported an error)")
		}
		var parts []string
		for _, k := range slices.Sorted(maps.Keys(f.vals)) {
			scn, m := mxMetricScenario(sc, k)
			rows = append(rows, mxRow{Daemon: d.id, Scenario: scn, Metric: m, Run: run, Value: f.vals[k], Censored: f.censored[k], Note: note})
			ge := ""
			if f.censored[k] {
				ge = ">="
			}
			parts = append(parts, fmt.Sprintf("%s %s%.3g", k, ge, f.vals[k]))
		}
		for cond, v := range f.pool {
			if pools[d.id] == nil {
				pools[d.id] = map[string][]float64{}
			}
			pools[d.id][cond] = append(pools[d.id][cond], v...)
		}
		return fmt.Sprintf("run %d (%v): %s", run, took.Round(100*time.Millisecond), strings.Join(parts, ", "))
	}
	// The runs of a scenario are interleaved: run 1 of every daemon, then
	// run 2 of every daemon, the order rotated each run, so that a drift
	// of the machine (other work on the host, the idle figures are a few
	// milliseconds of CPU a second) falls on every daemon alike.
	done := 0.0
	for si, sc := range s.scenarios {
		for run := 1; run <= s.runsOf(sc); run++ {
			for k := range s.daemons {
				di := (k + run - 1) % len(s.daemons)
				d := s.daemons[di]
				var f *mxFigures
				t0 := time.Now()
				ok := t.Run(fmt.Sprintf("%s/%s/run%d", sc, d.id, run), func(t *testing.T) {
					f = mxRun(t, s, sc, d, draws[sc][run-1])
				})
				line := record(sc, d, run, f, ok, time.Since(t0))
				done += mxEstimate(s, sc, d)
				left := time.Duration((total - done) * float64(time.Second))
				fmt.Printf("[%2d/%d] %-8s %-19s %s | elapsed %v, ~%v left\n", si*len(s.daemons)+di+1, cells, sc, d.id,
					line, time.Since(began).Round(time.Second), left.Round(time.Second))
			}
			write()
		}
	}
	write()
	fmt.Printf("benchmark matrix done in %v: %s\n", time.Since(began).Round(time.Second), filepath.Join(s.out, "BENCHMARKS.md"))
}

// mxIdle255Tries is how many times an idle255 run of carpd may be made:
// again only when its moves were the machine's.
const mxIdle255Tries = 3

// mxMachineGaps judges the gaps longer than d (the backup's
// Master_Down_Interval) between each vhid's adverts in the captures at
// paths: whether there is one and each was the machine's, the canary
// having overslept during it by d less one interval and 2 ms: a stall of
// the whole machine that long makes the backup take over by itself. With
// 255 vrids a gap may then run past the stall: a master that stood still
// longer than StallBound steps down, and preempts back once it hears the
// backup.
func mxMachineGaps(t *testing.T, paths []string, d, interval time.Duration, c *canary) (bool, []string) {
	need := func(time.Duration) time.Duration { return d - interval - 2*time.Millisecond }
	all := true
	var why []string
	for _, path := range paths { // each apart: no gap between two captures
		ads, err := readAdvertPcap(path)
		if err != nil {
			t.Fatal(err)
		}
		m, w := vhidGapsMachine(advertTimes(ads), d, c, need)
		if len(w) > 0 {
			all = all && m
		}
		why = append(why, w...)
	}
	return all && len(why) > 0, why
}

// mxRun runs one run of scenario sc for d; u is the run's phase draw.
func mxRun(t *testing.T, s mxSettings, sc string, d mxDaemon, u float64) *mxFigures {
	switch sc {
	case "portcut":
		return mxPortCut(t, d, u)
	case "sigkill":
		return mxSIGKILL(t, d, u)
	case "sigterm":
		return mxSIGTERM(t, d, u)
	case "failback":
		return mxFailback(t, d, u)
	case "idle1":
		return mxIdle1(t, d, s.idleWindow)
	case "idle255":
		// Run again (mxIdle255Tries in all) only when carpd's moves were
		// the machine's; each try on a lab of its own.
		var f *mxFigures
		for try := 1; ; try++ {
			t.Run(fmt.Sprintf("try%d", try), func(t *testing.T) { f = mxIdle255(t, d, s.scaleWindow) })
			if f == nil || f.moveFault == "" {
				return f
			}
			if !f.machine || try == mxIdle255Tries {
				t.Errorf("%s (try %d of at most %d); the gaps past the Master_Down_Interval in the master's adverts: %s",
					f.moveFault, try, mxIdle255Tries, strings.Join(f.why, ", "))
				return f
			}
			t.Logf("try %d not judged: %s, every gap behind them the machine's (%s)", try, f.moveFault, strings.Join(f.why, ", "))
		}
	}
	t.Fatalf("unknown scenario %q", sc)
	return nil
}

// mxSettingsText describes the settings, for the report.
func mxSettingsText(s mxSettings) []string {
	return []string{
		"Topology: three network namespaces (master 192.0.2.21, backup 192.0.2.22, client 192.0.2.100) on one Linux bridge in a fourth, the VIP 192.0.2.50; a fresh lab for every run of every daemon. Daemons run at their default log level, and start at nice 0 (carpd renices itself to -10, as in production; keepalived and ucarp stay at 0, checked at each idle measurement).",
		"The client probes the VIP with ICMP echo (internal/probe) every 10 ms for the 1 s daemons and every 1 ms for the 10 ms ones. Outage: from the last answered probe before the losses to the first answered after (send times).",
		fmt.Sprintf("Unplanned failures (port cut, SIGKILL) happen at a random phase: each run draws u uniform in [0, 1) (seed %d), and every daemon's master is hit u x its advert interval after one of its adverts reached the client. The same draws for every daemon.", s.seed),
		"Port cut: the master's switch-side veth is set down with one netlink request. Bound distance: the time from the master's last advert (arrival at the client) to the first answered probe, minus the backup's master-down interval (CARP: 3 x 1 s + 200/256 s = 3781.25 ms; VRRPv2: 3 x 1 s + 201/256 s = 3785.16 ms; VRRPv3 at 10 ms: 3 x 10 ms + 201/256 x 10 ms = 37.85 ms). Positive: slower than the bound.",
		"SIGKILL: the master's daemon and its process group are SIGKILLed, the link stays up. 'Keeps the VIP': from the kill to the address's removal on the dead host (netlink notification); '≥' when it still held it at the end of the window (bound + 4 s).",
		"Planned stop: SIGTERM to the master's daemon (ucarp runs its down script, -z). Failback: the backup runs alone until it holds the VIP, then the master's daemon starts with preemption (carpd --preempt, ucarp -P; VRRP preempts by default) and takes the VIP back.",
		fmt.Sprintf("Idle CPU: the summed run time of the daemon's threads (/proc/PID/task/*/schedstat) over %v (1 vhid: from %v after the master holds the VIP, past the takeover's announcements), keepalived's parent and VRRP child together, in percent of one core; RSS: VmRSS at the end (ucarp with 255 vhids: 255 processes on each host, summed, shared pages counted in every process); PSS (/proc/PID/smaps_rollup) divides each shared page among the processes that map it, so its sum counts it once.", s.idleWindow, mxIdleSettle),
		fmt.Sprintf("255 vhids: one VIP each (198.51.100.1-200, 203.0.113.1-55) on eth0, the master's figures over %v; then the advert lateness again over %v with a busy loop (sh) in the client's namespace, keeping the other core busy. Lateness: the master's adverts captured on its own eth0 (tcpdump -Q out), each gap between a vhid's consecutive adverts minus its interval (CARP advbase 1 advskew 100: 1390.625 ms; 1 s; 10 ms).", s.scaleWindow, s.scaleWindow),
		fmt.Sprintf("Runs per cell: %d for the failover scenarios, %d for the idle ones (1 vhid, 255 vhids and the lateness); the runs of a scenario are interleaved (run 1 of every daemon, then run 2, the order rotated each run), so that a drift of the machine, which other work may share, falls on every daemon alike.", s.runs, s.idleRuns),
	}
}

// mxNotes are the report's notes.
var mxNotes = []string{
	"After SIGKILL a dead ucarp or keepalived leaves the VIP on its host: the host keeps answering for it (to every client whose ARP entry still points at it) until someone removes the address. carpd gives its addresses a valid lifetime that each advert renews, so the kernel removes the VIP of a dead carpd by itself. A client whose ARP entry follows the new master's gratuitous ARP sees no outage from a host that keeps answering: a small SIGKILL outage is then a stale VIP, not a fast failover.",
}
