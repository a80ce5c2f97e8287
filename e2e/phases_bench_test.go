package e2e

// BenchmarkIdleWakePhases (issue 13): where an idle master's wake goes,
// phase by phase, for carpd and keepalived in the matrix's idle1 pairs
// (mxStartPair, a fresh lab each) and for wakeloop (testdata/wakeloop: a
// Go process that wakes through carpd's timer at the CARP advert interval
// and does nothing else, the Go runtime's own part). It traces the
// master's threads with the kernel's tracepoints (tracefs: raw_syscalls
// sys_enter and sys_exit, sched_switch, filtered on their thread IDs; no
// sampling) for CARPD_PHASES_WINDOW (20s) and splits each stretch awake
// that sends an advert (sendmsg; for wakeloop, each that re-arms its
// timer) into:
//
//	awake     the return of the call it slept in to the switch off the
//	          processor
//	to-call   that return to the next system call: the user space that
//	          runs first (for carpd: the runtime's poller and scheduler,
//	          the timer, the loop, the state machine, the HMAC)
//	user      all the user space of the stretch
//	<call>    the time in each system call, by name (sendmsg, sendto...)
//	wake      the switch onto the processor to the return (kernel), where
//	          the switch is traced: a switch from the second processor's
//	          idle task is not, on this kind of virtual machine
//
// CPU time measured by sampling (perf record) is no good for this on a
// virtual machine: every sample's interrupt costs tens of microseconds and
// is charged to the task, and where it lands moves the figures. Tracing
// costs a few microseconds per event, the same for every daemon.
//
//	go test ./e2e -run '^$' -bench IdleWakePhases -benchtime=5x -v
//
// CARPD_PHASES_DAEMONS chooses among the matrix's daemon IDs and wakeloop
// (carpd-carp,keepalived-v2-1s,wakeloop by default). It reports per
// daemon the median over the runs of each run's median per phase, in
// microseconds per advert. The time from the wake-up to the switch onto the
// processor is not the daemon's and not counted.

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/carpd/carpd/internal/lab/labtest"
)

// wakeStretch is one stretch of a thread awake: from the return of the
// system call it slept in to its next switch off the processor.
type wakeStretch struct {
	awake, toCall, user time.Duration
	// wake is the time from the switch onto the processor to the
	// return, where the switch was traced (0 where not: on this kind of
	// virtual machine a switch from the second processor's idle task is
	// not traced).
	wake  time.Duration
	calls map[string]time.Duration
	sent  bool // it made the advert's call
}

// syscallNames names the x86-64 system calls the daemons make at idle.
var syscallNames = map[int]string{unix.SYS_READ: "read", unix.SYS_WRITE: "write", unix.SYS_SENDTO: "sendto",
	unix.SYS_SENDMSG: "sendmsg", unix.SYS_RECVFROM: "recvfrom", unix.SYS_RECVMSG: "recvmsg", unix.SYS_FUTEX: "futex",
	unix.SYS_EPOLL_WAIT: "epoll_wait", unix.SYS_EPOLL_PWAIT: "epoll_pwait", unix.SYS_TIMERFD_SETTIME: "timerfd_settime",
	unix.SYS_NANOSLEEP: "nanosleep"}

func syscallName(nr int) string {
	if n, ok := syscallNames[nr]; ok {
		return n
	}
	return "nr" + strconv.Itoa(nr)
}

var (
	traceLine = regexp.MustCompile(`-(\d+)\s+\[\d+\]\s+\S+\s+(\d+)\.(\d+): (sys_enter|sys_exit|sched_switch): (.*)$`)
	traceNR   = regexp.MustCompile(`^NR (\d+)`)
	switchPID = regexp.MustCompile(`prev_pid=(\d+) .*==> .*next_pid=(\d+)`)
)

// parseWakePhases splits the trace text (tracefs's trace file) into the
// stretches the threads tids were awake; the advert's system call is
// sendNR. A stretch begins at the first return from a system call after
// the thread was switched off the processor (the wait's return), so the
// one under way when the trace began is left out, as is the one the
// trace's end cuts off.
func parseWakePhases(text string, tids map[int]bool, sendNR int) ([]wakeStretch, error) {
	type thread struct {
		off     bool          // switched off since the last stretch
		in      time.Duration // switched back on (0: not traced)
		awake   bool          // in a stretch
		start   time.Duration // the wait's return
		last    time.Duration // the last event's time in the stretch
		inCall  bool
		sawCall bool
		cur     wakeStretch
	}
	ths := map[int]*thread{}
	get := func(tid int) *thread {
		if ths[tid] == nil {
			ths[tid] = &thread{}
		}
		return ths[tid]
	}
	var out []wakeStretch
	n := 0
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, "#") || strings.TrimSpace(line) == "" {
			continue
		}
		m := traceLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		n++
		sec, _ := strconv.ParseInt(m[2], 10, 64)
		us, _ := strconv.ParseInt((m[3] + "000000")[:6], 10, 64)
		t := time.Duration(sec)*time.Second + time.Duration(us)*time.Microsecond
		if m[4] == "sched_switch" {
			sp := switchPID.FindStringSubmatch(m[5])
			if sp == nil {
				return nil, fmt.Errorf("a sched_switch line without its PIDs: %q", line)
			}
			prev, _ := strconv.Atoi(sp[1])
			next, _ := strconv.Atoi(sp[2])
			if tids[prev] {
				th := get(prev)
				if th.awake {
					th.cur.awake = t - th.start
					if !th.inCall {
						th.cur.user += t - th.last
					}
					out = append(out, th.cur)
				}
				*th = thread{off: true}
			}
			if tids[next] {
				if th := get(next); th.off {
					th.in = t
				}
			}
			continue
		}
		pid, _ := strconv.Atoi(m[1])
		if !tids[pid] {
			continue
		}
		th := get(pid)
		nm := traceNR.FindStringSubmatch(m[5])
		if nm == nil {
			return nil, fmt.Errorf("a %s line without its number: %q", m[4], line)
		}
		nr, _ := strconv.Atoi(nm[1])
		switch {
		case m[4] == "sys_exit" && th.off:
			// The wait's return: the stretch begins.
			in := th.in
			*th = thread{awake: true, start: t, last: t, cur: wakeStretch{calls: map[string]time.Duration{}}}
			if in != 0 {
				th.cur.wake = t - in
			}
		case !th.awake:
			// Before the thread's first switch off the processor.
		case m[4] == "sys_enter":
			th.cur.user += t - th.last
			if !th.sawCall {
				th.cur.toCall = t - th.last
				th.sawCall = true
			}
			th.inCall = true
			th.last = t
		default: // sys_exit
			th.cur.calls[syscallName(nr)] += t - th.last
			if nr == sendNR {
				th.cur.sent = true
			}
			th.inCall = false
			th.last = t
		}
	}
	if n == 0 {
		return nil, errors.New("no event in the trace")
	}
	return out, nil
}

// tracefs is the kernel's tracing file system, set up for one trace.
type tracefs struct {
	dir     string
	mounted bool              // by openTracefs
	saved   map[string]string // settings changed, as they were
}

// openTracefs mounts tracefs if need be; at the test's end the settings
// the traces change are put back and what it mounted is unmounted.
func openTracefs(tb testing.TB) *tracefs {
	tb.Helper()
	tr := &tracefs{dir: "/sys/kernel/tracing", saved: map[string]string{}}
	if _, err := os.Stat(filepath.Join(tr.dir, "trace")); err != nil {
		if out, err := exec.Command("mount", "-t", "tracefs", "nodev", tr.dir).CombinedOutput(); err != nil {
			labtest.Missing(tb, "tracefs is not mounted and cannot be: %v: %s", err, out)
		}
		tr.mounted = true
	}
	for _, name := range []string{"tracing_on", "buffer_size_kb"} {
		data, err := os.ReadFile(filepath.Join(tr.dir, name))
		if err != nil {
			labtest.Missing(tb, "tracefs: %v", err)
		}
		v := strings.TrimSpace(string(data))
		// "7 (expanded: 1408)": the buffer the kernel gives at first use.
		if _, exp, ok := strings.Cut(v, "(expanded: "); ok {
			v = strings.TrimSuffix(exp, ")")
		}
		tr.saved[name] = v
	}
	tb.Cleanup(func() {
		tr.reset()
		for name, v := range tr.saved {
			if err := tr.write(name, v); err != nil {
				tb.Errorf("putting tracefs's %s back to %s: %v", name, v, err)
			}
		}
		if tr.mounted {
			if out, err := exec.Command("umount", tr.dir).CombinedOutput(); err != nil {
				tb.Errorf("umount %s: %v: %s", tr.dir, err, out)
			}
		}
	})
	return tr
}

var traceEvents = []string{"raw_syscalls/sys_enter", "raw_syscalls/sys_exit", "sched/sched_switch"}

func (tr *tracefs) write(name, v string) error {
	return os.WriteFile(filepath.Join(tr.dir, name), []byte(v), 0o644)
}

// reset turns the events off and clears their filters and the buffer.
func (tr *tracefs) reset() {
	_ = tr.write("tracing_on", "0")
	for _, e := range traceEvents {
		_ = tr.write("events/"+e+"/enable", "0")
		_ = tr.write("events/"+e+"/filter", "0")
	}
	_ = tr.write("trace", "")
}

// trace records the events of the threads tids for d and returns the text.
func (tr *tracefs) trace(tids []int, d time.Duration) (string, error) {
	tr.reset()
	var own, sw []string
	for _, t := range tids {
		own = append(own, fmt.Sprintf("common_pid == %d", t))
		sw = append(sw, fmt.Sprintf("prev_pid == %d || next_pid == %d", t, t))
	}
	steps := [][2]string{
		{"buffer_size_kb", "4096"},
		{"events/raw_syscalls/sys_enter/filter", strings.Join(own, " || ")},
		{"events/raw_syscalls/sys_exit/filter", strings.Join(own, " || ")},
		{"events/sched/sched_switch/filter", strings.Join(sw, " || ")},
	}
	for _, e := range traceEvents {
		steps = append(steps, [2]string{"events/" + e + "/enable", "1"})
	}
	steps = append(steps, [2]string{"tracing_on", "1"})
	for _, s := range steps {
		if err := tr.write(s[0], s[1]); err != nil {
			return "", fmt.Errorf("tracefs %s: %w", s[0], err)
		}
	}
	time.Sleep(d)
	if err := tr.write("tracing_on", "0"); err != nil {
		return "", err
	}
	data, err := os.ReadFile(filepath.Join(tr.dir, "trace"))
	tr.reset()
	return string(data), err
}

// threadIDs returns the thread IDs of the processes pids.
func threadIDs(pids []int) ([]int, error) {
	var out []int
	for _, pid := range pids {
		_, tids, err := threadCPU(pid)
		if err != nil {
			return nil, err
		}
		out = append(out, tids...)
	}
	return out, nil
}

// medianDur is the median of ds (0 for none).
func medianDur(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	f := make([]float64, len(ds))
	for i, d := range ds {
		f[i] = float64(d)
	}
	slices.Sort(f)
	return time.Duration(median(f))
}

// phaseMedians is the median of each phase over the stretches that sent.
func phaseMedians(ss []wakeStretch) (n int, med map[string]time.Duration) {
	per := map[string][]time.Duration{}
	var sent []wakeStretch
	for _, s := range ss {
		if s.sent {
			sent = append(sent, s)
		}
	}
	calls := map[string]bool{}
	for _, s := range sent {
		per["awake"] = append(per["awake"], s.awake)
		if s.wake > 0 {
			per["wake"] = append(per["wake"], s.wake)
		}
		per["to-call"] = append(per["to-call"], s.toCall)
		per["user"] = append(per["user"], s.user)
		for name := range s.calls {
			calls[name] = true
		}
	}
	// A call that a stretch did not make counts 0 in it.
	for name := range calls {
		for _, s := range sent {
			per[name] = append(per[name], s.calls[name])
		}
	}
	med = map[string]time.Duration{}
	for name, v := range per {
		med[name] = medianDur(v)
	}
	return len(sent), med
}

func BenchmarkIdleWakePhases(b *testing.B) {
	requireRoot(b)
	tr := openTracefs(b)
	window := envDuration(b, "CARPD_PHASES_WINDOW", 20*time.Second)
	ids := strings.Split(os.Getenv("CARPD_PHASES_DAEMONS"), ",")
	if os.Getenv("CARPD_PHASES_DAEMONS") == "" {
		ids = []string{"carpd-carp", "keepalived-v2-1s", "wakeloop"}
	}
	daemons := map[string]mxDaemon{}
	for _, id := range ids {
		if id == "wakeloop" {
			continue
		}
		i := slices.IndexFunc(mxDaemons, func(d mxDaemon) bool { return d.id == id })
		if i < 0 {
			b.Fatalf("CARPD_PHASES_DAEMONS: no daemon %q", id)
		}
		if mxDaemons[i].kind != "carpd" {
			if _, err := exec.LookPath(mxDaemons[i].kind); err != nil {
				b.Fatalf("%s: %v (scripts/setup.sh installs it)", id, err)
			}
		}
		daemons[id] = mxDaemons[i]
	}
	var wakeloop string
	if slices.Contains(ids, "wakeloop") {
		wakeloop = filepath.Join(b.TempDir(), "wakeloop")
		if out, err := exec.Command("go", "build", "-o", wakeloop, "./testdata/wakeloop").CombinedOutput(); err != nil {
			b.Fatalf("building wakeloop: %v\n%s", err, out)
		}
	}
	runs := map[string]map[string][]time.Duration{} // daemon, phase: each run's median
	run := 0
	for b.Loop() {
		run++
		for _, id := range runOrder(run, ids) {
			// The master's (or wakeloop's) processes, the advert's system
			// call, and what ends the run.
			var pids []int
			sendNR := unix.SYS_SENDMSG
			var end func()
			if id == "wakeloop" {
				cmd := exec.Command(wakeloop, mxCARPInterval.String())
				if err := cmd.Start(); err != nil {
					b.Fatal(err)
				}
				end = func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }
				b.Cleanup(end) // a second Kill and Wait fail, harmlessly
				time.Sleep(2 * mxCARPInterval)
				pids = []int{cmd.Process.Pid}
				sendNR = unix.SYS_TIMERFD_SETTIME // each wake re-arms the timer
			} else {
				d := daemons[id]
				p := mxStartPair(b, d)
				c := p.c
				time.Sleep(mxIdleSettle)
				pids = mxDaemonPIDs(b, d.kind, filepath.Join(c.dir, c.master.Name), p.procs[c.master])
				end = func() {
					if h := c.holders(); len(h) != 1 || h[0] != "master" {
						b.Errorf("%s: holders %v after the window", id, h)
					}
					if err := c.lab.Close(); err != nil {
						b.Error(err)
					}
				}
			}
			tids, err := threadIDs(pids)
			if err != nil {
				b.Fatal(err)
			}
			text, err := tr.trace(tids, window)
			end()
			if err != nil {
				b.Fatal(err)
			}
			runs[id] = addPhases(b, runs[id], id, run, text, tids, sendNR)
		}
	}
	b.ReportMetric(0, "ns/op")
	for _, id := range ids {
		line := id + ":"
		for _, name := range slices.Sorted(maps.Keys(runs[id])) {
			v := runs[id][name]
			med := medianDur(v)
			line += fmt.Sprintf(" %s %.1f [%.1f .. %.1f]", name, us(med), us(slices.Min(v)), us(slices.Max(v)))
			if name == "awake" || name == "to-call" || name == "user" {
				b.ReportMetric(us(med), id+"-"+name+"-us")
			}
		}
		b.Log(line + " (us per advert: median [min .. max] of the runs' medians)")
	}
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// addPhases parses one run's trace, logs its medians and adds them to
// per (phase: each run's median).
func addPhases(b *testing.B, per map[string][]time.Duration, id string, run int, text string, tids []int, sendNR int) map[string][]time.Duration {
	b.Helper()
	set := map[int]bool{}
	for _, t := range tids {
		set[t] = true
	}
	ss, err := parseWakePhases(text, set, sendNR)
	if err != nil {
		b.Fatalf("%s: %v", id, err)
	}
	n, med := phaseMedians(ss)
	if n < 5 {
		if len(text) > 3000 {
			text = text[len(text)-3000:]
		}
		b.Fatalf("%s: %d adverts in the trace of %d stretches; the trace's end:\n%s", id, n, len(ss), text)
	}
	if per == nil {
		per = map[string][]time.Duration{}
	}
	line := fmt.Sprintf("run %d %s (%d adverts):", run, id, n)
	for _, name := range slices.Sorted(maps.Keys(med)) {
		per[name] = append(per[name], med[name])
		line += fmt.Sprintf(" %s %.1f", name, us(med[name]))
	}
	b.Log(line)
	return per
}
