package e2e

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/carpd/carpd/internal/lab"
	"github.com/carpd/carpd/internal/probe"
)

// This file holds the fault tests of issue 11: the interface carpd runs on
// deleted and recreated, renamed, its own address (the adverts' source)
// changed, carpd restarted while MASTER, both hosts restarted at once. Each
// test states the outcome it expects at its top; the assertions follow it.
//
// "Never two holders" is checked on every change of the addresses, not by
// polling: a netlink address subscription in each host's namespace
// (watchVIP) records each time the VIP comes and goes, on any interface.
// The only overlap carpd allows by design is the planned handover's make
// before break: the old master keeps the VIP until carp.HandOverHold (10
// ms) after it hears the new master's first advert, so both hold it for
// the advert's flight, that hold and the old master's reaction.

// maxOverlap is the longest time two hosts may both hold the VIP: a make
// before break handover, never a lasting split. Measured (from the one
// ordered notification socket of watchVIP) with
//
//	go test ./e2e -run 'TestRestartWhileMaster$|TestBothRestarted$|TestInterfaceRecreatedOnMaster$|TestInterfaceRenamed$' -v | grep overlaps
//
// on this machine kind on 2026-12-07, at load 12 to 16: 10.7, 7.8 and
// 2.0 ms in 3 runs of TestRestartWhileMaster (5 handovers each), 0 to
// 1.1 ms in 2 runs of the others;
// issue 25 recorded 1 to 5 ms, and 92 ms once with the polling watch of
// then under load. 50 ms is about five times the worst measured here.
// With HandOverHold (10 ms) added: 29.0 ms in 1 run of
// TestRestartWhileMaster (5 handovers) with mutants.sh running beside it.
const maxOverlap = 50 * time.Millisecond

// vipWatch records which hosts hold the VIP, from netlink address
// notifications in each host's namespace.
type vipWatch struct {
	t     testing.TB
	mu    sync.Mutex
	held  map[string]map[int]bool // host -> ifindexes holding the VIP
	evs   []vipEvent
	err   error
	hosts []string
}

// vipEvent is a change of the number of interfaces of a host that hold the
// VIP.
type vipEvent struct {
	at   time.Time
	host string
	n    int // interfaces of host holding the VIP after the change
}

// watchVIP records the VIP's comings and goings on every host, from one
// netlink socket in the first host's namespace that listens to all the
// namespaces it has an id for (NETLINK_LISTEN_ALL_NSID; the test gives
// each other host's namespace one there). One socket, one queue: the
// notifications arrive in the order the kernel made the changes, across
// namespaces, so a handover (the new master's address added, then the
// old master's removed) is never seen reversed, and any interval with no
// holder is a real one.
func watchVIP(t testing.TB, hosts ...*lab.Host) *vipWatch {
	t.Helper()
	w := &vipWatch{t: t, held: map[string]map[int]bool{}}
	byNSID := map[int32]string{}
	var fd int
	err := hosts[0].Do(func() error {
		h, err := netlink.NewHandle()
		if err != nil {
			return err
		}
		defer h.Close()
		for i, host := range hosts[1:] {
			ns, err := netns.GetFromName(host.NS)
			if err != nil {
				return err
			}
			id, err := h.GetNetNsIdByFd(int(ns))
			if err == nil && id < 0 {
				id = 1000 + i
				err = h.SetNetNsIdByFd(int(ns), id)
			}
			ns.Close()
			if err != nil {
				return fmt.Errorf("the id of %s's namespace in %s's: %w", host.Name, hosts[0].Name, err)
			}
			byNSID[int32(id)] = host.Name
		}
		fd, err = unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
		if err != nil {
			return err
		}
		for _, o := range []struct{ level, opt, v int }{
			{unix.SOL_NETLINK, unix.NETLINK_LISTEN_ALL_NSID, 1},
			{unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 1 << 20},
		} {
			if err := unix.SetsockoptInt(fd, o.level, o.opt, o.v); err != nil {
				unix.Close(fd)
				return err
			}
		}
		tv := unix.NsecToTimeval(int64(100 * time.Millisecond))
		if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
			unix.Close(fd)
			return err
		}
		if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK,
			Groups: unix.RTMGRP_IPV4_IFADDR | unix.RTMGRP_IPV6_IFADDR}); err != nil {
			unix.Close(fd)
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatalf("watching the VIP: %v", err)
	}
	for _, h := range hosts {
		w.hosts = append(w.hosts, h.Name)
		w.held[h.Name] = map[int]bool{}
	}
	var stop sync.WaitGroup
	var done atomic.Bool
	stop.Add(1)
	go func() {
		defer stop.Done()
		defer unix.Close(fd)
		buf, oob := make([]byte, 1<<16), make([]byte, 256)
		for !done.Load() {
			n, oobn, _, _, err := unix.Recvmsg(fd, buf, oob, 0)
			if err == unix.EAGAIN || err == unix.EINTR {
				continue
			}
			if err != nil {
				w.fail(fmt.Errorf("address notifications: %w", err))
				return
			}
			host := hosts[0].Name
			if cms, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil {
				for _, cm := range cms {
					if cm.Header.Level == unix.SOL_NETLINK && cm.Header.Type == unix.NETLINK_LISTEN_ALL_NSID && len(cm.Data) >= 4 {
						host = byNSID[int32(binary.NativeEndian.Uint32(cm.Data))]
					}
				}
			}
			if host == "" {
				continue // a namespace not watched
			}
			msgs, err := syscall.ParseNetlinkMessage(buf[:n])
			if err != nil {
				w.fail(fmt.Errorf("address notifications: %w", err))
				return
			}
			for _, m := range msgs {
				if a, ifindex, ok := vipAddrMsg(m); ok && a == vip {
					w.note(host, ifindex, m.Header.Type == unix.RTM_NEWADDR)
				}
			}
		}
	}()
	t.Cleanup(func() { done.Store(true); stop.Wait() })
	// What the hosts hold already, read after the subscription: a change
	// in between is noted twice, which note ignores.
	for _, h := range hosts {
		var addrs []netlink.Addr
		if err := h.Do(func() (err error) { addrs, err = netlink.AddrList(nil, netlink.FAMILY_ALL); return err }); err != nil {
			t.Fatal(err)
		}
		for _, a := range addrs {
			if ip, ok := netip.AddrFromSlice(a.IP); ok && ip.Unmap() == vip {
				w.note(h.Name, a.LinkIndex, true)
			}
		}
	}
	return w
}

// vipAddrMsg returns the address and interface index of an RTM_NEWADDR or
// RTM_DELADDR message.
func vipAddrMsg(m syscall.NetlinkMessage) (netip.Addr, int, bool) {
	if m.Header.Type != unix.RTM_NEWADDR && m.Header.Type != unix.RTM_DELADDR || len(m.Data) < unix.SizeofIfAddrmsg {
		return netip.Addr{}, 0, false
	}
	ifindex := int(binary.NativeEndian.Uint32(m.Data[4:8]))
	attrs, err := syscall.ParseNetlinkRouteAttr(&m)
	if err != nil {
		return netip.Addr{}, 0, false
	}
	var a netip.Addr
	for _, at := range attrs {
		switch at.Attr.Type {
		case unix.IFA_LOCAL:
			a, _ = netip.AddrFromSlice(at.Value)
		case unix.IFA_ADDRESS:
			if !a.IsValid() {
				a, _ = netip.AddrFromSlice(at.Value)
			}
		}
	}
	return a.Unmap(), ifindex, a.IsValid()
}

func (w *vipWatch) fail(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err == nil {
		w.err = err
	}
}

func (w *vipWatch) note(host string, ifindex int, added bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	m := w.held[host]
	if m[ifindex] == added {
		return // a lifetime renewal
	}
	if added {
		m[ifindex] = true
	} else {
		delete(m, ifindex)
	}
	w.evs = append(w.evs, vipEvent{at: time.Now(), host: host, n: len(m)})
}

// holders returns the hosts that hold the VIP now, as the notifications
// told.
func (w *vipWatch) holders() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var hs []string
	for _, h := range w.hosts {
		if len(w.held[h]) > 0 {
			hs = append(hs, h)
		}
	}
	return hs
}

// span is a time interval.
type span struct{ from, to time.Time }

func (s span) len() time.Duration { return s.to.Sub(s.from) }

// overlaps returns the intervals, since from, in which more than one
// host held the VIP (or one host held it twice); one still open ends now.
func (w *vipWatch) overlaps(from time.Time) []span {
	return w.spans(from, func(n int) bool { return n > 1 })
}

// unheld returns the intervals, since from, in which no host held the VIP.
func (w *vipWatch) unheld(from time.Time) []span {
	return w.spans(from, func(n int) bool { return n == 0 })
}

// spans returns the intervals, cut to start at from, in which the number
// of holdings of the VIP satisfied in; one still open ends now.
func (w *vipWatch) spans(from time.Time, in func(n int) bool) []span {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		w.t.Errorf("watching the VIP: %v", w.err)
	}
	n := map[string]int{}
	var out []span
	var open time.Time
	inside := in(0) // before the first notification, nothing is held
	if inside {
		open = time.Time{}.Add(1) // since ever
	}
	end := func(at time.Time) {
		if at.After(from) {
			out = append(out, span{maxTime(open, from), at})
		}
	}
	for _, e := range w.evs {
		n[e.host] = e.n
		var total int
		for _, k := range n {
			total += k
		}
		switch now := in(total); {
		case now && !inside:
			open = e.at
		case !now && inside:
			end(e.at)
		}
		inside = in(total)
	}
	if inside {
		end(time.Now())
	}
	return out
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// checkOverlaps fails the test for every interval since from in which two
// hosts held the VIP for longer than maxOverlap, and returns the longest.
func (w *vipWatch) checkOverlaps(t testing.TB, from time.Time) time.Duration {
	t.Helper()
	var worst time.Duration
	for _, s := range w.overlaps(from) {
		worst = max(worst, s.len())
		if s.len() > maxOverlap {
			t.Errorf("two holders of the VIP for %v (from %s), want at most %v (a make before break handover)",
				s.len(), s.from.Format("15:04:05.000"), maxOverlap)
		}
	}
	t.Logf("overlaps: longest %v (bound %v)", worst, maxOverlap)
	return worst
}

// checkHeld fails the test for every interval since from in which no
// host held the VIP, however short: the one socket of watchVIP sees the
// changes in the order they were made.
func (w *vipWatch) checkHeld(t testing.TB, from time.Time) {
	t.Helper()
	for _, s := range w.unheld(from) {
		t.Errorf("no host held the VIP for %v (from %s)", s.len(), s.from.Format("15:04:05.000"))
	}
}

// waitAnswered waits until one of the client's probes has been answered:
// the client reaches the VIP before the fault (where a fixed second's
// sleep stood).
func waitAnswered(t testing.TB, pr *prober, timeout time.Duration) {
	t.Helper()
	start := time.Now()
	for !pr.answeredSince(start.Add(-time.Hour)) {
		if time.Since(start) > timeout {
			t.Fatalf("no probe of the VIP answered in %v", timeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// heldSince returns how long after from host's first taking of the VIP
// (the first notification since from that made it a holder) came.
func (w *vipWatch) heldSince(host string, from time.Time) (time.Duration, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, e := range w.evs {
		if e.host == host && e.n > 0 && !e.at.Before(from) {
			return e.at.Sub(from), true
		}
	}
	return 0, false
}

// waitSoleHolder waits until the watch says that h alone holds the VIP.
func (w *vipWatch) waitSoleHolder(h *lab.Host, timeout time.Duration) (time.Duration, bool) {
	start := time.Now()
	for time.Since(start) < timeout {
		if got := w.holders(); len(got) == 1 && got[0] == h.Name {
			return time.Since(start), true
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Since(start), false
}

// vipPlaces returns every place ("host/iface") the VIP is configured, in
// every namespace of the lab (the switch included), from `ip -j addr`.
func vipPlaces(t testing.TB, c *cluster) []string {
	t.Helper()
	var places []string
	for name, ns := range map[string]string{"master": c.master.NS, "backup": c.backup.NS, "client": c.client.NS, "switch": c.lab.Switch} {
		out, err := exec.Command("ip", "-n", ns, "-j", "addr", "show").Output()
		if err != nil {
			t.Fatalf("ip -n %s -j addr show: %v", ns, err)
		}
		var links []struct {
			IfName   string `json:"ifname"`
			AddrInfo []struct {
				Local string `json:"local"`
			} `json:"addr_info"`
		}
		if err := json.Unmarshal(out, &links); err != nil {
			t.Fatalf("ip -j addr in %s: %v", ns, err)
		}
		for _, l := range links {
			for _, a := range l.AddrInfo {
				if a.Local == vip.String() {
					places = append(places, name+"/"+l.IfName)
				}
			}
		}
	}
	slices.Sort(places)
	return places
}

// checkPlaces fails unless the VIP is configured exactly at want (nil:
// nowhere), in every namespace of the lab.
func checkPlaces(t testing.TB, c *cluster, want ...string) {
	t.Helper()
	if got := vipPlaces(t, c); !slices.Equal(got, want) {
		t.Errorf("the VIP is configured at %v, want exactly %v", got, want)
	}
}

// arpReplies asks who has the VIP from the client (Habets' arping, three
// requests) and returns the MAC addresses that answered.
func arpReplies(t testing.TB, c *cluster) []string {
	t.Helper()
	needBinary(t, "arping")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, _ := c.client.Run(ctx, "arping", "-c", "3", "-w", "3", "-i", "eth0", vip.String())
	var macs []string
	for _, m := range regexp.MustCompile(`from ([0-9a-f:]{17})`).FindAllStringSubmatch(strings.ToLower(out), -1) {
		if !slices.Contains(macs, m[1]) {
			macs = append(macs, m[1])
		}
	}
	return macs
}

// checkARP fails unless exactly h's eth0 answers the client's ARP requests
// for the VIP, and the client's neighbour entry points at it.
func checkARP(t testing.TB, c *cluster, h *lab.Host) {
	t.Helper()
	if got := arpReplies(t, c); len(got) != 1 || got[0] != h.MAC.String() {
		t.Errorf("ARP replies for the VIP from %v, want only %s's %v", got, h.Name, h.MAC)
	}
	deadline := time.Now().Add(3 * time.Second)
	for {
		mac, _, err := c.client.Neigh(vip)
		if err != nil {
			t.Fatal(err)
		}
		if mac.String() == h.MAC.String() {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("the client's neighbour entry for the VIP is %v, want %s's %v", mac, h.Name, h.MAC)
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ipLink is the part of `ip -j link` the tests read.
type ipLink struct {
	IfIndex int    `json:"ifindex"`
	IfName  string `json:"ifname"`
	Address string `json:"address"`
}

func linkOf(t testing.TB, ns, name string) ipLink {
	t.Helper()
	out, err := exec.Command("ip", "-n", ns, "-j", "link", "show", "dev", name).Output()
	if err != nil {
		t.Fatalf("ip -n %s link show dev %s: %v", ns, name, err)
	}
	var ls []ipLink
	if err := json.Unmarshal(out, &ls); err != nil || len(ls) != 1 {
		t.Fatalf("ip -j link show dev %s: %v %s", name, err, out)
	}
	return ls[0]
}

// ipIn runs `ip -n ns args...`.
func ipIn(t testing.TB, ns string, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", append([]string{"-n", ns}, args...)...).CombinedOutput(); err != nil {
		t.Fatalf("ip -n %s %v: %v: %s", ns, args, err, out)
	}
}

// renameIface renames h's interface from to to, while it is up as Linux
// allows since 6.2; an older kernel refuses (EBUSY), and the interface is
// then set down, renamed and set up again, as an operator must do there.
func renameIface(t testing.TB, h *lab.Host, from, to string) {
	t.Helper()
	out, err := exec.Command("ip", "-n", h.NS, "link", "set", "dev", from, "name", to).CombinedOutput()
	if err == nil {
		return
	}
	if !strings.Contains(string(out), "busy") {
		t.Fatalf("ip link set dev %s name %s: %v: %s", from, to, err, out)
	}
	t.Logf("this kernel renames no running interface: %s down, renamed, up", from)
	ipIn(t, h.NS, "link", "set", "dev", from, "down")
	ipIn(t, h.NS, "link", "set", "dev", from, "name", to)
	ipIn(t, h.NS, "link", "set", "dev", to, "up")
}

// deleteIface deletes h's eth0, and with it its veth peer, the switch port.
// The kernel removes its addresses with it.
func deleteIface(t testing.TB, h *lab.Host) {
	t.Helper()
	ipIn(t, h.NS, "link", "del", "dev", h.Iface)
}

// createIface makes h's eth0 again, as the lab does: a new veth pair (a
// new ifindex and a new random MAC) cabled to the switch, up, with h's own
// address own. It sets h.MAC and returns the new interface.
func createIface(t testing.TB, c *cluster, h *lab.Host, own netip.Prefix) ipLink {
	t.Helper()
	return createIfaceOn(t, c, h, h.Port, own)
}

// createIfaceOn is createIface with the switch port named port.
func createIfaceOn(t testing.TB, c *cluster, h *lab.Host, port string, own netip.Prefix) ipLink {
	t.Helper()
	ipIn(t, c.lab.Switch, "link", "add", "name", port, "type", "veth", "peer", "name", h.Iface, "netns", h.NS)
	ipIn(t, c.lab.Switch, "link", "set", "dev", port, "master", lab.Bridge)
	ipIn(t, c.lab.Switch, "link", "set", "dev", port, "up")
	if err := h.Do(func() error {
		return os.WriteFile("/proc/sys/net/ipv6/conf/"+h.Iface+"/accept_dad", []byte("0"), 0o644)
	}); err != nil {
		t.Fatal(err)
	}
	ipIn(t, h.NS, "link", "set", "dev", h.Iface, "up")
	ipIn(t, h.NS, "addr", "add", own.String(), "dev", h.Iface)
	l := linkOf(t, h.NS, h.Iface)
	mac, err := net.ParseMAC(l.Address)
	if err != nil {
		t.Fatal(err)
	}
	h.MAC = mac
	return l
}

// logsSince returns the part of p's output written after mark (a length of
// its output).
func logsSince(p *lab.Proc, mark int) string { return p.Output()[mark:] }

// noTransitions fails if out (a part of a carpd's log) has a transition.
func noTransitions(t testing.TB, who, out string) {
	t.Helper()
	if tr := transitions(out); len(tr) > 0 {
		t.Errorf("%s: transitions %q, want none", who, tr)
	}
}

// whichLost describes the lost probes of res: each one's sequence number
// and the time it was sent.
func whichLost(res []probe.Result) []string {
	var lost []string
	for _, r := range res {
		if r.Lost {
			lost = append(lost, fmt.Sprintf("seq %d sent %s", r.Seq, r.Sent.Format("15:04:05.000")))
		}
	}
	return lost
}

// waitLogs waits for each of substrs, in p's output after mark.
func waitLogs(t testing.TB, p *lab.Proc, mark int, timeout time.Duration, substrs ...string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for _, s := range substrs {
		for !strings.Contains(logsSince(p, mark), s) {
			if time.Now().After(deadline) {
				t.Fatalf("no %q in the log within %v:\n%s", s, timeout, logsSince(p, mark))
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// TestInterfaceRecreatedOnBackup: the backup's eth0 is deleted and at once
// made again under the same name (a new ifindex, a new MAC), as a
// hypervisor or a udev rule does.
//
// Expected: the backup's vhid goes INIT ("hardware interface down") and,
// when the new eth0 appears, carpd follows its new index: it joins
// 224.0.0.18 on it and goes BACKUP again ("hardware interface up"). It then
// hears the master on the new index, so it stays BACKUP (had it not
// joined, it would time out after 3.78 s and take the VIP beside the
// master). The master holds the VIP alone throughout and the client loses no
// probe. When the master then stops (SIGTERM), the backup takes over on its
// new eth0: it adds the VIP there, announces it with the new MAC (the
// client's neighbour entry and its ARP answers), and the VIP is nowhere
// else. That is a planned hand-over like any other: the new master
// announces the new MAC before its first advert, the old one keeps the VIP
// until it hears that advert, so the client loses no probe then either.
func TestInterfaceRecreatedOnBackup(t *testing.T) {
	c := newCluster(t)
	startPair(t, c)
	w := watchVIP(t, c.master, c.backup, c.client)
	pr := c.ping(100 * time.Millisecond)
	bp := c.procs[c.backup]
	waitAnswered(t, pr, 5*time.Second)
	old := linkOf(t, c.backup.NS, "eth0")
	mark, mmark := len(bp.Output()), len(c.procs[c.master].Output())
	start := time.Now()

	deleteIface(t, c.backup)
	nl := createIface(t, c, c.backup, backupAddr)
	t.Logf("backup's eth0: ifindex %d -> %d, MAC %s -> %s", old.IfIndex, nl.IfIndex, old.Address, nl.Address)
	if nl.IfIndex == old.IfIndex {
		t.Fatal("the new eth0 has the old index")
	}
	waitLogs(t, bp, mark, 5*time.Second,
		"carp: 100@eth0: BACKUP -> INIT (hardware interface down)",
		"carp: 100@eth0: INIT -> BACKUP (hardware interface up)")
	// More than a master-down interval: a backup deaf on its new index would
	// have taken over by then.
	time.Sleep(masterDown + 1500*time.Millisecond)
	if got := transitions(logsSince(bp, mark)); len(got) != 2 {
		t.Errorf("backup's transitions %q, want only INIT and back to BACKUP", got)
	}
	noTransitions(t, "master", logsSince(c.procs[c.master], mmark))
	if !strings.Contains(logsSince(bp, mark), `msg="carp: demoted by -240 to 0 (interface up)"`) {
		t.Errorf("the backup's demotion was not taken back:\n%s", logsSince(bp, mark))
	}
	if got := w.holders(); len(got) != 1 || got[0] != "master" {
		t.Errorf("holders %v, want only master", got)
	}
	w.checkHeld(t, start)
	w.checkOverlaps(t, start)
	checkPlaces(t, c, "master/eth0")
	st := c.status(c.backup)
	if len(st.VHIDs) != 1 || st.VHIDs[0].State != "BACKUP" {
		t.Errorf("the backup's status: %+v, want BACKUP", st.VHIDs)
	}
	if lost := whichLost(pr.results()); len(lost) != 0 {
		t.Errorf("the client lost %d probes while the backup's interface was recreated, want 0: %v", len(lost), lost)
	}

	// The backup takes over on its new eth0. The client's neighbour entry
	// for the VIP is first made what a busy client's is, just confirmed
	// (REACHABLE), so that only the new master's announcement can move it
	// to the new MAC: one the client was resolving again at the hand-over
	// would find the new MAC by itself, and hide a missing announcement.
	ipIn(t, c.client.NS, "neigh", "replace", vip.String(), "lladdr", c.master.MAC.String(), "dev", c.client.Iface, "nud", "reachable")
	if err := c.procs[c.master].Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	if took, ok := w.waitSoleHolder(c.backup, 5*time.Second); !ok {
		t.Fatalf("the backup does not hold the VIP alone %v after the master's SIGTERM (holders %v)", took, w.holders())
	}
	<-c.procs[c.master].Done()
	w.checkOverlaps(t, stopped)
	checkPlaces(t, c, "backup/eth0")
	// A second of probes before checkARP, whose own ARP request would
	// teach the client the new MAC.
	time.Sleep(time.Second)
	checkARP(t, c, c.backup)
	pr.stop()
	// 0 lost (it was "at most 1"), on this machine kind on 2026-12-07: 0
	// in each of 21 runs at load 2 to 12, and 0 in each of 10 runs of
	// this form (the entry made REACHABLE, checkARP after the second) at
	// load 8 to 10, with
	//
	//	go test ./e2e -run 'TestInterfaceRecreatedOnBackup$' -count=10 -v | grep -E 'client probes|^---'
	//
	// A capture on the client showed the order: the old master's bow-out,
	// 1.6 ms later the new master's gratuitous ARP with its new MAC, then
	// its advert; the next probe went to the new MAC and was answered.
	// With the announcement dropped (carpd's announce returning at once)
	// the client lost 1 or 2 probes in 6 of 7 runs of the earlier form,
	// sent to the old master's MAC until checkARP's own ARP request (then
	// made before the second of probes) taught it the new one: "at most
	// 1" let 5 of the 7 pass. In this form it lost 10 to 13 in 5 of 5.
	t.Logf("client probes: %d sent, %d lost", len(pr.results()), len(whichLost(pr.results())))
	if lost := whichLost(pr.results()); len(lost) != 0 || !probe.Summarize(pr.results()).Recovered {
		t.Errorf("the client lost %d probes in the hand-over to the recreated interface, want 0: %v", len(lost), lost)
	}
}

// TestInterfaceRecreatedOnMaster: the master's eth0 is deleted and made
// again under the same name, at once and then after a pause longer than the
// master-down interval. Both hosts run with --preempt, so that the master
// host (advskew 100) must end up MASTER on its new interface.
//
// Expected, at once: the vhid goes INIT (the VIP went with the old
// interface; the kernel removed it), carpd follows the new index, goes
// BACKUP and, whether the peer took over meanwhile (then it preempts) or
// not (then its master-down timer, 3.39 s, runs out first), becomes MASTER
// within the master-down interval plus a margin, adds the VIP on the new
// eth0 and announces it with the new MAC. No two holders beyond a
// handover, the VIP on the new eth0 only.
//
// Expected, after a pause: the backup takes over after its master-down
// interval (the outage of a cut cable); when eth0 is back, the master host
// preempts within about one advert interval, and the backup releases the
// VIP (make before break).
func TestInterfaceRecreatedOnMaster(t *testing.T) {
	c := newCluster(t, "--preempt")
	startPair(t, c)
	w := watchVIP(t, c.master, c.backup, c.client)
	pr := c.ping(100 * time.Millisecond)
	mp := c.procs[c.master]
	waitAnswered(t, pr, 5*time.Second)

	for _, gap := range []bool{false, true} {
		old := linkOf(t, c.master.NS, "eth0")
		mark := len(mp.Output())
		start := time.Now()
		deleteIface(t, c.master)
		if gap {
			if took, ok := w.waitSoleHolder(c.backup, masterDown+3*time.Second); !ok {
				t.Fatalf("the backup does not hold the VIP %v after the master's eth0 was deleted (holders %v)", took, w.holders())
			}
			time.Sleep(time.Second)
		}
		nl := createIface(t, c, c.master, masterAddr)
		created := time.Now()
		t.Logf("pause %v: master's eth0: ifindex %d -> %d, MAC %s -> %s", gap, old.IfIndex, nl.IfIndex, old.Address, nl.Address)
		waitLogs(t, mp, mark, 5*time.Second,
			"carp: 100@eth0: MASTER -> INIT (hardware interface down)",
			"carp: 100@eth0: INIT -> BACKUP (hardware interface up)")
		timeout := masterDown + 3*time.Second
		if gap {
			timeout = 3 * time.Second // preempting a worse master: at its next advert
		}
		took, ok := w.waitSoleHolder(c.master, timeout)
		if !ok {
			t.Fatalf("pause %v: the master does not hold the VIP alone %v after its eth0 came back (holders %v):\n%s",
				gap, took, w.holders(), logsSince(mp, mark))
		}
		t.Logf("pause %v: the master holds the VIP alone %v after its new eth0 appeared", gap, took.Round(time.Millisecond))
		waitLogs(t, mp, mark, time.Second, "carp: 100@eth0: BACKUP -> MASTER")
		// Settled: one holder, on the new eth0, announced with the new
		// MAC; the demotion of the down interface taken back.
		time.Sleep(2 * time.Second)
		if got := w.holders(); len(got) != 1 || got[0] != "master" {
			t.Errorf("pause %v: holders %v, want only master", gap, got)
		}
		worst := w.checkOverlaps(t, start)
		t.Logf("pause %v: longest overlap %v", gap, worst)
		checkPlaces(t, c, "master/eth0")
		checkARP(t, c, c.master)
		if !strings.Contains(logsSince(mp, mark), `msg="carp: demoted by -240 to 0 (interface up)"`) {
			t.Errorf("pause %v: the demotion was not taken back:\n%s", gap, logsSince(mp, mark))
		}
		if !pr.answeredSince(created.Add(took)) {
			t.Errorf("pause %v: no probe answered since the master took the VIP back", gap)
		}
	}
	pr.stop()
	if s := probe.Summarize(pr.results()); !s.Recovered {
		t.Errorf("client probes did not recover: %+v", s)
	}
}

// TestInterfaceRenamed: the master's eth0 is renamed (`ip link set dev eth0
// name eth9`, which Linux allows on a running interface since 6.2; see
// renameIface for older kernels) and later named eth0 again.
//
// carpd is configured by name, as FreeBSD's rc.conf and carpd's TOML are,
// and it follows the name rather than the interface (FreeBSD's carp is
// bound to the ifnet and a rename keeps it): a carpd started afresh would
// find whatever is called eth0 then, and a running one must not do
// otherwise, nor hold the VIP on an interface its configuration does not
// name. So a rename away is the interface going away.
//
// Expected: the vhid goes INIT (as for a link down: demoted by 240), the
// VIP is removed from eth9 at once (no stale address under the new name),
// the backup takes over after its master-down interval (the outage of a
// cut cable) and announces. When the interface is named eth0 again (the same
// index), carpd takes it back: BACKUP, demotion taken back, and it stays
// BACKUP (no preempt) because it still hears the backup on it. Never two
// holders.
//
// Then eth0 is renamed to eth9 again and a new eth0 is made beside it, both
// cabled to the switch: carpd follows the new eth0 (BACKUP again), and when
// the backup stops, it takes the VIP on the new eth0 and renews it there,
// never on eth9 (which had held it under the name eth0).
func TestInterfaceRenamed(t *testing.T) {
	c := newCluster(t)
	startPair(t, c)
	w := watchVIP(t, c.master, c.backup, c.client)
	pr := c.ping(100 * time.Millisecond)
	mp, bp := c.procs[c.master], c.procs[c.backup]
	waitAnswered(t, pr, 5*time.Second)
	mark, bmark := len(mp.Output()), len(bp.Output())
	start := time.Now()

	renameIface(t, c.master, "eth0", "eth9")
	waitLogs(t, mp, mark, 5*time.Second,
		"carp: 100@eth0: MASTER -> INIT (hardware interface down)",
		`msg="carp: demoted by 240 to 240 (interface down)"`)
	deadline := time.Now().Add(time.Second)
	for slices.Contains(w.holders(), "master") {
		if time.Now().After(deadline) {
			t.Fatalf("the VIP is still on the renamed interface 1 s after the rename: %v", vipPlaces(t, c))
		}
		time.Sleep(10 * time.Millisecond)
	}
	took, ok := w.waitSoleHolder(c.backup, masterDown+3*time.Second)
	if !ok {
		t.Fatalf("the backup does not hold the VIP %v after the rename (holders %v)", took, w.holders())
	}
	t.Logf("the backup holds the VIP %v after the rename", took.Round(time.Millisecond))
	waitLogs(t, bp, bmark, time.Second, "carp: 100@eth0: BACKUP -> MASTER (master timed out)")
	checkPlaces(t, c, "backup/eth0")
	checkARP(t, c, c.backup)

	mark = len(mp.Output())
	back := time.Now()
	renameIface(t, c.master, "eth9", "eth0")
	waitLogs(t, mp, mark, 5*time.Second,
		"carp: 100@eth0: INIT -> BACKUP (hardware interface up)",
		`msg="carp: demoted by -240 to 0 (interface up)"`)
	time.Sleep(masterDown + 1500*time.Millisecond)
	if got := transitions(logsSince(mp, mark)); len(got) != 1 {
		t.Errorf("master host's transitions after the rename back: %q, want only INIT -> BACKUP", got)
	}
	if got := w.holders(); len(got) != 1 || got[0] != "backup" {
		t.Errorf("holders %v, want only backup", got)
	}
	w.checkHeld(t, back)
	w.checkOverlaps(t, start)
	checkPlaces(t, c, "backup/eth0")

	mark = len(mp.Output())
	renameIface(t, c.master, "eth0", "eth9")
	waitLogs(t, mp, mark, 5*time.Second, "carp: 100@eth0: BACKUP -> INIT (hardware interface down)")
	nl := createIfaceOn(t, c, c.master, "master2", masterAddr)
	waitLogs(t, mp, mark, 5*time.Second,
		`msg="carp: interface back; following it" iface=eth0 ifindex=`+strconv.Itoa(nl.IfIndex),
		"carp: 100@eth0: INIT -> BACKUP (hardware interface up)")
	time.Sleep(time.Second)
	if err := bp.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if took, ok := w.waitSoleHolder(c.master, 5*time.Second); !ok {
		t.Fatalf("the master does not hold the VIP alone %v after the backup's SIGTERM (holders %v)", took, w.holders())
	}
	// Three of its adverts, each renewing the VIP's lifetime.
	time.Sleep(3*time.Second + 3*100*time.Second/256)
	checkPlaces(t, c, "master/eth0")
	pr.stop()
	if s := probe.Summarize(pr.results()); !s.Recovered {
		t.Errorf("client probes did not recover: %+v", s)
	}
}

// TestAdvertSourceChanged: the host's own address, the source of its
// adverts, is replaced by another one of the same subnet (`ip addr del`
// and `ip addr add` in one ip -batch), first on the master, then on the
// backup, which then takes over.
//
// Expected: the master's next advert leaves from the new address (no
// advert from the old one once the change is made), at its usual
// interval; no transition anywhere (the backup keeps hearing the master);
// the client loses at most sourceChangeLoss probes in the master's change
// and none at any other time (the backup's change, the hand-over). After
// the backup's change and the master's SIGTERM, the backup's adverts as
// MASTER leave from its new address.
func TestAdvertSourceChanged(t *testing.T) {
	c := newCluster(t)
	startPair(t, c)
	pr := c.ping(100 * time.Millisecond)
	mp, bp := c.procs[c.master], c.procs[c.backup]
	capture := captureAdverts(t, c.client, "eth0", c.dir)
	time.Sleep(2 * time.Second)
	mark, bmark := len(mp.Output()), len(bp.Output())

	newMaster := netip.MustParsePrefix("192.0.2.31/24")
	newBackup := netip.MustParsePrefix("192.0.2.32/24")
	// replace changes h's address; the change is made between from (ip
	// started) and to (ip done).
	replace := func(h *lab.Host, from, to netip.Prefix) span {
		batch := fmt.Sprintf("addr del %s dev eth0\naddr add %s dev eth0\n", from, to)
		cmd := exec.Command("ip", "-n", h.NS, "-batch", "-")
		cmd.Stdin = strings.NewReader(batch)
		at := time.Now()
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s: ip -batch: %v: %s", h.Name, err, out)
		}
		return span{at, time.Now()}
	}
	masterChange := replace(c.master, masterAddr, newMaster)
	changedMaster := masterChange.from
	time.Sleep(5 * time.Second)
	noTransitions(t, "master", logsSince(mp, mark))
	noTransitions(t, "backup", logsSince(bp, bmark))

	replace(c.backup, backupAddr, newBackup)
	time.Sleep(2 * time.Second)
	noTransitions(t, "master", logsSince(mp, mark))
	noTransitions(t, "backup", logsSince(bp, bmark))
	if err := mp.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	if took, ok := c.waitHolder(c.backup, 5*time.Second); !ok {
		t.Fatalf("the backup does not hold the VIP %v after the master's SIGTERM", took)
	}
	// The new master advertises at once and every 1.78 s: three adverts or
	// more; the test wants two, a margin for a loaded machine.
	time.Sleep(5 * time.Second)
	ads := capture.stop(t)
	pr.stop()

	var before, afterOld, afterNew, backupOld, backupNew int
	var firstNew time.Time
	var gaps []time.Duration
	var last time.Time
	for _, a := range ads {
		if a.VHID != 100 || a.At.After(stopped) {
			if a.VHID == 100 && a.At.After(stopped) && a.AdvSkew == 200 {
				switch a.Src {
				case backupAddr.Addr():
					backupOld++
				case newBackup.Addr():
					backupNew++
				}
			}
			continue
		}
		// The master's adverts (advskew 100) until its SIGTERM.
		if a.AdvSkew != 100 {
			continue
		}
		if !last.IsZero() {
			gaps = append(gaps, a.At.Sub(last))
		}
		last = a.At
		switch {
		case a.At.Before(changedMaster):
			if a.Src == masterAddr.Addr() {
				before++
			}
		case a.Src == masterAddr.Addr() && a.At.After(masterChange.to):
			// From the old address once ip is done. One sent while ip
			// ran may be from either: on 2026-12-07, at load 11, an
			// advert left from the old address 56 ms after ip started.
			afterOld++
		case a.Src == newMaster.Addr():
			afterNew++
			if firstNew.IsZero() {
				firstNew = a.At
			}
		}
	}
	t.Logf("master's adverts: %d from %v before the change, %d from it after, %d from %v after (first %v after the change); backup as MASTER: %d from %v, %d from %v",
		before, masterAddr.Addr(), afterOld, afterNew, newMaster.Addr(), firstNew.Sub(changedMaster).Round(time.Millisecond),
		backupOld, backupAddr.Addr(), backupNew, newBackup.Addr())
	if before == 0 || afterNew < 3 {
		t.Errorf("master's adverts: %d before the change, %d from the new address after; want some of each", before, afterNew)
	}
	if afterOld > 0 {
		t.Errorf("%d adverts from the old address %v after it was replaced", afterOld, masterAddr.Addr())
	}
	// advbase 1 + advskew 100/256: 1.39 s; the margin is for this machine.
	if firstNew.IsZero() || firstNew.Sub(changedMaster) > 1600*time.Millisecond {
		t.Errorf("first advert from the new address %v after the change, want within one advert interval", firstNew.Sub(changedMaster))
	}
	for _, g := range gaps {
		if g > 2*time.Second {
			t.Errorf("a gap of %v between the master's adverts, want about 1.39 s", g)
		}
	}
	if backupNew < 2 || backupOld > 0 {
		t.Errorf("backup as MASTER: %d adverts from its new address, %d from its old; want >= 2 and 0", backupNew, backupOld)
	}
	// The probes whose request may meet the master without its subnet
	// route: sent from an interval before its change began to an interval
	// after it was done.
	res := pr.results()
	var inChange, elsewhere []probe.Result
	for _, r := range res {
		switch {
		case !r.Lost:
		case !r.Sent.Before(masterChange.from.Add(-100*time.Millisecond)) && r.Sent.Before(masterChange.to.Add(100*time.Millisecond)):
			inChange = append(inChange, r)
		default:
			elsewhere = append(elsewhere, r)
		}
	}
	t.Logf("client probes: %d sent, %d lost in the master's change of address (%v), %d lost elsewhere",
		len(res), len(inChange), masterChange.to.Sub(masterChange.from).Round(time.Millisecond), len(elsewhere))
	if len(inChange) > sourceChangeLoss {
		t.Errorf("the client lost %d probes in the master's change of address, want at most %d: %v", len(inChange), sourceChangeLoss, whichLost(inChange))
	}
	if len(elsewhere) > 0 || !probe.Summarize(res).Recovered {
		t.Errorf("the client lost %d probes outside the master's change of address, want 0: %v", len(elsewhere), whichLost(elsewhere))
	}
}

// sourceChangeLoss is the most probes (sent every 100 ms) that the client
// may lose when the master's own address is replaced (ip -batch: addr del,
// then addr add). Between the two the master has no route to its subnet,
// so an echo request that reaches it then goes unanswered, whatever carpd
// does: the kernel cannot route the reply (carpd holds the VIP, a /32,
// throughout, and answers nothing itself). That window, from the kernel's
// "Deleted 192.0.2.0/24" to the new 192.0.2.0/24 route, measured in a lab
// namespace with
//
//	ip -n NS -ts monitor address route & (20 times each way:)
//	printf 'addr del 192.0.2.21/24 dev va\naddr add 192.0.2.31/24 dev va\n' | ip -n NS -batch -
//
// on this machine kind on 2026-12-07 at load 10 to 11: median 0.19 ms, min
// 0.04, max 28.9 ms in 40 changes. Shorter than one probe interval, it can
// hold at most one probe: 1. That the loss is the kernel's was seen with
// the del and the add made 350 ms apart (sh -c 'ip addr del ...; sleep
// 0.35; ip addr add ...' in place of the batch): the master's capture
// showed the 4 echo requests of the gap reach its MAC unanswered, and the
// next one answered. No probe was lost in 21 runs of the test (load 2 to
// 12), with
//
//	go test ./e2e -run 'TestAdvertSourceChanged$' -count=10 -v | grep -E 'client probes|^---'
//
// A probe lost in the backup's change (it holds nothing) or in the
// hand-over (a planned one: 0) is carpd's, and fails the test.
const sourceChangeLoss = 1

// TestRestartWhileMaster: carpd on the MASTER is restarted as `systemctl
// restart` does (SIGTERM, wait for the exit, start again), five times in a
// row, each time on whichever host is MASTER then.
//
// Expected, for each restart: on the way down, make before break (the
// MASTER bows out, keeps the VIP until it hears the new master, then exits
// 0); on the way up, no flap: the restarted carpd comes up BACKUP (INIT ->
// BACKUP only) and does not take the VIP back (no preempt). The client,
// probing every 10 ms, loses at most 2 probes per restart; two hosts hold
// the VIP at once only for the handover's advert flight (maxOverlap), and
// it is never unheld.
func TestRestartWhileMaster(t *testing.T) {
	c := newCluster(t)
	startPair(t, c)
	w := watchVIP(t, c.master, c.backup, c.client)
	pr := c.ping(10 * time.Millisecond)
	waitAnswered(t, pr, 5*time.Second)
	begin := time.Now()
	holder, other := c.master, c.backup
	type round struct {
		from, to time.Time
		handover time.Duration
	}
	var rounds []round
	for i := range 5 {
		p := c.procs[holder]
		omark := len(c.procs[other].Output())
		from := time.Now()
		if err := p.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		took, ok := w.waitSoleHolder(other, 5*time.Second)
		if !ok {
			t.Fatalf("restart %d: %s does not hold the VIP alone %v after %s's SIGTERM (holders %v)", i+1, other.Name, took, holder.Name, w.holders())
		}
		select {
		case <-p.Done():
		case <-time.After(5 * time.Second):
			t.Fatalf("restart %d: carpd on %s still runs 5 s after SIGTERM", i+1, holder.Name)
		}
		if code := p.ExitCode(); code != 0 {
			t.Errorf("restart %d: carpd on %s exited %d, want 0", i+1, holder.Name, code)
		}
		if !strings.Contains(p.Output(), "MASTER -> INIT (shutting down)") {
			t.Errorf("restart %d: no bow-out in %s's log:\n%s", i+1, holder.Name, tail(p.Output(), 10))
		}
		np := c.start(holder)
		waitLogs(t, np, 0, 10*time.Second, "carp: 100@eth0: INIT -> BACKUP (initialization complete)")
		// Longer than a master-down interval: a carpd that did not hear
		// the new master would have taken the VIP back by now.
		time.Sleep(masterDown + time.Second)
		if got := transitions(np.Output()); len(got) != 1 {
			t.Errorf("restart %d: the restarted carpd on %s: transitions %q, want only INIT -> BACKUP", i+1, holder.Name, got)
		}
		if got := transitions(logsSince(c.procs[other], omark)); len(got) != 1 || !strings.Contains(got[0], "BACKUP -> MASTER (master will time out)") {
			t.Errorf("restart %d: %s's transitions %q, want only BACKUP -> MASTER (master will time out)", i+1, other.Name, got)
		}
		if got := w.holders(); len(got) != 1 || got[0] != other.Name {
			t.Errorf("restart %d: holders %v, want only %s", i+1, got, other.Name)
		}
		rounds = append(rounds, round{from: from, to: time.Now(), handover: took})
		holder, other = other, holder
	}
	time.Sleep(probe.Timeout(10 * time.Millisecond))
	pr.stop()
	res := pr.results()
	var lost []int
	var total int
	for i, r := range rounds {
		n := 0
		for _, x := range res {
			if x.Lost && !x.Sent.Before(r.from.Add(-50*time.Millisecond)) && x.Sent.Before(r.to) {
				n++
			}
		}
		lost = append(lost, n)
		total += n
		// The target of a planned stop, 0 (it was "at most 2"): one was
		// lost in 1 of 10 restarts here at load 12 to 16 (2026-12-07),
		// the gap issue 23 leaves open (the systemd test's stop).
		if n > 0 {
			t.Errorf("restart %d: %d probes lost, want 0", i+1, n)
		}
	}
	s := probe.Summarize(res)
	if s.Lost != total {
		t.Errorf("%d probes lost outside the restarts", s.Lost-total)
	}
	worst := w.checkOverlaps(t, begin)
	w.checkHeld(t, begin)
	var handovers []string
	for _, r := range rounds {
		handovers = append(handovers, r.handover.Round(time.Millisecond).String())
	}
	t.Logf("5 restarts: probes lost per restart %v (of %d sent at 10 ms); longest overlap of two holders %v; sole holder after SIGTERM within %v",
		lost, s.Sent, worst, handovers)
}

// TestBothRestarted: carpd is stopped on both hosts at once (SIGTERM to
// both) and started on both at once, as after a cluster-wide package
// upgrade.
//
// Expected: both exit 0 within the bow-out's bound (3 × advbase + 1 s and a
// margin) and leave the VIP nowhere. Started together, both come up
// BACKUP; the first master-down timer to run out (the master host's, 3.39
// s, before the backup's 3.78 s) makes exactly one host MASTER, within the
// master-down interval plus a margin; the other stays BACKUP, and from then
// on exactly one host holds the VIP.
func TestBothRestarted(t *testing.T) {
	c := newCluster(t)
	startPair(t, c)
	w := watchVIP(t, c.master, c.backup, c.client)
	pr := c.ping(100 * time.Millisecond)
	waitAnswered(t, pr, 5*time.Second)
	mp, bp := c.procs[c.master], c.procs[c.backup]
	stop := time.Now()
	for _, p := range []*lab.Proc{mp, bp} {
		if err := p.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []*lab.Proc{mp, bp} {
		select {
		case <-p.Done():
		case <-time.After(3*time.Second + time.Second + 3*time.Second):
			t.Fatalf("carpd still runs %v after SIGTERM:\n%s", time.Since(stop), tail(p.Output(), 10))
		}
		if code := p.ExitCode(); code != 0 {
			t.Errorf("carpd exited %d, want 0", code)
		}
	}
	exited := time.Since(stop)
	checkPlaces(t, c)
	if got := w.holders(); len(got) != 0 {
		t.Errorf("holders %v after both stopped, want none", got)
	}
	w.checkOverlaps(t, stop)

	start := time.Now()
	np, nb := c.start(c.master), c.start(c.backup)
	var first *lab.Host
	deadline := start.Add(masterDown + 3*time.Second)
	for first == nil {
		if got := w.holders(); len(got) == 1 {
			first = map[string]*lab.Host{"master": c.master, "backup": c.backup}[got[0]]
		} else if len(got) > 1 {
			t.Errorf("two holders while coming up: %v", got)
		}
		if first == nil && time.Now().After(deadline) {
			t.Fatalf("no host holds the VIP %v after both started:\nmaster:\n%s\nbackup:\n%s", time.Since(start), np.Output(), nb.Output())
		}
		time.Sleep(5 * time.Millisecond)
	}
	came := time.Since(start)
	time.Sleep(masterDown + 1500*time.Millisecond)
	if got := w.holders(); len(got) != 1 || got[0] != first.Name {
		t.Errorf("holders %v after convergence, want only %s", got, first.Name)
	}
	worst := w.checkOverlaps(t, start)
	checkPlaces(t, c, first.Name+"/eth0")
	checkARP(t, c, first)
	masters := 0
	for _, p := range []*lab.Proc{np, nb} {
		for _, tr := range transitions(p.Output()) {
			if strings.Contains(tr, "-> MASTER") {
				masters++
			}
		}
	}
	if masters != 1 {
		t.Errorf("%d transitions to MASTER after the start, want 1", masters)
	}
	pr.stop()
	if s := probe.Summarize(pr.results()); !s.Recovered {
		t.Errorf("client probes did not recover: %+v", s)
	}
	t.Logf("both stopped in %v; the VIP back on %s %v after both started (master-down %v); longest overlap %v",
		exited.Round(time.Millisecond), first.Name, came.Round(time.Millisecond), masterDown, worst)
}

// TestInterfaceRecreatedVirtualMAC: virtual MAC mode (the VIP on a macvlan
// carp<eth0's index>.100 with MAC 00:00:5e:00:01:64) and --preempt on both
// hosts; the master's eth0 is deleted (its macvlan with it) and, once the
// backup has taken over, made again; later it is renamed to eth9 and back.
//
// Expected: on the new eth0, carpd makes a new macvlan carp<new index>.100
// and, preempting, holds the VIP there (not on eth0), with eth0's ARP
// settings made again; no macvlan of the old index is left. Renamed away,
// the macvlan goes (the VIP with it) and the backup takes over; named eth0
// again, the master makes the macvlan again and takes the VIP back. Never
// two holders beyond a handover.
func TestInterfaceRecreatedVirtualMAC(t *testing.T) {
	c := newTOMLCluster(t, []string{"192.0.2.50/32"}, "virtual-mac = true\n")
	c.flags = append(c.flags, "--preempt")
	w := watchVIP(t, c.master, c.backup, c.client)
	mp := c.startTOML(c.master)
	c.startTOML(c.backup)
	if took, ok := w.waitSoleHolder(c.master, 15*time.Second); !ok {
		t.Fatalf("the master does not hold the VIP alone %v after the start (holders %v)", took, w.holders())
	}
	checkVMACHolder(t, c.master)
	oldVMAC := vmacName(t, c.master)
	start := time.Now()

	deleteIface(t, c.master)
	if took, ok := w.waitSoleHolder(c.backup, masterDown+3*time.Second); !ok {
		t.Fatalf("the backup does not hold the VIP %v after the master's eth0 was deleted (holders %v)", took, w.holders())
	}
	checkVMACHolder(t, c.backup)
	mark := len(mp.Output())
	createIface(t, c, c.master, masterAddr)
	if took, ok := w.waitSoleHolder(c.master, 3*time.Second); !ok {
		t.Fatalf("the master does not hold the VIP alone %v after its eth0 came back (holders %v):\n%s", took, w.holders(), logsSince(mp, mark))
	}
	checkVMACHolder(t, c.master)
	if name := vmacName(t, c.master); name == oldVMAC {
		t.Errorf("the virtual MAC interface is still %s", name)
	}
	checkPlaces(t, c, "master/"+vmacName(t, c.master))

	mark = len(mp.Output())
	name := vmacName(t, c.master)
	renameIface(t, c.master, "eth0", "eth9")
	if took, ok := w.waitSoleHolder(c.backup, masterDown+3*time.Second); !ok {
		t.Fatalf("the backup does not hold the VIP %v after the master's eth0 was renamed (holders %v)", took, w.holders())
	}
	if _, ok := hostLinks(t, c.master)[name]; ok {
		t.Errorf("the master's %s is left on the renamed interface", name)
	}
	renameIface(t, c.master, "eth9", "eth0")
	if took, ok := w.waitSoleHolder(c.master, 3*time.Second); !ok {
		t.Fatalf("the master does not hold the VIP alone %v after its eth0 was named so again (holders %v):\n%s", took, w.holders(), logsSince(mp, mark))
	}
	checkVMACHolder(t, c.master)
	checkPlaces(t, c, "master/"+vmacName(t, c.master))
	w.checkOverlaps(t, start)
	if strings.Contains(mp.Output(), "level=ERROR") {
		t.Errorf("errors in the master's log:\n%s", mp.Output())
	}
}
