package e2e

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/carpd/carpd/internal/lab"
	"github.com/carpd/carpd/internal/lab/etcdlab"
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
// vhid, 5 s after it took the address: carp, a CARP vhid (the cluster's
// master alone); etcd, a vhid elected on a real 3-member etcd cluster
// (etcdlab). Besides VmRSS it reports the part that is the binary's own
// pages (file-backed: its text and read-only data, touched by the start)
// and the rest (anonymous: heap, stacks, the runtime's). The binary is the
// copy TestMain installs (see installBinary). Targets, in every run:
// idleRSSCARP and idleRSSEtcd; the benchmark fails when one is missed.
func BenchmarkIdleRSS(b *testing.B) {
	requireRoot(b)
	b.Run("carp", func(b *testing.B) { benchIdleRSS(b, idleRSSCARP, startIdleCARP) })
	b.Run("etcd", func(b *testing.B) { benchIdleRSS(b, idleRSSEtcd, startIdleEtcd) })
}

// The targets of BenchmarkIdleRSS and BenchmarkIdleRSSMetrics, in MB.
// etcd: issue 27's. carp: an idle CARP carpd measured 22.8 MB (median of
// 10, max 23.0), of which 18.9 MB the binary's pages: every package linked
// in runs its init and the runtime walks every itab at the start, so that
// the start maps most of the text and read-only data of the whole binary,
// the etcd client's and GoBGP's included (docs/design.md; without them
// carpd was at 13.1 MB). The target leaves room for that, not for more.
// metrics: the same carpd serving metrics, after 10 scrapes, measured
// 26.0 MB (median of 6, max 26.2).
const (
	idleRSSCARP    = 25.0
	idleRSSEtcd    = 30.0
	idleRSSMetrics = 28.0
)

// benchIdleRSS runs start b.N times and fails when one run's RSS is over
// target MB.
func benchIdleRSS(b *testing.B, target float64, start func(b *testing.B) *lab.Proc) {
	var rss, file, anon []float64
	for i := 0; i < b.N; i++ {
		p := start(b)
		time.Sleep(5 * time.Second)
		m, err := smapsRollup(p.PID())
		if err != nil {
			b.Fatal(err)
		}
		rss = append(rss, float64(m["Rss:"])/1024)
		file = append(file, float64(m["Rss:"]-m["Anonymous:"])/1024)
		anon = append(anon, float64(m["Anonymous:"])/1024)
	}
	b.ReportMetric(0, "ns/op")
	for _, f := range []struct {
		name string
		mb   []float64
	}{{"rss", rss}, {"file", file}, {"anon", anon}} {
		slices.Sort(f.mb)
		b.ReportMetric(median(f.mb), f.name+"-median-MB")
		b.ReportMetric(f.mb[0], f.name+"-min-MB")
		b.ReportMetric(f.mb[len(f.mb)-1], f.name+"-max-MB")
	}
	b.Logf("RSS over %d runs: %.1f MB median [%.1f .. %.1f]; the binary's pages %.1f, anonymous %.1f (medians)",
		len(rss), median(rss), rss[0], rss[len(rss)-1], median(file), median(anon))
	if rss[len(rss)-1] > target {
		b.Errorf("RSS %.1f MB, want %.0f MB or less", rss[len(rss)-1], target)
	}
}

// startIdleCARP starts the cluster's master alone and waits until it holds
// the VIP.
func startIdleCARP(b *testing.B) *lab.Proc {
	c := newCluster(b)
	p := c.start(c.master)
	if _, ok := c.waitHolder(c.master, 15*time.Second); !ok {
		b.Fatal("the master does not hold the VIP")
	}
	return p
}

// startIdleEtcd starts a real etcd cluster and one carpd whose vhid is
// elected on it, and waits until that carpd holds the VIP.
func startIdleEtcd(b *testing.B) *lab.Proc {
	c := etcdlab.Start(b, etcdlab.RaftFor(10*time.Second)) // the TTL below: etcd's default timing
	h, err := c.AddNode()
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	cfg := filepath.Join(dir, "carpd.toml")
	toml := fmt.Sprintf(`[etcd]
endpoints = [%s]
node = %q
ttl = "10s"

[[vhid]]
interface = %q
vhid = 100
addresses = ["%s/32"]
electorate = "etcd"
`, quoted(c.Endpoints()), h.Name, h.Iface, vip)
	if err := os.WriteFile(cfg, []byte(toml), 0o644); err != nil {
		b.Fatal(err)
	}
	p, err := h.Start("carpd", carpdBin, "--config", cfg, "--control", cfg+".sock", "--state-file", cfg+".state")
	if err != nil {
		b.Fatal(err)
	}
	if _, ok := waitSole(b, h, 30*time.Second, h); !ok {
		b.Fatalf("carpd does not hold the VIP:\n%s", p.Output())
	}
	return p
}

// smapsRollup reads the kB figures of /proc/PID/smaps_rollup, by key
// ("Rss:", "Anonymous:", ...).
func smapsRollup(pid int) (map[string]int, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return nil, err
	}
	m := map[string]int{}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[2] == "kB" {
			if m[f[0]], err = strconv.Atoi(f[1]); err != nil {
				return nil, fmt.Errorf("smaps_rollup of %d: %q: %w", pid, line, err)
			}
		}
	}
	if _, ok := m["Rss:"]; !ok {
		return nil, fmt.Errorf("smaps_rollup of %d: no Rss", pid)
	}
	return m, nil
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
