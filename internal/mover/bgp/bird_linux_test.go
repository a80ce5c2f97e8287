package bgp

// Tests of the bgp mover against a real BGP speaker: bird2 in a router
// namespace, peering with mover processes (helper_linux_test.go) in host
// namespaces on one segment; a client behind the router pings the virtual
// address. The router's RIB is read with birdc through bird's own control
// socket; nothing runs outside the lab's namespaces.
//
//	client c 198.51.100.10 --edge-- r 198.51.100.1 / 192.0.2.1 --br0-- h1 192.0.2.11, h2 192.0.2.12

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/carpd/carpd/internal/lab"
	"github.com/carpd/carpd/internal/lab/birdlab"
	"github.com/carpd/carpd/internal/lab/labtest"
	"github.com/carpd/carpd/internal/probe"
)

var (
	theVIP     = netip.MustParseAddr("203.0.113.50")
	routerCore = netip.MustParseAddr("192.0.2.1")
	routerEdge = netip.MustParsePrefix("198.51.100.1/24")
	clientAddr = netip.MustParsePrefix("198.51.100.10/24")
	// The IPv6 side (opts.v6).
	theVIP6     = netip.MustParseAddr("2001:db8:5::50")
	routerCore6 = netip.MustParseAddr("2001:db8::1")
	routerEdge6 = netip.MustParsePrefix("2001:db8:1::1/64")
	clientAddr6 = netip.MustParsePrefix("2001:db8:1::10/64")
)

const (
	routerAS = 65000
	hostAS   = 65010
)

// hostAddr is the address of host i (0: h1); hostAddr6 its IPv6 one.
func hostAddr(i int) netip.Addr { return netip.AddrFrom4([4]byte{192, 0, 2, byte(11 + i)}) }

func hostAddr6(i int) netip.Addr {
	return netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: byte(0x11 + i)})
}

// labOptions vary the lab: IPv6 sessions and addresses besides IPv4, a
// TCP MD5 password on the IPv4 sessions, the movers' tenure (10 s when 0).
type labOptions struct {
	v6       bool
	password string
	tenure   time.Duration
}

type bgpLab struct {
	t      *testing.T
	opts   labOptions
	lab    *lab.Lab
	r, c   *lab.Host
	hosts  []*lab.Host
	bird   *birdlab.Bird
	prober *probe.Prober
}

// newBGPLab builds the topology with n mover hosts and starts bird in the
// router namespace, peering with each of them.
func newBGPLab(t *testing.T, n int) *bgpLab { return newBGPLabWith(t, n, labOptions{}) }

func newBGPLabWith(t *testing.T, n int, opts labOptions) *bgpLab {
	t.Helper()
	labtest.RequireRoot(t)
	b := &bgpLab{t: t, opts: opts}
	b.lab = labtest.New(t, "bgp")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	var err error
	b.r, err = b.lab.AddHost("r", netip.PrefixFrom(routerCore, 24), netip.PrefixFrom(routerCore6, 64))
	must(err)
	must(b.lab.AddSegment("edge"))
	must(b.r.Attach("edge", "edge", routerEdge, routerEdge6))
	must(b.r.SetForwarding(true))
	b.c, err = b.lab.AddHostOn("edge", "c", clientAddr, clientAddr6)
	must(err)
	must(b.c.AddRoute(netip.MustParsePrefix("0.0.0.0/0"), routerEdge.Addr()))
	must(b.c.AddRoute(netip.MustParsePrefix("::/0"), routerEdge6.Addr()))
	var ns []birdlab.Neighbor
	for i := range n {
		h, err := b.lab.AddHost(fmt.Sprintf("h%d", i+1), netip.PrefixFrom(hostAddr(i), 24), netip.PrefixFrom(hostAddr6(i), 64))
		must(err)
		must(h.AddRoute(routerEdge.Masked(), routerCore))
		must(h.AddRoute(routerEdge6.Masked(), routerCore6))
		b.hosts = append(b.hosts, h)
		ns = append(ns, birdlab.Neighbor{Name: h.Name, Local: routerCore, Addr: hostAddr(i), LocalAS: routerAS, AS: hostAS, Password: opts.password})
		if opts.v6 {
			ns = append(ns, birdlab.Neighbor{Name: h.Name + "6", Local: routerCore6, Addr: hostAddr6(i), LocalAS: routerAS, AS: hostAS})
		}
	}
	b.bird = birdlab.Start(t, b.r, routerCore, ns)
	must(b.c.Do(func() error {
		b.prober, err = probe.Listen()
		return err
	}))
	t.Cleanup(func() { b.prober.Close() })
	return b
}

// birdctl runs birdc on bird's control socket.
func (b *bgpLab) birdctl(args ...string) (string, error) { return b.bird.Ctl(args...) }

// paths returns the next hops of the router's paths for the virtual
// address.
func (b *bgpLab) paths() []string { return b.pathsTo(theVIP) }

func (b *bgpLab) pathsTo(a netip.Addr) []string {
	b.t.Helper()
	hops, err := b.readPaths(a)
	if err != nil {
		b.t.Fatal(err)
	}
	return hops
}

func (b *bgpLab) readPaths(a netip.Addr) ([]string, error) { return b.bird.Paths(a) }

// waitPaths waits until the router has exactly the paths through hops
// (none when empty), and returns how long that took.
func (b *bgpLab) waitPaths(timeout time.Duration, hops ...string) time.Duration {
	b.t.Helper()
	return b.bird.WaitPaths(theVIP, timeout, hops...)
}

func (b *bgpLab) waitPathsTo(a netip.Addr, timeout time.Duration, hops ...string) time.Duration {
	b.t.Helper()
	return b.bird.WaitPaths(a, timeout, hops...)
}

// startMover starts the mover process on host i with the hold time hold.
func (b *bgpLab) startMover(i int, hold time.Duration) *lab.Proc {
	b.t.Helper()
	hc := helperConfig{
		Speaker: Config{
			LocalAS: hostAS, RouterID: hostAddr(i), Hold: hold,
			Peers: []Peer{{Address: routerCore, AS: routerAS, Password: b.opts.password}},
		},
		Iface:    lab.Iface,
		Prefixes: []netip.Prefix{netip.PrefixFrom(theVIP, 32)},
		Tenure:   b.opts.tenure,
	}
	up := "helper: peers up 1 "
	if b.opts.v6 {
		hc.Speaker.Peers = append(hc.Speaker.Peers, Peer{Address: routerCore6, AS: routerAS})
		hc.Prefixes = append(hc.Prefixes, netip.PrefixFrom(theVIP6, 128))
		up = "helper: peers up 2 "
	}
	js, err := json.Marshal(hc)
	if err != nil {
		b.t.Fatal(err)
	}
	h := b.hosts[i]
	p, err := h.Start("mover-"+h.Name, "env", helperEnv+"="+string(js), os.Args[0], "-test.run=^$")
	if err != nil {
		b.t.Fatal(err)
	}
	b.wait(p, up)
	return p
}

// wait waits for the mover's output to contain s.
func (b *bgpLab) wait(p *lab.Proc, s string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := p.WaitOutput(ctx, s); err != nil {
		b.t.Fatalf("%s: waiting for %q: %v\n%s", p.Name, s, err, p.Output())
	}
}

// signal sends sig to the mover and waits for its answer want.
func (b *bgpLab) signal(p *lab.Proc, sig syscall.Signal, want string) {
	b.t.Helper()
	if err := p.Signal(sig); err != nil {
		b.t.Fatal(err)
	}
	b.wait(p, want)
}

// probe pings the virtual address from the client every interval for d
// and returns the results.
func (b *bgpLab) probe(d, interval time.Duration) probe.Stats {
	b.t.Helper()
	return b.probeTo(theVIP, d, interval)
}

func (b *bgpLab) probeTo(a netip.Addr, d, interval time.Duration) probe.Stats {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	rs, err := b.prober.Run(ctx, a, interval, nil)
	if err != nil {
		b.t.Fatal(err)
	}
	return probe.Summarize(rs)
}

// TestBirdAcquireRelease: acquiring announces one path to the router,
// through the holder, and the client reaches the address; releasing
// withdraws it and the client no longer does.
func TestBirdAcquireRelease(t *testing.T) {
	b := newBGPLab(t, 1)
	p := b.startMover(0, 9*time.Second)
	h1 := hostAddr(0).String()
	// The session as the router sees it: the mover's hold time, and no
	// graceful restart (which would keep a dead mover's route).
	out, err := b.birdctl("show", "protocols", "all", "h1")
	if err != nil {
		t.Fatal(err)
	}
	_, caps, _ := strings.Cut(out, "Neighbor capabilities")
	caps, _, _ = strings.Cut(caps, "Session:")
	if !strings.Contains(out, "Established") || !strings.Contains(out, "/9\n") || strings.Contains(caps, "Graceful restart") {
		t.Fatalf("router's session with h1: want Established, hold time 9 s, no graceful restart among the mover's capabilities:\n%s", out)
	}
	if got := b.paths(); len(got) != 0 {
		t.Fatalf("paths before acquiring: %v, want none", got)
	}

	// The mover's Holder sees the address on the interface and its route
	// announced to an established peer.
	b.signal(p, syscall.SIGUSR1, "helper: acquired 1 (here true, missing [], <nil>)")
	took := b.waitPaths(2*time.Second, h1)
	t.Logf("route in the router's RIB %v after acquiring", took.Round(time.Millisecond))
	if held, err := b.hosts[0].Holds(theVIP); err != nil || !held {
		t.Fatalf("h1 holds %v: %v, %v; want true", theVIP, held, err)
	}
	if st := b.probe(time.Second, 10*time.Millisecond); st.Lost != 0 || st.Received == 0 {
		t.Fatalf("client probes while held: %+v, want none lost", st)
	}

	b.signal(p, syscall.SIGUSR2, "helper: released 1 (here false, missing [203.0.113.50/32], <nil>)")
	took = b.waitPaths(2 * time.Second)
	t.Logf("route gone from the router's RIB %v after releasing", took.Round(time.Millisecond))
	if held, err := b.hosts[0].Holds(theVIP); err != nil || held {
		t.Fatalf("h1 holds %v after release: %v, %v; want false", theVIP, held, err)
	}
	if st := b.probe(300*time.Millisecond, 10*time.Millisecond); st.Received != 0 {
		t.Fatalf("client probes after release: %+v, want all lost", st)
	}
}

// TestBirdCrash: a SIGKILLed mover's session closes with its TCP
// connection, and the router drops the route at once, long before the hold
// time (9 s here) would.
func TestBirdCrash(t *testing.T) {
	b := newBGPLab(t, 1)
	p := b.startMover(0, 9*time.Second)
	b.signal(p, syscall.SIGUSR1, "helper: acquired 1")
	b.waitPaths(2*time.Second, hostAddr(0).String())
	start := time.Now()
	if err := p.Kill(); err != nil {
		t.Fatal(err)
	}
	b.waitPaths(time.Second)
	t.Logf("route withdrawn %v after SIGKILL (hold time 9 s)", time.Since(start).Round(time.Millisecond))
}

// TestBirdSilent: a mover that falls silent (SIGSTOP: the kernel keeps
// the TCP connection, no keepalive leaves) loses its route when the
// router's hold timer runs out, the hold time the mover asked for (3 s).
func TestBirdSilent(t *testing.T) {
	const hold = 3 * time.Second
	b := newBGPLab(t, 1)
	p := b.startMover(0, hold)
	b.signal(p, syscall.SIGUSR1, "helper: acquired 1")
	b.waitPaths(2*time.Second, hostAddr(0).String())
	if err := p.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	defer p.Signal(syscall.SIGCONT)
	took := b.waitPaths(hold + time.Second)
	t.Logf("route withdrawn %v after SIGSTOP (hold time %v)", took.Round(time.Millisecond), hold)
	// The last keepalive left at most a keepalive interval (hold/3)
	// before the stop: the hold timer cannot have run out sooner.
	if min := hold - hold/3 - 100*time.Millisecond; took < min {
		t.Fatalf("route withdrawn %v after SIGSTOP, before the hold timer could run out (%v)", took, min)
	}
}

// TestBirdMove moves the address between the movers of two hosts, ten
// times, break-before-make as a planned move under etcd is (the holder
// releases, then the successor acquires): the router never has two paths
// (sampled with birdc as fast as it answers), and the client's outage,
// measured with 10 ms probes, stays within the 300 ms the issue sets for a
// planned stop.
func TestBirdMove(t *testing.T) {
	const moves = 10
	b := newBGPLab(t, 2)
	procs := []*lab.Proc{b.startMover(0, 9*time.Second), b.startMover(1, 9*time.Second)}
	acquired, released := [2]int{}, [2]int{}
	acquire := func(i int) {
		acquired[i]++
		b.signal(procs[i], syscall.SIGUSR1, fmt.Sprintf("helper: acquired %d (", acquired[i]))
	}
	release := func(i int) {
		released[i]++
		b.signal(procs[i], syscall.SIGUSR2, fmt.Sprintf("helper: released %d (", released[i]))
	}
	acquire(0)
	b.waitPaths(2*time.Second, hostAddr(0).String())

	// The sampler counts the router's paths until the moves are done.
	samples := make(chan []int, 1)
	stop := make(chan struct{})
	go func() {
		var counts []int
		defer func() { samples <- counts }()
		for {
			select {
			case <-stop:
				return
			default:
			}
			hops, err := b.readPaths(theVIP)
			if err != nil {
				t.Error(err)
				return
			}
			counts = append(counts, len(hops))
		}
	}()
	// Stopped before the lab goes, also when the test fails early.
	stopSampler := sync.OnceValue(func() []int { close(stop); return <-samples })
	defer stopSampler()

	// One run of probes covers every move; each move's outage is read in
	// its window, from 200 ms before the release to 300 ms after the
	// router has the new path.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan []probe.Result, 1)
	go func() {
		rs, err := b.prober.Run(ctx, theVIP, 10*time.Millisecond, nil)
		if err != nil {
			t.Error(err)
		}
		done <- rs
	}()
	type window struct{ from, to time.Time }
	var windows []window
	for k := range moves {
		from, to := k%2, (k+1)%2
		time.Sleep(200 * time.Millisecond)
		w := window{from: time.Now().Add(-200 * time.Millisecond)}
		release(from)
		acquire(to)
		b.waitPaths(2*time.Second, hostAddr(to).String())
		time.Sleep(300 * time.Millisecond)
		w.to = time.Now()
		windows = append(windows, w)
	}
	cancel()
	results := <-done
	var outages []time.Duration
	for k, w := range windows {
		var in []probe.Result
		for _, r := range results {
			if !r.Sent.Before(w.from) && r.Sent.Before(w.to) {
				in = append(in, r)
			}
		}
		st := probe.Summarize(in)
		if len(in) == 0 || in[0].Lost || !st.Recovered {
			t.Fatalf("move %d: the client did not reach %v before and after the move: %+v", k+1, theVIP, st)
		}
		// The target for a planned stop, etcd's part included.
		if st.Outage > 300*time.Millisecond {
			t.Errorf("move %d: the client's outage %v, want at most 300 ms", k+1, st.Outage)
		}
		outages = append(outages, st.Outage)
	}
	counts := stopSampler()
	hist := map[int]int{}
	for _, n := range counts {
		hist[n]++
	}
	slices.Sort(outages)
	t.Logf("client outage over %d moves: median %v, min %v, max %v", moves, outages[moves/2], outages[0], outages[moves-1])
	t.Logf("router RIB samples: %d; by number of paths: %v", len(counts), hist)
	for n, c := range hist {
		if n > 1 {
			t.Errorf("%d samples of the router's RIB show %d paths for %v, want at most 1", c, n, theVIP)
		}
	}
}

// TestBirdIPv6AndPassword: an IPv6 address is announced as a /128 over
// the IPv6 session, next hop the host's IPv6 address, and the IPv4 session
// runs with a TCP MD5 password (bird refuses the session without it).
func TestBirdIPv6AndPassword(t *testing.T) {
	b := newBGPLabWith(t, 1, labOptions{v6: true, password: "s3cret"})
	p := b.startMover(0, 9*time.Second)
	b.signal(p, syscall.SIGUSR1, "helper: acquired 1")
	b.waitPaths(2*time.Second, hostAddr(0).String())
	b.waitPathsTo(theVIP6, 2*time.Second, hostAddr6(0).String())
	for _, a := range []netip.Addr{theVIP, theVIP6} {
		if st := b.probeTo(a, 500*time.Millisecond, 10*time.Millisecond); st.Lost != 0 || st.Received == 0 {
			t.Fatalf("client probes to %v while held: %+v, want none lost", a, st)
		}
	}
	b.signal(p, syscall.SIGUSR2, "helper: released 1")
	b.waitPaths(2 * time.Second)
	b.waitPathsTo(theVIP6, 2*time.Second)
}

// TestBirdClose: closing the speaker (carpd stopping) ends the session
// with the router, which drops the route at once.
func TestBirdClose(t *testing.T) {
	b := newBGPLab(t, 1)
	p := b.startMover(0, 9*time.Second)
	b.signal(p, syscall.SIGUSR1, "helper: acquired 1")
	b.waitPaths(2*time.Second, hostAddr(0).String())
	start := time.Now()
	b.signal(p, syscall.SIGTERM, "helper: closed")
	b.waitPaths(time.Second)
	t.Logf("route withdrawn %v after SIGTERM (hold time 9 s)", time.Since(start).Round(time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	select {
	case <-p.Done():
	case <-ctx.Done():
		t.Fatalf("the mover did not exit after closing its speaker")
	}
}

// TestBirdFence: a mover that acquired under a tenure and is not renewed
// (a wedged event loop: the speaker's own goroutines keep the session up)
// withdraws the route at the tenure's deadline, and the session stays.
func TestBirdFence(t *testing.T) {
	const tenure = 2 * time.Second
	b := newBGPLabWith(t, 1, labOptions{tenure: tenure})
	p := b.startMover(0, 9*time.Second)
	start := time.Now()
	b.signal(p, syscall.SIGUSR1, "helper: acquired 1")
	b.waitPaths(2*time.Second, hostAddr(0).String())
	b.waitPaths(tenure + time.Second)
	took := time.Since(start)
	t.Logf("route withdrawn %v after the acquisition, tenure %v", took.Round(time.Millisecond), tenure)
	if took < tenure {
		t.Fatalf("route withdrawn %v after the acquisition, before the deadline (%v)", took, tenure)
	}
	out, err := b.birdctl("show", "protocols", "h1")
	if err != nil || !strings.Contains(out, "Established") {
		t.Fatalf("the session did not stay up: %v\n%s", err, out)
	}
}
