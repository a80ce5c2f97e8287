package e2e

import (
	"math/rand/v2"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/carpd/carpd/internal/probe"
)

// The failover benchmarks build a fresh walkthrough pair per run, let the
// client probe the VIP every 10 ms, hit the master at a random point of its
// advert interval and report the median, minimum and maximum of each figure
// over the b.N runs (all values are logged). Run them with -benchtime=5x:
//
//	go test ./e2e -run '^$' -bench 'Failover$' -benchtime=5x
//
// (The testing package runs each benchmark once with b.N = 1 first.)

// benchProbeInterval is how often the client probes the VIP.
const benchProbeInterval = 10 * time.Millisecond

// pollInterval is how often the benchmarks look at who holds the VIP.
const pollInterval = 20 * time.Millisecond

// spread collects one figure over the runs of a benchmark.
type spread struct {
	name string // metric name, e.g. "outage"
	unit string // "s" or "" (a count)
	vals []float64
}

func (s *spread) addDuration(d time.Duration) { s.vals = append(s.vals, d.Seconds()) }
func (s *spread) addCount(n int)              { s.vals = append(s.vals, float64(n)) }

// report reports the median, minimum and maximum as metrics
// "<name>-median[-<unit>]" and so on, and logs every value in run order.
func (s *spread) report(b *testing.B) {
	b.Helper()
	if len(s.vals) == 0 {
		return
	}
	sorted := slices.Sorted(slices.Values(s.vals))
	n := len(sorted)
	med := sorted[n/2]
	if n%2 == 0 {
		med = (sorted[n/2-1] + sorted[n/2]) / 2
	}
	suffix := ""
	if s.unit != "" {
		suffix = "-" + s.unit
	}
	b.ReportMetric(med, s.name+"-median"+suffix)
	b.ReportMetric(sorted[0], s.name+"-min"+suffix)
	b.ReportMetric(sorted[n-1], s.name+"-max"+suffix)
	b.Logf("%s%s over %d runs: %v", s.name, suffix, n, s.vals)
}

// benchPair starts a fresh pair (no preempt), waits for the master to hold
// the VIP, starts the client's probes and waits a random point of the
// master's advert interval (1 + 100/256 s).
func benchPair(b *testing.B) (*cluster, *prober) {
	b.Helper()
	c := newCluster(b)
	c.start(c.master)
	c.start(c.backup)
	if _, ok := c.waitHolder(c.master, 15*time.Second); !ok {
		b.Fatalf("the master does not hold the VIP (holders %v)", c.holders())
	}
	pr := c.ping(benchProbeInterval)
	time.Sleep(2*time.Second + time.Duration(rand.Int64N(int64(1400*time.Millisecond))))
	return c, pr
}

// holdTimes polls both hosts from start until the backup holds the VIP and
// the master does not, or until timeout. It returns when the backup was
// first seen holding it and when the master was first seen not holding it
// (a negative duration: never seen within timeout). The resolution is the
// poll interval plus the time an ip(8) run takes.
func (c *cluster) holdTimes(start time.Time, timeout time.Duration) (backupHolds, masterGone time.Duration) {
	c.t.Helper()
	backupHolds, masterGone = -1, -1
	for time.Since(start) < timeout && (backupHolds < 0 || masterGone < 0) {
		// Each time is taken when the look (an ip(8) run of a few ms)
		// has returned: an upper bound.
		if backupHolds < 0 {
			if ok, err := c.backup.Holds(vip); err != nil {
				c.t.Fatal(err)
			} else if ok {
				backupHolds = time.Since(start)
			}
		}
		if masterGone < 0 {
			if ok, err := c.master.Holds(vip); err != nil {
				c.t.Fatal(err)
			} else if !ok {
				masterGone = time.Since(start)
			}
		}
		time.Sleep(pollInterval)
	}
	return backupHolds, masterGone
}

// finishProbes waits for the last probes' answers (or timeouts), stops the
// client and summarises its probes.
func finishProbes(pr *prober) probe.Stats {
	time.Sleep(probe.Timeout(benchProbeInterval) + 500*time.Millisecond)
	pr.stop()
	return probe.Summarize(pr.results())
}

// BenchmarkPlannedFailover: SIGTERM on the master's carpd. It bows out
// (advbase 255, advskew 255), the backup takes over at once, and the master
// keeps the VIP until it hears the new master (make before break). Figures:
// probes lost (target: median 0, max 2), the time until the backup holds the
// VIP and until the old master no longer holds it.
func BenchmarkPlannedFailover(b *testing.B) {
	requireRoot(b)
	lost := spread{name: "lost", unit: ""}
	takeover := spread{name: "backup-holds", unit: "s"}
	released := spread{name: "master-released", unit: "s"}
	for i := 0; i < b.N; i++ {
		c, pr := benchPair(b)
		p := c.procs[c.master]
		start := time.Now()
		if err := p.Signal(syscall.SIGTERM); err != nil {
			b.Fatal(err)
		}
		bh, mg := c.holdTimes(start, 5*time.Second)
		if bh < 0 || mg < 0 {
			b.Fatalf("5 s after SIGTERM: backup holds since %v, master released since %v (negative: not seen); holders %v", bh, mg, c.holders())
		}
		select {
		case <-p.Done():
		case <-time.After(5 * time.Second):
			b.Fatal("carpd did not exit within 5 s of SIGTERM")
		}
		if code := p.ExitCode(); code != 0 {
			b.Errorf("carpd exited with status %d after SIGTERM, want 0", code)
		}
		st := finishProbes(pr)
		b.Logf("run %d: backup holds %v, master released %v after SIGTERM; probes %+v", i+1, bh, mg, st)
		if !st.Recovered {
			b.Errorf("run %d: the client's probes did not recover: %+v", i+1, st)
		}
		lost.addCount(st.Lost)
		takeover.addDuration(bh)
		released.addDuration(mg)
		if err := c.lab.Close(); err != nil {
			b.Error(err)
		}
	}
	b.ReportMetric(0, "ns/op")
	for _, s := range []*spread{&lost, &takeover, &released} {
		s.report(b)
	}
}

// BenchmarkSIGKILLFailover: only the master's carpd is SIGKILLed, its link
// stays up. The kernel keeps answering for the VIP until the address's
// valid lifetime (3 s, refreshed at each advert) runs out; the backup takes
// over when its master-down interval (3.78 s) runs out. Figures: the
// client's outage, how long the killed host kept the VIP after the kill
// (target: gone within 3.78 s) and when the backup held it.
func BenchmarkSIGKILLFailover(b *testing.B) {
	requireRoot(b)
	outage := spread{name: "outage", unit: "s"}
	kept := spread{name: "vip-kept", unit: "s"}
	takeover := spread{name: "backup-holds", unit: "s"}
	for i := 0; i < b.N; i++ {
		c, pr := benchPair(b)
		p := c.procs[c.master]
		start := time.Now()
		if err := p.Signal(syscall.SIGKILL); err != nil {
			b.Fatal(err)
		}
		bh, mg := c.holdTimes(start, masterDown+5*time.Second)
		if bh < 0 || mg < 0 {
			b.Fatalf("%v after SIGKILL: backup holds since %v, killed master released since %v (negative: not seen)", masterDown+5*time.Second, bh, mg)
		}
		if _, ok := c.waitHolder(c.backup, 2*time.Second); !ok {
			b.Fatalf("the backup does not hold the VIP alone (holders %v)", c.holders())
		}
		st := finishProbes(pr)
		b.Logf("run %d: VIP gone from the killed host %v, on the backup %v after the kill; probes %+v", i+1, mg, bh, st)
		if !st.Recovered {
			b.Errorf("run %d: the client's probes did not recover: %+v", i+1, st)
		}
		outage.addDuration(st.Outage)
		kept.addDuration(mg)
		takeover.addDuration(bh)
		if err := c.lab.Close(); err != nil {
			b.Error(err)
		}
	}
	b.ReportMetric(0, "ns/op")
	for _, s := range []*spread{&outage, &kept, &takeover} {
		s.report(b)
	}
	b.ReportMetric(masterDown.Seconds(), "bound-s")
}

// BenchmarkLinkCutFailover: the master's switch port goes down, so its eth0
// loses carrier; the backup takes over when its master-down interval runs
// out. Figures: the client's outage, bound by the master-down interval 3.78 s
// (plus the client's probe interval), and when the backup held the VIP.
func BenchmarkLinkCutFailover(b *testing.B) {
	requireRoot(b)
	outage := spread{name: "outage", unit: "s"}
	takeover := spread{name: "backup-holds", unit: "s"}
	for i := 0; i < b.N; i++ {
		c, pr := benchPair(b)
		start := time.Now()
		if err := c.master.PortDown(); err != nil {
			b.Fatal(err)
		}
		bh, mg := c.holdTimes(start, masterDown+5*time.Second)
		if bh < 0 || mg < 0 {
			b.Fatalf("%v after the cut: backup holds since %v, master released since %v (negative: not seen)", masterDown+5*time.Second, bh, mg)
		}
		st := finishProbes(pr)
		b.Logf("run %d: master released the VIP %v, backup holds it %v after the cut; probes %+v", i+1, mg, bh, st)
		if !st.Recovered || st.LostRuns != 1 {
			b.Errorf("run %d: probes %+v, want one run of losses and recovery", i+1, st)
		}
		outage.addDuration(st.Outage)
		takeover.addDuration(bh)
		if err := c.lab.Close(); err != nil {
			b.Error(err)
		}
	}
	b.ReportMetric(0, "ns/op")
	for _, s := range []*spread{&outage, &takeover} {
		s.report(b)
	}
	b.ReportMetric(masterDown.Seconds(), "bound-s")
}
