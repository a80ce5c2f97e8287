package daemon

import (
	"context"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/carpd/carpd/internal/config"
	"github.com/carpd/carpd/internal/lab"
	"github.com/carpd/carpd/internal/mover"
)

// fakeRoutes is a bgp speaker that records its movers' calls on the fake
// host, in the order they end; a Release waits for gate when it is set.
type fakeRoutes struct {
	f    *fakeHost
	cfg  *config.BGP
	mu   sync.Mutex
	gate chan struct{}
}

// block makes the next Releases wait until the returned func is called.
func (r *fakeRoutes) block() (open func()) {
	g := make(chan struct{})
	r.mu.Lock()
	r.gate = g
	r.mu.Unlock()
	return func() { close(g) }
}

func (r *fakeRoutes) Mover(ps []netip.Prefix) mover.Mover { return &fakeRouteMover{r: r, ps: ps} }

func (r *fakeRoutes) Status(context.Context) (RoutesStatus, error) {
	return RoutesStatus{Peers: []PeerStatus{{Address: netip.MustParseAddr("192.0.2.1"), AS: 65000, State: "established", Up: true}}}, nil
}

func (r *fakeRoutes) Config() *config.BGP { return r.cfg }

type fakeRouteMover struct {
	r  *fakeRoutes
	ps []netip.Prefix
}

func (m *fakeRouteMover) Acquire(_ context.Context, t mover.Tenure) error {
	m.r.f.record("announce %v deadline=%v", m.ps, !t.Deadline.IsZero())
	return nil
}

func (m *fakeRouteMover) Release(context.Context) error {
	m.r.mu.Lock()
	g := m.r.gate
	m.r.mu.Unlock()
	if g != nil {
		<-g
	}
	m.r.f.record("withdraw %v", m.ps)
	return nil
}

func (m *fakeRouteMover) Holder(context.Context) (mover.Holding, error) { return mover.Holding{}, nil }
func (m *fakeRouteMover) Settle() time.Duration                         { return 0 }
func (m *fakeRouteMover) Close() error                                  { return nil }

// TestBGPMoverOrder: a vhid with mover = "bgp" announces its routes once
// its address is on the interface (no gratuitous ARP, no deadline under
// CARP), and a stopping carpd withdraws them before it bows out, off the
// loop: while the withdrawal blocks, the loop answers and the address
// stays; the address goes only after the last withdrawal.
func TestBGPMoverOrder(t *testing.T) {
	f := newFakeHost()
	routes := &fakeRoutes{f: f}
	h := f.host()
	h.Routes = routes
	cfg := testConfig()
	cfg.VHIDs[0].Mover = config.MoverBGP
	var logs lab.Buffer
	d, err := New(cfg, h, Options{Log: testLog(&logs)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done, _ := started(t, d, f, ctx)
	waitOps(t, f, 0, "join if2", "set eth0 managed=[192.0.2.50/32] want=[]")

	n := f.count()
	f.in <- advert("lampros", 255, 255, 255)
	waitOps(t, f, n,
		"set eth0 managed=[192.0.2.50/32] want=[192.0.2.50/32]",
		"announce [192.0.2.50/32] deadline=false")
	for _, op := range f.opsSince(n) {
		if strings.HasPrefix(op, "garp") {
			t.Errorf("a bgp vhid sent a gratuitous ARP: %q", f.opsSince(n))
		}
	}

	// Stop with the withdrawal blocked: the loop still answers, no
	// bow-out advert yet, the address stays.
	open := routes.block()
	n = f.count()
	cancel()
	time.Sleep(100 * time.Millisecond)
	sctx, scancel := context.WithTimeout(context.Background(), time.Second)
	if _, err := d.Stats(sctx); err != nil {
		t.Errorf("Stats while the withdrawal blocks: %v (the loop must not wait for the mover)", err)
	}
	scancel()
	for _, op := range f.opsSince(n) {
		if strings.Contains(op, "advskew=255") || strings.Contains(op, "want=[]") {
			t.Fatalf("bowed out or released before the routes were withdrawn: %q", f.opsSince(n))
		}
	}
	open()
	waitOps(t, f, n,
		"withdraw [192.0.2.50/32]",
		"advert if2 192.0.2.22->224.0.0.18 advbase=255 advskew=255")
	if !f.holds(vip50) {
		t.Fatal("the address went before the new master was heard")
	}
	// The new master heard: the vhid releases; the address stays until
	// that withdrawal too is done.
	open = routes.block()
	n = f.count()
	f.in <- advert("lampros", 1, 100, 255)
	time.Sleep(100 * time.Millisecond)
	if !f.holds(vip50) {
		t.Fatalf("the address went before the routes were withdrawn: %q", f.opsSince(n))
	}
	open()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	waitOps(t, f, n, "withdraw [192.0.2.50/32]", "set eth0 managed=[192.0.2.50/32] want=[]", "close")
}

// bgpTable is a [bgp] table with one peer.
func bgpTable() *config.BGP {
	return &config.BGP{LocalAS: 65010, RouterID: netip.MustParseAddr("192.0.2.22"), Hold: 9 * time.Second, Keepalive: 3 * time.Second,
		Peers: []config.BGPPeer{{Address: netip.MustParseAddr("192.0.2.1"), AS: 65000, Port: 179, Origin: "carpd.toml:4"}}, Origin: "carpd.toml:1"}
}

// TestReloadPlanBGP: a reload that changes a vhid's mover restarts the
// vhid; one that changes the [bgp] table, or asks for the bgp mover of a
// carpd started without a speaker, is refused, saying why.
func TestReloadPlanBGP(t *testing.T) {
	f := newFakeHost()
	h := f.host()
	h.Routes = &fakeRoutes{f: f, cfg: bgpTable()}
	cfg := testConfig()
	cfg.BGP = bgpTable()
	d, err := New(cfg, h, Options{})
	if err != nil {
		t.Fatal(err)
	}
	toBGP := testConfig()
	toBGP.BGP = bgpTable()
	toBGP.VHIDs[0].Mover = config.MoverBGP
	p, err := d.plan(toBGP)
	if err != nil || len(p.steps) != 1 || !p.steps[0].restart {
		t.Fatalf("plan l2 -> bgp: %+v, %v; want the vhid restarted", p, err)
	}
	moved := testConfig()
	moved.BGP = bgpTable()
	moved.BGP.Origin = "carpd.toml:7" // the table moved in the file: the same speaker
	if p, err := d.plan(moved); err != nil || p.steps[0].restart {
		t.Fatalf("plan with the [bgp] table moved: %+v, %v; want the vhid kept", p, err)
	}
	peers := testConfig()
	peers.VHIDs[0].Mover = config.MoverBGP
	peers.BGP = bgpTable()
	peers.BGP.Peers[0].AS = 65001
	if _, err := d.plan(peers); err == nil || !strings.Contains(err.Error(), "carpd.toml:1: the [bgp] table changed: the bgp speaker takes it when carpd restarts (reload refused)") {
		t.Fatalf("plan with a peer's AS changed: %v, want it refused", err)
	}

	// Started without a speaker (no vhid had mover = "bgp").
	d, err = New(testConfig(), f.host(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.plan(toBGP); err == nil || !strings.Contains(err.Error(), `restart carpd for the first vhid with mover = "bgp"`) {
		t.Fatalf("plan l2 -> bgp without a speaker: %v, want it refused", err)
	}
}

// TestLeasedBGPFence: a vhid elected with a fence deadline (an etcd vhid)
// gives its bgp mover that deadline with every Acquire, and each renewal
// of the lease acquires again, so that the mover's own fence (the routes
// withdrawn at D unless renewed) follows the lease.
func TestLeasedBGPFence(t *testing.T) {
	f := newFakeHost()
	h := f.host()
	h.Routes = &fakeRoutes{f: f}
	cfg := testConfig()
	cfg.VHIDs[0].Mover = config.MoverBGP
	d, err := New(cfg, h, Options{})
	if err != nil {
		t.Fatal(err)
	}
	l := &leaseElectorate{until: true}
	v := d.vhosts[0]
	v.el = l
	l.Attach(&v.wire, v.log)
	ctx, cancel := context.WithCancel(context.Background())
	done, _ := started(t, d, f, ctx)
	defer func() { cancel(); <-done }()
	for i := range 2 {
		n := f.count()
		if err := l.w.Post(ctx, leaseEvent{won: true, fence: time.Now().Add(time.Hour + time.Duration(i)*time.Second)}); err != nil {
			t.Fatal(err)
		}
		waitOps(t, f, n, "announce [192.0.2.50/32] deadline=true")
	}
}
