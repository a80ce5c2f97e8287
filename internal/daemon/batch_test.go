package daemon

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/carpd/carpd/internal/carp"
	"github.com/carpd/carpd/internal/electorate"
	"github.com/carpd/carpd/internal/vrrp"
)

// batchNode is one simulated host whose 255 VRRP vrids (10 ms) are MASTER.
func batchNode(t *testing.T) (*sim, *simNode) {
	t.Helper()
	s := newSim(1)
	if err := s.addNode("a", map[string]string{"vhids": "1-255", "vrrp": "100", "interval": "1"}, []string{"quiet"}); err != nil {
		t.Fatal(err)
	}
	n := s.nodes[0]
	if err := n.startDaemon(); err != nil {
		t.Fatal(err)
	}
	s.advance(time.Second)
	for _, v := range n.d.vhosts {
		if v.el.State() != carp.Master {
			t.Fatalf("vrid %d is %v, want MASTER", v.cfg.VHID, v.el.State())
		}
	}
	return s, n
}

// queueHigher queues, as the reader would, an advert of priority 200 from
// another host for every vrid.
func queueHigher(t *testing.T, n *simNode) {
	t.Helper()
	src, dst := netip.MustParseAddr("192.0.2.99"), netip.MustParseAddr("224.0.0.18")
	for _, v := range n.d.vhosts {
		b, err := vrrp.Advert{VRID: uint8(v.cfg.VHID), Priority: 200, Interval: 1, Addrs: []netip.Addr{v.prefixes[0].Addr()}}.Marshal(src, dst)
		if err != nil {
			t.Fatal(err)
		}
		in, ok := n.d.admitPacket(carp.IPv4, Packet{IfIndex: 2, Src: src, Dst: dst, TTL: carp.TTL, Payload: b}, &vrrp.Advert{})
		if !ok {
			t.Fatalf("vrid %d: advert not admitted", v.cfg.VHID)
		}
		n.d.arrivals <- arrival{advert: in}
	}
}

// TestBatchedStepDown: 255 masters that hear a better master, the adverts
// queued while the loop was busy, step down in one batch: one address sync
// for the interface, not one per vrid. Handled one by one (as before), a
// backup that fell behind paid a sync per vrid (a dump of 255 addresses)
// and fell further behind: the pair of the comparison benchmark flapped
// for good.
func TestBatchedStepDown(t *testing.T) {
	s, n := batchNode(t)
	queueHigher(t, n)
	first := (<-n.d.arrivals).input()
	sets := n.sets
	n.d.handleBatch(s.now, first)
	if got := n.sets - sets; got != 1 {
		t.Errorf("stepping down 255 vrids took %d address syncs, want 1", got)
	}
	for _, v := range n.d.vhosts {
		if v.el.State() != carp.Backup {
			t.Errorf("vrid %d is %v, want BACKUP", v.cfg.VHID, v.el.State())
		}
	}
	if len(n.held) != 0 {
		t.Errorf("the host still holds %d addresses, want none", len(n.held))
	}
	if len(n.d.arrivals) != 0 {
		t.Errorf("%d adverts left in the queue", len(n.d.arrivals))
	}
}

// TestBatchedBeforeTick: at a due deadline the adverts already queued are
// handled first, in the same batch as the tick (handleDue, as the loop
// does): a master-down timer that an advert in the queue resets does not
// fire, and the batch, which changes nothing, costs no address sync.
func TestBatchedBeforeTick(t *testing.T) {
	s, n := batchNode(t)
	queueHigher(t, n)
	first := (<-n.d.arrivals).input()
	n.d.handleBatch(s.now, first) // all BACKUP now
	// The better master's adverts are queued, then the loop's deadline
	// (the master-down timers) passes before it takes them.
	queueHigher(t, n)
	s.now = n.d.nextDeadline().Add(10 * time.Millisecond)
	sets := n.sets
	n.d.handleDue(s.now)
	for _, v := range n.d.vhosts {
		if v.el.State() != carp.Backup {
			t.Fatalf("vrid %d is %v, want BACKUP: its timer fired before the advert queued", v.cfg.VHID, v.el.State())
		}
	}
	if got := n.sets - sets; got != 0 {
		t.Errorf("%d address syncs, want none (nothing changed)", got)
	}
}

// TestArrivalOrder: the loop takes its inputs in the order they arrived. A
// link that went down before a better master's adverts arrived, both
// waiting for a loop whose deadline is due, is handled first: every MASTER leaves for INIT (link down), and the adverts behind
// the change find no BACKUP to step. Taken adverts first (as the loop did
// when adverts and changes had a channel each), the 255 masters stepped
// down to BACKUP on the adverts of a link already down.
func TestArrivalOrder(t *testing.T) {
	s, n := batchNode(t)
	n.quiet = false
	s.out.Reset()
	down := n.link()
	down.Up = false
	n.d.reportChange(context.Background())(Change{IsLink: true, Link: down})
	queueHigher(t, n)
	// The loop was busy: its deadline passed meanwhile (handleDue takes
	// every queued input before the tick, as the loop does).
	n.d.handleDue(n.d.nextDeadline())
	out := s.out.String()
	if got := strings.Count(out, "MASTER -> INIT"); got != len(n.d.vhosts) {
		t.Errorf("%d vrids went from MASTER to INIT, want %d", got, len(n.d.vhosts))
	}
	if i := strings.Index(out, "MASTER -> BACKUP"); i >= 0 {
		t.Errorf("a master stepped down on an advert that arrived after the link went down: %s", strings.SplitN(out[i:], "\n", 2)[0])
	}
}

// TestYieldKicks: a reader between two batches wakes the loop once its
// deadline is past (with one processor the timer's fire would wait for a
// reader that never blocks), and not before.
func TestYieldKicks(t *testing.T) {
	_, n := batchNode(t)
	d := n.d
	now := d.clock.Now().Sub(d.epoch)
	d.due.Store(int64(now + time.Millisecond))
	d.yield(true)
	select {
	case <-d.kick:
		t.Fatal("the loop was woken before its deadline")
	default:
	}
	d.due.Store(int64(now))
	d.yield(false)
	select {
	case <-d.kick:
	default:
		t.Fatal("the loop was not woken at its deadline")
	}
}

// TestChangeWaitsInOrder: with the queue full of adverts, a change waits
// for room, takes the first slot freed (an advert sent after it finds the
// queue full and is dropped), and is taken after the adverts before it.
func TestChangeWaitsInOrder(t *testing.T) {
	_, n := batchNode(t)
	d := n.d
	for len(d.arrivals) < cap(d.arrivals) {
		d.arrivals <- arrival{advert: advertIn{electorate.Admitted{IfIndex: 2}}}
	}
	sent := make(chan struct{})
	go func() {
		d.reportChange(context.Background())(Change{IsLink: true, Link: n.link()})
		close(sent)
	}()
	time.Sleep(50 * time.Millisecond) // the change waits for room
	<-d.arrivals
	<-sent
	select {
	case d.arrivals <- arrival{advert: advertIn{electorate.Admitted{IfIndex: 3}}}:
		t.Fatal("an advert sent after the waiting change took the freed slot")
	default:
	}
	for i := 0; len(d.arrivals) > 0; i++ {
		a := <-d.arrivals
		if last := len(d.arrivals) == 0; (a.change != nil) != last {
			t.Fatalf("arrival %d: change %v, want the change last and only last", i, a.change)
		}
	}
}
