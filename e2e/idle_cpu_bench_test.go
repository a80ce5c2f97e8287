package e2e

// BenchmarkIdleCPU (issue 13): the CPU time of an idle pair with one
// vhid, carpd in CARP mode (advbase 1, advskew 100 and 200, the
// walkthrough's configuration) beside Debian's keepalived in VRRPv2 mode
// (advert_int 1, priority 155 and 55), a fresh lab for each daemon in each
// run, the master's and the backup's daemon measured over the same window.
//
//	go test ./e2e -run '^$' -bench IdleCPU -benchtime=5x -timeout 30m
//
// It uses b.Loop: -benchtime=Nx is the number of runs. Settings from the
// environment:
//
//	CARPD_IDLE_CPU_WINDOW  how long each measurement lasts (30s)
//	CARPD_IDLE_CPU_WRAP    a command prefix for carpd, for experiments
//	                       ("env GOGC=off"); none by default
//	CARPD_IDLE_CPU_SETTLE  how long after the master holds the VIP the
//	                       window starts (3s; the comparison's idle1 cell
//	                       waits 8 s)
//	CARPD_IDLE_CPU_BASE    another carpd binary (an earlier commit's, say),
//	                       measured as "carpd-base" in the same runs, in
//	                       turn with the others: an A/B of two builds
//
// CPU time is the sum of the threads' run time in /proc/PID/task/*/schedstat
// (nanoseconds; /proc/PID/stat counts 10 ms ticks, too coarse for the few
// milliseconds measured here). A thread that exits during the window would
// be missed: the benchmark fails if one does.

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/carpd/carpd/internal/lab"
	"github.com/carpd/carpd/internal/lab/labtest"
)

// threadCPU returns the summed run time of pid's threads and their ids.
func threadCPU(pid int) (time.Duration, []int, error) {
	dir := fmt.Sprintf("/proc/%d/task", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0, nil, err
	}
	var sum time.Duration
	var tids []int
	for _, e := range ents {
		tid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name(), "schedstat"))
		if err != nil {
			return 0, nil, err
		}
		f := strings.Fields(string(data))
		if len(f) < 1 {
			return 0, nil, fmt.Errorf("%s/%s/schedstat: %q", dir, e.Name(), data)
		}
		ns, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, nil, err
		}
		sum += time.Duration(ns)
		tids = append(tids, tid)
	}
	slices.Sort(tids)
	return sum, tids, nil
}

// idlePIDs returns the PIDs of h's daemon: carpd's, or keepalived's parent
// and its VRRP child (from its pid file).
func idlePIDs(b *testing.B, kind, dir string, h *lab.Host, p *lab.Proc) []int {
	b.Helper()
	pids := []int{p.PID()}
	if kind != "keepalived" {
		return pids
	}
	path := filepath.Join(dir, h.Name+".vrrp.pid")
	deadline := time.Now().Add(5 * time.Second)
	for {
		data, err := os.ReadFile(path)
		if err == nil {
			if child, err := strconv.Atoi(strings.TrimSpace(string(data))); err == nil {
				return append(pids, child)
			}
		}
		if time.Now().After(deadline) {
			b.Fatalf("keepalived's VRRP child pid file %s: %v", path, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func BenchmarkIdleCPU(b *testing.B) {
	requireRoot(b)
	labtest.Tool(b, "keepalived") // the comparison is the benchmark's point
	kinds := []string{"carpd", "keepalived"}
	base := os.Getenv("CARPD_IDLE_CPU_BASE")
	if base != "" {
		if _, err := os.Stat(base); err != nil {
			b.Fatalf("CARPD_IDLE_CPU_BASE: %v", err)
		}
		kinds = append(kinds, "carpd-base")
	}
	window := envDuration(b, "CARPD_IDLE_CPU_WINDOW", 30*time.Second)
	settle := envDuration(b, "CARPD_IDLE_CPU_SETTLE", 3*time.Second)
	wrap := strings.Fields(os.Getenv("CARPD_IDLE_CPU_WRAP"))
	unit := "ms-per-" + window.String()
	cpu := map[string]*spread{}
	for _, k := range kinds {
		for _, role := range []string{"master", "backup"} {
			cpu[k+"-"+role] = &spread{name: k + "-" + role, unit: unit}
		}
	}
	run := 0
	for b.Loop() {
		run++
		order := runOrder(run, kinds)
		line := fmt.Sprintf("run %d:", run)
		for _, k := range order {
			c := newCluster(b)
			procs := map[*lab.Host]*lab.Proc{}
			for _, h := range []*lab.Host{c.master, c.backup} {
				switch k {
				case "carpd":
					procs[h] = c.startWrapped(h, wrap, "--rc-conf", c.rcPath(h))
				case "carpd-base":
					procs[h] = c.startWrapped(h, append(slices.Clone(wrap), runInstead(base)...), "--rc-conf", c.rcPath(h))
				case "keepalived":
					conf := filepath.Join(c.dir, h.Name+".keepalived.conf")
					if err := os.WriteFile(conf, []byte(keepalivedConf(h == c.master, 2, "1")), 0o644); err != nil {
						b.Fatal(err)
					}
					base := filepath.Join(c.dir, h.Name)
					p, err := h.Start("keepalived", "keepalived", "--dont-fork", "--log-console", "--no-syslog", "--vrrp",
						"--use-file="+conf, "--pid="+base+".ka.pid", "--vrrp_pid="+base+".vrrp.pid",
						"--checkers_pid="+base+".chk.pid")
					if err != nil {
						b.Fatal(err)
					}
					procs[h] = p
				}
			}
			if _, ok := c.waitHolder(c.master, 20*time.Second); !ok {
				b.Fatalf("%s: the master does not hold the VIP alone (holders %v)\nmaster:\n%s\nbackup:\n%s",
					k, c.holders(), procs[c.master].Output(), procs[c.backup].Output())
			}
			// Past the start: the backup has settled, the first
			// renewals and garbage collections are done.
			time.Sleep(settle)
			type sample struct {
				t    time.Duration
				tids [][]int
			}
			measure := func(h *lab.Host) sample {
				var s sample
				for _, pid := range idlePIDs(b, k, c.dir, h, procs[h]) {
					t, tids, err := threadCPU(pid)
					if err != nil {
						b.Fatalf("%s on %s: %v", k, h.Name, err)
					}
					s.t += t
					s.tids = append(s.tids, tids)
				}
				return s
			}
			m0, b0 := measure(c.master), measure(c.backup)
			t0 := time.Now()
			time.Sleep(window)
			m1, b1 := measure(c.master), measure(c.backup)
			el := time.Since(t0)
			if h := c.holders(); len(h) != 1 || h[0] != "master" {
				b.Errorf("%s: holders %v after the window", k, h)
			}
			line += "\n  " + k + ":"
			for _, r := range []struct {
				role   string
				s0, s1 sample
			}{{"master", m0, m1}, {"backup", b0, b1}} {
				// A thread made during the window counts from 0; one
				// that ended took its time with it.
				for i, tids := range r.s0.tids {
					for _, tid := range tids {
						if !slices.Contains(r.s1.tids[i], tid) {
							b.Fatalf("%s %s: thread %d ended during the window: %v, then %v", k, r.role, tid, r.s0.tids, r.s1.tids)
						}
					}
				}
				used := r.s1.t - r.s0.t
				// Scaled to the nominal window (the sleep overshoots a little).
				ms := float64(used) / float64(time.Millisecond) * window.Seconds() / el.Seconds()
				cpu[k+"-"+r.role].vals = append(cpu[k+"-"+r.role].vals, ms)
				nt := 0
				for _, t := range r.s1.tids {
					nt += len(t)
				}
				line += fmt.Sprintf(" %s %.2f ms (%d threads);", r.role, ms, nt)
			}
			if err := c.lab.Close(); err != nil {
				b.Error(err)
			}
		}
		b.Log(line)
	}
	b.ReportMetric(0, "ns/op")
	for _, k := range kinds {
		for _, role := range []string{"master", "backup"} {
			cpu[k+"-"+role].report(b)
		}
	}
}
