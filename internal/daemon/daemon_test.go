package daemon

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/carpd/carpd/internal/advsock"
	"github.com/carpd/carpd/internal/carp"
	"github.com/carpd/carpd/internal/config"
	"github.com/carpd/carpd/internal/netmon"
)

// fakeOS is an in-memory host: one interface eth0 (index 2), a protocol
// socket fed from a channel, and a record of what the daemon did as text.
type fakeOS struct {
	in    chan advsock.Packet
	links chan netmon.Link
	addrs chan netmon.AddrChange

	mu   sync.Mutex
	ops  []string
	sent []carp.Advert
}

var eth0 = netmon.Link{Index: 2, Name: "eth0", MAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, Up: true}

func newFakeOS() *fakeOS {
	return &fakeOS{in: make(chan advsock.Packet), links: make(chan netmon.Link), addrs: make(chan netmon.AddrChange)}
}

func (f *fakeOS) record(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ops = append(f.ops, fmt.Sprintf(format, args...))
}

func (f *fakeOS) ReadPacket() (advsock.Packet, error) {
	p, ok := <-f.in
	if !ok {
		return advsock.Packet{}, net.ErrClosed
	}
	return p, nil
}

func (f *fakeOS) WriteAdvert(ifindex int, src, dst netip.Addr, payload []byte) error {
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

func (f *fakeOS) Join(ifindex int) error { f.record("join if%d", ifindex); return nil }
func (f *fakeOS) Close() error           { f.record("close"); return nil }

func (f *fakeOS) Set(ifname string, managed, want []netip.Prefix) ([]string, error) {
	f.record("set %s managed=%v want=%v", ifname, managed, want)
	return nil, nil
}

func (f *fakeOS) Refresh(ifname string, want []netip.Prefix) error {
	f.record("refresh %s %v", ifname, want)
	return nil
}

func (f *fakeOS) Announce(ifindex int, hw net.HardwareAddr, addrs []netip.Addr) error {
	f.record("garp if%d %v %v", ifindex, hw, addrs)
	return nil
}

func (f *fakeOS) opsSince(n int) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.ops[n:]...)
}

func (f *fakeOS) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.ops)
}

func (f *fakeOS) os() OS {
	return OS{
		Conns: [2]AdvertConn{f, nil}, Addresses: f, Announcer: f,
		Source: func(int, netip.Addr, []netip.Addr) (netip.Addr, error) {
			return netip.MustParseAddr("192.0.2.22"), nil
		},
		Links: func(context.Context) (<-chan netmon.Link, error) { return f.links, nil },
		Addrs: func(context.Context) (<-chan netmon.AddrChange, error) { return f.addrs, nil },
		Link: func(name string) (netmon.Link, error) {
			if name != "eth0" {
				return netmon.Link{}, fmt.Errorf("interface %s: link not found", name)
			}
			return eth0, nil
		},
	}
}

func testConfig() *config.Config {
	return &config.Config{VHIDs: []config.VHID{{
		Interface: "eth0", VHID: 100, AdvBase: 1, AdvSkew: 200, Password: "lampros",
		Addresses: []netip.Prefix{netip.MustParsePrefix("192.0.2.50/32")}, Origin: "rc.conf:2",
	}}}
}

// advert builds a packet from a peer, with the right HMAC unless pass differs.
func advert(pass string, advbase, advskew uint8, ttl int) advsock.Packet {
	a := carp.Advert{VHID: 100, AdvBase: advbase, AdvSkew: advskew, Counter: 77}
	a.Digest = carp.NewAuthenticator(pass, 100, []netip.Addr{netip.MustParseAddr("192.0.2.50")}).Digest(a.Counter)
	return advsock.Packet{IfIndex: 2, Src: netip.MustParseAddr("192.0.2.21"), Dst: advsock.GroupIPv4, TTL: ttl, Payload: a.Marshal()}
}

// waitOps waits until the ops after n contain every wanted line, in order.
func waitOps(t *testing.T, f *fakeOS, n int, want ...string) {
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

func TestDaemonWiring(t *testing.T) {
	f := newFakeOS()
	d, err := New(testConfig(), f.os(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()

	// Start: group joined, stale VIPs removed before BACKUP.
	waitOps(t, f, 0, "join if2", "set eth0 managed=[192.0.2.50/32] want=[]")

	// Bad packets are counted and change nothing.
	n := f.count()
	f.in <- advert("wrong", 1, 100, 255)
	f.in <- advert("lampros", 1, 100, 64)
	f.in <- advsock.Packet{IfIndex: 2, TTL: 255, Payload: []byte{0x21, 100, 0}}
	f.in <- advsock.Packet{IfIndex: 2, TTL: 255, Payload: []byte{0x31, 1, 100, 1, 0, 100, 0, 0}} // VRRPv3: not ours
	f.in <- advert("lampros", 1, 100, 255)                                                       // a valid advert of a better master: resets the timer
	time.Sleep(50 * time.Millisecond)
	if got := f.opsSince(n); len(got) != 0 {
		t.Errorf("bad or plain adverts made the daemon act: %q", got)
	}
	for r, want := range map[carp.DropReason]uint64{carp.DropAuth: 1, carp.DropTTL: 1, carp.DropShort: 1, carp.DropVersion: 0} {
		if got := d.DropCount(r); got != want {
			t.Errorf("drops[%v] = %d, want %d", r, got, want)
		}
	}

	// A bow-out advert: MASTER at once, advert, address, announcement.
	n = f.count()
	f.in <- advert("lampros", 255, 255, 255)
	// The address first (make before break), then the advert, the
	// lifetime refresh and the announcement.
	waitOps(t, f, n,
		"set eth0 managed=[192.0.2.50/32] want=[192.0.2.50/32]",
		"advert if2 192.0.2.22->224.0.0.18 advbase=1 advskew=200",
		"refresh eth0 [192.0.2.50/32]",
		"garp if2 02:00:00:00:00:01 [192.0.2.50]")

	// Link down: INIT and the address released.
	n = f.count()
	f.links <- netmon.Link{Index: 2, Name: "eth0", MAC: eth0.MAC, Up: false}
	waitOps(t, f, n, "set eth0 managed=[192.0.2.50/32] want=[]")

	// Link up and a bow-out again.
	f.links <- eth0
	f.in <- advert("lampros", 255, 255, 255)
	waitOps(t, f, n, "set eth0 managed=[192.0.2.50/32] want=[192.0.2.50/32]")

	// Demotion: the master advertises the demoted skew at once.
	n = f.count()
	if got, err := d.Demote(context.Background(), 30, "test"); err != nil || got != 30 {
		t.Fatalf("Demote = %d, %v; want 30", got, err)
	}
	waitOps(t, f, n, "advert if2 192.0.2.22->224.0.0.18 advbase=1 advskew=230")

	// The address removed underneath: put back and announced.
	n = f.count()
	f.addrs <- netmon.AddrChange{LinkIndex: 2, Prefix: netip.MustParsePrefix("192.0.2.50/32"), Removed: true}
	waitOps(t, f, n, "set eth0 managed=[192.0.2.50/32] want=[192.0.2.50/32]", "garp if2 02:00:00:00:00:01 [192.0.2.50]")

	// Stop: the master bows out, keeps the address until it hears the
	// new master, then releases it and exits.
	n = f.count()
	cancel()
	waitOps(t, f, n, "advert if2 192.0.2.22->224.0.0.18 advbase=255 advskew=255")
	time.Sleep(50 * time.Millisecond)
	for _, op := range f.opsSince(n) {
		if op == "set eth0 managed=[192.0.2.50/32] want=[]" {
			t.Fatal("the address was released before the new master was heard")
		}
	}
	f.in <- advert("lampros", 1, 100, 255)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	waitOps(t, f, n, "set eth0 managed=[192.0.2.50/32] want=[]", "close")
	close(f.in)
}

func TestNewRejects(t *testing.T) {
	f := newFakeOS()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	missing := testConfig()
	missing.VHIDs[0].Interface = "eth9"
	twice := testConfig()
	twice.VHIDs = append(twice.VHIDs, twice.VHIDs[0])
	for name, tc := range map[string]struct {
		cfg  *config.Config
		want string
	}{
		"missing interface": {missing, "rc.conf:2: interface eth9"},
		"twice":             {twice, "vhid 100 configured twice on eth0"},
		"empty":             {&config.Config{}, "no vhid configured"},
	} {
		_, err := New(tc.cfg, f.os(), log)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", name, err, tc.want)
		}
	}
	if n := f.count(); n != 0 {
		t.Errorf("New touched the host: %q", f.opsSince(0))
	}
}
