package e2e

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/carpd/carpd/internal/lab"
)

// BenchmarkLoad is issue 26's load benchmark (scripts/load-bench.sh runs
// it): a VRRPv3 pair, vrids 1-128 on eth0 and 129-255 on eth1 as in
// BenchmarkManyVRIDs, priority 155 on the master and 55 on the backup, both
// started together at 10 ms. Each iteration is one run:
//
//   - the start: how long until the master holds every VIP and the backup
//     none (polled every 100 ms), and the backup's transitions to MASTER
//     meanwhile;
//   - a window (with a CPU burner at nice 0 in a third namespace when
//     CARPD_LOAD_BURN=1): the transitions on both hosts, the largest gap
//     between a vrid's consecutive adverts of the master and the p99 of
//     their lateness (captured on the backup's interfaces), the backup's
//     CPU, its raw sockets' drops (/proc/net/raw), and with perf (when
//     CARPD_LOAD_PERF=1) the backup's CPU time, system calls and context
//     switches per received advert, which the machine's other load
//     changes less than the CPU percentage.
//
// Both run VRRP's default preemption (a master that heard the backup first
// takes its vrids back) and write their log into a file of the run's
// directory; a failed run ends them with SIGQUIT and keeps that output,
// with the dump of their goroutines, in /tmp/carpload-*.log. A canary, a
// thread of the test at carpd's nice value sleeping 1 ms at a time, gives
// its longest oversleep over the start and over the window: how long the
// machine stalled a thread as favoured as carpd's.
//
// Targets (b.Errorf when missed, issue 26): settled within 2 s with at most
// one MASTER per vrid on the backup, none twice on either host, no VIP on
// both hosts for longer than startBothMax (ip monitor on each, from before
// the start); no transition in the window; the largest gap under 30 ms; no
// drop; the backup under 30 % of a core.
//
// The largest gap's target is CARPD_LOAD_GAP_MAX (30ms, issue 26's). The
// short form in CI (scripts/load-bench.sh --quick) sets it to the
// backup's Master_Down_Interval, 37.85 ms, the gap a backup takes over
// on (a false failover, which the transitions catch too): the 30 ms
// target is not met yet on this machine kind (5 steady 10 s windows of
// idle255: largest gaps 17.2, 23.9, 25.3, 27.5 and 29.2 ms, 30.1 ms in
// another, on a machine where the last green CI run's had 17.3 ms), and
// the full form judges it, 10 runs per case.
//
//	CARPD_LOAD_VRIDS     vrids (255)
//	CARPD_LOAD_WINDOW    the window (30s)
//	CARPD_LOAD_BURN      1: a CPU burner during the window (0)
//	CARPD_LOAD_PERF      1: perf stat the backup during the window (0)
//	CARPD_LOAD_PROFILE   with CARPD_LOAD_PERF=1: perf record the backup's
//	                     CPU (cpu-clock) into this file instead
//	CARPD_LOAD_STAGGER   1: start the backup once the master holds every
//	                     VIP (a settled pair for the per-advert figures);
//	                     2: the master once the backup holds every VIP
//	                     (the master takes every vrid back); 0: both
//	                     together, as a user would (0)
//	CARPD_LOAD_BIN       the carpd binary to run (the one the tests build)
//	CARPD_LOAD_ENV       environment for carpd, e.g. GOMAXPROCS=2 (none)
//	CARPD_LOAD_CPU_MAX   the backup's CPU target, % of a core (30)
//	CARPD_LOAD_GAP_MAX   the largest gap's target (30ms)
func BenchmarkLoad(b *testing.B) {
	requireRoot(b)
	s := loadSettings{
		vrids:     envInt(b, "CARPD_LOAD_VRIDS", 255),
		window:    envDuration(b, "CARPD_LOAD_WINDOW", 30*time.Second),
		burn:      envInt(b, "CARPD_LOAD_BURN", 0) != 0,
		perf:      envInt(b, "CARPD_LOAD_PERF", 0) != 0,
		stagger:   envInt(b, "CARPD_LOAD_STAGGER", 0),
		bin:       carpdBin,
		env:       strings.Fields(os.Getenv("CARPD_LOAD_ENV")),
		cpuMax:    float64(envInt(b, "CARPD_LOAD_CPU_MAX", 30)),
		gapTarget: envDuration(b, "CARPD_LOAD_GAP_MAX", 30*time.Millisecond),
	}
	if p := os.Getenv("CARPD_LOAD_BIN"); p != "" {
		s.bin = p
	}
	if s.vrids < 1 || s.vrids > 255 {
		b.Fatalf("CARPD_LOAD_VRIDS=%d: 1..255", s.vrids)
	}
	var runs []loadRun
	for i := 0; i < b.N; i++ {
		var r loadRun
		for try := 1; ; try++ {
			r = oneLoadRun(b, s)
			if r.gapFault == "" && len(r.startFaults) == 0 {
				break
			}
			if b.Failed() || !r.machineOnly() || try == loadTries {
				if len(r.startFaults) > 0 {
					b.Errorf("run %d: the start: %s (try %d of at most %d; the canary's longest oversleep in it %.1f ms)",
						i+1, strings.Join(r.startFaults, "; "), try, loadTries, ms(r.startCanaryMax))
				}
				if r.gapFault != "" {
					b.Errorf("run %d: %s (try %d of at most %d); the gaps of %v and more: %s",
						i+1, r.gapFault, try, loadTries, s.gapTarget, strings.Join(r.gapWhy, ", "))
				}
				break
			}
			if len(r.startFaults) > 0 {
				b.Logf("run %d, try %d not judged: the start: %s; the machine stalled a thread at carpd's nice for %.1f ms in it (at least %v: the master's stall)",
					i+1, try, strings.Join(r.startFaults, "; "), ms(r.startCanaryMax), startStall)
			}
			if r.gapFault != "" {
				b.Logf("run %d, try %d not judged: %s, every such gap the machine's (%s)", i+1, try, r.gapFault, strings.Join(r.gapWhy, ", "))
			}
		}
		b.Logf("run %d: %s", i+1, r)
		fmt.Printf("load: vrids=%d burn=%v window=%v env=%v run %d: %s\n", s.vrids, s.burn, s.window, s.env, i+1, r)
		runs = append(runs, r)
	}
	b.ReportMetric(0, "ns/op")
	for _, m := range []struct {
		unit string
		get  func(loadRun) float64
	}{
		{"settle-s", func(r loadRun) float64 { return r.settle.Seconds() }},
		{"start-masters", func(r loadRun) float64 { return float64(r.startMasters) }},
		{"transitions", func(r loadRun) float64 { return float64(r.transitions) }},
		{"gap-max-ms", func(r loadRun) float64 { return r.gapMax }},
		{"late-p99-ms", func(r loadRun) float64 { return r.lateP99 }},
		{"backup-cpu-%", func(r loadRun) float64 { return r.backupCPU }},
		{"drops", func(r loadRun) float64 { return float64(r.drops) }},
		{"backup-us/advert", func(r loadRun) float64 { return r.usPerAdvert }},
		{"backup-syscalls/advert", func(r loadRun) float64 { return r.syscallsPerAdvert }},
		{"backup-cs/advert", func(r loadRun) float64 { return r.csPerAdvert }},
	} {
		var vs []float64
		for _, r := range runs {
			vs = append(vs, m.get(r))
		}
		reportSpread(b, m.unit, vs)
	}
}

// loadTries is how many times a run may be made: again only when its
// only faults were the machine's: an advert gap over the target that the
// machine made (loadGapsMachine), or a start that missed its targets
// while the machine stalled a thread at carpd's nice for startStall or
// more.
const loadTries = 3

// startStall is a stall of the machine that makes the start's targets
// unreachable: a master that stands still that long, from an advert on,
// goes one interval and 2 ms more (stallNeed) without one, which is the
// backup's master-down interval (startBothMax): the backup takes over,
// as the protocol has it, the VIP is on both hosts until the master runs
// again, and the master, stalled past its stall bound, steps down and
// takes its vrids back (MASTER twice). On CI's machine (stop 30) one such
// start: the canary overslept 110.5 ms in it, the master's largest
// advert gap 168.1 ms, every vrid MASTER twice on the master, a VIP on
// both for 81.2 ms.
var startStall = stallNeed(10 * time.Millisecond)(startBothMax)

// loadGapsMachine judges the gaps of target and more between each vrid's
// adverts in mine: whether there is one and each was the machine's, the
// canary (at carpd's nice) having overslept during it by the gap less
// one interval (10 ms) and 2 ms (machineGaps), with each such gap.
func loadGapsMachine(mine []wireAdvert, c *canary, target time.Duration) (bool, []string) {
	return vhidGapsMachine(advertTimes(mine), target-1, c, stallNeed(10*time.Millisecond))
}

// startBothMax is the longest a VIP may be on both hosts at the start:
// one master-down interval of the backup (priority 55 at 10 ms: 3 × 10 ms
// + 201/256 × 10 ms), issue 26's target. It is missed on the loaded 2-core
// machine (load average 8-11): 49.5-104.5 ms in the 7 of 10 joint starts
// where the backup went MASTER at all, measured with
//
//	CARPD_LOAD_VRIDS=255 CARPD_LOAD_WINDOW=5s go test ./e2e -run '^$' -bench '^BenchmarkLoad$' -benchtime=1x
//
// ten times (docs/design.md says why).
const startBothMax = 30*time.Millisecond + 201*10*time.Millisecond/256

type loadSettings struct {
	vrids      int
	window     time.Duration
	burn, perf bool
	stagger    int // 0: both together; 1: the master first; 2: the backup first
	bin        string
	env        []string
	cpuMax     float64
	gapTarget  time.Duration // the largest gap's target
}

type loadRun struct {
	settle          time.Duration
	startMasters    int // the backup's transitions to MASTER during the start
	transitions     int // on both hosts during the window
	gapMax, lateP99 float64
	// gapFault says the largest gap missed its target ("" if not);
	// gapMachine, whether every gap of 30 ms and more was the machine's,
	// gapWhy those gaps with the canary's oversleeps.
	gapFault          string
	gapMachine        bool
	gapWhy            []string
	backupCPU         float64 // % of a core
	drops             uint64
	adverts           int // the master's adverts captured in the window
	usPerAdvert       float64
	syscallsPerAdvert float64
	csPerAdvert       float64
	// The canary: a thread of the test at carpd's nice value (-10)
	// sleeping 1 ms at a time during the window; its longest oversleep
	// and how many passed 10 ms. Long ones say the machine stalled a
	// thread as favoured as carpd's: the window's figures then need a
	// quiet machine. It never passes a run: one it explains is made again.
	canaryMax  time.Duration
	canaryOver int
	// The canary's longest oversleep from the start to the window.
	startCanaryMax time.Duration
	// startFaults are the start's targets missed; startMachine, whether
	// the machine stalled in it (startStall).
	startFaults  []string
	startMachine bool
	start        startFigures
}

// machineOnly says whether each of the run's faults that BenchmarkLoad
// judges (the largest gap, the start) was the machine's: a run made
// again.
func (r loadRun) machineOnly() bool {
	return (r.gapFault == "" || r.gapMachine) && (len(r.startFaults) == 0 || r.startMachine)
}

func (r loadRun) String() string {
	return fmt.Sprintf("settled in %.2f s (backup MASTER %d times; %s; canary %.1f ms), window: transitions %d, largest gap %.2f ms, lateness p99 %.2f ms, backup CPU %.1f%%, drops %d, %d adverts; backup per advert: %.2f us CPU, %.3f syscalls, %.3f context switches; canary (nice -10) longest oversleep %.1f ms, %d over 10 ms",
		r.settle.Seconds(), r.startMasters, r.start, float64(r.startCanaryMax)/1e6, r.transitions, r.gapMax, r.lateP99, r.backupCPU, r.drops, r.adverts,
		r.usPerAdvert, r.syscallsPerAdvert, r.csPerAdvert, float64(r.canaryMax)/1e6, r.canaryOver)
}

// loadChild waits for the child of process pid (setsid's) and returns its
// PID.
func loadChild(b testing.TB, pid int) int {
	b.Helper()
	path := fmt.Sprintf("/proc/%d/task/%d/children", pid, pid)
	deadline := time.Now().Add(10 * time.Second)
	for {
		data, err := os.ReadFile(path)
		if f := strings.Fields(string(data)); err == nil && len(f) > 0 {
			child, err := strconv.Atoi(f[0])
			if err != nil {
				b.Fatalf("%s: %q", path, data)
			}
			return child
		}
		if time.Now().After(deadline) {
			b.Fatalf("no carpd under setsid (pid %d) after 10 s: %v", pid, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// startLoadCarpd starts carpd on h with the configuration cfg, as shipped,
// writing its log into the file logPath, and returns the process started
// (setsid) and carpd's PID. The caller ends carpd (SIGKILL to the PID):
// it is not in the lab's process group.
//
// Preemption on, VRRP's default (RFC 5798, keepalived; what a new user's
// pair runs), is the caller's cfg: when the backup starts first, or takes
// over while the master stalls, the master takes its vrids back. Off,
// such a pair never settles (the master, hearing the backup, stays BACKUP
// for good).
//
// As shipped: carpd leads a session of its own (as a systemd service
// does), so that it renices its autogroup too; setsid forks, carpd is its
// child. GOTRACEBACK=all: a failed run ends carpd with SIGQUIT, whose
// dump of every goroutine says where a stuck loop waits.
//
// carpd writes its log into a file, not into a pipe to this process: a
// pipe is 64 KB, 255 transitions and their address lines fill it, and
// this process (at nice 0, on a busy machine) drains it late; carpd's loop
// then waited in write(2) for tens or hundreds of milliseconds, and the
// pair flapped for the benchmark's sake. sh execs env, which execs carpd:
// one PID, setsid's child.
func startLoadCarpd(b testing.TB, h *lab.Host, s loadSettings, cfg, logPath string) (*lab.Proc, int) {
	b.Helper()
	args := []string{"setsid", "--wait", "sh", "-c", `exec "$@" >>"$0" 2>&1`, logPath, "env", "GOTRACEBACK=all"}
	args = append(args, s.env...)
	args = append(args, s.bin, "--config", cfg)
	p, err := h.Start("carpd", append(args, ownFiles(cfg)...)...)
	if err != nil {
		b.Fatal(err)
	}
	return p, loadChild(b, p.PID())
}

// loadMasters counts the transitions to MASTER in a carpd log.
func loadMasters(out string) int {
	n := 0
	for _, tr := range transitions(out) {
		if strings.Contains(tr, "-> MASTER") {
			n++
		}
	}
	return n
}

func oneLoadRun(b *testing.B, s loadSettings) loadRun {
	b.Helper()
	l := newScaleLab(b, "carpload")
	defer closeScaleLab(b, l)
	dir := b.TempDir()
	hosts := map[string]*lab.Host{}
	for i, name := range []string{"master", "backup"} {
		hosts[name] = addScaleHost(b, l, i, name)
	}
	master, backup := hosts["master"], hosts["backup"]
	var other *lab.Host
	var err error
	if s.burn {
		if other, err = l.AddHost("burner", netip.MustParsePrefix("192.0.2.30/24")); err != nil {
			b.Fatal(err)
		}
	}
	procs := map[string]*lab.Proc{}
	pids := map[string]int{}
	logs := map[string]string{} // carpd's log file on each host
	output := func(name string) string {
		data, err := os.ReadFile(logs[name])
		if err != nil {
			b.Errorf("carpd's log on %s: %v", name, err)
		}
		return string(data)
	}
	trace := traceStart(b, dir, hosts, s.vrids)
	startCan := startCanaryNice(b, -10)
	start := time.Now()
	order := []string{"master", "backup"}
	if s.stagger == 2 {
		order = []string{"backup", "master"}
	}
	for _, name := range order {
		i := slices.Index([]string{"master", "backup"}, name)
		var vs []tomlVHID
		for n := 1; n <= s.vrids; n++ {
			vs = append(vs, tomlVHID{
				Iface: scaleIface(n), VHID: n,
				Addrs:        []netip.Prefix{netip.PrefixFrom(scaleVIP(n), 32)},
				VRRPInterval: 1, VRRPPriority: scaleVRRPPriority[i],
			})
		}
		cfg := writeTOML(b, dir, name+".toml", true, vs)
		logs[name] = filepath.Join(dir, name+".log")
		p, pid := startLoadCarpd(b, hosts[name], s, cfg, logs[name])
		procs[name] = p
		pids[name] = pid
		// Not in the lab's process group: ended here.
		defer func() { _ = syscall.Kill(pid, syscall.SIGKILL) }()
		if name == order[0] && s.stagger != 0 {
			// The other starts once this one holds every VIP: with the
			// master first, the window measures a settled pair,
			// whatever the start did; with the backup first, the
			// master takes the 255 vrids back from a backup that hears
			// its 25,500 adverts a second.
			for len(scaleHeld(b, hosts[name], s.vrids)) != s.vrids {
				if time.Since(start) > 30*time.Second {
					b.Fatalf("the %s alone does not hold every VIP after 30 s", name)
				}
				time.Sleep(100 * time.Millisecond)
			}
			start = time.Now()
		}
	}
	var r loadRun
	defer func() {
		if b.Failed() || len(r.startFaults) > 0 {
			loadDump(b, procs, pids, output)
		}
	}()
	all := mvRange(1, s.vrids)
	held := func(h *lab.Host) []int { return scaleHeld(b, h, s.vrids) }
	for {
		m, bk := held(master), held(backup)
		if slices.Equal(m, all) && len(bk) == 0 {
			r.settle = time.Since(start)
			break
		}
		if time.Since(start) > 30*time.Second {
			r.settle = time.Since(start)
			b.Errorf("not settled after 30 s: the master holds %d VIPs, the backup %d; want %d and 0", len(m), len(bk), s.vrids)
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(3 * time.Second) // the takeover's announcements done
	backupLog, masterLog := output("backup"), output("master")
	r.startMasters = loadMasters(backupLog)
	r.startCanaryMax, _ = startCan.stop()
	r.start = trace.stop(b, backupLog, s.vrids, startCan)
	r.start.masterTwice = mastersTwice(masterLog)
	// Judged by BenchmarkLoad: run again when the machine stalled
	// (startStall).
	if r.settle > 2*time.Second || r.startMasters > s.vrids {
		r.startFaults = append(r.startFaults, fmt.Sprintf("settled in %v with the backup MASTER %d times, want within 2 s and at most once per vrid (%d)",
			r.settle.Round(time.Millisecond), r.startMasters, s.vrids))
	}
	if len(r.start.twice) > 0 || len(r.start.masterTwice) > 0 {
		r.startFaults = append(r.startFaults, fmt.Sprintf("vrids MASTER twice on the backup %v, on the master %v; want none", short(r.start.twice), short(r.start.masterTwice)))
	}
	if r.start.bothMax > startBothMax {
		r.startFaults = append(r.startFaults, fmt.Sprintf("%v on both hosts for %v, want at most %v", r.start.bothVIP, r.start.bothMax.Round(100*time.Microsecond), startBothMax))
	}
	r.startMachine = r.startCanaryMax >= startStall

	if s.burn {
		bp, err := other.Start("burner", "sh", "-c", "while :; do :; done")
		if err != nil {
			b.Fatal(err)
		}
		defer func() { _ = bp.Kill() }()
	}
	caps := captureScale(b, backup, dir, s.vrids)
	logStart := map[string]int{}
	for name := range procs {
		logStart[name] = len(output(name))
	}
	bpid := pids["backup"]
	drops0 := rawDrops(b, backup)
	cpu0, err := procCPU(bpid)
	if err != nil {
		b.Fatal(err)
	}
	var perf *exec.Cmd
	var perfOut strings.Builder
	if s.perf {
		perf = exec.Command("perf", "stat", "-x", ",", "-e", "task-clock,context-switches,raw_syscalls:sys_enter",
			"-p", strconv.Itoa(bpid), "--", "sleep", strconv.Itoa(int(s.window.Seconds())))
		if out := os.Getenv("CARPD_LOAD_PROFILE"); out != "" {
			// A CPU profile of the backup instead (perf report -i out).
			perf = exec.Command("perf", "record", "-e", "cpu-clock", "-g", "-o", out,
				"-p", strconv.Itoa(bpid), "--", "sleep", strconv.Itoa(int(s.window.Seconds())))
			s.perf = false
		}
		perf.Stderr = &perfOut
		if err := perf.Start(); err != nil {
			b.Fatal(err)
		}
	}
	can := startCanaryNice(b, -10)
	t0 := time.Now()
	if perf != nil {
		if err := perf.Wait(); err != nil {
			b.Errorf("perf stat: %v: %s", err, perfOut.String())
		}
	} else {
		time.Sleep(s.window)
	}
	elapsed := time.Since(t0)
	// The transitions of the window, not of the time the captures take
	// to stop and be read.
	for name := range procs {
		r.transitions += len(transitions(output(name)[logStart[name]:]))
	}
	r.canaryMax, r.canaryOver = can.stop()
	cpu1, err := procCPU(bpid)
	if err != nil {
		b.Fatal(err)
	}
	r.backupCPU = 100 * (cpu1 - cpu0) / elapsed.Seconds()
	r.drops = rawDrops(b, backup) - drops0
	mine, lates := masterLateness(b, caps, s.vrids, elapsed)
	r.adverts = len(mine)
	if len(lates) > 0 {
		r.lateP99 = 1000 * percentile(lates, 99)
		r.gapMax = 1000*lates[len(lates)-1] + 10
	}
	if s.perf && r.adverts > 0 {
		ms, cs, sc := loadPerf(b, perfOut.String())
		n := float64(r.adverts)
		r.usPerAdvert, r.csPerAdvert, r.syscallsPerAdvert = 1000*ms/n, cs/n, sc/n
	}
	if r.transitions != 0 {
		b.Errorf("%d transitions in the window, want 0", r.transitions)
	}
	if r.gapMax >= float64(s.gapTarget)/float64(time.Millisecond) {
		// Judged by BenchmarkLoad: run again when every such gap was the
		// machine's (loadGapsMachine).
		r.gapFault = fmt.Sprintf("the largest gap between the master's adverts %.2f ms, want under %v", r.gapMax, s.gapTarget)
		r.gapMachine, r.gapWhy = loadGapsMachine(mine, can, s.gapTarget)
	}
	if r.drops != 0 {
		b.Errorf("the backup's raw sockets dropped %d datagrams", r.drops)
	}
	if r.backupCPU >= s.cpuMax {
		b.Errorf("the backup used %.1f%% of a core, want under %.0f%%", r.backupCPU, s.cpuMax)
	}
	return r
}

// loadDump ends both carpd processes of a failed run with SIGQUIT (a dump
// of every goroutine, GOTRACEBACK=all) and keeps their whole output in a
// file that outlives the run (the lab's and the test's directories do
// not); the test log gets the path and the output's end.
func loadDump(b *testing.B, procs map[string]*lab.Proc, pids map[string]int, output func(string) string) {
	b.Helper()
	for _, name := range []string{"master", "backup"} {
		p := procs[name]
		if p == nil {
			continue
		}
		_ = syscall.Kill(pids[name], syscall.SIGQUIT)
		select {
		case <-p.Done():
		case <-time.After(5 * time.Second):
			b.Logf("carpd on %s: no exit 5 s after SIGQUIT", name)
		}
		out := output(name) + p.Output()
		f, err := os.CreateTemp("", "carpload-"+name+"-*.log")
		if err == nil {
			_, err = f.WriteString(out)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
		}
		if err != nil {
			b.Logf("carpd on %s: keeping its output: %v", name, err)
		} else {
			b.Logf("carpd on %s: its whole output (and goroutine dump) in %s", name, f.Name())
		}
		if len(out) > 20000 {
			out = "...\n" + out[len(out)-20000:]
		}
		b.Logf("carpd on %s:\n%s", name, out)
	}
}

// stallsOver returns the oversleeps longer than d: when each began and how
// long it was.
func (c *canary) stallsOver(d time.Duration) []string {
	var out []string
	for _, s := range c.stalls {
		if g := s.to.Sub(s.from) - time.Millisecond; g > d {
			out = append(out, fmt.Sprintf("%s+%.0fms", s.from.Format("15:04:05.000"), ms(g)))
		}
	}
	return out
}

// during returns the canary's longest oversleep that overlaps [from, to].
func (c *canary) during(from, to time.Time) time.Duration {
	var longest time.Duration
	for _, s := range c.stalls {
		if s.overlap(heldSpan{from: from, to: to}) > 0 {
			longest = max(longest, s.to.Sub(s.from)-time.Millisecond)
		}
	}
	return longest
}

var perfLine = regexp.MustCompile(`^([0-9.]+),[^,]*,(task-clock|context-switches|raw_syscalls:sys_enter),`)

// loadPerf reads perf stat's CSV output: the task clock (ms), the context
// switches and the system calls.
func loadPerf(b *testing.B, out string) (ms, cs, syscalls float64) {
	for _, l := range strings.Split(out, "\n") {
		m := perfLine.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		v, _ := strconv.ParseFloat(m[1], 64)
		switch m[2] {
		case "task-clock":
			ms = v
		case "context-switches":
			cs = v
		default:
			syscalls = v
		}
	}
	if ms == 0 {
		b.Errorf("perf stat: no task clock in %q", out)
	}
	return ms, cs, syscalls
}
