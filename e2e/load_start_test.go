package e2e

import (
	"bufio"
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

// The start of BenchmarkLoad's pair, traced: the adverts on the wire (a
// capture on the backup's interfaces) and each host's addresses (ip
// monitor), from before either carpd runs until the window.

// startTrace is what a start is traced with.
type startTrace struct {
	caps []*advCapture
	mons map[string]*lab.Proc // ip -ts monitor address, by host
}

// startFigures is what a traced start showed.
type startFigures struct {
	// gapMax is the largest gap between consecutive adverts of one vrid
	// from the master, from that vrid's first advert on (ms).
	gapMax float64
	// gapVRID is the vrid of that gap, gapAt its start, gapCanary the
	// canary's longest oversleep in it.
	gapVRID   int
	gapAt     time.Time
	gapCanary time.Duration
	// twice lists the vrids the backup went MASTER more than once for,
	// masterTwice those the master did.
	twice, masterTwice []int
	// bothMax is the longest time one VIP was held by both hosts at once,
	// and bothVIP that VIP.
	bothMax time.Duration
	bothVIP netip.Addr
}

func (f startFigures) String() string {
	both := "no VIP on both"
	if f.bothVIP.IsValid() {
		both = fmt.Sprintf("a VIP on both at most %.1f ms (%v)", ms(f.bothMax), f.bothVIP)
	}
	return fmt.Sprintf("the master's largest advert gap %.2f ms (vrid %d at %s, the canary's longest oversleep in it %.1f ms), vrids MASTER twice on the backup %v and on the master %v, %s",
		f.gapMax, f.gapVRID, f.gapAt.Format("15:04:05.000"), ms(f.gapCanary), short(f.twice), short(f.masterTwice), both)
}

// traceStart starts the captures and the monitors, before the daemons.
func traceStart(b *testing.B, dir string, hosts map[string]*lab.Host, vrids int) *startTrace {
	b.Helper()
	t := &startTrace{mons: map[string]*lab.Proc{}}
	dir = filepath.Join(dir, "start") // the window's captures are apart
	if err := os.Mkdir(dir, 0o700); err != nil {
		b.Fatal(err)
	}
	t.caps = append(t.caps, captureAdverts(b, hosts["backup"], "eth0", dir))
	if vrids > scaleSplit {
		t.caps = append(t.caps, captureAdverts(b, hosts["backup"], "eth1", dir))
	}
	for _, name := range []string{"master", "backup"} {
		p, err := hosts[name].Start("ipmon", "ip", "-ts", "monitor", "address")
		if err != nil {
			b.Fatal(err)
		}
		t.mons[name] = p
	}
	// ip monitor says nothing when it listens: a moment for it to bind.
	time.Sleep(200 * time.Millisecond)
	return t
}

// stop ends the trace and returns its figures. backupLog is the backup
// carpd's log.
func (t *startTrace) stop(b *testing.B, backupLog string, vrids int, can *canary) startFigures {
	b.Helper()
	var ads []wireAdvert
	for _, c := range t.caps {
		ads = append(ads, c.stop(b)...)
	}
	var f startFigures
	masterOwn := scaleOwn(0)
	by := map[int][]time.Time{}
	for _, a := range ads {
		if a.Src == masterOwn[0].Addr() || a.Src == masterOwn[1].Addr() {
			by[a.VHID] = append(by[a.VHID], a.At)
		}
	}
	for n := 1; n <= vrids; n++ {
		ts := by[n]
		slices.SortFunc(ts, time.Time.Compare)
		if len(ts) < 2 {
			b.Errorf("the start: %d adverts of vrid %d from the master", len(ts), n)
		}
		for i := 1; i < len(ts); i++ {
			if g := float64(ts[i].Sub(ts[i-1])) / 1e6; g > f.gapMax {
				f.gapMax, f.gapVRID, f.gapAt = g, n, ts[i-1]
				f.gapCanary = can.during(ts[i-1], ts[i])
			}
		}
	}
	f.twice = mastersTwice(backupLog)
	held := map[string]map[netip.Addr][]heldSpan{}
	for name, p := range t.mons {
		_ = p.Kill()
		held[name] = heldSpansOf(p.Output())
	}
	for vip, ms := range held["master"] {
		for _, m := range ms {
			for _, bk := range held["backup"][vip] {
				if d := m.overlap(bk); d > f.bothMax {
					f.bothMax, f.bothVIP = d, vip
				}
			}
		}
	}
	return f
}

// short is ns, or its first 5 and how many more.
func short(ns []int) string {
	if len(ns) <= 5 {
		return fmt.Sprint(ns)
	}
	return fmt.Sprintf("%v and %d more", ns[:5], len(ns)-5)
}

var masterLine = regexp.MustCompile(`carp: (\d+)@\S+: \S+ -> MASTER`)

// mastersTwice returns the vrids that went MASTER more than once in a
// carpd log.
func mastersTwice(out string) []int {
	count := map[int]int{}
	for _, m := range masterLine.FindAllStringSubmatch(out, -1) {
		n, _ := strconv.Atoi(m[1])
		count[n]++
	}
	var twice []int
	for n, c := range count {
		if c > 1 {
			twice = append(twice, n)
		}
	}
	slices.Sort(twice)
	return twice
}

// heldSpan is a time an address was held; a zero end: still held.
type heldSpan struct{ from, to time.Time }

func (s heldSpan) overlap(o heldSpan) time.Duration {
	end := func(t time.Time) time.Time {
		if t.IsZero() {
			return time.Unix(1<<40, 0)
		}
		return t
	}
	to, from := end(s.to), s.from
	if e := end(o.to); e.Before(to) {
		to = e
	}
	if o.from.After(from) {
		from = o.from
	}
	return max(to.Sub(from), 0)
}

// monLine is one line of `ip -ts monitor address`, such as
// "[2026-12-07T06:30:00.123456] 3: eth0    inet 198.51.100.5/32 scope global eth0"
// or the same after "Deleted ".
var monLine = regexp.MustCompile(`^\[([0-9T:.\-]+)\] (Deleted )?\d+: \S+\s+inet6? ([0-9a-f.:]+)/\d+`)

// heldSpansOf reads ip monitor's timeline into the spans each address was
// held. A renewal (the address already held) changes nothing.
func heldSpansOf(out string) map[netip.Addr][]heldSpan {
	spans := map[netip.Addr][]heldSpan{}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		m := monLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		at, err := time.ParseInLocation("2006-01-02T15:04:05.000000", m[1], time.Local)
		if err != nil {
			continue
		}
		a, err := netip.ParseAddr(m[3])
		if err != nil {
			continue
		}
		ss := spans[a]
		open := len(ss) > 0 && ss[len(ss)-1].to.IsZero()
		switch {
		case m[2] == "" && !open:
			spans[a] = append(ss, heldSpan{from: at})
		case m[2] != "" && open:
			ss[len(ss)-1].to = at
		}
	}
	return spans
}

// TestTakeoverAdverts: a master's adverts are not held up by the work of
// a takeover of many vrids at once (their addresses, announcements, log
// lines). Hosts A and B share the 255 VRRPv3 vrids of BenchmarkLoad at
// 10 ms: A is master of vrid 1 (priority 200 against 100), B of vrids
// 2-255 (200 against 100). B is killed: A takes the 254 vrids over at
// once, while vrid 1's adverts must keep their interval. Measured on the
// wire (A's interfaces), its largest gap must stay under takeoverGapMax;
// the gaps of the 254 new masters from their first advert on too.
//
// It runs CARPD_TAKEOVER_RUNS times (1), with the carpd binary
// CARPD_LOAD_BIN when set; CARPD_TAKEOVER_KEEP=file appends
// A's log there, CARPD_TAKEOVER_PROFILE=file records A's CPU over the
// takeover with perf.
func TestTakeoverAdverts(t *testing.T) {
	requireRoot(t)
	for i := range envInt(t, "CARPD_TAKEOVER_RUNS", 1) {
		f := takeoverRun(t)
		t.Logf("run %d: %s", i+1, f)
		fmt.Printf("takeover: run %d: %s\n", i+1, f)
		if f.gap1 >= takeoverGapMax || f.gapNew >= takeoverGapMax {
			t.Errorf("run %d: a gap of %v or more", i+1, takeoverGapMax)
		}
	}
}

// takeoverGapMax bounds the largest gap between a master's adverts at
// 10 ms while it takes 254 other vrids over: under the 30 ms the load
// benchmark allows in its windows, and so under the peer's master-down
// interval (36.1 ms at priority 100). Before the addresses went in
// batches, vrid 1's gap was the time the loop took to add 254 addresses
// one request at a time and announce them (see docs/design.md).
const takeoverGapMax = 30 * time.Millisecond

type takeoverFigures struct {
	gap1   time.Duration // vrid 1's largest gap from B's death on
	gap1At time.Time     // its start
	// gapBefore is vrid 1's largest gap in the 300 ms before.
	gapBefore time.Duration
	// gap1Canary is the canary's longest oversleep during that gap.
	gap1Canary time.Duration
	gapNew     time.Duration // the new masters' largest gap from their first advert
	took       time.Duration // from the first new master's advert to the last one's
	canary     time.Duration // the canary's longest oversleep over the takeover
	canaryAt   []string
}

func (f takeoverFigures) String() string {
	return fmt.Sprintf("vrid 1's largest advert gap %.2f ms (at %s, the canary's longest oversleep in it %.1f ms; %.2f ms before B died), the new masters' %.2f ms, their first adverts spread over %.2f ms; canary (nice -10) %.1f ms %v",
		ms(f.gap1), f.gap1At.Format("15:04:05.000"), ms(f.gap1Canary), ms(f.gapBefore), ms(f.gapNew), ms(f.took), ms(f.canary), f.canaryAt)
}

func takeoverRun(t *testing.T) takeoverFigures {
	t.Helper()
	l, err := lab.New("carptake")
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := l.Close(); err != nil {
			t.Errorf("removing the lab: %v", err)
		}
	}()
	if err := l.AddSegment("seg2"); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	s := loadSettings{bin: carpdBin}
	if p := os.Getenv("CARPD_LOAD_BIN"); p != "" {
		s.bin = p
	}
	hosts := map[string]*lab.Host{}
	pids := map[string]int{}
	logs := map[string]string{}
	for i, name := range []string{"a", "b"} {
		own := scaleOwn(i)
		h, err := l.AddHost(name, own[0])
		if err != nil {
			t.Fatal(err)
		}
		if err := h.Attach("seg2", "eth1", own[1]); err != nil {
			t.Fatal(err)
		}
		hosts[name] = h
		var vs []tomlVHID
		for n := 1; n <= 255; n++ {
			prio := 100
			if (n == 1) == (name == "a") {
				prio = 200
			}
			vs = append(vs, tomlVHID{Iface: scaleIface(n), VHID: n, VRRPInterval: 1, VRRPPriority: prio,
				Addrs: []netip.Prefix{netip.PrefixFrom(scaleVIP(n), 32)}})
		}
		cfg := writeTOML(t, dir, name+".toml", true, vs)
		logs[name] = filepath.Join(dir, name+".log")
		_, pid := startLoadCarpd(t, h, s, cfg, logs[name])
		pids[name] = pid
		defer func() { _ = syscall.Kill(pid, syscall.SIGKILL) }()
	}
	fail := func(format string, args ...any) {
		t.Helper()
		for _, name := range []string{"a", "b"} {
			if out, err := os.ReadFile(logs[name]); err == nil {
				if len(out) > 10000 {
					out = out[len(out)-10000:]
				}
				t.Logf("carpd on %s:\n%s", name, out)
			}
		}
		t.Fatalf(format, args...)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		a, b := scaleHeld(t, hosts["a"], 255), scaleHeld(t, hosts["b"], 255)
		if slices.Equal(a, []int{1}) && slices.Equal(b, mvRange(2, 255)) {
			break
		}
		if time.Now().After(deadline) {
			fail("not settled after 30 s: A holds %v, B %d VIPs", a, len(b))
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(time.Second) // the start's announcements and renewals done
	caps := []*advCapture{captureAdverts(t, hosts["a"], "eth0", dir), captureAdverts(t, hosts["a"], "eth1", dir)}
	if out := os.Getenv("CARPD_TAKEOVER_PROFILE"); out != "" {
		// A's CPU over the takeover (perf report -i out).
		perf := exec.Command("perf", "record", "-F", "10000", "-e", "cpu-clock", "-g", "-k", "CLOCK_REALTIME", "-o", out,
			"-p", strconv.Itoa(pids["a"]), "--", "sleep", "1")
		if err := perf.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = perf.Wait() }()
		time.Sleep(300 * time.Millisecond)
	}
	can := startCanaryNice(t, -10)
	time.Sleep(300 * time.Millisecond) // vrid 1's gaps before: the baseline
	killed := time.Now()
	if err := syscall.Kill(pids["b"], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for {
		if len(scaleHeld(t, hosts["a"], 255)) == 255 {
			break
		}
		if time.Now().After(deadline) {
			fail("A does not hold every VIP after B's death")
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(time.Second)
	var f takeoverFigures
	f.canary, _ = can.stop()
	f.canaryAt = can.stallsOver(10 * time.Millisecond)
	var ads []wireAdvert
	for _, c := range caps {
		ads = append(ads, c.stop(t)...)
	}
	aOwn := scaleOwn(0)
	by := map[int][]time.Time{}
	for _, a := range ads {
		if a.Src == aOwn[0].Addr() || a.Src == aOwn[1].Addr() {
			by[a.VHID] = append(by[a.VHID], a.At)
		}
	}
	var first, last time.Time
	for n := 1; n <= 255; n++ {
		ts := by[n]
		slices.SortFunc(ts, time.Time.Compare)
		if len(ts) < 10 {
			fail("vrid %d: %d adverts of A captured", n, len(ts))
		}
		if n == 1 {
			for i := 1; i < len(ts); i++ {
				g := ts[i].Sub(ts[i-1])
				if ts[i].Before(killed) {
					f.gapBefore = max(f.gapBefore, g)
				} else if g > f.gap1 {
					f.gap1, f.gap1At = g, ts[i-1]
					f.gap1Canary = can.during(ts[i-1], ts[i])
				}
			}
			continue
		}
		f.gapNew = max(f.gapNew, maxGap(ts))
		if first.IsZero() || ts[0].Before(first) {
			first = ts[0]
		}
		if ts[0].After(last) {
			last = ts[0]
		}
	}
	f.took = last.Sub(first)
	if keep := os.Getenv("CARPD_TAKEOVER_KEEP"); keep != "" {
		// A's log, for a look at the takeover (appended, run after run).
		if out, err := os.ReadFile(logs["a"]); err == nil {
			if f, err := os.OpenFile(keep, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644); err == nil {
				_, _ = f.Write(out)
				_ = f.Close()
			}
		}
	}
	return f
}

// maxGap returns the largest gap between consecutive times of ts (sorted).
func maxGap(ts []time.Time) time.Duration {
	var g time.Duration
	for i := 1; i < len(ts); i++ {
		g = max(g, ts[i].Sub(ts[i-1]))
	}
	return g
}

// TestLoadMachineOnly: a run is made again only when every fault it had
// was the machine's; a start that missed its targets without a stall of
// startStall, or a gap the canary does not match, fails it.
func TestLoadMachineOnly(t *testing.T) {
	for _, c := range []struct {
		name string
		r    loadRun
		want bool
	}{
		{"no fault", loadRun{}, true},
		{"a machine's gap", loadRun{gapFault: "gap", gapMachine: true}, true},
		{"carpd's gap", loadRun{gapFault: "gap"}, false},
		{"a start in a stall", loadRun{startFaults: []string{"twice"}, startMachine: true}, true},
		{"a start without one", loadRun{startFaults: []string{"twice"}}, false},
		{"a start in a stall, carpd's gap", loadRun{startFaults: []string{"twice"}, startMachine: true, gapFault: "gap"}, false},
		{"a machine's gap, a start without a stall", loadRun{startFaults: []string{"both"}, gapFault: "gap", gapMachine: true}, false},
	} {
		if got := c.r.machineOnly(); got != c.want {
			t.Errorf("%s: machineOnly() = %v, want %v", c.name, got, c.want)
		}
	}
	// The stall that explains a start: the backup's master-down interval
	// less one interval and 2 ms (stallNeed).
	if want := 25850 * time.Microsecond; startStall < want-10*time.Microsecond || startStall > want+10*time.Microsecond {
		t.Errorf("startStall = %v, want %v", startStall, want)
	}
}
