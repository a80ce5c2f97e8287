package daemon

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/carpd/carpd/internal/api"
	"github.com/carpd/carpd/internal/config"
	"github.com/carpd/carpd/internal/lab"
	"github.com/carpd/carpd/internal/vrrp"
)

var vip60 = netip.MustParsePrefix("192.0.2.60/32")

// vrrpTestConfig is testConfig (CARP vhid 100) with VRRP vhid 1 (carpver
// 3) beside it on eth0: priority 100, interval 10 cs (master-down 300 ms
// + Skew_Time 60.9 ms), the RFC's tie-break.
func vrrpTestConfig(prio uint8) *config.Config {
	cfg := testConfig()
	cfg.VHIDs = append(cfg.VHIDs, config.VHID{
		Interface: "eth0", VHID: 1, Version: config.VersionVRRP, VRRPPriority: prio, VRRPInterval: 10, VRRPTieBreak: true,
		Addresses: []netip.Prefix{vip60}, Origin: "rc.conf:3",
	})
	return cfg
}

// vrrpPacket is a VRRPv3 advert of vrid from 192.0.2.21 to 224.0.0.18,
// with a right checksum, as the reader gets it.
func vrrpPacket(t *testing.T, vrid, prio uint8, ttl int) Packet {
	t.Helper()
	src, dst := netip.MustParseAddr("192.0.2.21"), netip.MustParseAddr("224.0.0.18")
	b, err := vrrp.Advert{VRID: vrid, Priority: prio, Interval: 10, Addrs: []netip.Addr{vip60.Addr()}}.Marshal(src, dst)
	if err != nil {
		t.Fatal(err)
	}
	return Packet{IfIndex: 2, Src: src, Dst: dst, TTL: ttl, Payload: b}
}

func vhidStatusOf(t *testing.T, d *Daemon, proto string, vhid int) api.VHID {
	t.Helper()
	st, err := d.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range st.VHIDs {
		if v.Protocol == proto && v.VHID == vhid {
			return v
		}
	}
	t.Fatalf("no %s vhid %d in %+v", proto, vhid, st.VHIDs)
	return api.VHID{}
}

// TestVRRPDaemon: a VRRP vhid and a CARP vhid on one interface share the
// protocol-112 socket: each datagram goes to its protocol by the version
// nibble. The VRRP instance's bad datagrams are counted under VRRP's
// reasons and change nothing; a better master's adverts hold it BACKUP;
// when they stop it takes over after Master_Down_Interval: the address
// first, then an advert with the pseudo-header checksum from the primary
// address, then the announcement. The CARP vhid is not disturbed.
func TestVRRPDaemon(t *testing.T) {
	f := newFakeHost()
	var logs lab.Buffer
	d, err := New(vrrpTestConfig(100), f.host(), Options{Log: testLog(&logs)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done, _ := started(t, d, f, ctx)
	waitLog(t, &logs, `msg="carp: 1@eth0: INIT -> BACKUP (initialization complete)" vhid=1 iface=eth0 proto=vrrp af=inet`)

	// A better master, then bad datagrams, for 1 s: nothing moves.
	n := f.count()
	for range 10 {
		f.in <- vrrpPacket(t, 1, 200, 255)
		bad := vrrpPacket(t, 1, 200, 255)
		bad.Payload[6] ^= 0xff // checksum
		f.in <- bad
		f.in <- vrrpPacket(t, 1, 200, 254) // TTL
		f.in <- vrrpPacket(t, 2, 200, 255) // no such vrid
		short := vrrpPacket(t, 1, 200, 255)
		short.Payload = short.Payload[:10] // count 1, 2 address bytes
		f.in <- short
		f.in <- advert("lampros", 1, 100, 255) // the CARP vhid's master
		time.Sleep(100 * time.Millisecond)
	}
	if got := f.opsSince(n); len(got) != 0 {
		t.Errorf("the daemon acted while a better master advertised: %q", got)
	}
	st, err := d.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// The host's totals and eth0's (carpctl status's per-interface
	// drops, the metrics' iface label).
	var onEth0 map[string]uint64
	for _, id := range st.DropsByInterface {
		if id.Interface == "eth0" && id.Proto == "vrrp" {
			onEth0 = id.Drops
		}
	}
	for reason, want := range map[string]uint64{"badsum": 10, "badttl": 10, "badvrid": 10, "badlen": 10, "loop": 0} {
		if got := st.VRRP.Drops[reason]; got != want {
			t.Errorf("vrrp drops[%s] = %d, want %d", reason, got, want)
		}
		if got := onEth0[reason]; got != want {
			t.Errorf("vrrp drops[%s] on eth0 = %d, want %d (%v)", reason, got, want, st.DropsByInterface)
		}
	}
	if st.VRRP.ReceivedInet != 50 || st.ReceivedInet != 10 {
		t.Errorf("received: vrrp %d, carp %d; want 50 and 10", st.VRRP.ReceivedInet, st.ReceivedInet)
	}
	if st.DroppedBadVersion != 0 {
		t.Errorf("VRRP datagrams counted as CARP's badver: %d", st.DroppedBadVersion)
	}
	s := vhidStatusOf(t, d, "vrrp", 1)
	if s.State != "BACKUP" || s.Family != "inet" || s.Priority != 100 || s.Interval != 10 || s.Heard == nil ||
		s.Heard.Priority != 200 || s.Heard.Source != "192.0.2.21" || s.PrimaryAddress != "192.0.2.22" || !s.Preempt || !s.TieBreak {
		t.Errorf("status of vrid 1: %+v (heard %+v)", s, s.Heard)
	}
	if !strings.HasPrefix(s.Why, "BACKUP: master 192.0.2.21 advertises priority 200 interval 10, ours 100") {
		t.Errorf("why: %q", s.Why)
	}

	// The master goes quiet: MASTER after 361 ms, the address, then its
	// announcement, then the advert.
	n = f.count()
	f.in <- advert("lampros", 1, 100, 255) // keeps the CARP vhid BACKUP meanwhile
	waitOps(t, f, n,
		"set eth0 managed=[192.0.2.50/32 192.0.2.60/32] want=[192.0.2.60/32]",
		"garp if2 02:00:00:00:00:01 [192.0.2.60]",
		"vrrp if2 192.0.2.22->224.0.0.18 vrid=1 prio=100 interval=10 addrs=[192.0.2.60]")
	if got := f.opsSince(n); len(got) < 3 || !strings.HasPrefix(got[0], "set eth0") || !strings.HasPrefix(got[1], "garp") ||
		!strings.HasPrefix(got[2], "vrrp") {
		t.Errorf("the takeover's first ops are %q, want the address set, the announcement, then the advert", got)
	}
	if s := vhidStatusOf(t, d, "carp", 100); s.State != "BACKUP" {
		t.Errorf("the CARP vhid is %s, want BACKUP", s.State)
	}
	// A lower priority is discarded and a priority 0 makes the master
	// advertise at once.
	n = f.count()
	f.in <- vrrpPacket(t, 1, 0, 255)
	waitOps(t, f, n, "vrrp if2 192.0.2.22->224.0.0.18 vrid=1 prio=100 interval=10 addrs=[192.0.2.60]")

	// Planned stop: a priority-0 advert.
	n = f.count()
	cancel()
	waitOps(t, f, n, "vrrp if2 192.0.2.22->224.0.0.18 vrid=1 prio=0 interval=10 addrs=[192.0.2.60]")
	f.in <- vrrpPacket(t, 1, 50, 255) // the new master: the address can go
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return")
	}
	if f.holds(vip60) {
		t.Error("the VIP is still held after the stop")
	}
}

// TestVRRPNumbersShared: a CARP vhid and a VRRP vrid of the same number on
// one interface are a configuration error naming the line, at start and
// at a reload.
func TestVRRPNumbersShared(t *testing.T) {
	cfg := vrrpTestConfig(100)
	cfg.VHIDs[1].VHID = 100
	const want = "rc.conf:3: vhid 100 on eth0 is already defined at rc.conf:2: a CARP vhid and a VRRP vrid (carpver 3) share the numbers of an interface"
	if _, err := New(cfg, newFakeHost().host(), Options{}); err == nil || err.Error() != want {
		t.Errorf("New: %v, want %q", err, want)
	}
	f := newFakeHost()
	d, err := New(testConfig(), f.host(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	started(t, d, f, ctx)
	if _, err := d.Reload(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("Reload: %v, want %q", err, want)
	}
}

// TestVRRPReload: a VRRP instance's new priority is advertised at once by
// a master and reported as changed; a vhid that changes protocol is
// removed and added afresh.
func TestVRRPReload(t *testing.T) {
	f := newFakeHost()
	d, err := New(vrrpTestConfig(100), f.host(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	started(t, d, f, ctx)
	waitOps(t, f, 0, "vrrp if2 192.0.2.22->224.0.0.18 vrid=1 prio=100 interval=10 addrs=[192.0.2.60]")
	n := f.count()
	res, err := d.Reload(context.Background(), vrrpTestConfig(120))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(res.Changed, ",") != "1@eth0 vrrp inet" || res.Unchanged != 1 {
		t.Errorf("reload: %+v, want 1@eth0 vrrp inet changed, 1 unchanged", res)
	}
	waitOps(t, f, n, "vrrp if2 192.0.2.22->224.0.0.18 vrid=1 prio=120 interval=10 addrs=[192.0.2.60]")
	if got := f.opsSince(n); !strings.Contains(got[0], "prio=120") {
		t.Errorf("first op after the reload %q, want the new priority advertised", got[0])
	}

	// Vhid 1 becomes CARP.
	cfg := vrrpTestConfig(120)
	cfg.VHIDs[1] = config.VHID{Interface: "eth0", VHID: 1, AdvBase: 1, AdvSkew: 0, Password: "p",
		Addresses: []netip.Prefix{vip60}, Origin: "rc.conf:3"}
	res, err = d.Reload(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(res.Removed, ",") != "1@eth0 vrrp inet" || strings.Join(res.Added, ",") != "1@eth0" {
		t.Errorf("reload to CARP: %+v", res)
	}
}

// TestVRRPOwnerDemoted: the address owner (255) is MASTER at once; a
// demotion makes it advertise 255 - demotion at once and is logged as
// taking it out of the owner rule; its end gives 255 back.
func TestVRRPOwnerDemoted(t *testing.T) {
	f := newFakeHost()
	var logs lab.Buffer
	d, err := New(vrrpTestConfig(255), f.host(), Options{Log: testLog(&logs)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	started(t, d, f, ctx)
	waitLog(t, &logs, "carp: 1@eth0: INIT -> MASTER (initialization complete)")
	sub, err := d.Subscribe(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		e := <-sub.C
		want := map[int]string{100: "carp/", 1: "vrrp/inet"}[e.VHID]
		if got := e.Proto + "/" + e.Family; e.Type != "snapshot" || got != want {
			t.Errorf("snapshot of vhid %d: %s %s, want snapshot %s", e.VHID, e.Type, got, want)
		}
	}
	d.Unsubscribe(sub)
	n := f.count()
	if _, err := d.Demote(context.Background(), 10, "test"); err != nil {
		t.Fatal(err)
	}
	waitOps(t, f, n, "vrrp if2 192.0.2.22->224.0.0.18 vrid=1 prio=245 interval=10 addrs=[192.0.2.60]")
	waitLog(t, &logs, "the address owner (priority 255) is demoted")
	n = f.count()
	if _, err := d.Demote(context.Background(), -10, "test"); err != nil {
		t.Fatal(err)
	}
	waitOps(t, f, n, "vrrp if2 192.0.2.22->224.0.0.18 vrid=1 prio=255 interval=10 addrs=[192.0.2.60]")
	waitLog(t, &logs, "the address owner (priority 255) is no longer demoted")
}
