package e2e

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

// hookLateBound is the most an advert may be late, hook or not. The
// benchmark states no bound of its own; this one is generous: 3 times the
// worst lateness the README quotes for carpd's adverts on this kind of
// machine (33.9 ms, ten minutes at 10 ms with the other core busy), and a
// hundredth of the 10 s a hook that held up the advert loop would add.
const hookLateBound = 100 * time.Millisecond

// BenchmarkHookAdvertLateness measures the master's advert lateness on
// the wire (each gap between adverts minus advbase + advskew/256) over
// 12 s, without hooks and with a devd-style hook that takes 10 s at every
// transition (running while the window starts): hooks must not delay
// adverts. Metrics: p50, p99 and max lateness in ms for each. It fails
// when an advert is more than hookLateBound late, with or without the
// hook, or adverts are missing.
func BenchmarkHookAdvertLateness(b *testing.B) {
	requireRoot(b)
	for i := 0; i < b.N; i++ {
		for _, withHook := range []bool{false, true} {
			c := newCluster(b)
			extra := ""
			if withHook {
				slow := writeScript(b, c.dir, "slow.sh", "sleep 10\n")
				extra = fmt.Sprintf("hook = %q", slow)
			}
			c.startCarpd(c.master, "--config", hookTOML(b, c.dir, "master.toml", 100, extra))
			c.startCarpd(c.backup, "--config", hookTOML(b, c.dir, "backup.toml", 200, ""))
			if _, ok := c.waitHolder(c.master, 15*time.Second); !ok {
				b.Fatal("no master")
			}
			if withHook {
				// Each forced change queues another 10 s run.
				for _, s := range []string{"backup", "master"} {
					if _, errOut, code := c.carpctl(c.master, "state", "100", s); code != 0 {
						b.Fatal(errOut)
					}
				}
				if _, ok := c.waitHolder(c.master, 10*time.Second); !ok {
					b.Fatal("no master")
				}
			}
			cap := captureAdverts(b, c.backup, "eth0", c.dir)
			window := 12 * time.Second
			time.Sleep(window)
			ads := cap.stop(b)
			var mine []wireAdvert
			for _, a := range ads {
				if a.Src == masterAddr.Addr() {
					mine = append(mine, a)
				}
			}
			name := "nohook"
			if withHook {
				name = "hook"
			}
			// vhid 100 only (advertLateness would want vhids 1 to 100: its
			// error was always set, and thrown away).
			lates, err := vhidLateness(mine, window)
			if err != nil {
				b.Errorf("%s: the master's adverts: %v", name, err)
			}
			if len(lates) == 0 {
				b.Fatalf("%s: no advert gaps to measure", name)
			}
			slices.Sort(lates)
			if worst := lates[len(lates)-1]; worst > hookLateBound.Seconds() {
				b.Errorf("%s: an advert %.2f ms late, want at most %v (hooks never delay adverts)", name, worst*1000, hookLateBound)
			}
			b.ReportMetric(percentile(lates, 50)*1000, name+"-late-p50-ms")
			b.ReportMetric(percentile(lates, 99)*1000, name+"-late-p99-ms")
			b.ReportMetric(lates[len(lates)-1]*1000, name+"-late-max-ms")
			b.Logf("%s: %d gaps, p50 %.2f ms, p99 %.2f ms, max %.2f ms", name, len(lates),
				percentile(lates, 50)*1000, percentile(lates, 99)*1000, lates[len(lates)-1]*1000)
		}
	}
	b.ReportMetric(0, "ns/op")
}

// BenchmarkIdleRSSMetrics reports the resident memory of an idle MASTER
// with one vhid, serving metrics, after 10 scrapes. Target: idleRSSMetrics,
// in every run.
func BenchmarkIdleRSSMetrics(b *testing.B) {
	requireRoot(b)
	var rss []float64
	for i := 0; i < b.N; i++ {
		c := newCluster(b, "--metrics-listen", metricsAddr)
		p := c.start(c.master)
		if _, ok := c.waitHolder(c.master, 15*time.Second); !ok {
			b.Fatal("the master does not hold the VIP")
		}
		for range 10 {
			scrape(b, c.master)
			time.Sleep(500 * time.Millisecond)
		}
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
	if rss[len(rss)-1] > idleRSSMetrics {
		b.Errorf("RSS %.1f MB with metrics, want %.0f MB or less", rss[len(rss)-1], idleRSSMetrics)
	}
}
