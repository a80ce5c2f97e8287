package e2e

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/carpd/carpd/internal/lab"
	"github.com/carpd/carpd/internal/lab/labtest"
	"github.com/carpd/carpd/internal/probe"
)

// Many vhids in one carpd: two hosts share 32 vhids on eth0, one VIP each,
// and split them by advskew, as an active-active pair does. Both run with
// preempt on, so the split is deterministic: host A is preferred (advskew
// 100 against 200) for vhids 1-16, host B for 17-32.

const (
	mvCount = 32
	mvHalf  = mvCount / 2
)

var (
	mvAddrA      = netip.MustParsePrefix("192.0.2.21/24")
	mvAddrB      = netip.MustParsePrefix("192.0.2.22/24")
	mvAddrClient = netip.MustParsePrefix("192.0.2.100/24")
)

// mvVIP is the virtual address of vhid n: 192.0.2.(100+n), clear of the
// hosts' own addresses.
func mvVIP(n int) netip.Addr { return netip.AddrFrom4([4]byte{192, 0, 2, byte(100 + n)}) }

// mvBound is the time within which the survivor must hold all 32 VIPs after
// the other host dies: its master-down interval for the vhids it backs up
// (3*advbase + advskew/256 with advbase 1 and advskew 200) plus 1 s.
const mvBound = 3*time.Second + 200*time.Second/256 + time.Second

// tomlVHID is one [[vhid]] table of a carpd TOML configuration.
type tomlVHID struct {
	Iface    string
	VHID     int
	AdvSkew  int
	Addrs    []netip.Prefix
	Password string
	Peer     netip.Addr // unicast peer (peer or peer6); the zero Addr means multicast
	// VRRPInterval > 0 makes the vhid VRRPv3 (carpver 3) with that
	// interval (centiseconds) and priority VRRPPriority; AdvSkew and
	// Password are then not written.
	VRRPInterval, VRRPPriority int
}

// writeTOML writes a carpd TOML configuration with the global preempt
// setting and the vhids to dir/name and returns its path.
func writeTOML(t testing.TB, dir, name string, preempt bool, vhids []tomlVHID) string {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "preempt = %v\n", preempt)
	for _, v := range vhids {
		if v.VRRPInterval > 0 {
			fmt.Fprintf(&b, "\n[[vhid]]\ninterface = %q\nvhid = %d\ncarpver = 3\nvrrp-priority = %d\nvrrp-interval = %d\n",
				v.Iface, v.VHID, v.VRRPPriority, v.VRRPInterval)
		} else {
			fmt.Fprintf(&b, "\n[[vhid]]\ninterface = %q\nvhid = %d\nadvskew = %d\n", v.Iface, v.VHID, v.AdvSkew)
		}
		if v.Password != "" && v.VRRPInterval == 0 {
			fmt.Fprintf(&b, "password = %q\n", v.Password)
		}
		switch {
		case v.Peer.Is4():
			fmt.Fprintf(&b, "peer = %q\n", v.Peer.String())
		case v.Peer.Is6():
			fmt.Fprintf(&b, "peer6 = %q\n", v.Peer.String())
		}
		var as []string
		for _, a := range v.Addrs {
			as = append(as, fmt.Sprintf("%q", a.String()))
		}
		fmt.Fprintf(&b, "addresses = [%s]\n", strings.Join(as, ", "))
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// mvConfig is host A's (first = true) or host B's configuration.
func mvConfig(first bool) []tomlVHID {
	var vs []tomlVHID
	for n := 1; n <= mvCount; n++ {
		// A prefers the first half, B the second.
		skew := 200
		if (n <= mvHalf) == first {
			skew = 100
		}
		vs = append(vs, tomlVHID{
			Iface: lab.Iface, VHID: n, AdvSkew: skew, Password: "many",
			Addrs: []netip.Prefix{netip.PrefixFrom(mvVIP(n), 32)},
		})
	}
	return vs
}

// mvRange returns the vhids from..to.
func mvRange(from, to int) []int {
	var ns []int
	for n := from; n <= to; n++ {
		ns = append(ns, n)
	}
	return ns
}

// heldVHIDs returns, in ascending order, the vhids 1..count whose VIP
// (vip(n)) the host's interface iface holds.
func heldVHIDs(t testing.TB, h *lab.Host, iface string, count int, vip func(int) netip.Addr) []int {
	t.Helper()
	ps, err := h.AddrsOn(iface)
	if err != nil {
		t.Fatal(err)
	}
	held := map[netip.Addr]bool{}
	for _, p := range ps {
		held[p.Addr()] = true
	}
	var ns []int
	for n := 1; n <= count; n++ {
		if held[vip(n)] {
			ns = append(ns, n)
		}
	}
	return ns
}

// mvPair is the two carpd hosts and the client.
type mvPair struct {
	t          *testing.T
	a, b, cl   *lab.Host
	dir        string
	cfgA, cfgB string

	mu    sync.Mutex
	procs map[*lab.Host][]*lab.Proc
}

func newMVPair(t *testing.T) *mvPair {
	t.Helper()
	requireRoot(t)
	l := labtest.New(t, "carpmv")
	var err error
	p := &mvPair{t: t, procs: map[*lab.Host][]*lab.Proc{}}
	for _, h := range []struct {
		name string
		addr netip.Prefix
		dst  **lab.Host
	}{{"hosta", mvAddrA, &p.a}, {"hostb", mvAddrB, &p.b}, {"client", mvAddrClient, &p.cl}} {
		if *h.dst, err = l.AddHost(h.name, h.addr); err != nil {
			t.Fatal(err)
		}
	}
	p.dir = t.TempDir()
	p.cfgA = writeTOML(t, p.dir, "hosta.toml", true, mvConfig(true))
	p.cfgB = writeTOML(t, p.dir, "hostb.toml", true, mvConfig(false))
	t.Cleanup(func() {
		if t.Failed() {
			p.mu.Lock()
			defer p.mu.Unlock()
			t.Logf("MACs: hosta %v, hostb %v, client %v", p.a.MAC, p.b.MAC, p.cl.MAC)
			for _, h := range []*lab.Host{p.a, p.b} {
				for i, pr := range p.procs[h] {
					t.Logf("carpd #%d on %s, its transitions, warnings and errors:\n%s", i+1, h.Name, strings.Join(mvNotable(pr.Output()), "\n"))
				}
			}
		}
	})
	return p
}

// mvNotable returns the lines of a carpd log that say what a failure
// needs (transitions, warnings, errors), at most 120 of the last: the
// whole log of 32 vhids hides them.
func mvNotable(out string) []string {
	var ls []string
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, " -> ") || strings.Contains(l, "level=WARN") || strings.Contains(l, "level=ERROR") {
			ls = append(ls, l)
		}
	}
	return tail(strings.Join(ls, "\n"), 120)
}

// mvForeignARP returns the ARP frames of the capture at path from hw whose
// sender address is one of vhids from..to's VIPs: frames that put hw's
// host at them, which a host that does not hold them must never send.
func mvForeignARP(t testing.TB, path string, hw string, from, to int) []string {
	t.Helper()
	out, err := exec.Command("tcpdump", "-r", path, "-n", "-e", "-tttt", "arp").Output()
	if err != nil {
		t.Errorf("reading the ARP capture: tcpdump -r %s: %v", path, err)
		return nil
	}
	var ls []string
	for _, l := range strings.Split(string(out), "\n") {
		if !strings.Contains(l, hw) {
			continue
		}
		if a := arpSender(l); a.IsValid() && a.Compare(mvVIP(from)) >= 0 && a.Compare(mvVIP(to)) <= 0 {
			ls = append(ls, l)
		}
	}
	return ls
}

// arpSender returns the sender protocol address of an ARP frame as
// `tcpdump -n` prints it ("Request who-has T tell S, ..." or "Reply S
// is-at ..."), or the zero Addr.
func arpSender(line string) netip.Addr {
	var s string
	if _, after, ok := strings.Cut(line, " tell "); ok {
		s, _, _ = strings.Cut(after, ",")
	} else if _, after, ok := strings.Cut(line, "Reply "); ok {
		s, _, _ = strings.Cut(after, " ")
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}
	}
	return a
}

func (p *mvPair) start(h *lab.Host) *lab.Proc {
	p.t.Helper()
	cfg := p.cfgA
	if h == p.b {
		cfg = p.cfgB
	}
	pr, err := h.Start("carpd", append([]string{carpdBin, "--config", cfg}, ownFiles(cfg)...)...)
	if err != nil {
		p.t.Fatal(err)
	}
	p.mu.Lock()
	p.procs[h] = append(p.procs[h], pr)
	p.mu.Unlock()
	return pr
}

// held returns the vhids whose VIP each host holds.
func (p *mvPair) held() (a, b []int) {
	return heldVHIDs(p.t, p.a, lab.Iface, mvCount, mvVIP), heldVHIDs(p.t, p.b, lab.Iface, mvCount, mvVIP)
}

// waitHeld polls until host A holds exactly wantA and host B exactly wantB,
// and returns how long it took.
func (p *mvPair) waitHeld(wantA, wantB []int, timeout time.Duration) (time.Duration, bool) {
	start := time.Now()
	for {
		a, b := p.held()
		if slices.Equal(a, wantA) && slices.Equal(b, wantB) {
			return time.Since(start), true
		}
		if time.Since(start) > timeout {
			return time.Since(start), false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// steady samples the holders for d and fails at the first sample that is
// not exactly wantA on A and wantB on B.
func (p *mvPair) steady(wantA, wantB []int, d time.Duration, when string) {
	p.t.Helper()
	end := time.Now().Add(d)
	samples := 0
	for time.Now().Before(end) {
		a, b := p.held()
		if !slices.Equal(a, wantA) || !slices.Equal(b, wantB) {
			p.t.Fatalf("%s: host A holds the VIPs of vhids %v, host B %v; want %v and %v", when, a, b, wantA, wantB)
		}
		samples++
		time.Sleep(200 * time.Millisecond)
	}
	if samples < 5 {
		p.t.Fatalf("%s: only %d samples in %v: the machine is too slow to tell", when, samples, d)
	}
}

// pingEach pings every VIP from the client at once, every 100 ms for d, and
// returns each VIP's statistics by vhid.
func (p *mvPair) pingEach(d time.Duration) map[int]probe.Stats {
	p.t.Helper()
	var (
		mu   sync.Mutex
		wg   sync.WaitGroup
		errs []error
	)
	stats := map[int]probe.Stats{}
	for n := 1; n <= mvCount; n++ {
		var pr *probe.Prober
		if err := p.cl.Do(func() (err error) { pr, err = probe.Listen(); return err }); err != nil {
			p.t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer pr.Close()
			ctx, cancel := context.WithTimeout(context.Background(), d)
			defer cancel()
			rs, err := pr.Run(ctx, mvVIP(n), 100*time.Millisecond, nil)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, fmt.Errorf("pinging %v: %w", mvVIP(n), err))
			}
			stats[n] = probe.Summarize(rs)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		p.t.Error(err)
	}
	return stats
}

// checkReachable pings every VIP for 1.5 s and fails unless each answered
// every probe and the client's ARP entry for vhid n's VIP is the MAC of
// owner(n).
func (p *mvPair) checkReachable(owner func(n int) *lab.Host, when string) {
	p.t.Helper()
	for n, st := range p.pingEach(1500 * time.Millisecond) {
		if st.Sent < 5 || st.Lost != 0 {
			p.t.Errorf("%s: pings to %v (vhid %d): sent %d, lost %d; want >= 5 sent, none lost", when, mvVIP(n), n, st.Sent, st.Lost)
		}
	}
	for n := 1; n <= mvCount; n++ {
		mac, state, err := p.cl.Neigh(mvVIP(n))
		if err != nil {
			p.t.Fatal(err)
		}
		if want := owner(n); mac.String() != want.MAC.String() {
			p.t.Errorf("%s: the client's ARP entry for %v (vhid %d) is %v (%s), want %s's %v", when, mvVIP(n), n, mac, state, want.Name, want.MAC)
		}
	}
}

// waitARP waits, at most timeout, until the client's ARP entry of every
// VIP points at its owner (checkReachable then fails on those that do not).
func (p *mvPair) waitARP(owner func(n int) *lab.Host, timeout time.Duration) {
	p.t.Helper()
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		ok := true
		for n := 1; n <= mvCount && ok; n++ {
			mac, _, err := p.cl.Neigh(mvVIP(n))
			ok = err == nil && mac.String() == owner(n).MAC.String()
		}
		if ok {
			return
		}
	}
}

// mvTransitions counts, per vhid, the log lines of transitions that end with
// suffix, such as "BACKUP -> MASTER (preempting a slower master)".
func mvTransitions(out, suffix string) map[int]int {
	return mvTransitionsIf(out, func(l string) bool { return strings.HasSuffix(l, suffix) })
}

// mvTransitionsIf counts, per vhid, the log lines of transitions for which
// keep is true.
func mvTransitionsIf(out string, keep func(line string) bool) map[int]int {
	counts := map[int]int{}
	for _, l := range transitions(out) {
		var n int
		if !keep(l) {
			continue
		}
		if _, err := fmt.Sscanf(l, "carp: %d@", &n); err == nil {
			counts[n]++
		}
	}
	return counts
}

// TestManyVHIDsSplit: 32 vhids in one carpd on each of two hosts, split
// 16/16 by advskew with preempt on. Steady: each host holds exactly its 16
// VIPs and the client reaches all 32 at the right MAC. Host A dies (SIGKILL,
// link down, addresses flushed): host B holds all 32 within its master-down
// interval + 1 s and the client reaches them all at B. Host A returns and
// takes back exactly its 16 by preemption, B keeps the other 16.
func TestManyVHIDsSplit(t *testing.T) {
	t.Parallel() // bounds of seconds at advbase 1: see parallel_test.go
	p := newMVPair(t)
	firstHalf, secondHalf, all := mvRange(1, mvHalf), mvRange(mvHalf+1, mvCount), mvRange(1, mvCount)
	p.start(p.a)
	pb := p.start(p.b)
	if took, ok := p.waitHeld(firstHalf, secondHalf, 20*time.Second); !ok {
		a, b := p.held()
		t.Fatalf("after %v host A holds %v, host B %v; want the split 1-%d / %d-%d", took, a, b, mvHalf, mvHalf+1, mvCount)
	}
	p.steady(firstHalf, secondHalf, 5*time.Second, "steady state")
	owner := func(n int) *lab.Host {
		if n <= mvHalf {
			return p.a
		}
		return p.b
	}
	p.checkReachable(owner, "steady state")

	// Host A dies as in a power cut, at a random point of its advert
	// interval (1 + 100/256 s).
	time.Sleep(time.Duration(rand.Int64N(int64(1400 * time.Millisecond))))
	p.mu.Lock()
	pa := p.procs[p.a][0]
	p.mu.Unlock()
	bLog := len(pb.Output())
	killed := time.Now()
	powerCut(t, p.a, pa)
	if _, ok := p.waitHeld(nil, all, mvBound+10*time.Second); !ok {
		a, b := p.held()
		t.Fatalf("after host A died, host A holds %v, host B %v; want B to hold all %d", a, b, mvCount)
	}
	took := time.Since(killed)
	t.Logf("host B holds all %d VIPs %v after host A died", mvCount, took.Round(time.Millisecond))
	if took > mvBound {
		t.Errorf("host B took all %d VIPs %v after host A died, want within %v", mvCount, took, mvBound)
	}
	if got := mvTransitions(pb.Output()[bLog:], "BACKUP -> MASTER (master timed out)"); len(got) != mvHalf {
		t.Errorf("host B's takeovers (master timed out) by vhid = %v, want one for each of vhids 1-%d", got, mvHalf)
	}
	// The gratuitous ARPs have reached the client: its entries point at B.
	p.waitARP(func(int) *lab.Host { return p.b }, 5*time.Second)
	p.checkReachable(func(int) *lab.Host { return p.b }, "after host A died")

	// Host A comes back and takes its 16 back.
	if err := p.a.LinkUp(); err != nil {
		t.Fatal(err)
	}
	if err := p.a.AddAddr(mvAddrA); err != nil {
		t.Fatal(err)
	}
	// The client's ARP traffic from here on: host A, a backup of vhids
	// 17-32, must never tell the link that their VIPs are at its MAC.
	arp := startPcap(t, p.cl.NS, lab.Iface, p.dir, "arp")
	back := time.Now()
	pa = p.start(p.a)
	// A waits for B's adverts (at most 1.8 s apart) and preempts at once.
	if took, ok := p.waitHeld(firstHalf, secondHalf, 15*time.Second); !ok {
		a, b := p.held()
		t.Fatalf("%v after host A returned, host A holds %v, host B %v; want the split back", took, a, b)
	}
	t.Logf("split restored %v after host A's carpd started", time.Since(back).Round(time.Millisecond))
	p.steady(firstHalf, secondHalf, 4*time.Second, "after host A returned")
	preempted := mvTransitions(pa.Output(), "BACKUP -> MASTER (preempting a slower master)")
	want := map[int]int{}
	for _, n := range firstHalf {
		want[n] = 1
	}
	if !maps.Equal(preempted, want) {
		t.Errorf("host A's preemptions by vhid = %v, want one for each of vhids 1-%d and none else", preempted, mvHalf)
	}
	if got := mvTransitions(pa.Output(), "-> MASTER (master timed out)"); len(got) != 0 {
		t.Errorf("returning host A timed out as master on vhids %v, want none (B advertises all of them)", got)
	}
	if got := mvTransitions(pb.Output()[bLog:], "MASTER -> BACKUP (more frequent advertisement received)"); !maps.Equal(got, want) {
		t.Errorf("host B's yields to host A by vhid = %v, want one for each of vhids 1-%d and none else", got, mvHalf)
	}
	for n := range mvTransitionsIf(pa.Output(), func(l string) bool { return strings.Contains(l, "-> MASTER") }) {
		if n > mvHalf {
			t.Errorf("returning host A went MASTER on vhid %d; want none of vhids %d-%d (B is preferred and advertises them)", n, mvHalf+1, mvCount)
		}
	}
	p.checkReachable(owner, "after host A returned")
	arp.stop(t)
	if ls := mvForeignARP(t, arp.path, p.a.MAC.String(), mvHalf+1, mvCount); len(ls) > 0 {
		t.Errorf("after host A returned, the client saw %d ARP frames from host A (%v) about vhids %d-%d's VIPs, held by B: %q",
			len(ls), p.a.MAC, mvHalf+1, mvCount, ls[:min(len(ls), 20)])
	}
}

// TestARPSender: the sender address of ARP frames as tcpdump -n -e prints
// them (lines of a capture of TestManyVHIDsSplit).
func TestARPSender(t *testing.T) {
	for _, c := range []struct{ line, want string }{
		{"2026-12-07 17:22:47.504124 d2:7a:bb:3e:56:8d > ff:ff:ff:ff:ff:ff, ethertype ARP (0x0806), length 60: Request who-has 192.0.2.101 tell 192.0.2.101, length 46", "192.0.2.101"},
		{"2026-12-07 17:22:47.504141 d2:7a:bb:3e:56:8d > ff:ff:ff:ff:ff:ff, ethertype ARP (0x0806), length 60: Reply 192.0.2.117 is-at d2:7a:bb:3e:56:8d, length 46", "192.0.2.117"},
		{"2026-12-07 17:22:48.000000 76:de:06:ed:ab:46 > ff:ff:ff:ff:ff:ff, ethertype ARP (0x0806), length 42: Request who-has 192.0.2.117 tell 192.0.2.100, length 28", "192.0.2.100"},
		{"reading from file x.pcap, link-type EN10MB (Ethernet)", ""},
	} {
		got := arpSender(c.line)
		if (c.want == "" && got.IsValid()) || (c.want != "" && got.String() != c.want) {
			t.Errorf("arpSender(%q) = %v, want %q", c.line, got, c.want)
		}
	}
}
