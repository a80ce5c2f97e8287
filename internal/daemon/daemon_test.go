package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/carpd/carpd/internal/carp"
	"github.com/carpd/carpd/internal/config"
	"github.com/carpd/carpd/internal/lab"
	"github.com/carpd/carpd/internal/vrrp"
)

// fakeHost is an in-memory host: one interface eth0 (index 2), a protocol
// socket fed from a channel, a monitor whose subscriptions the test feeds
// and fails, and a record of what the daemon did as text.
type fakeHost struct {
	in   chan Packet
	subs chan *fakeSub // each new subscription, for the test

	mu        sync.Mutex
	ops       []string
	sent      []carp.Advert
	held      map[netip.Prefix]bool // eth0's addresses
	link      Link
	subscribe int   // Subscribe calls
	failSubs  int   // Subscribe calls still to fail
	subErr    error // their error
	closed    bool
}

var eth0 = Link{Index: 2, Name: "eth0", MAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, Up: true}

func newFakeHost() *fakeHost {
	return &fakeHost{in: make(chan Packet), subs: make(chan *fakeSub, 8), held: map[netip.Prefix]bool{}, link: eth0}
}

func (f *fakeHost) record(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ops = append(f.ops, fmt.Sprintf(format, args...))
}

func (f *fakeHost) ReadBatch(ps []Packet) (int, error) {
	p, ok := <-f.in
	if !ok {
		return 0, net.ErrClosed
	}
	ps[0] = p
	return 1, nil
}

func (f *fakeHost) WriteAdvert(ifindex int, src, dst netip.Addr, payload []byte) error {
	if len(payload) > 0 && payload[0]>>4 == vrrp.Version {
		// The checksum must be right for src and dst.
		a, err := vrrp.Parse(payload, src, dst)
		if err != nil {
			f.record("bad vrrp advert if%d %v->%v: %v", ifindex, src, dst, err)
			return err
		}
		f.record("vrrp if%d %v->%v vrid=%d prio=%d interval=%d addrs=%v", ifindex, src, dst, a.VRID, a.Priority, a.Interval, a.Addrs)
		return nil
	}
	a, err := carp.ParseAdvert(payload)
	if err != nil {
		return err
	}
	f.mu.Lock()
	f.sent = append(f.sent, a)
	f.mu.Unlock()
	f.record("advert if%d %v->%v advbase=%d advskew=%d", ifindex, src, dst, a.AdvBase, a.AdvSkew)
	return nil
}

func (f *fakeHost) Join(ifindex int) error { f.record("join if%d", ifindex); return nil }

func (f *fakeHost) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.closed {
		f.closed = true
		close(f.in)
	}
	f.ops = append(f.ops, "close")
	return nil
}

// Set records the call and keeps eth0's addresses as the kernel would,
// returning what changed.
func (f *fakeHost) Set(ifname string, managed, want []netip.Prefix) ([]string, error) {
	f.record("set %s managed=%v want=%v", ifname, managed, want)
	f.mu.Lock()
	defer f.mu.Unlock()
	var changes []string
	for _, p := range managed {
		if f.held[p] && !slices.Contains(want, p) {
			delete(f.held, p)
			changes = append(changes, "ip addr del "+p.String())
		}
	}
	for _, p := range want {
		if !f.held[p] {
			f.held[p] = true
			changes = append(changes, "ip addr add "+p.String())
		}
	}
	return changes, nil
}

func (f *fakeHost) SetLifetime(time.Duration) {}

func (f *fakeHost) Refresh(ifname string, want []netip.Prefix) error {
	f.record("refresh %s %v", ifname, want)
	return nil
}

func (f *fakeHost) Announce(ifindex int, hw net.HardwareAddr, addrs []netip.Addr) error {
	f.record("garp if%d %v %v", ifindex, hw, addrs)
	return nil
}

func (f *fakeHost) Link(name string) (Link, error) {
	if name != "eth0" {
		return Link{}, errors.New("Link not found")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.link, nil
}

func (f *fakeHost) Source(int, netip.Addr, []netip.Addr) (netip.Addr, error) {
	return netip.MustParseAddr("192.0.2.22"), nil
}

// fakeSub is one subscription of the fake monitor: the test reports
// changes through it and ends it.
type fakeSub struct {
	report func(Change)
	ended  chan error
	once   sync.Once
}

func (s *fakeSub) send(c Change) { s.report(c) }

func (s *fakeSub) end(err error) { s.once.Do(func() { s.ended <- err }) }

// Subscribe hands the test a new subscription, or fails while failSubs
// lasts.
func (f *fakeHost) Subscribe(ctx context.Context, report func(Change)) (<-chan error, error) {
	f.mu.Lock()
	f.subscribe++
	if f.failSubs > 0 {
		f.failSubs--
		f.mu.Unlock()
		return nil, f.subErr
	}
	f.mu.Unlock()
	sub := &fakeSub{report: report, ended: make(chan error, 1)}
	go func() { <-ctx.Done(); sub.end(nil) }()
	f.subs <- sub
	return sub.ended, nil
}

func (f *fakeHost) host() *Host {
	return &Host{Conns: [2]Conn{f, nil}, Addresses: f, Announcer: f, Links: f, Monitor: f}
}

// setLink changes eth0's state as Link reports it, without telling the
// daemon.
func (f *fakeHost) setLink(up bool) {
	f.mu.Lock()
	f.link.Up = up
	f.mu.Unlock()
}

// remove takes p off eth0 behind the daemon's back.
func (f *fakeHost) remove(p netip.Prefix) {
	f.mu.Lock()
	delete(f.held, p)
	f.mu.Unlock()
}

func (f *fakeHost) holds(p netip.Prefix) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.held[p]
}

func (f *fakeHost) opsSince(n int) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.ops[n:]...)
}

func (f *fakeHost) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.ops)
}

func testConfig() *config.Config {
	return &config.Config{VHIDs: []config.VHID{{
		Interface: "eth0", VHID: 100, AdvBase: 1, AdvSkew: 200, Password: "lampros",
		Addresses: []netip.Prefix{netip.MustParsePrefix("192.0.2.50/32")}, Origin: "rc.conf:2",
	}}, IfDownDemotion: 240}
}

var vip50 = netip.MustParsePrefix("192.0.2.50/32")

// advert builds a packet from a peer, with the right HMAC unless pass differs.
func advert(pass string, advbase, advskew uint8, ttl int) Packet {
	a := carp.Advert{VHID: 100, AdvBase: advbase, AdvSkew: advskew, Counter: 77}
	a.Digest = carp.NewAuthenticator(pass, 100, []netip.Addr{vip50.Addr()}).Digest(a.Counter)
	return Packet{IfIndex: 2, Src: netip.MustParseAddr("192.0.2.21"), TTL: ttl, Payload: a.Marshal()}
}

// waitOps waits until the ops after n contain every wanted line, in order.
func waitOps(t *testing.T, f *fakeHost, n int, want ...string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := f.opsSince(n)
		i := 0
		for _, g := range got {
			if i < len(want) && g == want[i] {
				i++
			}
		}
		if i == len(want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("ops after #%d:\n  %s\nwant, in order:\n  %s", n, strings.Join(got, "\n  "), strings.Join(want, "\n  "))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func testLog(w *lab.Buffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// started runs d in the background; the returned channel gives Run's
// result. It waits for the first subscription.
func started(t *testing.T, d *Daemon, f *fakeHost, ctx context.Context) (<-chan error, *fakeSub) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	select {
	case sub := <-f.subs:
		return done, sub
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not subscribe")
	}
	return nil, nil
}

func TestDaemonWiring(t *testing.T) {
	f := newFakeHost()
	var logs lab.Buffer
	d, err := New(testConfig(), f.host(), Options{Log: testLog(&logs)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done, sub := started(t, d, f, ctx)

	// Start: group joined, stale VIPs removed before BACKUP.
	waitOps(t, f, 0, "join if2", "set eth0 managed=[192.0.2.50/32] want=[]")

	// Bad packets are counted by the reader and never reach the loop.
	n := f.count()
	f.in <- advert("wrong", 1, 100, 255)
	f.in <- advert("lampros", 1, 100, 64)
	f.in <- Packet{IfIndex: 2, TTL: 255, Payload: []byte{0x21, 100, 0}}
	f.in <- Packet{IfIndex: 2, TTL: 255, Payload: []byte{0x31, 1, 100, 1, 0, 100, 0, 0}} // VRRPv3: no VRRP instance, an unknown version
	f.in <- advert("lampros", 1, 100, 255)                                               // a valid advert of a better master: resets the timer
	time.Sleep(50 * time.Millisecond)
	if got := f.opsSince(n); len(got) != 0 {
		t.Errorf("bad or plain adverts made the daemon act: %q", got)
	}
	for r, want := range map[carp.DropReason]uint64{carp.DropAuth: 1, carp.DropTTL: 1, carp.DropHeader: 1, carp.DropVersion: 1} {
		if got := d.drops.CARP[r].Load(); got != want {
			t.Errorf("drops[%v] = %d, want %d", r, got, want)
		}
	}
	// And what carpctl status and the metrics read (Stats): the host's
	// totals and the interface's counts by reason.
	st, err := d.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	totals := map[carp.DropReason]uint64{carp.DropAuth: st.DroppedBadAuth, carp.DropTTL: st.DroppedWrongTTL,
		carp.DropHeader: st.DroppedShortHeader, carp.DropVersion: st.DroppedBadVersion}
	var byIface map[string]uint64
	for _, id := range st.DropsByInterface {
		if id.Interface == "eth0" && id.Proto == "" {
			byIface = id.Drops
		}
	}
	for r, got := range totals {
		if got != 1 || byIface[r.String()] != 1 {
			t.Errorf("Stats: %v drops %d, on eth0 %d (%v); want 1 and 1", r, got, byIface[r.String()], st.DropsByInterface)
		}
	}

	// A bow-out advert: MASTER at once, address, announcement, advert.
	n = f.count()
	f.in <- advert("lampros", 255, 255, 255)
	// The address first, then the announcement, then the advert (make
	// before break: the old master lets the address go when it hears
	// the advert, by then the neighbours point here), then the
	// lifetime refresh.
	waitOps(t, f, n,
		"set eth0 managed=[192.0.2.50/32] want=[192.0.2.50/32]",
		"garp if2 02:00:00:00:00:01 [192.0.2.50]",
		"advert if2 192.0.2.22->224.0.0.18 advbase=1 advskew=200",
		"refresh eth0 [192.0.2.50/32]")
	// In that order from the first: not matched by a later advert or
	// announcement.
	if got := f.opsSince(n); len(got) < 3 || !strings.HasPrefix(got[0], "set eth0") || !strings.HasPrefix(got[1], "garp") ||
		!strings.HasPrefix(got[2], "advert") {
		t.Errorf("the takeover's first ops are %q, want the address set, the announcement, then the advert", got)
	}

	// Link down: INIT and the address released.
	n = f.count()
	down := eth0
	down.Up = false
	sub.send(Change{IsLink: true, Link: down})
	waitOps(t, f, n, "set eth0 managed=[192.0.2.50/32] want=[]")

	// Link up and a bow-out again. The link change and the advert come
	// from two sources, so wait for the first to be handled.
	sub.send(Change{IsLink: true, Link: eth0})
	waitLog(t, &logs, "INIT -> BACKUP (hardware interface up)")
	n = f.count()
	f.in <- advert("lampros", 255, 255, 255)
	waitOps(t, f, n, "set eth0 managed=[192.0.2.50/32] want=[192.0.2.50/32]")

	// Demotion: the master advertises the demoted skew at once. Its
	// interface was down, so the demotion is 0 again before this.
	n = f.count()
	if got, err := d.Demote(context.Background(), 30, "test"); err != nil || got != 30 {
		t.Fatalf("Demote = %d, %v; want 30", got, err)
	}
	waitOps(t, f, n, "advert if2 192.0.2.22->224.0.0.18 advbase=1 advskew=230")

	// The address removed underneath: put back and announced.
	n = f.count()
	f.remove(vip50)
	sub.send(Change{Addr: AddrChange{LinkIndex: 2, Prefix: vip50, Removed: true}})
	waitOps(t, f, n, "set eth0 managed=[192.0.2.50/32] want=[192.0.2.50/32]", "garp if2 02:00:00:00:00:01 [192.0.2.50]")

	// Stop: the master bows out, keeps the address until it hears the
	// new master, then releases it and exits.
	n = f.count()
	cancel()
	waitOps(t, f, n, "advert if2 192.0.2.22->224.0.0.18 advbase=255 advskew=255")
	time.Sleep(50 * time.Millisecond)
	if f.holds(vip50) == false {
		t.Fatal("the address was released before the new master was heard")
	}
	f.in <- advert("lampros", 1, 100, 255)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	waitOps(t, f, n, "set eth0 managed=[192.0.2.50/32] want=[]", "close")
	if f.holds(vip50) {
		t.Error("the address is held after Run returned")
	}
	for _, want := range []string{
		`msg="carp: 100@eth0: INIT -> BACKUP (initialization complete)" vhid=100 iface=eth0 from=INIT state=BACKUP reason="initialization complete"`,
		`msg="carp: demoted by 240 to 240 (interface down)" vhid=100 iface=eth0 delta=240 demotion=240 source="interface down" reason="interface down"`,
		`msg="carp: address removed underneath carpd; restored" vhid=100 iface=eth0 addr=192.0.2.50/32`,
		`msg="carp: dropped adverts" reason=badauth iface=eth0 from=192.0.2.21 ttl=255 vhid=100 suppressed=0`,
	} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("the log lacks %s:\n%s", want, logs.String())
		}
	}
}

// TestMonitorResubscribes: when the monitor's subscription fails (the
// kernel overflowed it), the daemon subscribes again and reads afresh what
// it may have missed: here the link went down and then the VIP was
// removed while nobody listened. It logs one warning with the cause and
// counts the resync.
func TestMonitorResubscribes(t *testing.T) {
	f := newFakeHost()
	var logs lab.Buffer
	d, err := New(testConfig(), f.host(), Options{Log: testLog(&logs)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done, sub := started(t, d, f, ctx)
	// MASTER by a bow-out advert.
	f.in <- advert("lampros", 255, 255, 255)
	deadline := time.Now().Add(5 * time.Second)
	for !f.holds(vip50) {
		if time.Now().After(deadline) {
			t.Fatal("not MASTER")
		}
		time.Sleep(5 * time.Millisecond)
	}

	// The VIP vanishes and the subscription fails twice before a new
	// one can be made: nothing but the loss is reported.
	f.mu.Lock()
	f.failSubs, f.subErr = 2, errors.New("no buffer space available")
	f.mu.Unlock()
	f.remove(vip50)
	n := f.count()
	sub.end(errors.New("address subscription: Receive failed: no buffer space available"))
	select {
	case sub = <-f.subs:
	case <-time.After(5 * time.Second):
		t.Fatal("no new subscription")
	}
	waitOps(t, f, n, "set eth0 managed=[192.0.2.50/32] want=[192.0.2.50/32]", "garp if2 02:00:00:00:00:01 [192.0.2.50]")
	if !f.holds(vip50) {
		t.Fatal("the VIP was not restored by the resync")
	}
	if got := d.stats.resyncs.Load(); got != 1 {
		t.Errorf("resyncs = %d, want 1", got)
	}
	if got := strings.Count(logs.String(), "lost changes; resubscribed and resynchronised"); got != 1 {
		t.Errorf("%d warnings about the loss, want 1:\n%s", got, logs.String())
	}
	if !strings.Contains(logs.String(), `cause="address subscription: Receive failed: no buffer space available"`) {
		t.Errorf("the warning lacks the cause:\n%s", logs.String())
	}

	// A second loss while the link went down unseen: the resync finds it
	// down: INIT, demotion, address released.
	f.setLink(false)
	n = f.count()
	sub.end(errors.New("link subscription: Receive failed: no buffer space available"))
	sub = <-f.subs
	waitOps(t, f, n, "set eth0 managed=[192.0.2.50/32] want=[]")
	waitLog(t, &logs, "carp: 100@eth0: MASTER -> INIT (hardware interface down)")
	waitLog(t, &logs, "carp: demoted by 240 to 240 (interface down)")
	// The second warning within resyncLogInterval is held back.
	if got := strings.Count(logs.String(), "lost changes; resubscribed"); got != 1 {
		t.Errorf("%d warnings, want 1 (rate-limited)", got)
	}

	// The new subscription works.
	f.setLink(true)
	sub.send(Change{IsLink: true, Link: eth0})
	waitLog(t, &logs, "carp: 100@eth0: INIT -> BACKUP (hardware interface up)")
	f.mu.Lock()
	subscribes := f.subscribe
	f.mu.Unlock()
	if subscribes != 5 { // the first, 2 failures, 2 new ones
		t.Errorf("%d Subscribe calls, want 5", subscribes)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestMonitorGivesUp: when no new subscription can be made, the daemon
// does not run blind: Run releases the addresses and fails.
func TestMonitorGivesUp(t *testing.T) {
	defer func(d time.Duration) { resubscribeGiveUp = d }(resubscribeGiveUp)
	resubscribeGiveUp = 100 * time.Millisecond
	f := newFakeHost()
	d, err := New(testConfig(), f.host(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	done, sub := started(t, d, f, context.Background())
	f.in <- advert("lampros", 255, 255, 255)
	deadline := time.Now().Add(5 * time.Second)
	for !f.holds(vip50) {
		if time.Now().After(deadline) {
			t.Fatal("not MASTER")
		}
		time.Sleep(5 * time.Millisecond)
	}
	f.mu.Lock()
	f.failSubs, f.subErr = 1000, errors.New("permission denied")
	f.mu.Unlock()
	sub.end(errors.New("Receive failed: no buffer space available"))
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "watching links and addresses: permission denied") {
			t.Errorf("Run = %v, want the subscription error", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run goes on without a monitor")
	}
	if f.holds(vip50) {
		t.Error("the VIP is held after Run failed")
	}
}

func waitLog(t *testing.T, logs *lab.Buffer, substr string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(logs.String(), substr) {
		if time.Now().After(deadline) {
			t.Fatalf("the log lacks %q:\n%s", substr, logs.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestOperatorCalls: operator calls go through the loop; before Run they
// wait (and honour their context), after Run they fail at once, and Abort
// never blocks.
func TestOperatorCalls(t *testing.T) {
	f := newFakeHost()
	d, err := New(testConfig(), f.host(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := d.Demote(ctx, 1, "early"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Demote before Run = %v, want the context's deadline", err)
	}
	runCtx, stop := context.WithCancel(context.Background())
	done, _ := started(t, d, f, runCtx)
	if got, err := d.Demote(context.Background(), 5, "test"); err != nil || got != 5 {
		t.Errorf("Demote = %d, %v; want 5", got, err)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := d.Demote(context.Background(), 1, "late"); !errors.Is(err, ErrNotRunning) {
		t.Errorf("Demote after Run = %v, want ErrNotRunning", err)
	}
	abort := make(chan struct{})
	go func() { d.Abort(); d.Abort(); close(abort) }()
	select {
	case <-abort:
	case <-time.After(time.Second):
		t.Error("Abort blocks after Run returned")
	}
	if err := d.Run(context.Background()); err == nil {
		t.Error("a second Run succeeded")
	}
}

func TestNewRejects(t *testing.T) {
	f := newFakeHost()
	missing := testConfig()
	missing.VHIDs[0].Interface = "eth9"
	twice := testConfig()
	twice.VHIDs = append(twice.VHIDs, twice.VHIDs[0])
	for name, tc := range map[string]struct {
		cfg  *config.Config
		want string
	}{
		"missing interface": {missing, "rc.conf:2: interface eth9"},
		"twice":             {twice, "rc.conf:2: vhid 100 on eth0 is already defined at rc.conf:2"},
		"empty":             {&config.Config{}, "no vhid configured"},
	} {
		_, err := New(tc.cfg, f.host(), Options{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", name, err, tc.want)
		}
	}
	if n := f.count(); n != 0 {
		t.Errorf("New touched the host: %q", f.opsSince(0))
	}
}
