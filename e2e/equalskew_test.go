package e2e

// Equal advskew (issue 26): three carpd hosts, all with advskew 100, the
// setting everyone gets who leaves it out. FreeBSD's rule alone (a MASTER
// yields to an equal advert) made the two backups of a dead master time
// out together, both become MASTER and both yield, round after round, the
// address unheld for seconds; and two equal masters whose adverts crossed
// after a partition both yielded. carpd's tie-break (a MASTER yields to an
// equal advert only from a preferred source, and the backups' master-down
// timers offset by their addresses, carp.TieOffset) must leave one holder
// within a master-down interval and an advert interval of the master's
// death, and the address held at every moment once a survivor took it
// over. The holders are judged from netlink address notifications in each
// host's namespace (watchVIP), the timeline `ip monitor address` shows.

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/mdlayher/packet"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/carpd/carpd/internal/carp"
	"github.com/carpd/carpd/internal/lab"
)

// The third host's address.
var thirdAddr = netip.MustParsePrefix("192.0.2.23/24")

// equalSkew is every host's advskew in these tests.
const equalSkew = 100

// equalMasterDown is a backup's master-down interval with advskew 100, the
// largest tie offset included; equalAdvert is a master's advert interval.
const (
	equalMasterDown = 3*time.Second + equalSkew*time.Second/256 + 16*carp.TieOffsetStep
	equalAdvert     = time.Second + equalSkew*time.Second/256
)

// equalHold is how long the sole holder must stay so after the bound.
const equalHold = 3 * time.Second

// TestEqualSkewMasterDies: the master's power is cut; one of the two
// equal backups holds the VIP within equalMasterDown + equalAdvert, alone
// from then on, and from its takeover on the VIP is never unheld (no lock
// step). CARPD_EQUALSKEW_ROUNDS rounds (3), each killing the holder of the
// last and bringing the dead host back as a BACKUP.
func TestEqualSkewMasterDies(t *testing.T) { runEqualSkew(t, false) }

// TestEqualSkewPartitionHeals: the two backups are split from each other
// (their switch ports isolated, carrier up), both still hearing the
// master; the master's power is cut, so both time out on the same last
// advert and become MASTER. Then their adverts cross: a relay in the
// switch's namespace takes the next advert each sends (their ports still
// isolated) and hands each to the other at the same instant, so that each
// has sent its own before it hears the other's; the split heals. That is
// the case that made both yield under FreeBSD's rule (3.4 s unheld,
// measured), left to chance only when the masters' adverts happen to be in
// step within their flight time. The VIP must be held at every moment from
// the takeover on, and by one host alone within an advert interval (and
// 500 ms) of the crossing.
func TestEqualSkewPartitionHeals(t *testing.T) { runEqualSkew(t, true) }

// equalCluster is the three hosts with equal advskew.
type equalCluster struct {
	*cluster
	hosts []*lab.Host
	own   map[*lab.Host]netip.Prefix
	watch *vipWatch
}

func newEqualCluster(t *testing.T) *equalCluster {
	t.Helper()
	c := newCluster(t)
	third, err := c.lab.AddHost("third", thirdAddr)
	if err != nil {
		t.Fatal(err)
	}
	e := &equalCluster{
		cluster: c, hosts: []*lab.Host{c.master, c.backup, third},
		own: map[*lab.Host]netip.Prefix{c.master: masterAddr, c.backup: backupAddr, third: thirdAddr},
	}
	for _, h := range e.hosts {
		// rcConf's master line has advskew 100.
		if err := os.WriteFile(c.rcPath(h), []byte(rcConf(e.own[h], true)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	e.watch = watchVIP(t, e.hosts...)
	return e
}

// startBackup starts carpd on h and waits until it is BACKUP and has heard
// the master's advert (its status shows it: the other hosts are silent
// BACKUPs), an advert interval after its start at most; one that heard
// none within a master-down interval fails.
func (e *equalCluster) startBackup(h *lab.Host) {
	e.t.Helper()
	p := e.start(h)
	if err := waitOutput(p, "INIT -> BACKUP", 10*time.Second); err != nil {
		e.t.Fatal(err)
	}
	deadline := time.Now().Add(equalMasterDown)
	for {
		st := e.status(h)
		if len(st.VHIDs) == 1 && st.VHIDs[0].State == "BACKUP" && st.VHIDs[0].Heard != nil {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%s heard no advert within %v of its INIT -> BACKUP: %+v", h.Name, equalMasterDown, st.VHIDs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// firstHeld returns the first moment after from at which one of hosts
// held the VIP, and whether there was one.
func (w *vipWatch) firstHeld(from time.Time, hosts ...*lab.Host) (time.Time, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, ev := range w.evs {
		if ev.at.After(from) && ev.n > 0 && slices.ContainsFunc(hosts, func(h *lab.Host) bool { return h.Name == ev.host }) {
			return ev.at, true
		}
	}
	return time.Time{}, false
}

func runEqualSkew(t *testing.T, split bool) {
	e := newEqualCluster(t)
	w := e.watch
	e.start(e.master)
	if took, ok := w.waitSoleHolder(e.master, 15*time.Second); !ok {
		t.Fatalf("after %v the VIP is held by %v, want only master", took, w.holders())
	}
	e.startBackup(e.backup)
	e.startBackup(e.hosts[2])

	holder := e.master
	rounds := envInt(t, "CARPD_EQUALSKEW_ROUNDS", 3)
	bound := equalMasterDown + equalAdvert
	var takes, doubles []time.Duration
	for r := range rounds {
		others := slices.DeleteFunc(slices.Clone(e.hosts), func(h *lab.Host) bool { return h == holder })
		if split {
			isolatePorts(t, e.lab, true, others...)
		}
		e.mu.Lock()
		p := e.procs[holder]
		e.mu.Unlock()
		killed := time.Now()
		powerCut(t, holder, p)

		from := killed // the sole holder is judged from from + limit
		limit := bound
		if split {
			for len(w.holders()) != 2 {
				if time.Since(killed) > bound+2*time.Second {
					t.Fatalf("round %d: split: the VIP is held by %v %v after the master died, want both %s and %s",
						r, w.holders(), time.Since(killed), others[0].Name, others[1].Name)
				}
				time.Sleep(20 * time.Millisecond)
			}
			// Let both advertise in the split, then cross one advert of
			// each and heal.
			time.Sleep(equalAdvert)
			crossed := crossAdverts(t, e.lab, others[0], others[1])
			isolatePorts(t, e.lab, false, others...)
			from, limit = crossed, equalAdvert+500*time.Millisecond
		}
		time.Sleep(time.Until(from.Add(limit + equalHold)))

		first, ok := w.firstHeld(killed, others...)
		if !ok {
			t.Fatalf("round %d: nobody holds the VIP %v after %s died", r, time.Since(killed), holder.Name)
		}
		took := first.Sub(killed)
		takes = append(takes, took)
		if took > bound {
			t.Errorf("round %d: the VIP was first held %v after %s died, want within %v", r, took, holder.Name, bound)
		}
		// Held at every moment since the takeover: no lock step, no
		// crossing adverts that make both yield.
		e.checkHeldSince(t, r, first)
		// One holder from the bound on.
		for _, s := range w.overlaps(from.Add(limit)) {
			t.Errorf("round %d: two holders of the VIP for %v from %s, %v after the %s, want one from %v on",
				r, s.len(), s.from.Format("15:04:05.000"), s.from.Sub(from), map[bool]string{false: "kill", true: "heal"}[split], limit)
		}
		// The longest double holding since the takeover; after a heal,
		// the time from the crossing to one holder.
		var double time.Duration
		for _, s := range w.overlaps(maxTime(first, from)) {
			double = max(double, s.len())
		}
		doubles = append(doubles, double)
		hs := w.holders()
		if len(hs) != 1 {
			t.Fatalf("round %d: the VIP is held by %v, want one host", r, hs)
		}
		t.Logf("round %d: %s died; %s held the VIP %v later; longest double holding since the %s %v; %s holds it alone",
			r, holder.Name, othersNames(others), took.Round(time.Millisecond),
			map[bool]string{false: "takeover", true: "heal"}[split], double.Round(time.Microsecond), hs[0])

		// The dead host comes back as a BACKUP.
		dead := holder
		holder = e.lab.Host(hs[0])
		if err := dead.LinkUp(); err != nil {
			t.Fatal(err)
		}
		if err := dead.AddAddr(e.own[dead]); err != nil {
			t.Fatal(err)
		}
		e.startBackup(dead)
		if got := w.holders(); len(got) != 1 || got[0] != holder.Name {
			t.Fatalf("round %d: after %s came back the VIP is held by %v, want only %s", r, dead.Name, got, holder.Name)
		}
	}
	t.Logf("takeover after the kill over %d rounds: %s (bound %v); longest double holding since the %s: %s",
		rounds, spreadOf(takes), bound, map[bool]string{false: "takeover", true: "heal"}[split], spreadOf(doubles))
}

// crossAdverts takes, on the switch's ports of a and b, the next CARP
// advert each host sends (their ports isolated, so that the bridge
// forwards neither), and then hands a's to b and b's to a, back to back:
// each host has sent its advert before it hears the other's. It returns
// when both were handed over.
func crossAdverts(t *testing.T, l *lab.Lab, a, b *lab.Host) time.Time {
	t.Helper()
	conns := make([]*packet.Conn, 2)
	for i, h := range []*lab.Host{a, b} {
		if err := inNamespace(l.Switch, func() error {
			ifi, err := net.InterfaceByName(h.Port)
			if err != nil {
				return err
			}
			// ETH_P_ALL: the tap sees the frames a bridge port takes in.
			conns[i], err = packet.Listen(ifi, packet.Raw, unix.ETH_P_ALL, nil)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		defer conns[i].Close()
	}
	frames := make([][]byte, 2)
	errs := make(chan error, 2)
	for i, c := range conns {
		go func() {
			buf := make([]byte, 1500)
			if err := c.SetReadDeadline(time.Now().Add(2 * equalAdvert)); err != nil {
				errs <- err
				return
			}
			for {
				n, _, err := c.ReadFrom(buf)
				if err != nil {
					errs <- err
					return
				}
				if isCARPFrame(buf[:n]) {
					frames[i] = slices.Clone(buf[:n])
					errs <- nil
					return
				}
			}
		}()
	}
	for range conns {
		if err := <-errs; err != nil {
			t.Fatalf("taking the masters' adverts: %v", err)
		}
	}
	for i, f := range frames {
		if _, err := conns[1-i].WriteTo(f, &packet.Addr{HardwareAddr: f[:6]}); err != nil {
			t.Fatalf("handing an advert over: %v", err)
		}
	}
	return time.Now()
}

// isCARPFrame reports whether f is an Ethernet frame holding an IPv4
// packet of protocol 112 whose payload is CARP (version 2).
func isCARPFrame(f []byte) bool {
	const eth = 14
	if len(f) < eth+20 || f[12] != 0x08 || f[13] != 0x00 || f[eth+9] != 112 {
		return false
	}
	hl := int(f[eth]&0x0f) * 4
	return len(f) >= eth+hl+36 && f[eth+hl]>>4 == 2
}

// inNamespace runs f on an OS thread in namespace ns; sockets it opens stay
// in ns.
func inNamespace(ns string, f func() error) error {
	target, err := netns.GetFromName(ns)
	if err != nil {
		return err
	}
	defer target.Close()
	errc := make(chan error, 1)
	go func() {
		// The thread is left locked, and so discarded, when its
		// namespace cannot be set back.
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			errc <- err
			return
		}
		defer orig.Close()
		if err := netns.Set(target); err != nil {
			errc <- err
			return
		}
		ferr := f()
		if err := netns.Set(orig); err != nil {
			errc <- errors.Join(ferr, err)
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// checkHeldSince fails the test for every interval since from in which no
// host held the VIP, however short (watchVIP sees the changes in order).
func (e *equalCluster) checkHeldSince(t *testing.T, round int, from time.Time) {
	t.Helper()
	for _, s := range e.watch.unheld(from) {
		t.Errorf("round %d: no host held the VIP for %v (from %s, %v after the first takeover)",
			round, s.len(), s.from.Format("15:04:05.000"), s.from.Sub(from))
	}
}

func othersNames(hs []*lab.Host) string {
	var names []string
	for _, h := range hs {
		names = append(names, h.Name)
	}
	return fmt.Sprint(names)
}

// spreadOf is "median M (min A, max B)" of ds.
func spreadOf(ds []time.Duration) string {
	if len(ds) == 0 {
		return "none"
	}
	s := slices.Clone(ds)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return fmt.Sprintf("median %v (min %v, max %v)", s[len(s)/2].Round(time.Microsecond), s[0].Round(time.Microsecond), s[len(s)-1].Round(time.Microsecond))
}
