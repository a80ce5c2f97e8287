package e2e

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/carpd/carpd/internal/lab"
)

// This file holds BenchmarkManyVHIDs and BenchmarkManyVRIDs; the capture
// of the adverts and their lateness are in adverts_test.go.

// BenchmarkManyVHIDs runs 255 vhids in one carpd on each of two hosts,
// vhids 1-128 on eth0 and 129-255 on eth1 (a second segment), one VIP
// each; the master (advskew 0) holds them all and the backup (advskew 100)
// none. Once settled, it measures over scaleWindow (60 s; 15 s with
// -short):
//
//   - the master daemon's CPU time (utime+stime from /proc/PID/stat) as a
//     percentage of one core, and the backup's;
//   - the master's resident memory (VmRSS) at the end;
//   - advert lateness: the adverts captured on the backup's interfaces,
//     per vhid, each gap between consecutive adverts minus the nominal
//     interval advbase + advskew/256 s; p50, p99 and max over all gaps.
//
// Targets: CPU < 2% of one core, RSS < 40 MB, lateness p99 < 5 ms. The
// benchmark reports an error (b.Errorf, and measures on) when the pair has
// not settled 30 s after the start, when a VIP moves or a state changes
// during the window, when a vhid sent fewer than 90% of its adverts, and
// when a target is missed. $CARPD_SCALE_VHIDS runs fewer vhids, to see how
// the figures grow. Each iteration is one run and the metrics are the
// medians (with min and max) of the iterations; -count=N gives N separate
// runs (-benchtime=Nx makes Go run 1 iteration, then N).
func BenchmarkManyVHIDs(b *testing.B) {
	requireRoot(b)
	runs := scaleRuns(b, 0)
	for _, r := range runs {
		if r.masterCPU >= 2 || r.masterRSS >= 40 || r.lateP99 >= 5 {
			b.Errorf("a target is missed (CPU < 2%%, RSS < 40 MB, lateness p99 < 5 ms): %s", r)
		}
	}
}

// BenchmarkManyVRIDs is BenchmarkManyVHIDs with VRRPv3 vhids (carpver 3)
// at 10 ms (or $CARPD_SCALE_VRRP_INTERVAL centiseconds), priority 155 on
// the master and 55 on the backup: issue 12's "the event loop must keep
// 10 ms adverts on time with 255 vrids". A backup takes over when three
// intervals and Skew_Time (37.85 ms at 10 ms) pass without an advert, so
// an advert more than about 27 ms late is a false failover, which the
// benchmark reports as an error (a VIP moved, a transition). The target
// is lateness p99 < 5 ms; CPU and RSS are reported.
func BenchmarkManyVRIDs(b *testing.B) {
	requireRoot(b)
	cs := 1
	if s := os.Getenv("CARPD_SCALE_VRRP_INTERVAL"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 4095 {
			b.Fatalf("CARPD_SCALE_VRRP_INTERVAL=%q: want 1..4095 centiseconds", s)
		}
		cs = n
	}
	runs := scaleRuns(b, cs)
	for _, r := range runs {
		if r.lateP99 >= 5 {
			b.Errorf("a target is missed (lateness p99 < 5 ms): %s", r)
		}
	}
}

// scaleRuns runs oneScaleRun b.N times and reports the medians (with min
// and max) of its figures.
func scaleRuns(b *testing.B, vrrpInterval int) []scaleRun {
	var runs []scaleRun
	for i := 0; i < b.N; i++ {
		window := scaleWindow
		if testing.Short() {
			window = 15 * time.Second
		}
		runs = append(runs, oneScaleRun(b, vrrpInterval, window))
	}
	b.ReportMetric(0, "ns/op")
	for _, m := range []struct {
		unit string
		get  func(scaleRun) float64
	}{
		{"master-cpu-%", func(r scaleRun) float64 { return r.masterCPU }},
		{"backup-cpu-%", func(r scaleRun) float64 { return r.backupCPU }},
		{"master-rss-MB", func(r scaleRun) float64 { return r.masterRSS }},
		{"late-p50-ms", func(r scaleRun) float64 { return r.lateP50 }},
		{"late-p99-ms", func(r scaleRun) float64 { return r.lateP99 }},
		{"late-max-ms", func(r scaleRun) float64 { return r.lateMax }},
	} {
		var vs []float64
		for _, r := range runs {
			vs = append(vs, m.get(r))
		}
		reportSpread(b, m.unit, vs)
	}
	for i, r := range runs {
		b.Logf("run %d: %s", i+1, r)
	}
	return runs
}

// reportSpread reports the median of the runs' values vs as the metric
// unit, and with more than one run their minimum and maximum as min-unit
// and max-unit. It sorts vs.
func reportSpread(b *testing.B, unit string, vs []float64) {
	slices.Sort(vs)
	b.ReportMetric(median(vs), unit)
	if len(vs) > 1 {
		b.ReportMetric(vs[0], "min-"+unit)
		b.ReportMetric(vs[len(vs)-1], "max-"+unit)
	}
}

func median(sorted []float64) float64 {
	n := len(sorted)
	if n%2 == 1 {
		return sorted[n/2]
	}
	return (sorted[n/2-1] + sorted[n/2]) / 2
}

const (
	scaleSplit  = 128 // vhids 1..scaleSplit on eth0, the rest on eth1
	scaleWindow = 60 * time.Second
)

// scaleVRRPPriority is the master's and the backup's VRRP priority in
// the scale and load labs.
var scaleVRRPPriority = [2]int{155, 55}

// scaleVHIDs returns the number of vhids to run: 255, or the value of
// $CARPD_SCALE_VHIDS (1..255), to see how the figures grow with it.
func scaleVHIDs(b testing.TB) int {
	s := os.Getenv("CARPD_SCALE_VHIDS")
	if s == "" {
		return 255
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 255 {
		b.Fatalf("CARPD_SCALE_VHIDS=%q: want 1..255", s)
	}
	return n
}

// scaleVIP is vhid n's address: 198.51.100.n on eth0 (n <= 128),
// 203.0.113.(n-128) on eth1.
func scaleVIP(n int) netip.Addr {
	if n <= scaleSplit {
		return netip.AddrFrom4([4]byte{198, 51, 100, byte(n)})
	}
	return netip.AddrFrom4([4]byte{203, 0, 113, byte(n - scaleSplit)})
}

// scaleIface is the interface of vhid n.
func scaleIface(n int) string {
	if n <= scaleSplit {
		return "eth0"
	}
	return "eth1"
}

// scaleOwn returns host i's own addresses on eth0 and eth1: 192.0.2.(21+i)
// and 203.0.113.(221+i), clear of the VIPs.
func scaleOwn(i int) [2]netip.Prefix {
	return [2]netip.Prefix{
		netip.PrefixFrom(netip.AddrFrom4([4]byte{192, 0, 2, byte(21 + i)}), 24),
		netip.PrefixFrom(netip.AddrFrom4([4]byte{203, 0, 113, byte(221 + i)}), 24),
	}
}

type scaleRun struct {
	masterCPU, backupCPU float64 // % of one core
	masterRSS            float64 // MB
	lateP50, lateP99     float64 // ms
	lateMax, lateMin     float64 // ms
	gaps                 int
}

func (r scaleRun) String() string {
	return fmt.Sprintf("master CPU %.2f%%, backup CPU %.2f%%, master RSS %.1f MB, lateness over %d gaps: p50 %.2f ms, p99 %.2f ms, max %.2f ms, min %.2f ms",
		r.masterCPU, r.backupCPU, r.masterRSS, r.gaps, r.lateP50, r.lateP99, r.lateMax, r.lateMin)
}

// oneScaleRun runs the pair once: CARP vhids, or VRRPv3 ones at
// vrrpInterval centiseconds when it is not 0.
func oneScaleRun(b testing.TB, vrrpInterval int, window time.Duration) scaleRun {
	b.Helper()
	scaleCount := scaleVHIDs(b)
	l := newScaleLab(b, "carpscale")
	defer closeScaleLab(b, l)
	dir := b.TempDir()
	hosts := map[string]*lab.Host{}
	procs := map[string]*lab.Proc{}
	for i, name := range []string{"master", "backup"} {
		h := addScaleHost(b, l, i, name)
		var vs []tomlVHID
		for n := 1; n <= scaleCount; n++ {
			vs = append(vs, tomlVHID{
				Iface: scaleIface(n), VHID: n, AdvSkew: 100 * i, Password: "scale",
				Addrs:        []netip.Prefix{netip.PrefixFrom(scaleVIP(n), 32)},
				VRRPInterval: vrrpInterval, VRRPPriority: scaleVRRPPriority[i],
			})
		}
		cfg := writeTOML(b, dir, name+".toml", false, vs)
		hosts[name] = h
		p, err := h.Start("carpd", append([]string{carpdBin, "--config", cfg}, ownFiles(cfg)...)...)
		if err != nil {
			b.Fatal(err)
		}
		procs[name] = p
	}
	defer func() {
		if b.Failed() {
			for name, p := range procs {
				out := p.Output()
				if len(out) > 30000 {
					out = "...\n" + out[len(out)-30000:]
				}
				b.Logf("carpd on %s:\n%s", name, out)
			}
		}
	}()
	master, backup := hosts["master"], hosts["backup"]
	all := mvRange(1, scaleCount)
	held := func(h *lab.Host) []int { return scaleHeld(b, h, scaleCount) }
	deadline := time.Now().Add(30 * time.Second)
	for {
		m, bk := held(master), held(backup)
		if slices.Equal(m, all) && len(bk) == 0 {
			break
		}
		if time.Now().After(deadline) {
			// Measure anyway: the figures show why.
			b.Errorf("not settled after 30 s: the master holds %d VIPs, the backup %d; want %d and 0", len(m), len(bk), scaleCount)
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(3 * time.Second) // gratuitous ARPs and start-up work done

	caps := captureScale(b, backup, dir, scaleCount)
	logStart := map[string]int{}
	cpu0 := map[string]float64{}
	for name, p := range procs {
		logStart[name] = len(p.Output())
		c, err := procCPU(p.PID())
		if err != nil {
			b.Fatal(err)
		}
		cpu0[name] = c
	}
	start := time.Now()
	// Watch the holders once a second while the window runs: nothing may
	// move.
	var moved []string
	for time.Since(start) < window {
		time.Sleep(time.Second)
		if m, bk := held(master), held(backup); !slices.Equal(m, all) || len(bk) != 0 {
			moved = append(moved, fmt.Sprintf("at %v: master %d, backup %d", time.Since(start).Round(time.Second), len(m), len(bk)))
		}
	}
	cpu := map[string]float64{}
	for name, p := range procs {
		c, err := procCPU(p.PID())
		if err != nil {
			b.Fatal(err)
		}
		cpu[name] = c - cpu0[name]
	}
	elapsed := time.Since(start)
	rssKB, err := vmRSS(procs["master"].PID())
	if err != nil {
		b.Fatal(err)
	}
	_, lates := masterLateness(b, caps, scaleCount, elapsed)
	if len(moved) > 0 {
		b.Errorf("VIPs moved during the window, want the master holding all %d and the backup none: %v", scaleCount, moved)
	}
	var flaps []string
	for name, p := range procs {
		for _, tr := range transitions(p.Output()[logStart[name]:]) {
			flaps = append(flaps, name+": "+tr)
		}
	}
	if len(flaps) > 0 {
		b.Errorf("%d state transitions during the window, want none; the first: %v", len(flaps), flaps[:min(len(flaps), 5)])
	}

	// The master's adverts only (masterLateness): the backup's own, if it
	// took over a vhid, are its business.
	if len(lates) == 0 {
		b.Fatal("no advert gaps to measure")
	}
	ms := func(d float64) float64 { return d * 1000 }
	return scaleRun{
		masterCPU: 100 * cpu["master"] / elapsed.Seconds(),
		backupCPU: 100 * cpu["backup"] / elapsed.Seconds(),
		masterRSS: float64(rssKB) / 1024,
		lateP50:   ms(percentile(lates, 50)),
		lateP99:   ms(percentile(lates, 99)),
		lateMax:   ms(lates[len(lates)-1]),
		lateMin:   ms(lates[0]),
		gaps:      len(lates),
	}
}

// percentile returns the p-th percentile (nearest rank) of sorted values.
func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return math.NaN()
	}
	i := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

// procCPU returns the CPU time (user + system) the process has used, in
// seconds, from /proc/PID/stat.
func procCPU(pid int) (float64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) is in parentheses and may hold spaces:
	// count the fields after its closing parenthesis.
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f)+2)
	}
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	// USER_HZ is 100 on every Linux architecture Go supports.
	return float64(ut+st) / 100, nil
}
