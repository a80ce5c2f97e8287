package e2e

// BenchmarkVRRPWakeups (issue 12 "CPU", issue 13): where a VRRPv3 master at
// 10 ms spends its wakeups. For carpd and keepalived in turn (the pair of
// BenchmarkVRRPIdleCPU, a fresh lab each), it reads every thread of the
// master's daemon before and after CARPD_VRRP_CPU_WINDOW (10 s):
// voluntary and non-voluntary context switches (/proc/PID/task/TID/status),
// run time and timeslices (schedstat, nanoseconds), utime + stime (stat),
// the nice value and the system call the thread sits in at the end
// (/proc/PID/task/TID/syscall: 202 futex, 232 epoll_wait, 281
// epoll_pwait, 35 nanosleep, 7 poll...), and divides the switches by the
// master's adverts that reached the client in the window.
//
//	go test ./e2e -run '^$' -bench VRRPWakeups -benchtime=3x -v
//
// It prints a table per daemon per run and reports, per daemon, the
// median/min/max of the CPU (schedstat, % of a core) and of the context
// switches per advert.

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// threadSnap is one thread's counters.
type threadSnap struct {
	comm          string
	vol, nonvol   int64
	runNS, slices int64
	ticks         int64 // utime + stime, USER_HZ
	nice          int64
	syscall       string
}

// snapThreads reads the counters of every thread of pid.
func snapThreads(pid int) (map[int]threadSnap, error) {
	dir := fmt.Sprintf("/proc/%d/task", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	out := map[int]threadSnap{}
	for _, e := range ents {
		tid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		td := filepath.Join(dir, e.Name())
		var s threadSnap
		if data, err := os.ReadFile(filepath.Join(td, "status")); err == nil {
			for _, l := range strings.Split(string(data), "\n") {
				k, v, ok := strings.Cut(l, ":")
				if !ok {
					continue
				}
				v = strings.TrimSpace(v)
				switch k {
				case "Name":
					s.comm = v
				case "voluntary_ctxt_switches":
					s.vol, _ = strconv.ParseInt(v, 10, 64)
				case "nonvoluntary_ctxt_switches":
					s.nonvol, _ = strconv.ParseInt(v, 10, 64)
				}
			}
		} else {
			continue // exited
		}
		if data, err := os.ReadFile(filepath.Join(td, "schedstat")); err == nil {
			f := strings.Fields(string(data))
			if len(f) >= 3 {
				s.runNS, _ = strconv.ParseInt(f[0], 10, 64)
				s.slices, _ = strconv.ParseInt(f[2], 10, 64)
			}
		}
		if data, err := os.ReadFile(filepath.Join(td, "stat")); err == nil {
			st := string(data)
			if i := strings.LastIndexByte(st, ')'); i >= 0 {
				f := strings.Fields(st[i+1:])
				// f[0] is field 3: utime 14, stime 15, nice 19.
				if len(f) > 16 {
					u, _ := strconv.ParseInt(f[11], 10, 64)
					sy, _ := strconv.ParseInt(f[12], 10, 64)
					s.ticks = u + sy
					s.nice, _ = strconv.ParseInt(f[16], 10, 64)
				}
			}
		}
		if data, err := os.ReadFile(filepath.Join(td, "syscall")); err == nil {
			if f := strings.Fields(string(data)); len(f) > 0 {
				s.syscall = f[0]
			}
		}
		out[tid] = s
	}
	return out, nil
}

// snapProcs reads the counters of every thread of each of pids, by PID.
func snapProcs(b *testing.B, pids []int) map[int]map[int]threadSnap {
	b.Helper()
	out := map[int]map[int]threadSnap{}
	for _, pid := range pids {
		s, err := snapThreads(pid)
		if err != nil {
			b.Fatal(err)
		}
		out[pid] = s
	}
	return out
}

func BenchmarkVRRPWakeups(b *testing.B) {
	requireRoot(b)
	needBinary(b, "keepalived")
	window := envDuration(b, "CARPD_VRRP_CPU_WINDOW", 10*time.Second)
	cpu := map[string]*spread{}
	perAdv := map[string]*spread{}
	for _, d := range vrrpDaemons {
		cpu[d] = &spread{name: d + "-cpu-schedstat", unit: "pct"}
		perAdv[d] = &spread{name: d + "-switches-per-advert", unit: "n"}
	}
	run := 0
	for b.Loop() {
		run++
		order := runOrder(run, vrrpDaemons)
		for _, d := range order {
			p := startVRRPPair(b, d)
			pids := p.masterPIDs(b)
			w := watchAdverts(b, p.c.client)
			before := snapProcs(b, pids)
			t0 := time.Now()
			time.Sleep(window)
			after := snapProcs(b, pids)
			el := time.Since(t0)
			adv := 0
			for _, at := range w.arrivals() {
				if !at.Before(t0) && at.Before(t0.Add(el)) {
					adv++
				}
			}
			w.stop()
			if h := p.c.holders(); len(h) != 1 || h[0] != "master" {
				b.Errorf("%s: holders %v after the window", d, h)
			}
			var line strings.Builder
			fmt.Fprintf(&line, "run %d %s: %d adverts at the client in %v\n", run, d, adv, el.Round(time.Millisecond))
			fmt.Fprintf(&line, "  %7s %7s %-16s %4s %8s %8s %8s %8s %8s %6s %s\n",
				"pid", "tid", "comm", "nice", "vol", "nonvol", "per-adv", "slices", "run-ms", "ticks", "syscall(end)")
			var sumNS, sumSw int64
			for _, pid := range pids {
				tids := make([]int, 0, len(after[pid]))
				for tid := range after[pid] {
					tids = append(tids, tid)
				}
				slices.Sort(tids)
				for _, tid := range tids {
					a := after[pid][tid]
					o := before[pid][tid] // zero for a thread born in the window
					sw := a.vol - o.vol + a.nonvol - o.nonvol
					sumNS += a.runNS - o.runNS
					sumSw += sw
					per := 0.0
					if adv > 0 {
						per = float64(sw) / float64(adv)
					}
					fmt.Fprintf(&line, "  %7d %7d %-16s %4d %8d %8d %8.2f %8d %8.2f %6d %s\n",
						pid, tid, a.comm, a.nice, a.vol-o.vol, a.nonvol-o.nonvol, per,
						a.slices-o.slices, float64(a.runNS-o.runNS)/1e6, a.ticks-o.ticks, a.syscall)
				}
				for tid := range before[pid] {
					if _, ok := after[pid][tid]; !ok {
						fmt.Fprintf(&line, "  %7d %7d exited in the window\n", pid, tid)
					}
				}
			}
			pct := 100 * float64(sumNS) / float64(el.Nanoseconds())
			per := 0.0
			if adv > 0 {
				per = float64(sumSw) / float64(adv)
			}
			fmt.Fprintf(&line, "  total: %.3f%% of a core (schedstat), %d switches, %.2f per advert", pct, sumSw, per)
			vrrpLog(b, line.String())
			cpu[d].vals = append(cpu[d].vals, pct)
			perAdv[d].vals = append(perAdv[d].vals, per)
			p.close(b)
		}
	}
	b.ReportMetric(0, "ns/op")
	for _, d := range vrrpDaemons {
		cpu[d].report(b)
		perAdv[d].report(b)
	}
}
