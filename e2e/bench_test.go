package e2e

import (
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/carpd/carpd/internal/probe"
)

// BenchmarkUnplannedFailover measures the outage a client sees when the
// master dies (carpd SIGKILLed, link down, addresses gone) while the client
// probes the VIP every 10 ms. Run it with -benchtime=5x for five failovers.
// The bound is the backup's master-down interval, 3*advbase + advskew/256 =
// 3.78 s; the outage can be shorter, since the master dies somewhere inside
// its advert interval. Target (issue 2): the median within 100 ms of the
// bound; the benchmark fails when it is missed.
func BenchmarkUnplannedFailover(b *testing.B) {
	requireRoot(b)
	var outages []time.Duration
	for i := 0; i < b.N; i++ {
		outages = append(outages, oneFailover(b))
	}
	slices.Sort(outages)
	med := outages[len(outages)/2]
	if len(outages)%2 == 0 {
		med = (outages[len(outages)/2-1] + outages[len(outages)/2]) / 2
	}
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(med.Seconds(), "outage-median-s")
	b.ReportMetric(outages[0].Seconds(), "outage-min-s")
	b.ReportMetric(outages[len(outages)-1].Seconds(), "outage-max-s")
	b.ReportMetric(masterDown.Seconds(), "bound-s")
	b.Logf("outages over %d runs: %v (bound %v)", len(outages), outages, masterDown)
	// The target (issue 2): the median within 100 ms of the bound (the
	// outage can be shorter).
	if med > masterDown+100*time.Millisecond {
		b.Errorf("median outage %v over %d runs, want within 100 ms of the bound %v", med, len(outages), masterDown)
	}
}

func oneFailover(b *testing.B) time.Duration {
	c := newCluster(b)
	c.start(c.master)
	c.start(c.backup)
	if _, ok := c.waitHolder(c.master, 15*time.Second); !ok {
		b.Fatalf("the master does not hold the VIP (holders %v)", c.holders())
	}
	pr := c.ping(10 * time.Millisecond)
	// Die at a random point of the master's advert interval.
	time.Sleep(2*time.Second + time.Duration(rand.Int64N(int64(1400*time.Millisecond))))
	c.reboot(c.master)
	if _, ok := c.waitHolder(c.backup, masterDown+5*time.Second); !ok {
		b.Fatalf("the backup does not take over (holders %v)", c.holders())
	}
	time.Sleep(2 * time.Second)
	pr.stop()
	st := probe.Summarize(pr.results())
	if !st.Recovered || st.LostRuns != 1 {
		b.Fatalf("probes: %+v, want one run of losses and recovery", st)
	}
	return st.Outage
}

// BenchmarkIdleRSS reports the resident memory of an idle carpd with one
// vhid, after it has settled as MASTER. Target (issue 2): 15 MB or less,
// in every run; the benchmark fails when it is missed.
func BenchmarkIdleRSS(b *testing.B) {
	requireRoot(b)
	var rss []float64
	for i := 0; i < b.N; i++ {
		c := newCluster(b)
		p := c.start(c.master)
		if _, ok := c.waitHolder(c.master, 15*time.Second); !ok {
			b.Fatal("the master does not hold the VIP")
		}
		time.Sleep(5 * time.Second)
		kb, err := vmRSS(p.PID())
		if err != nil {
			b.Fatal(err)
		}
		rss = append(rss, float64(kb)/1024)
	}
	slices.Sort(rss)
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(rss[len(rss)/2], "rss-median-MB")
	b.ReportMetric(rss[len(rss)-1], "rss-max-MB")
	if rss[len(rss)-1] > 15 {
		b.Errorf("RSS %.1f MB, want 15 MB or less", rss[len(rss)-1])
	}
}

func vmRSS(pid int) (int, error) { return procKB(fmt.Sprintf("/proc/%d/status", pid), "VmRSS:") }

// answeredAfterLoss returns the first probe sent after t that was answered
// after a loss: a probe sent in the moment between a cut's request and the
// port going down is still answered by the old master, and is not the
// recovery (the comparison benchmark once measured a takeover 34.9 ms
// before its bound so).
func answeredAfterLoss(res []probe.Result, t time.Time) (probe.Result, bool) {
	lost := false
	for _, x := range res {
		if !x.Sent.After(t) {
			continue
		}
		if x.Lost {
			lost = true
		} else if lost {
			return x, true
		}
	}
	return probe.Result{}, false
}

// runOrder is the order in which the daemons of a comparison take their
// turn in run 1, 2, ...: reversed every other run, so that neither always
// runs first (on a machine warmer, or busier, by then).
func runOrder(run int, daemons []string) []string {
	order := slices.Clone(daemons)
	if run%2 == 0 {
		slices.Reverse(order)
	}
	return order
}

// vmPSS is a process's proportional set size in kB (/proc/PID/smaps_rollup):
// its share of every page, a shared page divided among the processes that
// map it, so that summing it over processes counts each page once.
func vmPSS(pid int) (int, error) { return procKB(fmt.Sprintf("/proc/%d/smaps_rollup", pid), "Pss:") }

// procKB reads the kB figure of the line starting with key in a /proc file.
func procKB(path, key string) (int, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == key {
			return strconv.Atoi(f[1])
		}
	}
	return 0, fmt.Errorf("no %s in %s", key, path)
}
