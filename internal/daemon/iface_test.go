package daemon

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/carpd/carpd/internal/lab"
)

// ifaceHost is the fake host whose eth0 can also be missing: deleted, or
// renamed away.
type ifaceHost struct {
	*fakeHost
	mu      sync.Mutex
	missing bool
}

func (h *ifaceHost) Link(name string) (Link, error) {
	h.mu.Lock()
	missing := h.missing
	h.mu.Unlock()
	if missing && name == "eth0" {
		return Link{}, ErrNoInterface
	}
	return h.fakeHost.Link(name)
}

// setEth0 makes eth0 the link l (l nil: no eth0), as Link reports it,
// without telling the daemon.
func (h *ifaceHost) setEth0(l *Link) {
	h.mu.Lock()
	h.missing = l == nil
	h.mu.Unlock()
	if l != nil {
		h.fakeHost.mu.Lock()
		h.link = *l
		h.fakeHost.mu.Unlock()
	}
}

func (h *ifaceHost) host() *Host {
	hh := h.fakeHost.host()
	hh.Links = h
	return hh
}

// TestInterfaceFollowedByName: carpd follows its interface by the name
// configured. Deleted: INIT, and no error for the addresses the kernel
// took with it. Made again under the same name (a new index): the group
// joined on the new index, BACKUP, adverts admitted from the new index
// only, and as MASTER the addresses added, adverts sent and announced
// there with the new MAC. Renamed away: INIT, and the addresses removed
// from the interface under its new name. Named eth0 again: followed again.
// Made again while the monitor lost changes: the resync follows it.
func TestInterfaceFollowedByName(t *testing.T) {
	h := &ifaceHost{fakeHost: newFakeHost()}
	f := h.fakeHost
	var logs lab.Buffer
	d, err := New(testConfig(), h.host(), Options{Log: testLog(&logs)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done, sub := started(t, d, f, ctx)
	master := func(ifindex int, mac string) {
		t.Helper()
		n := f.count()
		p := advert("lampros", 255, 255, 255) // a bow-out: MASTER at once
		p.IfIndex = ifindex
		f.in <- p
		waitOps(t, f, n,
			"set eth0 managed=[192.0.2.50/32] want=[192.0.2.50/32]",
			"garp if"+strconv.Itoa(ifindex)+" "+mac+" [192.0.2.50]",
			"advert if"+strconv.Itoa(ifindex)+" 192.0.2.22->224.0.0.18 advbase=1 advskew=200")
	}
	master(2, "02:00:00:00:00:01")

	// Deleted: down, then gone; the kernel removed the address.
	down := eth0
	down.Up = false
	h.setEth0(nil)
	f.remove(vip50)
	sub.send(Change{IsLink: true, Link: down})
	sub.send(Change{IsLink: true, Link: down, Deleted: true})
	waitLog(t, &logs, "carp: 100@eth0: MASTER -> INIT (hardware interface down)")
	waitLog(t, &logs, `msg="carp: interface gone; its vhids wait for it to come back" iface=eth0 ifindex=2`)

	// Made again: index 7, another MAC.
	eth7 := Link{Index: 7, Name: "eth0", MAC: net.HardwareAddr{2, 0, 0, 0, 0, 7}, Up: true}
	n := f.count()
	h.setEth0(&eth7)
	sub.send(Change{IsLink: true, Link: eth7})
	waitOps(t, f, n, "join if7")
	waitLog(t, &logs, "carp: 100@eth0: INIT -> BACKUP (hardware interface up)")
	waitLog(t, &logs, `msg="carp: interface back; following it" iface=eth0 ifindex=7`)
	// An advert on the old index is not eth0's any more.
	n = f.count()
	f.in <- advert("lampros", 255, 255, 255)
	time.Sleep(50 * time.Millisecond)
	if got := f.opsSince(n); len(got) != 0 {
		t.Errorf("an advert on the old index made the daemon act: %q", got)
	}
	master(7, "02:00:00:00:00:07")

	// Renamed away: the address goes from eth9.
	eth9 := eth7
	eth9.Name = "eth9"
	n = f.count()
	h.setEth0(nil)
	sub.send(Change{IsLink: true, Link: eth9})
	waitOps(t, f, n, "set eth9 managed=[192.0.2.50/32] want=[]")
	waitLog(t, &logs, `msg="carp: interface renamed; its vhids wait for an interface of that name" iface=eth0 ifindex=7 new-name=eth9`)
	if f.holds(vip50) {
		t.Error("the renamed interface holds the VIP")
	}
	// Named eth0 again: the same index, followed again.
	n = f.count()
	h.setEth0(&eth7)
	sub.send(Change{IsLink: true, Link: eth7})
	waitOps(t, f, n, "join if7")
	if got := strings.Count(logs.String(), "INIT -> BACKUP (hardware interface up)"); got != 2 {
		t.Errorf("%d times INIT -> BACKUP (hardware interface up), want 2", got)
	}
	master(7, "02:00:00:00:00:07")

	// Made again while the monitor lost changes: found by the resync.
	eth8 := Link{Index: 8, Name: "eth0", MAC: net.HardwareAddr{2, 0, 0, 0, 0, 8}, Up: true}
	h.setEth0(&eth8)
	f.remove(vip50)
	n = f.count()
	sub.end(errors.New("link subscription: Receive failed: no buffer space available"))
	<-f.subs
	waitOps(t, f, n, "join if8")
	waitLog(t, &logs, `msg="carp: interface gone; its vhids wait for it to come back" iface=eth0 ifindex=7`)
	waitLog(t, &logs, `msg="carp: interface back; following it" iface=eth0 ifindex=8`)
	master(8, "02:00:00:00:00:08")

	if strings.Contains(logs.String(), "level=ERROR") {
		t.Errorf("errors in the log:\n%s", logs.String())
	}
	cancel()
	d.Abort() // no new master to wait for
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
