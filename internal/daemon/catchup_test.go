package daemon

import (
	"testing"
	"time"

	"github.com/carpd/carpd/internal/carp"
)

// pendingConn is a simulated protocol socket that says whether datagrams
// wait in it, unread.
type pendingConn struct {
	simConn
	pending bool
}

func (c *pendingConn) Pending() bool { return c.pending }

// TestCatchingUp: a BACKUP's due master-down deadline waits for the readers
// while datagrams wait unread in a protocol socket (the master's adverts,
// which the readers could not read while the loop was busy on the one
// processor), for at most catchUpMax after the loop found it due; it does
// not wait when the socket is empty, and a MASTER's deadline (its next
// advert) never waits.
func TestCatchingUp(t *testing.T) {
	s := newSim(1)
	if err := s.addNode("a", map[string]string{"vhids": "1", "vrrp": "100", "interval": "1"}, nil); err != nil {
		t.Fatal(err)
	}
	n := s.nodes[0]
	if err := n.startDaemon(); err != nil {
		t.Fatal(err)
	}
	conn := &pendingConn{simConn: simConn{n}}
	n.d.host.Conns[0] = conn
	v := n.d.vhosts[0]
	if v.el.State() != carp.Backup {
		t.Fatalf("vrid 1 is %v, want BACKUP", v.el.State())
	}
	next := n.d.nextDeadline()
	late := next.Add(150 * time.Millisecond) // the loop was that busy
	if n.d.catchingUp(late, next) {
		t.Error("a BACKUP's due deadline waits with nothing in the socket")
	}
	conn.pending = true
	n.d.catchUpFor = time.Time{}
	if !n.d.catchingUp(late, next) {
		t.Error("a BACKUP's due deadline does not wait for the datagrams in the socket")
	}
	if !n.d.catchingUp(late.Add(catchUpMax-time.Millisecond), next) {
		t.Errorf("it waits less than %v after the loop found it due", catchUpMax)
	}
	if n.d.catchingUp(late.Add(catchUpMax), next) {
		t.Errorf("it waits %v after the loop found it due", catchUpMax)
	}

	// Alone, it takes over; then its deadline is its next advert's.
	conn.pending = false
	s.advance(time.Second)
	if v.el.State() != carp.Master {
		t.Fatalf("vrid 1 is %v, want MASTER", v.el.State())
	}
	conn.pending = true
	next = n.d.nextDeadline()
	if n.d.catchingUp(next, next) {
		t.Error("a MASTER's due deadline waits for the readers")
	}
}
