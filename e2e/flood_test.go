package e2e

import (
	"bufio"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/carpd/carpd/internal/lab"
)

// The flood: forged adverts (the vhid right, the HMAC of another password,
// a random source of 198.51.100.0/25 each) sent from a third host at a
// master and a backup while a client probes the address. In the test run it
// lasts 3 s (the short form, so that it cannot rot); scripts/flood.sh runs
// it for 30 s at 50,000/s, with 1 and with 255 vhids, and reports the
// figures. The settings come from the environment:
//
//	CARPD_FLOOD_DURATION  how long the flood lasts (3s)
//	CARPD_FLOOD_RATE      forged adverts per second (50000)
//	CARPD_FLOOD_VHIDS     vhids in each carpd (1); vhid 1 is the walkthrough's
//	CARPD_FLOOD_REPORT    a file the figures are appended to, one line per run
//	CARPD_FLOOD_BURN      CPU burners (busy goroutines in the test process,
//	                      at the default priority) running meanwhile (0)
//
// What it requires: no transition anywhere, the VIP on the master alone
// throughout, no probe (every 10 ms) lost, no datagram dropped by either
// carpd's raw socket (/proc/net/raw), the master's adverts leaving on time
// (p99 lateness on the wire under 20 ms), and the flood counted as badauth.
// It reports each carpd's CPU and memory.
func TestFlood(t *testing.T) {
	dur := envDuration(t, "CARPD_FLOOD_DURATION", 3*time.Second)
	rate := envInt(t, "CARPD_FLOOD_RATE", 50000)
	vhids := envInt(t, "CARPD_FLOOD_VHIDS", 1)
	if vhids < 1 || vhids > 255 {
		t.Fatalf("CARPD_FLOOD_VHIDS=%d: 1..255", vhids)
	}
	c := newCluster(t)
	attacker, err := c.lab.AddHost("attacker", attackerAddr)
	if err != nil {
		t.Fatal(err)
	}
	procs := map[*lab.Host]*lab.Proc{}
	for h, skew := range map[*lab.Host]int{c.master: 100, c.backup: 200} {
		path := writeTOML(t, c.dir, h.Name+".toml", false, floodVHIDs(vhids, skew))
		procs[h] = c.startCarpd(h, "--config", path)
	}
	// The backup starts with the master: wait for the master to hold
	// every address and the backup to be BACKUP for all.
	if took, ok := waitSole(t, c.master, 20*time.Second, c.master, c.backup); !ok {
		t.Fatalf("after %v the VIP is held by %v, want the master only", took, c.holders())
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if got := heldVHIDs(t, c.master, lab.Iface, vhids, floodVIP); len(got) == vhids {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the master holds %d of %d VIPs after 30 s", len(heldVHIDs(t, c.master, lab.Iface, vhids, floodVIP)), vhids)
		}
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(2 * time.Second)
	carpcraftBin(t)

	before := map[*lab.Host]hostCounts{c.master: c.counts(c.master), c.backup: c.counts(c.backup)}
	rawBefore := map[*lab.Host]uint64{c.master: rawDrops(t, c.master), c.backup: rawDrops(t, c.backup)}
	cpuBefore := map[*lab.Host]float64{}
	for h, p := range procs {
		cpu, err := procCPU(p.PID())
		if err != nil {
			t.Fatal(err)
		}
		cpuBefore[h] = cpu
	}
	// A 32 MB capture buffer: with the flood on both cores, tcpdump
	// would otherwise lose adverts and make gaps that are not on the
	// wire (its "dropped by kernel" count is checked below).
	wire := startPcap(t, c.master.NS, "eth0", c.dir, fmt.Sprintf("ip proto 112 and src host %v", masterAddr.Addr()),
		"-B", "32768", "-s", "128")
	pr := c.ping(10 * time.Millisecond)

	// Peak memory is sampled while the flood runs.
	var peakMu sync.Mutex
	peak := map[*lab.Host]int{}
	stopSampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			for h, p := range procs {
				if kb, err := vmRSS(p.PID()); err == nil {
					peakMu.Lock()
					peak[h] = max(peak[h], kb)
					peakMu.Unlock()
				}
			}
			select {
			case <-stopSampling:
				return
			case <-tick.C:
			}
		}
	}()

	// Burners: other work on the machine, at the default priority.
	burn := envInt(t, "CARPD_FLOOD_BURN", 0)
	stopBurn := make(chan struct{})
	for range burn {
		go func() {
			for n := 0; ; n++ {
				if n%1_000_000 == 0 {
					select {
					case <-stopBurn:
						return
					default:
					}
				}
			}
		}()
	}
	start := time.Now()
	res := runCarpcraft(t, attacker, "--iface", "eth0", "--vhid", "1", "--kind", "forged",
		"--src", "198.51.100.0/25", "--rate", strconv.Itoa(rate), "--duration", dur.String())
	elapsed := time.Since(start)
	close(stopBurn)
	time.Sleep(time.Second) // the last of the flood reaches the readers
	close(stopSampling)
	<-sampled
	pr.stop()
	wire.stop(t)

	after := map[*lab.Host]hostCounts{c.master: c.counts(c.master), c.backup: c.counts(c.backup)}
	var report []string
	report = append(report, fmt.Sprintf("vhids=%d duration=%v asked=%d/s sent=%d reached=%.0f/s failed=%d burners=%d",
		vhids, dur, rate, res.Sent, res.PPS, res.Failed, burn))
	for _, h := range []*lab.Host{c.master, c.backup} {
		cpu, err := procCPU(procs[h].PID())
		if err != nil {
			t.Fatal(err)
		}
		raw := rawDrops(t, h) - rawBefore[h]
		d := dropDelta(before[h], after[h])
		peakMu.Lock()
		rss := peak[h]
		peakMu.Unlock()
		line := fmt.Sprintf("%s: cpu=%.0f%% of a core, peak RSS %.1f MB, badauth=%d, raw socket drops=%d, queue-full=%d, transitions=%d",
			h.Name, 100*(cpu-cpuBefore[h])/elapsed.Seconds(), float64(rss)/1024, d["badauth"], raw,
			after[h].queueFull-before[h].queueFull, after[h].transitions-before[h].transitions)
		report = append(report, line)
		t.Log(line)
		if n := after[h].transitions - before[h].transitions; n != 0 {
			t.Errorf("%s: %d transitions during the flood", h.Name, n)
		}
		if raw != 0 {
			t.Errorf("%s: its raw sockets dropped %d datagrams (/proc/net/raw): the master's adverts may be among them", h.Name, raw)
		}
		// Every forged advert the host's sockets took is counted badauth.
		if want := uint64(res.Sent) * 9 / 10; d["badauth"] < want {
			t.Errorf("%s: badauth rose by %d, want at least 90%% of the %d sent", h.Name, d["badauth"], res.Sent)
		}
		if vhids == 255 && rss > 40*1024 {
			t.Errorf("%s: peak RSS %d kB with 255 vhids under the flood, want under 40 MB", h.Name, rss)
		}
	}
	if got := c.holders(); len(got) != 1 || got[0] != c.master.Name {
		t.Errorf("after the flood the VIP is held by %v, want the master only", got)
	}
	lost := 0
	for _, r := range pr.results() {
		if r.Lost {
			lost++
		}
	}
	report = append(report, fmt.Sprintf("client: %d probes, %d lost", len(pr.results()), lost))
	if lost != 0 {
		t.Errorf("the client lost %d of %d probes during the flood", lost, len(pr.results()))
	}
	ads, err := readAdvertPcap(wire.path)
	if err != nil {
		t.Fatal(err)
	}
	capLog, _ := os.ReadFile(wire.log)
	line := fmt.Sprintf("master: %d adverts sent (%d failed) from the first stats to the last, %d captured; tcpdump: %s",
		after[c.master].sent-before[c.master].sent, after[c.master].sendFailed-before[c.master].sendFailed, len(ads),
		strings.Join(strings.Fields(string(capLog)), " "))
	report = append(report, line)
	t.Log(line)
	if m := regexp.MustCompile(`(\d+) packets dropped by kernel`).FindStringSubmatch(string(capLog)); m == nil || m[1] != "0" {
		t.Errorf("the capture of the master's adverts is incomplete (tcpdump: %q): the lateness below is not the wire's", capLog)
	}
	window := elapsed + time.Second
	lates, err := advertLateness(ads, vhids, window-2*time.Second)
	if err != nil {
		t.Error(err)
	}
	if len(lates) > 0 {
		slices.Sort(lates)
		p50, p99, worst := 1000*percentile(lates, 50), 1000*percentile(lates, 99), 1000*lates[len(lates)-1]
		line := fmt.Sprintf("master's adverts on the wire: %d gaps, lateness p50 %.2f ms, p99 %.2f ms, max %.2f ms", len(lates), p50, p99, worst)
		report = append(report, line)
		t.Log(line)
		if p99 >= 20 {
			t.Errorf("the master's adverts were late: p99 %.2f ms, want under 20 ms", p99)
		}
	}
	t.Log(strings.Join(report, "\n"))
	if path := os.Getenv("CARPD_FLOOD_REPORT"); path != "" {
		f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(f, "%s\n%s\n\n", time.Now().UTC().Format(time.RFC3339), strings.Join(report, "\n"))
		f.Close()
	}
}

// floodVIP is vhid n's address: the walkthrough's for vhid 1, then
// 203.0.113.n, and 198.51.100.200 for vhid 255 (outside the flood's
// sources).
func floodVIP(n int) netip.Addr {
	switch {
	case n == 1:
		return vip
	case n == 255:
		return netip.MustParseAddr("198.51.100.200")
	}
	return netip.AddrFrom4([4]byte{203, 0, 113, byte(n)})
}

func floodVHIDs(n, skew int) []tomlVHID {
	var vs []tomlVHID
	for i := 1; i <= n; i++ {
		vs = append(vs, tomlVHID{Iface: lab.Iface, VHID: i, AdvSkew: skew, Password: "lampros",
			Addrs: []netip.Prefix{netip.PrefixFrom(floodVIP(i), 32)}})
	}
	return vs
}

// rawDrops returns the drops of the protocol-112 raw sockets in h's
// namespace: the last column of /proc/net/raw and /proc/net/raw6.
func rawDrops(t testing.TB, h *lab.Host) uint64 {
	t.Helper()
	var total uint64
	for _, file := range []string{"/proc/net/raw", "/proc/net/raw6"} {
		var data string
		err := h.Do(func() error {
			// /proc/net follows the reading thread's namespace.
			b, err := os.ReadFile(filepath.Join("/proc/thread-self/net", filepath.Base(file)))
			data = string(b)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(strings.NewReader(data))
		sc.Scan() // the header
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) < 2 {
				continue
			}
			// local_address is addr:protocol in hex; 112 is 0x70.
			if !strings.HasSuffix(f[1], ":0070") {
				continue
			}
			n, err := strconv.ParseUint(f[len(f)-1], 10, 64)
			if err != nil {
				t.Fatalf("%s in %s: %q: %v", file, h.Name, sc.Text(), err)
			}
			total += n
		}
	}
	return total
}

func envDuration(t testing.TB, name string, def time.Duration) time.Duration {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		t.Fatalf("%s=%q: %v", name, s, err)
	}
	return d
}

func envInt(t testing.TB, name string, def int) int {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatalf("%s=%q: %v", name, s, err)
	}
	return n
}

// TestThreadPriority: carpd's threads run at nice -10 (carpd runs as root
// here; the unit grants CAP_SYS_NICE), so that a busy machine does not make
// its adverts late: every one of them, since the loop runs on whichever
// thread the poller woke (GOMAXPROCS=1, host.Clock), and the threads the
// runtime starts later take their creator's value. A hook starts at 0
// again: it must not compete with the adverts at carpd's priority.
func TestThreadPriority(t *testing.T) {
	t.Parallel() // no timing judged: see parallel_test.go
	c := newCluster(t)
	out := filepath.Join(c.dir, "hook.nice")
	hook := filepath.Join(c.dir, "up.sh")
	if err := os.WriteFile(hook, []byte("#!/bin/sh\nnice > "+out+".tmp && mv "+out+".tmp "+out+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	p := c.startCarpd(c.master, "--rc-conf", c.rcPath(c.master), "--upscript", hook)
	if took, ok := waitSole(t, c.master, 15*time.Second, c.master); !ok {
		t.Fatalf("the master does not hold the VIP after %v", took)
	}
	if got := waitFileLines(t, out, 1, 10*time.Second); got[0] != "0" {
		t.Errorf("the up hook ran at nice %q, want 0", got[0])
	}
	threads, err := snapThreads(p.PID())
	if err != nil {
		t.Fatal(err)
	}
	nices := map[int64]int{}
	for _, th := range threads {
		nices[th.nice]++
	}
	if len(nices) != 1 || nices[-10] < 2 {
		t.Errorf("carpd's threads by nice value: %v, want all at -10", nices)
	}
}
