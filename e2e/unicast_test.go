package e2e

import (
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/carpd/carpd/internal/lab"
	"github.com/carpd/carpd/internal/lab/labtest"
)

// Unicast peers across a router, after FreeBSD's tests/sys/netinet/carp.sh
// unicast_v4: host A in 203.0.113.0/24 on br0, host B at 198.51.100.224/24
// (the address that exposed FreeBSD's byte-order bug in the peer check) on
// the segment "far", a router between them, each host with a default route
// through it. Each carpd has vhid 1 with 192.0.2.1/32 and the other host as
// its peer, so adverts are unicast, forwarded, and arrive with TTL 254.

var (
	uniA       = netip.MustParsePrefix("203.0.113.10/24")
	uniB       = netip.MustParsePrefix("198.51.100.224/24")
	uniC       = netip.MustParsePrefix("198.51.100.3/24")
	uniRouterA = netip.MustParsePrefix("203.0.113.1/24")
	uniRouterB = netip.MustParsePrefix("198.51.100.1/24")
	uniVIP     = netip.MustParseAddr("192.0.2.1")
	uniGroup   = netip.MustParseAddr("224.0.0.18")
)

type uniLab struct {
	t         *testing.T
	a, b, c   *lab.Host
	router    *lab.Host
	vip       netip.Addr // uniVIP, or the IPv6 test's
	dir       string
	mu        sync.Mutex
	procs     map[string]*lab.Proc
	procOrder []string
}

func newUniLab(t *testing.T) *uniLab {
	t.Helper()
	requireRoot(t)
	l := labtest.New(t, "carpuni")
	var err error
	u := &uniLab{t: t, vip: uniVIP, dir: t.TempDir(), procs: map[string]*lab.Proc{}}
	if err := l.AddSegment("far"); err != nil {
		t.Fatal(err)
	}
	if u.a, err = l.AddHost("hosta", uniA); err != nil {
		t.Fatal(err)
	}
	if u.router, err = l.AddHost("router", uniRouterA); err != nil {
		t.Fatal(err)
	}
	if err := u.router.Attach("far", "eth1", uniRouterB); err != nil {
		t.Fatal(err)
	}
	if err := u.router.SetForwarding(true); err != nil {
		t.Fatal(err)
	}
	if u.b, err = l.AddHostOn("far", "hostb", uniB); err != nil {
		t.Fatal(err)
	}
	if u.c, err = l.AddHostOn("far", "hostc", uniC); err != nil {
		t.Fatal(err)
	}
	for _, h := range []struct {
		h  *lab.Host
		gw netip.Prefix
	}{{u.a, uniRouterA}, {u.b, uniRouterB}, {u.c, uniRouterB}} {
		if err := h.h.AddRoute(netip.MustParsePrefix("0.0.0.0/0"), h.gw.Addr()); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		if t.Failed() {
			u.mu.Lock()
			defer u.mu.Unlock()
			for _, name := range u.procOrder {
				t.Logf("%s:\n%s", name, u.procs[name].Output())
			}
		}
	})
	return u
}

// start starts carpd on h with vhid 1 (192.0.2.1/32, password "unicast")
// and the given advskew, unicast peer and preempt setting, logging at
// debug level.
func (u *uniLab) start(h *lab.Host, skew int, peer netip.Addr, preempt bool) *lab.Proc {
	u.t.Helper()
	cfg := writeTOML(u.t, u.dir, h.Name+".toml", preempt, []tomlVHID{{
		Iface: lab.Iface, VHID: 1, AdvSkew: skew, Password: "unicast", Peer: peer,
		Addrs: []netip.Prefix{netip.PrefixFrom(u.vip, u.vip.BitLen())},
	}})
	p, err := h.Start("carpd", append([]string{carpdBin, "--config", cfg, "--log-level", "debug"}, ownFiles(cfg)...)...)
	if err != nil {
		u.t.Fatal(err)
	}
	u.mu.Lock()
	name := fmt.Sprintf("carpd on %s (#%d)", h.Name, len(u.procOrder)+1)
	u.procs[name] = p
	u.procOrder = append(u.procOrder, name)
	u.mu.Unlock()
	return p
}

// holders returns which of A and B hold the VIP.
func (u *uniLab) holders() []string {
	u.t.Helper()
	var names []string
	for _, h := range []*lab.Host{u.a, u.b} {
		ok, err := h.Holds(u.vip)
		if err != nil {
			u.t.Fatal(err)
		}
		if ok {
			names = append(names, h.Name)
		}
	}
	return names
}

// waitSole polls until h is the only one of A and B to hold the VIP.
func (u *uniLab) waitSole(h *lab.Host, timeout time.Duration) (time.Duration, bool) {
	start := time.Now()
	for {
		if got := u.holders(); len(got) == 1 && got[0] == h.Name {
			return time.Since(start), true
		}
		if time.Since(start) > timeout {
			return time.Since(start), false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// steady fails unless h is the only one of A and B to hold the VIP at every
// sample over d.
func (u *uniLab) steady(h *lab.Host, d time.Duration, when string) {
	u.t.Helper()
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		if got := u.holders(); len(got) != 1 || got[0] != h.Name {
			u.t.Fatalf("%s: the VIP is held by %v, want only %s", when, got, h.Name)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// uniDrops returns carpd's debug lines "carp: dropped advert" with the given
// reason.
func uniDrops(out, reason string) []string {
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "carp: dropped advert") && strings.Contains(l, "reason="+reason+" ") {
			lines = append(lines, l)
		}
	}
	return lines
}

// TestUnicastPeersAcrossRouter mirrors FreeBSD's unicast_v4:
//
//  1. B starts alone and becomes MASTER; A (advskew 100, better than B's
//     200, preempt off) joins and stays BACKUP, accepting B's adverts that
//     come from 198.51.100.224 across the router with TTL 254. For 10 s
//     exactly one host holds the VIP and the logs show one master.
//  2. C, on B's segment, runs carpd with vhid 1, the right password, peer =
//     B and advskew 0 with preempt on: it is not B's peer, so B drops its
//     adverts (debug log "carp: dropped advert" reason=badpeer, naming C's
//     address as the source) and stays MASTER.
//  3. The master B dies (SIGKILL, link down, addresses flushed): A takes
//     over within its master-down interval + 1 s.
//
// Captures on both router interfaces check that every advert is unicast
// to the peer (none to 224.0.0.18), that B's adverts reach A's side with
// TTL 254, and that A's adverts after the takeover go to 198.51.100.224.
func TestUnicastPeersAcrossRouter(t *testing.T) {
	t.Parallel() // bounds of seconds at advbase 1: see parallel_test.go
	u := newUniLab(t)
	capA := captureAdverts(t, u.router, "eth0", u.dir) // A's side
	capB := captureAdverts(t, u.router, "eth1", u.dir) // B's and C's side

	// 1. B first, then A.
	pb := u.start(u.b, 200, uniA.Addr(), false)
	if err := waitOutput(pb, "BACKUP -> MASTER (master timed out)", 15*time.Second); err != nil {
		t.Fatal(err)
	}
	pa := u.start(u.a, 100, uniB.Addr(), false)
	if err := waitOutput(pa, "INIT -> BACKUP", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if _, ok := u.waitSole(u.b, 5*time.Second); !ok {
		t.Fatalf("after A joined, the VIP is held by %v, want only hostb", u.holders())
	}
	u.steady(u.b, 10*time.Second, "A and B settled")
	if tr := transitions(pa.Output()); len(tr) != 1 || !strings.Contains(tr[0], "INIT -> BACKUP") {
		t.Errorf("A's transitions = %q, want only INIT -> BACKUP: it must accept B's routed adverts", tr)
	}
	if tr := transitions(pb.Output()); len(tr) != 2 || !strings.Contains(tr[1], "BACKUP -> MASTER (master timed out)") {
		t.Errorf("B's transitions = %q, want INIT -> BACKUP, BACKUP -> MASTER", tr)
	}
	if n := strings.Count(pa.Output(), "carp: dropped advert"); n != 0 {
		t.Errorf("A dropped %d adverts, want none:\n%s", n, pa.Output())
	}

	// 2. C claims the vhid towards B.
	capAtB := captureAdverts(t, u.b, "eth0", u.dir)
	pc := u.start(u.c, 0, uniB.Addr(), true)
	if err := waitOutput(pc, "BACKUP -> MASTER", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	// C advertises every 1 s; give B five of them.
	end := time.Now().Add(5 * time.Second)
	for time.Now().Before(end) {
		if ok, err := u.b.Holds(uniVIP); err != nil || !ok {
			t.Fatalf("B lost the VIP while C advertised to it (holds %v, %v)", ok, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	badpeer := uniDrops(pb.Output(), "badpeer")
	fromC := 0
	for _, l := range badpeer {
		if strings.Contains(l, "from="+uniC.Addr().String()+" ") {
			fromC++
		}
	}
	if len(badpeer) < 3 {
		t.Errorf("B logged %d badpeer drops while C advertised to it for 5 s, want >= 3:\n%s", len(badpeer), pb.Output())
	} else if fromC < len(badpeer) {
		t.Errorf("B's badpeer drops do not all name C's address %v as the source: %q", uniC.Addr(), badpeer)
	}
	if tr := transitions(pb.Output()); len(tr) != 2 {
		t.Errorf("B's transitions after C advertised = %q, want only INIT -> BACKUP, BACKUP -> MASTER", tr)
	}
	if tr := transitions(pa.Output()); len(tr) != 1 {
		t.Errorf("A's transitions after C advertised = %q, want only INIT -> BACKUP", tr)
	}
	if err := pc.Kill(); err != nil {
		t.Fatal(err)
	}
	// C's adverts reached B directly (the bridge does not show them to
	// the router): from C to B, TTL 255, none to the group.
	var fromCAtB int
	for _, a := range capAtB.stop(t) {
		switch {
		case a.Dst.IsMulticast():
			t.Errorf("at B: an advert from %v to the multicast group %v", a.Src, a.Dst)
		case a.Src == uniC.Addr() && a.Dst == uniB.Addr() && a.TTL == 255:
			fromCAtB++
		}
	}
	if fromCAtB < 3 {
		t.Errorf("at B: %d adverts from C with TTL 255, want >= 3", fromCAtB)
	}

	// 3. The master B dies; A takes over.
	killed := time.Now()
	powerCut(t, u.b, pb)
	bound := 3*time.Second + 100*time.Second/256 + time.Second
	if _, ok := u.waitSole(u.a, bound+5*time.Second); !ok {
		t.Fatalf("after B died, the VIP is held by %v, want only hosta", u.holders())
	}
	took := time.Since(killed)
	t.Logf("A holds the VIP %v after B died", took.Round(time.Millisecond))
	if took > bound {
		t.Errorf("A took the VIP %v after B died, want within %v", took, bound)
	}
	if err := waitOutput(pa, "BACKUP -> MASTER (master timed out)", time.Second); err != nil {
		t.Error(err)
	}
	tookOver := time.Now()
	time.Sleep(2500 * time.Millisecond) // A's adverts to B: 2 or more
	adsA, adsB := capA.stop(t), capB.stop(t)

	// The wire: only unicast adverts, each to the sender's peer.
	peerOf := map[netip.Addr]netip.Addr{uniA.Addr(): uniB.Addr(), uniB.Addr(): uniA.Addr(), uniC.Addr(): uniB.Addr()}
	for side, ads := range map[string][]wireAdvert{"A's side (router eth0)": adsA, "B's side (router eth1)": adsB} {
		for _, a := range ads {
			if a.Dst == uniGroup || a.Dst.IsMulticast() {
				t.Errorf("%s: an advert from %v to the multicast group %v", side, a.Src, a.Dst)
			} else if want, ok := peerOf[a.Src]; !ok || a.Dst != want {
				t.Errorf("%s: an advert from %v to %v, want it to the sender's peer %v", side, a.Src, a.Dst, want)
			}
			if a.VHID != 1 {
				t.Errorf("%s: an advert of vhid %d", side, a.VHID)
			}
		}
	}
	count := func(ads []wireAdvert, src netip.Addr, ttl int, after time.Time) (n, other int) {
		for _, a := range ads {
			if a.Src != src || a.At.Before(after) {
				continue
			}
			if a.TTL == ttl {
				n++
			} else {
				other++
			}
		}
		return n, other
	}
	// B's adverts, forwarded: on A's side with TTL 254.
	if n, other := count(adsA, uniB.Addr(), 254, time.Time{}); n < 10 || other != 0 {
		t.Errorf("B's adverts on A's side of the router: %d with TTL 254, %d with another TTL; want >= 10 and 0", n, other)
	}
	if n, other := count(adsB, uniB.Addr(), 255, time.Time{}); n < 10 || other != 0 {
		t.Errorf("B's adverts on B's side of the router: %d with TTL 255, %d with another TTL; want >= 10 and 0", n, other)
	}
	// C's adverts to B stay on B's segment.
	if n, other := count(adsA, uniC.Addr(), 254, time.Time{}); n+other != 0 {
		t.Errorf("C's adverts crossed the router: %d", n+other)
	}
	// A's adverts after the takeover, towards 198.51.100.224.
	if n, other := count(adsA, uniA.Addr(), 255, tookOver.Add(-time.Second)); n < 2 || other != 0 {
		t.Errorf("A's adverts after the takeover on A's side: %d with TTL 255, %d with another TTL; want >= 2 and 0", n, other)
	}
	if n, _ := count(adsA, uniA.Addr(), 255, time.Time{}); n > 0 {
		// Before the takeover A was BACKUP and sent nothing.
		if first := firstFrom(adsA, uniA.Addr()); first.Before(killed) {
			t.Errorf("A advertised at %v, before B died (%v), as a BACKUP", first, killed)
		}
	}
}

// firstFrom returns the capture time of the first advert from src.
func firstFrom(ads []wireAdvert, src netip.Addr) time.Time {
	var first time.Time
	for _, a := range ads {
		if a.Src == src && (first.IsZero() || a.At.Before(first)) {
			first = a.At
		}
	}
	return first
}

// TestUnicastIPv6PeersAcrossRouter is unicast_v4 for IPv6 (FreeBSD's
// unicast_v6): peer6 addresses in two subnets behind the router. The
// adverts must leave from a global address (a router drops link-local
// sources), cross the router, and leave exactly one master; the backup
// takes over when the master's carpd is killed.
func TestUnicastIPv6PeersAcrossRouter(t *testing.T) {
	t.Parallel() // bounds of seconds at advbase 1: see parallel_test.go
	u := newUniLab(t)
	u.vip = netip.MustParseAddr("2001:db8:c::1")
	a6, b6 := netip.MustParsePrefix("2001:db8:a::10/64"), netip.MustParsePrefix("2001:db8:b::224/64")
	ra6, rb6 := netip.MustParsePrefix("2001:db8:a::1/64"), netip.MustParsePrefix("2001:db8:b::1/64")
	ctx := t.Context()
	for _, step := range []struct {
		h    *lab.Host
		args []string
	}{
		{u.a, []string{"ip", "-6", "addr", "add", a6.String(), "dev", "eth0", "nodad"}},
		{u.b, []string{"ip", "-6", "addr", "add", b6.String(), "dev", "eth0", "nodad"}},
		{u.router, []string{"ip", "-6", "addr", "add", ra6.String(), "dev", "eth0", "nodad"}},
		{u.router, []string{"ip", "-6", "addr", "add", rb6.String(), "dev", "eth1", "nodad"}},
	} {
		if out, err := step.h.Run(ctx, step.args...); err != nil {
			t.Fatalf("%v: %v: %s", step.args, err, out)
		}
	}
	if err := u.a.AddRoute(netip.MustParsePrefix("::/0"), ra6.Addr()); err != nil {
		t.Fatal(err)
	}
	if err := u.b.AddRoute(netip.MustParsePrefix("::/0"), rb6.Addr()); err != nil {
		t.Fatal(err)
	}

	pb := u.start(u.b, 100, a6.Addr(), false)
	u.start(u.a, 200, b6.Addr(), false)
	if took, ok := u.waitSole(u.b, 15*time.Second); !ok {
		t.Fatalf("B does not hold %v alone after %v (holders %v)", u.vip, took, u.holders())
	}
	u.steady(u.b, 6*time.Second, "steady")
	if drops := uniDrops(u.procs["carpd on hosta (#2)"].Output(), "badpeer"); len(drops) != 0 {
		t.Errorf("A dropped B's adverts as badpeer: %q", drops)
	}

	killed := time.Now()
	if err := pb.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	bound := 3*time.Second + 200*time.Second/256 + time.Second
	if took, ok := u.waitSole(u.a, bound+2*time.Second); !ok {
		t.Fatalf("A does not hold %v alone %v after B was killed (holders %v)", u.vip, took, u.holders())
	}
	if took := time.Since(killed); took > bound+time.Second {
		t.Errorf("A took over %v after the kill, want within about %v", took, bound)
	}
}
